"""`.lock` in a sweep's folder: the pid and host of the process running it.

A second launch/resume is refused while that process lives, and a lock whose process is gone is taken over.
Object stores (URIs) have no atomic create, so a sweep stored on one is not locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sweeper.errors import SweeperError
from sweeper.store.files import LOCK_FILE
from sweeper.store.storage import SweepFolder


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def locked(sweep: SweepFolder) -> Iterator[None]:
    """Hold the sweep's lock for the duration; refuse if a live process holds it, take over a stale one."""
    if not sweep.local:
        yield
        return
    folder, name = sweep.path, sweep.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "argv": sys.argv}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                holder = {}
            pid = int(holder.get("pid", 0) or 0)
            same_host = holder.get("host", socket.gethostname()) == socket.gethostname()
            if pid and (not same_host or pid_alive(pid)):
                where = "" if same_host else f" on {holder.get('host')}"
                raise SweeperError(
                    f"{folder}: sweep {name!r} is already running (pid {pid}{where}, "
                    f"command: {' '.join(holder.get('argv') or [])}); wait for it or stop it first"
                ) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    else:  # pragma: no cover - three lost races in a row
        raise SweeperError(f"{path}: could not take the sweep's lock")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def holder(sweep: SweepFolder) -> dict[str, Any] | None:
    """Who holds the lock ({pid, host, started, argv}), {} if it cannot be read (being written, or cut by a
    crash), None if there is no lock."""
    data = sweep.read_bytes(LOCK_FILE)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
