"""`sweeper status` and `sweeper list`: a sweep's progress read from its folder, without Ray, torch or pandas.

A sweep whose sweep.json says "running" while no live process holds its lock shows as "interrupted (driver
died)". Parquet is read with pyarrow alone; spec.yaml is parsed for the planned trial count and time left.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from sweeper.errors import SweeperError
from sweeper.spec.cost import cost
from sweeper.spec.loader import load_text
from sweeper.spec.metrics import mode_of
from sweeper.spec.space import Space
from sweeper.spec.usermodels import recorded
from sweeper.store import lock
from sweeper.store.files import EPOCHS_FILE, SPEC_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.pair import read_pair
from sweeper.store.state import first_started, sessions
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep, sweep_names
from sweeper.store.trials import TrialState
from sweeper.watch.tracker import Tracker, counts_text, duration, use_time_model

DIED = "interrupted (driver died)"


@dataclass
class Driver:
    label: str  # running | running (on HOST) | interrupted (driver died) | sweep.json's state
    pid: int | None = None
    host: str | None = None


def driver(folder: SweepFolder, sweep_state: dict[str, Any]) -> Driver:
    """Who runs the sweep now, from sweep.json's state and the lock."""
    recorded = str(sweep_state.get("state") or "new")
    if recorded != "running":
        return Driver(recorded)
    held = lock.holder(folder)  # {} while being written or cut by a crash: judge by the pid if there is one
    if held is None:
        return Driver(DIED)
    pid, host = int(held.get("pid") or 0), held.get("host")
    if host and host != socket.gethostname():
        return Driver(f"running (on {host})", pid, host)
    return Driver("running", pid, host) if pid and lock.pid_alive(pid) else Driver(DIED, pid, host)


def _last_sign_of_life(folder: SweepFolder, fallback: float) -> float:
    times = [folder.mtime(n) for n in (TRIALS_FILE, EPOCHS_FILE, STATE_FILE)]
    return max([fallback, *(t for t in times if t is not None)])


def _timing(t: Tracker, folder: SweepFolder, runs: list[dict[str, Any]], alive: bool,
            last_report: dict[int, float]) -> None:
    """This session's start, earlier sessions' run time, and (unless it runs) when it stopped. An earlier session
    that was killed (no "ended": its machine or session stopped) counts until its last reported epoch."""
    if not runs:
        t.started, t.finished_at = time.time(), time.time()
        return
    last = runs[-1]
    t.started = float(last.get("started") or time.time())
    t.elapsed_before = 0.0
    for i, s in enumerate(runs[:-1]):
        end = s.get("ended") or last_report.get(i)
        if end and s.get("started"):
            t.elapsed_before += max(float(end) - float(s["started"]), 0.0)
    if not alive:
        ended = last.get("ended")
        t.finished_at = float(ended) if ended else _last_sign_of_life(folder, t.started)


def _space(folder: SweepFolder, sweep_state: dict[str, Any]) -> Space | None:
    """The sweep's search space from its spec.yaml; None if it is missing or no longer valid."""
    try:
        text = folder.read_text(SPEC_FILE)
        shown = Path(sweep_state.get("space_file") or SPEC_FILE)
        return None if text is None else load_text(text, shown, recorded(sweep_state.get("models")))
    except SweeperError:
        return None


def load(storage: Storage, name: str, eta: bool = True) -> Tracker:
    """A sweep's progress from its folder: trials by outcome, best so far, timing, and notes."""
    folder, sweep_state = open_sweep(storage, name)
    space = _space(folder, sweep_state)
    fp = sweep_state.get("fingerprint") or {}
    metric = space.spec.metric if space else str(fp.get("metric") or "val_accuracy")
    declared = fp.get("metrics") if isinstance(fp.get("metrics"), dict) else None  # the space's own metrics
    t = Tracker(name=name, metric=metric,
                mode=space.spec.mode or mode_of(metric) if space else str(fp.get("mode") or mode_of(metric, declared)),
                total=space.num_trials if space else 0, epochs=space.spec.epochs if space else 1,
                varied=tuple(a.key for a in space.axes) if space else ())
    who = driver(folder, sweep_state)
    t.state = who.label
    alive = who.label.startswith("running")
    runs = sessions(sweep_state)
    killed = any(not s.get("ended") for s in runs[:-1])  # epochs.parquet's rows are read only where needed
    wanted = killed or (alive and eta and space is not None)
    pair = read_pair(folder, epoch_columns=["session", "reported_at"], epochs=wanted)  # one generation of both
    for row in pair.trial_rows():
        if row.get("state") == TrialState.RUNNING and not alive:  # its driver died: it runs again on resume
            row["state"] = TrialState.INTERRUPTED.value
        t.update(row)
    reports = pair.epoch_rows() if wanted else []
    last_report: dict[int, float] = {}
    for r in reports:
        if r.get("session") is not None and r.get("reported_at") is not None:
            last_report[int(r["session"])] = max(last_report.get(int(r["session"]), 0.0), float(r["reported_at"]))
    _timing(t, folder, runs, alive, last_report)
    t.first_started = first_started(sweep_state)
    if alive and eta and space is not None:
        t.cost = cost(space)
        use_time_model(t, space, sweep_state)
        session = len(runs) - 1
        t.reported = sum(1 for r in reports if r.get("session") == session)
    if runs and runs[0].get("started"):
        first = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(runs[0]["started"])))
        resumed = len(runs) - 1
        t.notes.append(("started", first + (f", resumed {resumed}x" if resumed else "")))
    t.notes.append(("folder", folder.location))
    if alive and who.pid:
        t.notes.append(("driver", f"pid {who.pid}" + (f" on {who.host}" if who.host else "")))
    if not alive and who.label != "finished":
        t.notes.append(("resume", f"sweeper resume {name} --storage {storage}"))
    return t


def list_table(storage: Storage) -> tuple[str, Table, list[str]]:
    """A title, every sweep under storage as one table row, and one warning line per sweep that could not be
    read."""
    rows: list[tuple[str, Tracker | None]] = []
    warnings: list[str] = []
    metrics: set[str] = set()
    for name in sweep_names(storage):
        try:
            t = load(storage, name, eta=False)
        except SweeperError as exc:
            warnings.append(f"warning: {exc}")
            rows.append((name, None))
            continue
        metrics.add(t.metric)
        rows.append((name, t))
    shared = next(iter(metrics)) if len(metrics) == 1 else None
    title = f"sweeps in {storage}" + (f" (best: {shared})" if shared else "")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    for col in ("sweep", "state", "trials", "best", "started", "duration"):
        table.add_column(col, no_wrap=col in ("sweep", "started", "duration"),
                         justify="right" if col in ("best", "duration") else "left")
    for name, tracker in rows:
        if tracker is None:
            table.add_row(name, "unreadable", "-", "-", "-", "-")
            continue
        best = tracker.best()
        value = f"{float(best[tracker.metric]):.4f}" if best else "-"
        started = tracker.first_started
        table.add_row(
            name, tracker.state, counts_text(tracker.counts()),
            value if shared or not best else f"{tracker.metric} {value}",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "-", duration(tracker.elapsed()),
        )
    return title, table, warnings
