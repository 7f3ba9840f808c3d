"""`sweeper launch` and `sweeper resume`: run a sweep on a local Ray (or a cluster) and report how it went."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from sweeper.cli.common import StorageOpt, console, plain, storage_of, user_errors
from sweeper.cli.names import NameArg
from sweeper.cli.running import (
    AcceptCodeOpt,
    AddressOpt,
    DataDirOpt,
    KeptDataDirOpt,
    MaxFailuresOpt,
    QuietOpt,
    VerboseOpt,
    finish,
    progress_view,
)
from sweeper.errors import SweeperError
from sweeper.store.trials import Errored


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
    max_failures: MaxFailuresOpt = 0,
    warm_start: Annotated[
        str | None, typer.Option(help="search: tpe starts from the ended trials of this sweep (under --storage).")
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run a sweep of SPACE.yaml on a local Ray (or --address) and write Parquet results."""
    from sweeper.run.training.factories import load_space
    from sweeper.spec.loader import valid_name

    if resume and overwrite:
        raise SweeperError("--resume and --overwrite: choose one")
    space = load_space(space_file)
    if name is not None and not valid_name(name):
        raise SweeperError(f"--name {name!r}: a sweep name is letters, digits and _ . - (not first)")
    if dry_run:
        from sweeper.run.session import check_and_time
        from sweeper.watch.dryrun import print_dry_run

        print_dry_run(space, console, check_and_time(space, data_dir))
        return
    from sweeper.run import launch as run_launch

    where = storage_of(storage)
    if_exists: Literal["refuse", "resume", "overwrite"] = "resume" if resume else "overwrite" if overwrite else "refuse"
    outcome = run_launch(space, where, name=name, address=address, data_dir=data_dir, if_exists=if_exists,
                         max_failures=max_failures, echo=plain, progress=progress_view(quiet, verbose),
                         verbose=verbose, warm_start=warm_start)
    finish(outcome, where)


@user_errors
def resume(
    name: NameArg,
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: KeptDataDirOpt = None,
    space_file: Annotated[
        Path | None, typer.Option("--space", help="Check this YAML still describes the sweep's trials.")
    ] = None,
    errored: Annotated[
        Errored, typer.Option(help="Errored trials: resume (from checkpoint), restart (from scratch) or leave.")
    ] = Errored.LEAVE,
    accept_changed_code: AcceptCodeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Continue an interrupted sweep; unfinished trials go on from their last epoch checkpoint."""
    from sweeper.run.training.factories import load_space

    space = load_space(space_file) if space_file else None
    from sweeper.run import resume as run_resume

    where = storage_of(storage)
    outcome = run_resume(name, where, address=address, data_dir=data_dir, space=space, errored=errored,
                         echo=plain, progress=progress_view(quiet, verbose), verbose=verbose,
                         accept_code=accept_changed_code)
    finish(outcome, where)
