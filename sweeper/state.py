"""A sweep folder's own bookkeeping, beside Ray's: `sweep.json` (fingerprint, runs, state) and `.lock`.

`sweep.json` records the sweeper version, the search space as launched (also kept verbatim in spec.yaml),
the data folder, and one entry per launch/resume ("session"), so `resume` can refuse a changed YAML and
reports can tell what ran when. `.lock` holds the pid of the process running the sweep; a second
launch/resume is refused while that process lives, and a lock whose process is gone is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweeper import __version__
from sweeper.errors import SweeperError
from sweeper.results import is_uri, read_text, write_text
from sweeper.spaces import Space

STATE_FILE = "sweep.json"
LOCK_FILE = ".lock"
SPEC_FILE = "spec.yaml"  # the search space's YAML, verbatim, as launched
# Keys that do not change which trials run or what they compute: a resume may differ in these.
RESUME_SAFE_KEYS = {"resources", "max_concurrent", "description"}


def fingerprint(space: Space) -> dict[str, Any]:
    """The resolved search space: every setting with its default, variants and parameters as written."""
    return json.loads(space.spec.model_dump_json(exclude={"name"}))


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two fingerprints."""
    keys = []
    for key in sorted(set(old) | set(new)):
        where = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, where + ".")
        elif a != b:
            keys.append(where)
    return keys


def trial_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in changed_keys(old, new) if k.split(".")[0] not in RESUME_SAFE_KEYS]


def read_state(folder: str) -> dict[str, Any] | None:
    target = f"{folder}/{STATE_FILE}"
    try:
        text = read_text(target)
        return None if text is None else json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise SweeperError(f"{target}: unreadable sweep state: {str(exc).splitlines()[0]}") from None


def write_state(folder: str, state: dict[str, Any]) -> None:
    write_text(f"{folder}/{STATE_FILE}", json.dumps(state, indent=2, default=str))


def new_state(space: Space, data_dir: str | None) -> dict[str, Any]:
    return {
        "name": space.name, "sweeper_version": __version__, "space_file": str(space.path),
        "fingerprint": fingerprint(space), "data_dir": data_dir, "state": "new", "sessions": [],
    }


def start_session(state: dict[str, Any], command: str) -> int:
    state["sessions"].append({"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                              "started": time.time(), "ended": None, "outcome": None})
    state["state"] = "running"
    return len(state["sessions"]) - 1


def end_session(state: dict[str, Any], outcome: str) -> None:
    state["sessions"][-1].update(ended=time.time(), outcome=outcome)
    state["state"] = outcome


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def locked(target: str, name: str) -> Iterator[None]:
    """Hold the sweep's lock for the duration; refuse if a live process holds it, take over a stale one.

    Object stores (URIs) have no atomic create, so a sweep stored on one is not locked."""
    if is_uri(target):
        yield
        return
    folder = Path(target)
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
