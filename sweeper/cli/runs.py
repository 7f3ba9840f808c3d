"""`sweeper launch` and `sweeper resume`: run a sweep on a local Ray (or a cluster) and report how it went."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

from sweeper.cli.common import StorageOpt, console, plain, plain_err, storage_of, user_errors
from sweeper.cli.names import NameArg
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    from sweeper.run.sweep import Outcome
    from sweeper.store.storage import Storage
    from sweeper.watch.live import LiveView

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
ERRORED = ("resume", "restart", "leave")


def _progress(quiet: bool, verbose: bool) -> LiveView:
    """The live view (plain lines with --quiet or off a terminal), on a console bound to this moment's stdout:
    with --verbose the live panel routes sys.stdout (Ray's prints) through itself while it runs."""
    from sweeper.watch.live import LiveView

    return LiveView(Console(file=console.file), quiet=quiet, show_output=verbose)


def _shown(value: Any) -> bool:
    return value is not None and value == value  # NaN != NaN: a sweep without variants has no variant


def _finish(outcome: Outcome, storage: Storage) -> None:
    """Print the outcome; exit 130 if interrupted, 1 if trials failed."""
    plain(f"sweep {outcome.name}: {outcome.trials} trials, {outcome.stopped} stopped by ASHA, "
          f"{outcome.errors} failed, {outcome.unfinished} unfinished; results in {outcome.folder}")
    if outcome.best:
        plain("best: " + ", ".join(f"{k}={v}" for k, v in outcome.best.items() if _shown(v)))
    if outcome.interrupted:
        plain_err(f"interrupted; state saved. Resume with: sweeper resume {outcome.name} --storage {storage}")
        raise typer.Exit(130)
    if outcome.errors:
        plain_err(f"{outcome.errors} of {outcome.trials} trials failed; see trials.parquet (column error)")
        raise typer.Exit(1)


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
    warm_start: Annotated[
        str | None, typer.Option(help="search: tpe starts from the ended trials of this sweep (under --storage).")
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a sweep of SPACE.yaml on a local Ray (or --address) and write Parquet results."""
    from sweeper.spec.loader import load, valid_name

    if resume and overwrite:
        raise SweeperError("--resume and --overwrite: choose one")
    if max_failures < 0:
        raise SweeperError(f"--max-failures {max_failures}: must be 0 or more")
    space = load(space_file)
    if name is not None and not valid_name(name):
        raise SweeperError(f"--name {name!r}: a sweep name is letters, digits and _ . - (not first)")
    if dry_run:
        from sweeper.run.calibrate import timing
        from sweeper.watch.dryrun import print_dry_run

        print_dry_run(space, console, timing(space))
        return
    from sweeper.run.sweep import launch as run_launch

    where = storage_of(storage)
    if_exists: Literal["refuse", "resume", "overwrite"] = "resume" if resume else "overwrite" if overwrite else "refuse"
    outcome = run_launch(space, where, name=name, address=address, data_dir=data_dir, if_exists=if_exists,
                         max_failures=max_failures, echo=plain, progress=_progress(quiet, verbose), verbose=verbose,
                         warm_start=warm_start)
    _finish(outcome, where)


@user_errors
def resume(
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
    from sweeper.spec.loader import load

    if errored not in ERRORED:
        raise SweeperError(f"--errored {errored!r}: must be one of {', '.join(ERRORED)}")
    space = load(space_file) if space_file else None
    from sweeper.run.sweep import resume as run_resume

    where = storage_of(storage)
    outcome = run_resume(name, where, address=address, data_dir=data_dir, space=space,
                         errored=errored,  # type: ignore[arg-type]  # checked against ERRORED above
                         echo=plain, progress=_progress(quiet, verbose), verbose=verbose)
    _finish(outcome, where)
