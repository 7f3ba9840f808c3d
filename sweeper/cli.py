"""Thin Typer commands: parse, call one function, map errors to exit codes.

Exit codes: 0 ok, 1 the sweep ran but some trials failed, 2 bad input (nothing started).
torch and ray are imported only inside the commands that need them, so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweeper.cliutil import StorageOpt, console, err_console, storage_or_default, user_errors
from sweeper.errors import SweeperError
from sweeper.report_cli import report

app = typer.Typer(
    help="Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

@app.callback()
def main() -> None:
    """Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet."""


@app.command()
@user_errors
def launch(
    space_file: Annotated[Path, typer.Argument(metavar="SPACE.yaml", help="Search space YAML file.")],
    name: Annotated[str | None, typer.Option(help="Sweep name [default: the YAML's name or file stem].")] = None,
    storage: StorageOpt = None,
    address: Annotated[
        str | None, typer.Option(help="Existing Ray cluster: auto, HOST:PORT or ray://HOST:10001.")
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(help="Fashion-MNIST folder [default: $SWEEPER_DATA_DIR, else torchvision downloads]."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the expanded trials; start nothing.")] = False,
) -> None:
    """Run a sweep of SPACE.yaml on a local Ray (or --address) and write Parquet results."""
    from sweeper import spaces

    space = spaces.load(space_file)
    if name is not None and not spaces.valid_name(name):
        raise SweeperError(f"--name {name!r}: a sweep name is letters, digits and _ . - (not starting with . - _)")
    if dry_run:
        from sweeper.dryrun import print_dry_run

        print_dry_run(space, console)
        return
    from sweeper.sweep import launch as run_launch

    outcome = run_launch(space, storage_or_default(storage), name=name, address=address, data_dir=data_dir)
    console.print(
        f"sweep {name or space.name}: {outcome.trials} trials, {outcome.stopped} stopped by ASHA, "
        f"{outcome.errors} failed; results in {outcome.folder}",
        markup=False, highlight=False,
    )
    if outcome.best:
        console.print(f"best {space.spec.metric}: {outcome.best.get(space.spec.metric)} with {outcome.best['config']}",
                      markup=False, highlight=False)
    if outcome.errors:
        err_console.print(f"{outcome.errors} of {outcome.trials} trials failed; see trials.parquet (column error)")
        raise typer.Exit(1)


app.command()(report)
