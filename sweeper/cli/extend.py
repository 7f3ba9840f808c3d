"""`sweeper extend`: grow a finished or interrupted sweep; only the trials its new space adds run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweeper.cli.common import StorageOpt, plain, storage_of, user_errors
from sweeper.cli.names import NameArg
from sweeper.cli.running import (
    AcceptCodeOpt,
    AddressOpt,
    KeptDataDirOpt,
    MaxFailuresOpt,
    QuietOpt,
    VerboseOpt,
    finish,
    progress_view,
)


@user_errors
def extend(
    name: NameArg,
    space_file: Annotated[
        Path, typer.Option("--space", help="The grown search space: more num_samples, repeats, grid values or "
                           "variants; what the trials that ran used must stay as it was.")
    ],
    storage: StorageOpt = None,
    address: AddressOpt = None,
    data_dir: KeptDataDirOpt = None,
    max_failures: MaxFailuresOpt = 0,
    accept_changed_code: AcceptCodeOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Grow a sweep: run only the trials --space adds, into the same results (report, status and list see one
    sweep)."""
    from sweeper.run.training.factories import load_space

    space = load_space(space_file)
    from sweeper.run import extend as run_extend

    where = storage_of(storage)
    outcome = run_extend(name, where, space, address=address, data_dir=data_dir, max_failures=max_failures,
                         echo=plain, progress=progress_view(quiet, verbose), verbose=verbose,
                         accept_code=accept_changed_code)
    finish(outcome, where)
