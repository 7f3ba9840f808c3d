"""Thin Typer commands: parse, call one function, map errors to exit codes.

Exit codes: 0 ok, 1 the sweep ran but some trials failed, 2 bad input (nothing started), 130 interrupted
(state saved; the message names the resume command). torch and ray are imported only inside the commands
that need them, so `--help`, `list` and `status` stay fast. Usage errors are one line too (cligroup.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from sweeper.cligroup import OneLineErrors
from sweeper.cliutil import StorageOpt, console, err_console, storage_or_default, user_errors
from sweeper.errors import SweeperError
from sweeper.report_cli import report

app = typer.Typer(
    cls=OneLineErrors,
    help="Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

AddressOpt = Annotated[str | None, typer.Option(help="Existing Ray cluster: auto, HOST:PORT or ray://HOST:10001.")]
DataDirOpt = Annotated[
    str | None, typer.Option(help="Fashion-MNIST folder (default: $SWEEPER_DATA_DIR, else torchvision downloads).")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Plain progress lines, no live redraw (for logs and CI).")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show Ray's own output instead of sending it to <sweep>/ray.log.")
]


def _complete_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a sweep name: the sweeps under --storage."""
    from sweeper.status import sweep_names

    try:
        names = sweep_names(storage_or_default(ctx.params.get("storage")))
    except SweeperError:
        return []
    return [n for n in names if n.startswith(incomplete)]


NameArg = Annotated[
    str, typer.Argument(help="The sweep's name (its folder under --storage).", autocompletion=_complete_name)
]


@app.callback()
def main() -> None:
    """Hyperparameter sweeps: YAML search spaces -> Ray Tune (ASHA) -> PyTorch trials -> Parquet."""


def _plain(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _progress(quiet: bool, verbose: bool) -> Any:
    """The live view (plain lines with --quiet or off a terminal), on a console bound to this moment's stdout:
    with --verbose the live panel routes sys.stdout (Ray's prints) through itself while it runs."""
    from sweeper.live import LiveView

    return LiveView(Console(file=console.file), quiet=quiet, show_output=verbose)


def _shown(value: Any) -> bool:
    return value is not None and value == value  # NaN != NaN: a sweep without variants has no variant


def _finish(outcome: Any, storage: str) -> None:
    """Print the outcome; exit 130 if interrupted, 1 if trials failed."""
    _plain(f"sweep {outcome.name}: {outcome.trials} trials, {outcome.stopped} stopped by ASHA, "
           f"{outcome.errors} failed, {outcome.unfinished} unfinished; results in {outcome.folder}")
    if outcome.best:
        _plain("best: " + ", ".join(f"{k}={v}" for k, v in outcome.best.items() if _shown(v)))
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
    name: Annotated[str | None, typer.Option(help="Sweep name (default: the YAML's name or file stem).")] = None,
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: DataDirOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the expanded trials; start nothing.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="If the sweep exists, continue it.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="If the sweep exists, delete it first.")] = False,
    max_failures: Annotated[
        int, typer.Option(help="Retry a failed trial up to N times from its last checkpoint.")
    ] = 0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a sweep of SPACE.yaml on a local Ray (or --address) and write Parquet results."""
    from sweeper import spaces

    if resume and overwrite:
        raise SweeperError("--resume and --overwrite: choose one")
    if max_failures < 0:
        raise SweeperError(f"--max-failures {max_failures}: must be 0 or more")
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
                         max_failures=max_failures, echo=_plain, progress=_progress(quiet, verbose),
                         verbose=verbose)
    _finish(outcome, storage)


@app.command("resume")
@user_errors
def resume_cmd(
    name: NameArg,
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: Annotated[str | None, typer.Option(help="Fashion-MNIST folder (default: the one it launched with).")]
    = None,
    space_file: Annotated[
        Path | None, typer.Option("--space", help="Check this YAML still describes the sweep's trials.")
    ] = None,
    errored: Annotated[
        str, typer.Option(help="Errored trials: resume (from checkpoint), restart (from scratch) or leave.")
    ] = "leave",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Continue an interrupted sweep; unfinished trials go on from their last epoch checkpoint."""
    from sweeper import spaces

    if errored not in ("resume", "restart", "leave"):
        raise SweeperError(f"--errored {errored!r}: must be one of resume, restart, leave")
    space = spaces.load(space_file) if space_file else None
    from sweeper.sweep import resume as run_resume

    storage = storage_or_default(storage)
    outcome = run_resume(name, storage, address=address, data_dir=data_dir, space=space, errored=errored,
                         echo=_plain, progress=_progress(quiet, verbose), verbose=verbose)  # type: ignore[arg-type]
    _finish(outcome, storage)


app.command()(report)


@app.command()
@user_errors
def status(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The sweep's name (default: the sweep started last).",
                       autocompletion=_complete_name),
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Progress of a running or finished sweep, read from its folder (Ray is not started)."""
    from sweeper import status as st
    from sweeper.live import panel

    storage = storage_or_default(storage)
    console.print(panel(st.load(storage, name or st.latest(storage)), max_rows=50))


@app.command("list")
@user_errors
def list_cmd(storage: StorageOpt = None) -> None:
    """Every sweep under --storage: state, trials by state, best metric, started, duration."""
    from sweeper.status import list_table

    title, table, warnings = list_table(storage_or_default(storage))
    if not table.rows:
        _plain(f"no sweeps in {storage_or_default(storage)}")
        return
    _plain(title)
    console.print(table)
    for line in warnings:
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
