"""What every CLI command shares: consoles, the storage option and its default, and turning user errors into
one line and exit 2."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from sweeper.errors import SweeperError

if TYPE_CHECKING:  # pyarrow loads only when a command touches storage: `sweeper --help` stays fast
    from sweeper.store.storage import Storage

console = Console(emoji=False)  # "module:train: ..." is text, not the :train: emoji
err_console = Console(stderr=True, emoji=False)

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Folder or URI holding sweeps (default: $SWEEPER_STORAGE, else ./runs)."),
]


def storage_or_default(storage: str | None) -> str:
    return storage or os.environ.get("SWEEPER_STORAGE") or "runs"


def storage_of(storage: str | None) -> Storage:
    """--storage (or its default) resolved once, the same way for every command."""
    from sweeper.store.storage import Storage

    return Storage.parse(storage_or_default(storage))


def plain(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def plain_err(text: str) -> None:
    err_console.print(text, markup=False, highlight=False, soft_wrap=True)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a SweeperError into one line on stderr and its exit code (2), never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SweeperError as exc:
            plain_err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper
