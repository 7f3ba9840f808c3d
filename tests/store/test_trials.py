"""The trial vocabulary (store/trials.py): how a trial ended for every state and stopped_by, counts with a total,
and the one rule for "best", which the Tracker, the progress line, `status` and the report all follow."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sweeper.report.frame import build_report
from sweeper.report.terminal import print_rich
from sweeper.store.files import SPEC_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage
from sweeper.store.trials import (
    Ended,
    StoppedBy,
    TrialState,
    best,
    best_position,
    count_ended,
    ended,
    ended_of,
    present,
)
from sweeper.store.writer import ResultsWriter
from sweeper.watch.live import summary_line
from sweeper.watch.status import load as load_status
from sweeper.watch.tracker import Tracker

NAN = float("nan")
# stopped_by as trials.parquet may hold it: null, NaN (pandas' missing), each StoppedBy, and a value from a newer
# writer that this version does not know
STOPPED_BY = (None, NAN, StoppedBy.ASHA.value, StoppedBy.EARLY_STOPPING.value, StoppedBy.SCHEDULER.value,
              "pbt")
TERMINATED_AS = {None: Ended.COMPLETED, "nan": Ended.COMPLETED, "asha": Ended.ASHA,
                 "early_stopping": Ended.EARLY, "stopped": Ended.STOPPED, "pbt": Ended.STOPPED}
OTHER_STATES = {TrialState.PENDING: Ended.PENDING, TrialState.RUNNING: Ended.RUNNING,
                TrialState.ERROR: Ended.ERROR, TrialState.INTERRUPTED: Ended.INTERRUPTED}


@pytest.mark.parametrize("stopped_by", STOPPED_BY, ids=repr)
def test_a_terminated_trial_ended_as_its_stopped_by_says(stopped_by: Any) -> None:
    want = TERMINATED_AS["nan" if isinstance(stopped_by, float) else stopped_by]
    assert ended(TrialState.TERMINATED, stopped_by) is want
    assert ended("TERMINATED", stopped_by) is want  # the plain string, as read from Parquet
    assert ended_of({"state": "TERMINATED", "stopped_by": stopped_by}) is want


@pytest.mark.parametrize("stopped_by", STOPPED_BY, ids=repr)
@pytest.mark.parametrize("state", list(OTHER_STATES), ids=str)
def test_any_other_state_ends_as_the_state_whatever_stopped_by_says(state: TrialState, stopped_by: Any) -> None:
    assert ended(state, stopped_by) is OTHER_STATES[state]
    assert ended_of({"state": state.value, "stopped_by": stopped_by}) is OTHER_STATES[state]


@pytest.mark.parametrize("state", [None, NAN, "", "PAUSED"], ids=repr)
def test_no_state_or_an_unknown_one_is_pending(state: Any) -> None:
    assert ended(state) is Ended.PENDING and ended_of({}) is Ended.PENDING


def test_every_state_and_stopped_by_is_covered() -> None:
    assert set(OTHER_STATES) | {TrialState.TERMINATED} == set(TrialState)
    assert {ended(s, b) for s in TrialState for b in STOPPED_BY} == set(Ended)  # every outcome is reachable


def test_what_each_outcome_means() -> None:
    assert [e for e in Ended if e.finished] == [Ended.COMPLETED, Ended.ASHA, Ended.EARLY, Ended.STOPPED,
                                                Ended.ERROR]
    # a trial stopped by a scheduler decision (any stopped_by, known or not) ended for good, not completed
    stopped = {ended(TrialState.TERMINATED, b) for b in STOPPED_BY if present(b)}
    assert stopped == {Ended.ASHA, Ended.EARLY, Ended.STOPPED} and all(e.finished for e in stopped)
    assert [e.value for e in Ended] == ["completed", "ASHA-stopped", "early-stopped", "stopped", "error",
                                        "running", "interrupted", "pending"]
    assert (Ended.ASHA.describe, Ended.EARLY.describe, Ended.STOPPED.describe, Ended.ERROR.describe) == (
        "stopped by ASHA", "early stopping", "stopped by the scheduler", "error")


def test_present() -> None:
    assert [present(v) for v in (None, NAN, 0, 0.0, "", "x")] == [False, False, True, True, True, True]


def row(trial_id: str, state: str = "TERMINATED", value: Any = None, stopped_by: Any = None) -> dict[str, Any]:
    return {"trial_id": trial_id, "state": state, "stopped_by": stopped_by, "val_accuracy": value,
            "val_loss": value}


def test_count_ended_lists_every_outcome_and_tops_pending_up_to_the_total() -> None:
    rows = [row("a"), row("b", stopped_by="asha"), row("c", "ERROR"), row("d", "RUNNING"), row("e", "PENDING"),
            row("f", "INTERRUPTED"), row("g", stopped_by="early_stopping"), row("h", stopped_by=NAN)]
    counts = count_ended(rows, total=12)
    assert list(counts) == list(Ended)  # every outcome, in the order views list them
    assert counts == {Ended.COMPLETED: 2, Ended.ASHA: 1, Ended.EARLY: 1, Ended.STOPPED: 0, Ended.ERROR: 1,
                      Ended.RUNNING: 1, Ended.INTERRUPTED: 1, Ended.PENDING: 1 + 4}  # 4 not created yet
    assert sum(counts.values()) == 12
    assert count_ended(rows)[Ended.PENDING] == 1  # no total: only the rows
    assert count_ended(rows, total=3)[Ended.PENDING] == 1  # a total below the rows never goes negative
    assert count_ended([], total=3) == {**dict.fromkeys(Ended, 0), Ended.PENDING: 3}


@pytest.mark.parametrize(("mode", "values", "want"), [
    ("max", [0.5, 0.9, 0.7], 1),
    ("min", [0.5, 0.9, 0.7], 0),
    ("max", [0.9, 0.5, 0.9], 0),  # a tie goes to the trial listed first
    ("min", [0.7, 0.5, 0.5], 1),
    ("max", [None, NAN, 0.1], 2),  # no value, or NaN, never wins
    ("max", [None, NAN], None),
    ("max", [], None),
    ("max", [1, 0.5], 0),  # ints count as numbers
])
def test_best_position_by_mode(mode: str, values: list[Any], want: int | None) -> None:
    assert best_position(values, mode) == want


def test_best_excludes_errors_but_counts_running_and_unfinished_trials() -> None:
    rows = [row("done", value=0.80), row("failed", "ERROR", 0.99), row("running", "RUNNING", 0.90),
            row("tied", value=0.90), row("nan", value=NAN), row("pending", "PENDING"),
            row("asha", value=0.85, stopped_by="asha")]
    assert best(rows, "val_accuracy", "max")["trial_id"] == "running"  # latest value; ties to the first
    assert best_position([r["val_accuracy"] for r in rows], "max", [r["state"] for r in rows]) == 2
    assert best_position([r["val_accuracy"] for r in rows], "max") == 1  # without states, nothing is excluded
    assert best(rows, "val_loss", "min")["trial_id"] == "done"
    assert best([row("only", "ERROR", 0.9)], "val_accuracy", "max") is None
    assert best([row("interrupted", "INTERRUPTED", 0.3), row("asha", value=0.2, stopped_by="asha")],
                "val_accuracy", "max")["trial_id"] == "interrupted"
    assert best([], "val_accuracy", "max") is None


# ---- every view names the same trial --------------------------------------------------------------------------

SPEC = """\
name: same
metric: {metric}
epochs: 3
scheduler: {{type: fifo}}
parameters: {{model: logreg, lr: {{grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]}}}}
"""
# (trial, how it ends, its latest value as a rank: 0 is the best); values are written so that a rule that let
# errors in, skipped running trials, broke ties the other way or read NaN as a number would pick another trial
PLAN = [("t0", "TERMINATED", 2), ("t1", "ERROR", -1), ("t2", "RUNNING", 0), ("t3", "TERMINATED", 0),
        ("t4", "TERMINATED", None), ("t5", "PENDING", None), ("t6", "ASHA", 1)]


def value_of(rank: int | None, metric: str) -> float | None:
    if rank is None:
        return None
    return 0.9 - rank / 10 if metric == "val_accuracy" else 0.3 + rank / 10


def write_sweep(root: Path, metric: str) -> None:
    folder = Storage.parse(str(root)).folder("same")
    w = ResultsWriter(folder, flush_every_s=3600)
    for i, (tid, how, rank) in enumerate(PLAN):
        w.set_params(tid, None, {"model": "logreg", "lr": (i + 1) / 10})
        if how != "PENDING":
            value = value_of(rank, metric)
            other = "val_loss" if metric == "val_accuracy" else "val_accuracy"
            w.add_result(tid, {"epoch": 1, metric: NAN if value is None else value, other: 0.5, "time_s": 1.0})
        if how == "ASHA":
            w.trial(tid, state="TERMINATED", stopped_by="asha")
        elif how in ("TERMINATED", "ERROR"):
            w.trial(tid, state=how)
    w.flush()
    folder.write_text(SPEC_FILE, SPEC.format(metric=metric))
    folder.write_text(STATE_FILE, json.dumps({"name": "same", "state": "running", "sessions": []}))


@pytest.mark.parametrize(("metric", "mode"), [("val_accuracy", "max"), ("val_loss", "min")])
def test_tracker_summary_line_status_and_report_pick_the_same_trial(tmp_path: Path, metric: str, mode: str) -> None:
    write_sweep(tmp_path, metric)
    storage = Storage.parse(str(tmp_path))
    rows = read_rows(storage.folder("same"), TRIALS_FILE)
    assert [r["trial_id"] for r in rows] == [p[0] for p in PLAN] and math.isnan(rows[4][metric])

    tracker = Tracker(name="same", metric=metric, mode=mode, total=len(PLAN))
    for r in rows:
        tracker.update(r)
    assert tracker.best()["trial_id"] == "t2"  # running, tied with t3 and listed first; t1 failed
    assert f"best {metric}={value_of(0, metric):.4f} (trial t2)" in summary_line(tracker)

    status = load_status(storage, "same")  # no driver holds the lock: t2 shows as interrupted, still counts
    assert status.counts()[Ended.INTERRUPTED] == 1 and status.best()["trial_id"] == "t2"

    rep = build_report(["same"], storage)
    assert rep.table.loc[rep.best, "trial_id"] == "t2"
    out = io.StringIO()
    print_rich(rep, Console(width=160, file=out, color_system=None))
    assert f"★ best {metric}: {value_of(0, metric):.4f} (t2)" in out.getvalue()
