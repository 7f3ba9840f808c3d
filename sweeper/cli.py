"""Thin Typer commands: parse, call one function, map errors to exit codes.

Exit codes: 0 ok, 1 the sweep ran but some trials failed, 2 bad input (nothing started), 130 interrupted
(state saved; the message names the resume command). torch and ray are imported only inside the commands
that need them, so `--help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sweeper.cliutil import StorageOpt, console, err_console, storage_or_default, user_errors
from sweeper.errors import SweeperError
from sweeper.report_cli import report

app = typer.Typer(
    help="Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

AddressOpt = Annotated[str | None, typer.Option(help="Existing Ray cluster: auto, HOST:PORT or ray://HOST:10001.")]
DataDirOpt = Annotated[
    str | None, typer.Option(help="Fashion-MNIST folder [default: $SWEEPER_DATA_DIR, else torchvision downloads].")
]


@app.callback()
def main() -> None:
    """Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet."""


def _plain(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _finish(outcome: Any, storage: str) -> None:
    """Print the outcome; exit 130 if interrupted, 1 if trials failed."""
    _plain(f"sweep {outcome.name}: {outcome.trials} trials, {outcome.stopped} stopped by ASHA, "
           f"{outcome.errors} failed, {outcome.unfinished} unfinished; results in {outcome.folder}")
    if outcome.best:
        _plain("best: " + ", ".join(f"{k}={v}" for k, v in outcome.best.items()))
    if outcome.interrupted:
        err_console.print(f"interrupted; state saved. Resume with: sweeper resume {outcome.name} --storage {storage}",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    if outcome.errors:
        err_console.print(f"{outcome.errors} of {outcome.trials} trials failed; see trials.parquet (column error)",
                          markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
@user_errors
def launch(
    space_file: Annotated[Path, typer.Argument(metavar="SPACE.yaml", help="Search space YAML file.")],
    name: Annotated[str | None, typer.Option(help="Sweep name [default: the YAML's name or file stem].")] = None,
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: DataDirOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the expanded trials; start nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="If the sweep exists, continue it.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="If the sweep exists, delete it first.")] = False,
    max_failures: Annotated[
        int, typer.Option(min=0, help="Retry a failed trial up to N times from its last checkpoint.")
    ] = 0,
) -> None:
    """Run a sweep of SPACE.yaml on a local Ray (or --address) and write Parquet results."""
    from sweeper import spaces

    if resume and overwrite:
        raise SweeperError("--resume and --overwrite: choose one")
    space = spaces.load(space_file)
    if name is not None and not spaces.valid_name(name):
        raise SweeperError(f"--name {name!r}: a sweep name is letters, digits and _ . - (not first)")
    if dry_run:
        from sweeper.dryrun import print_dry_run

        print_dry_run(space, console)
        return
    from sweeper.sweep import launch as run_launch

    storage = storage_or_default(storage)
    if_exists = "resume" if resume else "overwrite" if overwrite else "refuse"
    outcome = run_launch(space, storage, name=name, address=address, data_dir=data_dir, if_exists=if_exists,
                         max_failures=max_failures, echo=_plain)
    _finish(outcome, storage)


@app.command("resume")
@user_errors
def resume_cmd(
    name: Annotated[str, typer.Argument(help="The sweep's name (its folder under --storage).")],
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: Annotated[str | None, typer.Option(help="Fashion-MNIST folder [default: the one it launched with].")]
    = None,
    space_file: Annotated[
        Path | None, typer.Option("--space", help="Check this YAML still describes the sweep's trials.")
    ] = None,
    errored: Annotated[
        str, typer.Option(help="Errored trials: resume (from checkpoint), restart (from scratch) or leave.")
    ] = "leave",
) -> None:
    """Continue an interrupted sweep; unfinished trials go on from their last epoch checkpoint."""
    from sweeper import spaces

    if errored not in ("resume", "restart", "leave"):
        raise SweeperError(f"--errored {errored!r}: must be one of resume, restart, leave")
    space = spaces.load(space_file) if space_file else None
    from sweeper.sweep import resume as run_resume

    storage = storage_or_default(storage)
    outcome = run_resume(name, storage, address=address, data_dir=data_dir, space=space,
                         errored=errored, echo=_plain)  # type: ignore[arg-type]
    _finish(outcome, storage)


app.command()(report)
