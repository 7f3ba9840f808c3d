"""`sweeper status` and `sweeper list`: a sweep's progress read from its folder, without Ray or pandas.

A sweep folder holds sweep.json (state.py: the sweep's state and one entry per launch/resume session), .lock
(the pid and host of the process running it), spec.yaml and the two Parquet files. A sweep whose sweep.json
says "running" while no live process holds its lock shows as "interrupted (driver died)". The file names are
those of state.py, results.py and sweep.py, repeated here because importing those modules pulls in pandas;
tests check that they agree. Parquet is read with pyarrow alone, and spec.yaml is parsed (pydantic) only for
the time-left estimate of a running sweep.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from sweeper.errors import SweeperError
from sweeper.live import CATEGORIES, Tracker, duration
from sweeper.results import EPOCHS_FILE, TRIALS_FILE
from sweeper.state import LOCK_FILE, SPEC_FILE, STATE_FILE, pid_alive

DIED = "interrupted (driver died)"


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _local(path: str) -> Path:
    return Path(path.removeprefix("file://")).expanduser()


def _read(target: str) -> bytes | None:
    """A file's bytes, or None if it does not exist."""
    try:
        if _is_uri(target):
            import pyarrow.fs as pafs

            fs, path = pafs.FileSystem.from_uri(target)
            with fs.open_input_stream(path) as fh:
                return fh.read()
        return _local(target).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SweeperError(f"{target}: cannot read: {exc.strerror or str(exc).splitlines()[0]}") from None


