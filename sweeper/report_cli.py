"""`sweeper report`: placeholder until the report issue lands."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cliutil import StorageOpt, user_errors


@user_errors
def report(
    sweeps: Annotated[list[str] | None, typer.Argument(metavar="[NAME|PATH]...", help="Sweeps to report.")] = None,
    storage: StorageOpt = None,
) -> None:
    """Comparison tables and plots of one or more sweeps (not implemented yet)."""
    raise typer.Exit(2)
