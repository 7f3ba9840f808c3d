"""`sweeper status` and `sweeper list`: read a sweep's folder (no Ray, torch or pandas)."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cli.common import StorageOpt, console, plain, plain_err, storage_of, user_errors
from sweeper.cli.names import complete_name


@user_errors
def status(
    name: Annotated[
        str | None,
        typer.Argument(metavar="NAME", help="The sweep's name (default: the sweep started last).",
                       autocompletion=complete_name),
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Progress of a running or finished sweep, read from its folder (Ray is not started)."""
    from sweeper.store.sweeps import latest
    from sweeper.watch.live import panel
    from sweeper.watch.status import load

    where = storage_of(storage)
    console.print(panel(load(where, name or latest(where)), max_rows=50))


@user_errors
def list_sweeps(storage: StorageOpt = None) -> None:
    """Every sweep under --storage: state, trials by outcome, best metric, started, duration."""
    from sweeper.watch.status import list_table

    where = storage_of(storage)
    title, table, warnings = list_table(where)
    if not table.rows:
        plain(f"no sweeps in {where}")
        return
    plain(title)
    console.print(table)
    for line in warnings:
        plain_err(line)