def _read_json(target: str) -> dict[str, Any] | None:
    data = _read(target)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SweeperError(f"{target}: unreadable sweep state: {str(exc).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise SweeperError(f"{target}: unreadable sweep state: a JSON object expected, got {type(value).__name__}")
    return value


def read_rows(folder: str, name: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of one of a sweep's Parquet files ([] if it does not exist yet). ParquetFile, not read_table:
    the latter goes through pyarrow.dataset, which imports pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = f"{folder}/{name}"
    try:
        if _is_uri(target):
            import pyarrow.fs as pafs

            fs, path = pafs.FileSystem.from_uri(target)
            with fs.open_input_file(path) as fh:
                table = pq.ParquetFile(fh).read(columns=columns)
        else:
            path = _local(target)
            if not path.exists():
                return []
            table = pq.ParquetFile(path).read(columns=columns)
    except FileNotFoundError:
        return []
    except (pa.ArrowException, OSError) as exc:
        raise SweeperError(f"{target}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    return table.to_pylist()


def folder_of(storage: str, name: str) -> str:
    if _is_uri(storage):
        return f"{storage.rstrip('/')}/{name}"
    return str(_local(storage).absolute() / name)


def sweep_names(storage: str) -> list[str]:
    """Names of the sweeps under storage (folders holding sweep.json), sorted."""
    if _is_uri(storage):
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(storage)
        try:
            infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        except OSError as exc:
            raise SweeperError(f"--storage {storage}: cannot list: {str(exc).splitlines()[0]}") from None
        dirs = [i.base_name for i in infos if i.type == pafs.FileType.Directory]
        return sorted(d for d in dirs if fs.get_file_info(f"{path}/{d}/{STATE_FILE}").is_file)
    root = _local(storage)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise SweeperError(f"--storage {storage}: {what}; sweeps are stored under --storage or $SWEEPER_STORAGE")
    try:
        return sorted(p.name for p in root.iterdir() if (p / STATE_FILE).is_file())
    except OSError as exc:
        raise SweeperError(f"--storage {storage}: cannot list: {exc.strerror or exc}") from None


def planned_trials(fingerprint: dict[str, Any]) -> int:
    """Trials a sweep runs, from its resolved spec: variants x grid product x num_samples."""
    n = max(len(fingerprint.get("variants") or []), 1)
    for value in (fingerprint.get("parameters") or {}).values():
        if isinstance(value, dict) and isinstance(value.get("grid"), list):
            n *= len(value["grid"])
    return n * int(fingerprint.get("num_samples") or 1)


@dataclass
class Driver:
    label: str  # running | running (on HOST) | interrupted (driver died) | sweep.json's state
    pid: int | None = None
    host: str | None = None


def driver(folder: str, sweep_state: dict[str, Any]) -> Driver:
    """Who runs the sweep now, from sweep.json's state and the lock."""
    recorded = str(sweep_state.get("state") or "new")
    if recorded != "running":
        return Driver(recorded)
    try:
        lock = _read_json(f"{folder}/{LOCK_FILE}")
    except SweeperError:
        lock = {}  # being written, or cut by a crash: judge by the pid if there is one
    if lock is None:
        return Driver(DIED)
    pid, host = int(lock.get("pid") or 0), lock.get("host")
    if host and host != socket.gethostname():
        return Driver(f"running (on {host})", pid, host)
    return Driver("running", pid, host) if pid and pid_alive(pid) else Driver(DIED, pid, host)


def _last_sign_of_life(folder: str, fallback: float) -> float:
    if _is_uri(folder):
        return fallback
    times = [p.stat().st_mtime for p in (_local(f"{folder}/{n}") for n in (TRIALS_FILE, EPOCHS_FILE, STATE_FILE))
             if p.exists()]
    return max([fallback, *times])


def _timing(t: Tracker, folder: str, sessions: list[dict[str, Any]], alive: bool) -> None:
    """This session's start, earlier sessions' known run time, and (unless it runs) when it stopped."""
    if not sessions:
        t.started, t.finished_at = time.time(), time.time()
        return
    last = sessions[-1]
    t.started = float(last.get("started") or time.time())
    t.elapsed_before = sum(float(s["ended"]) - float(s["started"]) for s in sessions[:-1]
                           if s.get("ended") and s.get("started"))
    if not alive:
        ended = last.get("ended")
        t.finished_at = float(ended) if ended else _last_sign_of_life(folder, t.started)


def _eta_inputs(t: Tracker, folder: str, sweep_state: dict[str, Any], session: int) -> None:
    """Cost model (from spec.yaml) and epochs reported in the current session: what time left needs."""
    from sweeper import spaces
    from sweeper.dryrun import cost

    text = _read(f"{folder}/{SPEC_FILE}")
    if text is None:
        return
    try:
        space = spaces.load_text(text.decode(), Path(sweep_state.get("space_file") or SPEC_FILE))
        t.cost = cost(space)
        t.reported = sum(1 for r in read_rows(folder, EPOCHS_FILE, ["session"]) if r["session"] == session)
    except (SweeperError, UnicodeDecodeError):
        t.cost = None


def load(storage: str, name: str, eta: bool = True) -> Tracker:
    """A sweep's progress from its folder: trials by state, best so far, timing, and notes."""
    folder = folder_of(storage, name)
    sweep_state = _read_json(f"{folder}/{STATE_FILE}")
    if sweep_state is None:
        known = ", ".join(sweep_names(storage)) or "none"
        raise SweeperError(f"sweep {name!r}: no such sweep under --storage {storage} (no {folder}/{STATE_FILE}); "
                           f"sweeps there: {known}")
    fp = sweep_state.get("fingerprint") or {}
    metric = str(fp.get("metric") or "val_accuracy")
    params = fp.get("parameters") or {}
    t = Tracker(name=name, metric=metric, mode=str(fp.get("mode") or ("min" if metric.endswith("loss") else "max")),
                total=planned_trials(fp), epochs=int(fp.get("epochs") or 1),
                varied=tuple(k for k, v in params.items() if isinstance(v, dict)))
    who = driver(folder, sweep_state)
    t.state = who.label
    alive = who.label.startswith("running")
    for row in read_rows(folder, TRIALS_FILE):
        if row.get("state") == "RUNNING" and not alive:  # its driver died: it runs again on resume
            row["state"] = "INTERRUPTED"
        t.update(row)
    sessions = [s for s in sweep_state.get("sessions") or [] if isinstance(s, dict)]
    _timing(t, folder, sessions, alive)
    if alive and eta:
        _eta_inputs(t, folder, sweep_state, len(sessions) - 1)
    if sessions and sessions[0].get("started"):
        first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(sessions[0]["started"])))
        resumed = len(sessions) - 1
        t.notes.append(("started", first + (f", resumed {resumed}x" if resumed else "")))
    t.notes.append(("folder", folder))
    if alive and who.pid:
        t.notes.append(("driver", f"pid {who.pid}" + (f" on {who.host}" if who.host else "")))
    if not alive and who.label != "finished":
        t.notes.append(("resume", f"sweeper resume {name} --storage {storage}"))
    return t


def latest(storage: str) -> str:
    """The sweep started most recently under storage."""
    names = sweep_names(storage)
    if not names:
        raise SweeperError(f"--storage {storage}: holds no sweeps; launch one, or pass --storage")

    def started(name: str) -> float:
        try:
            sessions = (_read_json(f"{folder_of(storage, name)}/{STATE_FILE}") or {}).get("sessions") or []
            return float(sessions[-1].get("started") or 0) if sessions else 0.0
        except (SweeperError, AttributeError, TypeError, ValueError):
            return 0.0

    return max(names, key=started)


def first_started(storage: str, name: str) -> float | None:
    sessions = (_read_json(f"{folder_of(storage, name)}/{STATE_FILE}") or {}).get("sessions") or []
    return float(sessions[0]["started"]) if sessions and sessions[0].get("started") else None


def counts_text(t: Tracker) -> str:
    """Trial counts by state, the states that have any: "4 done, 1 stopped, 1 running" (they add up to all)."""
    c = t.counts()
    return ", ".join(f"{c[k]} {k}" for k in CATEGORIES if c[k]) or "0"


def list_table(storage: str) -> tuple[str, Table, list[str]]:
    """A title, every sweep under storage as one table row, and one warning line per sweep that could not be
    read."""
    rows, warnings, metrics = [], [], set()
    for name in sweep_names(storage):
        try:
            t = load(storage, name, eta=False)
            started = first_started(storage, name)
        except SweeperError as exc:
            warnings.append(f"warning: {exc}")
            rows.append((name, None, None))
            continue
        metrics.add(t.metric)
        rows.append((name, t, started))
    shared = next(iter(metrics)) if len(metrics) == 1 else None
    title = f"sweeps in {storage}" + (f" (best: {shared})" if shared else "")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("sweep", "state", "trials", "best", "started", "duration"):
        table.add_column(col, no_wrap=col in ("sweep", "started", "duration"),
                         justify="right" if col in ("best", "duration") else "left")
    for name, t, started in rows:
        if t is None:
            table.add_row(name, "unreadable", "-", "-", "-", "-")
            continue
        best = t.best()
        value = f"{float(best[t.metric]):.4f}" if best else "-"
        table.add_row(
            name, t.state, counts_text(t), value if shared or not best else f"{t.metric} {value}",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "-", duration(t.elapsed()),
        )
    return title, table, warnings
