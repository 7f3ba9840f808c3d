"""What every CLI command shares: consoles, the storage default, and turning user errors into exit 2."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from rich.console import Console

from sweeper.errors import SweeperError

console = Console()
err_console = Console(stderr=True)

StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="Folder or URI holding sweeps (default: $SWEEPER_STORAGE, else ./runs)."),
]


def storage_or_default(storage: str | None) -> str:
    return storage or os.environ.get("SWEEPER_STORAGE") or "runs"


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a SweeperError into one line on stderr and its exit code (2), never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SweeperError as exc:
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper
