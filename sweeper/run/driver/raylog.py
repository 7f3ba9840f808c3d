"""Keep Ray's own output off the terminal: its log lines go to `<sweep folder>/ray.log` unless --verbose.

While a sweep runs (not verbose): Tune's console reporter is the quiet legacy one (verbose=0 prints nothing;
the newer engine prints a configuration box and paths even then); Ray's loggers (their handlers hold the
stderr of import time) and everything else written to sys.stderr (warnings) go to the log file. stdout is left
alone, so sweeper's own progress still shows. The file is opened on the first line written, so a quiet run
leaves none; a file descriptor asked of it (faulthandler's, for crash dumps) is the real stderr's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import IO, Any

from sweeper.store.files import LOG_FILE
from sweeper.store.storage import SweepFolder


def log_path(folder: SweepFolder) -> Path:
    """Where a sweep's Ray log goes: in its folder, or a local temp file for a sweep stored at a URI."""
    if not folder.local:
        return Path(tempfile.gettempdir()) / f"sweeper-{folder.name}-{LOG_FILE}"
    return folder.path / LOG_FILE


class LazyLog(io.TextIOBase):
    """A text file opened (for appending) on first use; once closed, what still comes goes to stderr."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self._done = False

    def _file(self) -> IO[str]:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", buffering=1)  # closed in close()
        return self._fh

    def write(self, text: str) -> int:
        if self._done:  # a stream someone kept past the sweep
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)
        return self._file().write(text)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def fileno(self) -> int:
        if sys.__stderr__ is None:
            raise io.UnsupportedOperation("fileno")
        return sys.__stderr__.fileno()

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False  # writes after the sweep are forwarded, never refused

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._done = True


@contextmanager
def _env(key: str, value: str) -> Iterator[None]:
    old = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


@contextmanager
def _ray_loggers_to(stream: IO[str]) -> Iterator[None]:
    """Point the stream handlers of Ray's loggers at `stream` for a while."""
    import ray  # noqa: F401 - Ray's loggers and their handlers exist from its import on

    names = ["ray", *(n for n in logging.root.manager.loggerDict if n.startswith("ray."))]
    handlers = {h for n in names for h in logging.getLogger(n).handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)}
    old = {h: _swap_stream(h, stream) for h in handlers}
    try:
        yield
    finally:
        for h, s in old.items():
            # A stream closed meanwhile (Ray imported while a test runner or notebook cell held stderr) would
            # make every later log line an error: the process's own stderr takes its place.
            _swap_stream(h, sys.__stderr__ if _closed(s) or s is None else s)


def _closed(stream: Any) -> bool:
    return bool(getattr(stream, "closed", False))


def _swap_stream(handler: logging.StreamHandler, stream: Any) -> Any:
    """Point `handler` at `stream`; returns the stream it had. Unlike `setStream`, never flushes a closed one
    (which raises)."""
    with handler.lock or contextlib.nullcontext():
        old = handler.stream
        if old is not None and not _closed(old):
            try:
                old.flush()
            except (OSError, ValueError):
                pass
        handler.stream = stream
    return old


@contextmanager
def ray_output(folder: SweepFolder, verbose: bool) -> Iterator[Any]:
    """While it is open Ray's output goes to the sweep's log file (unless verbose); yields the log's path."""
    if verbose:
        yield None
        return
    log = LazyLog(log_path(folder))
    try:
        with _env("RAY_AIR_NEW_OUTPUT", "0"), redirect_stderr(log), _ray_loggers_to(log):  # type: ignore[arg-type]
            yield log.path
    finally:
        log.close()
