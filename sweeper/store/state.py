"""A sweep folder's own bookkeeping, beside Ray's: `sweep.json` (fingerprint, sessions, state).

`sweep.json` records the sweeper version, the search space as launched (also kept verbatim in spec.yaml),
the data folder, and one entry per launch/resume ("session"), so `resume` can refuse a changed YAML and
reports can tell what ran when. A folder is a sweep exactly when it holds sweep.json.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

from sweeper.errors import SweeperError
from sweeper.spec.schema import SweepSpec
from sweeper.spec.space import Space
from sweeper.store.files import STATE_FILE
from sweeper.store.storage import SweepFolder
from sweeper.version import __version__

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


def with_defaults(fp: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint with every setting a newer sweeper added (search, repeats, ...) at its default, so a sweep
    launched before that setting existed compares equal to the same YAML loaded now."""
    defaults = json.loads(SweepSpec().model_dump_json(exclude={"name"}))
    return {k: ({**v, **fp[k]} if isinstance(v, dict) and isinstance(fp.get(k), dict) else fp.get(k, v))
            for k, v in defaults.items()} | {k: v for k, v in fp.items() if k not in defaults}


def trial_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in changed_keys(with_defaults(old), with_defaults(new)) if k.split(".")[0] not in RESUME_SAFE_KEYS]


def read_state(folder: SweepFolder) -> dict[str, Any] | None:
    """sweep.json's content, or None if the folder holds none; an unreadable one is a SweeperError."""
    data = folder.read_bytes(STATE_FILE)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SweeperError(f"{folder.uri(STATE_FILE)}: unreadable sweep state: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise SweeperError(f"{folder.uri(STATE_FILE)}: unreadable sweep state: a JSON object expected, "
                           f"got {type(value).__name__}")
    return value


def write_state(folder: SweepFolder, state: dict[str, Any]) -> None:
    folder.write_text(STATE_FILE, json.dumps(state, indent=2, default=str))


def sessions(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The launch/resume sessions recorded in sweep.json (malformed entries left out)."""
    return [s for s in state.get("sessions") or [] if isinstance(s, dict)]


def first_started(state: dict[str, Any]) -> float | None:
    found = sessions(state)
    return float(found[0]["started"]) if found and found[0].get("started") else None


def last_started(state: dict[str, Any]) -> float:
    found = sessions(state)
    try:
        return float(found[-1].get("started") or 0) if found else 0.0
    except (TypeError, ValueError):
        return 0.0


def new_state(space: Space, data_dir: str | None) -> dict[str, Any]:
    return {
        "name": space.name, "sweeper_version": __version__, "space_file": str(space.path),
        "fingerprint": fingerprint(space), "data_dir": data_dir, "state": "new", "sessions": [],
    }


def experiments(state: dict[str, Any]) -> list[str]:
    """The sweep's Ray experiments, oldest first, as folders under the sweep's ("" = the sweep folder itself, where
    the launch runs; `extend-1`, ... for each `sweeper extend`). `resume` continues the last."""
    found = [e for e in state.get("experiments") or [] if isinstance(e, str)]
    return found or [""]


def add_experiment(state: dict[str, Any]) -> str:
    """Name a new extension's experiment and record it: extend-1, extend-2, ..."""
    name = f"extend-{len(experiments(state))}"
    state["experiments"] = [*experiments(state), name]
    return name


def start_session(state: dict[str, Any], command: str) -> int:
    state["sessions"].append({"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                              "started": time.time(), "ended": None, "outcome": None})
    state["state"] = "running"
    return len(state["sessions"]) - 1


def end_session(state: dict[str, Any], outcome: str) -> None:
    state["sessions"][-1].update(ended=time.time(), outcome=outcome)
    state["state"] = outcome
