"""The sweep-name argument, with shell completion of the sweeps under --storage."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeper.cli.common import storage_of
from sweeper.errors import SweeperError


def complete_name(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a sweep name: the sweeps under --storage."""
    from sweeper.store.sweeps import sweep_names

    try:
        names = sweep_names(storage_of(ctx.params.get("storage")))
    except SweeperError:
        return []
    return [n for n in names if n.startswith(incomplete)]


NameArg = Annotated[
    str, typer.Argument(help="The sweep's name (its folder under --storage).", autocompletion=complete_name)
]
