"""What the commands that run trials (`launch`, `resume`, `extend`) share: their Ray, data, retry and output
options, the live view they run under, and how they print the outcome and pick the exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from sweeper.cli.common import console, plain, plain_err

if TYPE_CHECKING:
    from sweeper.run import Outcome
    from sweeper.store.storage import Storage
    from sweeper.watch.live import LiveView

AddressOpt = Annotated[str | None, typer.Option(help="Existing Ray cluster: auto, HOST:PORT or ray://HOST:10001.")]
DataDirOpt = Annotated[
    str | None, typer.Option(help="Fashion-MNIST folder (default: $SWEEPER_DATA_DIR, else torchvision downloads); "
                             "passed as data_dir to a data source that takes it.")
]
KeptDataDirOpt = Annotated[  # a sweep that exists already: its data folder is recorded
    str | None, typer.Option(help="Fashion-MNIST folder (default: the one it launched with).")
]
AcceptCodeOpt = Annotated[
    bool, typer.Option("--accept-changed-code", help="Go on although the sweep's own models' code changed since it "
                       "ran (trials.parquet's `code` column tells the versions apart).")
]
MaxFailuresOpt = Annotated[
    int, typer.Option(min=0, help="Retry a failed trial up to N times from its last checkpoint.")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Plain progress lines, no live redraw (for logs and CI).")
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show Ray's own output instead of sending it to <sweep>/ray.log.")
]


def progress_view(quiet: bool, verbose: bool) -> LiveView:
    """The live view (plain lines with --quiet or off a terminal), on a console bound to this moment's stdout:
    with --verbose the live panel routes sys.stdout (Ray's prints) through itself while it runs."""
    from sweeper.watch.live import LiveView

    return LiveView(Console(file=console.file, emoji=False), quiet=quiet, show_output=verbose)


def _shown(value: Any) -> bool:
    return value is not None and value == value  # NaN != NaN: a sweep without variants has no variant


def finish(outcome: Outcome, storage: Storage) -> None:
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
