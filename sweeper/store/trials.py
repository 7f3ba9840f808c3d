"""A trial row's vocabulary, defined once: the states it passes through, how it ended, and which trial is best.

`state` and `stopped_by` are what trials.parquet holds; `Ended` is how every view names the outcome (the live
panel, `status`, `list`, the lines printed as trials end, and reports), so they all count alike; `Errored` is what
`resume` does with the trials that ended in ERROR.

"Best" (one rule for every view): among trials that did not fail, the one whose latest reported value of the
sweep's metric is best (highest accuracy, lowest loss); a trial still running counts with its latest epoch, and
ties go to the trial listed first. After a sweep, every trial's latest value is its last, so the live panel,
the final summary, `status`, `list` and `report` all name the same trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any


class TrialState(StrEnum):
    """trials.parquet's `state` column."""

    PENDING = "PENDING"  # not started yet
    RUNNING = "RUNNING"
    TERMINATED = "TERMINATED"  # ended normally: ran its budget or was stopped (see stopped_by)
    ERROR = "ERROR"
    INTERRUPTED = "INTERRUPTED"  # running when the sweep was interrupted; it continues on resume


class StoppedBy(StrEnum):
    """trials.parquet's `stopped_by` column (null: the trial ran to its end)."""

    ASHA = "asha"
    EARLY_STOPPING = "early_stopping"
    SCHEDULER = "stopped"  # another scheduler decision


class Ended(StrEnum):
    """How a trial ended, as every view shows it; the order is the order views list them in."""

    COMPLETED = "completed"  # ran its whole budget
    ASHA = "ASHA-stopped"
    EARLY = "early-stopped"
    STOPPED = "stopped"
    ERROR = "error"
    RUNNING = "running"
    INTERRUPTED = "interrupted"  # cut short by an interrupt; continues on resume
    PENDING = "pending"

    @property
    def finished(self) -> bool:
        """Ended for good (it will not run again)."""
        return self in (Ended.COMPLETED, Ended.ASHA, Ended.EARLY, Ended.STOPPED, Ended.ERROR)

    @property
    def describe(self) -> str:
        """The phrase for a line about one trial: "stopped by ASHA"."""
        return {Ended.ASHA: "stopped by ASHA", Ended.EARLY: "early stopping",
                Ended.STOPPED: "stopped by the scheduler"}.get(self, self.value)


class Errored(StrEnum):
    """What `resume` does with the trials that ended in ERROR (`sweeper resume --errored`)."""

    RESUME = "resume"  # run them again from their last checkpoint
    RESTART = "restart"  # run them again from scratch
    LEAVE = "leave"  # keep them as they ended


_BY_STOPPED = {StoppedBy.ASHA: Ended.ASHA, StoppedBy.EARLY_STOPPING: Ended.EARLY}


def present(value: Any) -> bool:
    """A value that is there: not None, not NaN (pandas gives NaN for a missing number)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def ended(state: Any, stopped_by: Any = None) -> Ended:
    """How a trial ended, from its `state` and `stopped_by`."""
    if state == TrialState.TERMINATED:
        if not present(stopped_by):
            return Ended.COMPLETED
        return _BY_STOPPED.get(stopped_by, Ended.STOPPED)
    return {TrialState.ERROR: Ended.ERROR, TrialState.RUNNING: Ended.RUNNING,
            TrialState.INTERRUPTED: Ended.INTERRUPTED}.get(state, Ended.PENDING)


def ended_of(row: dict[str, Any]) -> Ended:
    return ended(row.get("state"), row.get("stopped_by"))


def count_ended(rows: Iterable[dict[str, Any]], total: int = 0) -> dict[Ended, int]:
    """Trials per outcome (every Ended, zeros too); trials not yet started count as pending up to `total`."""
    counts = dict.fromkeys(Ended, 0)
    for row in rows:
        counts[ended_of(row)] += 1
    counts[Ended.PENDING] += max(total - sum(counts.values()), 0)
    return counts


def best_position(values: Sequence[Any], mode: str, states: Sequence[Any] | None = None) -> int | None:
    """Position of the best value (see the module's rule); None when no trial has one."""
    best, pick = None, None
    for i, value in enumerate(values):
        if not present(value) or (states is not None and states[i] == TrialState.ERROR):
            continue
        v = float(value)
        if best is None or (v > best if mode == "max" else v < best):
            best, pick = v, i
    return pick


def best(rows: Sequence[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The best trial row (see the module's rule), or None."""
    i = best_position([r.get(metric) for r in rows], mode, [r.get("state") for r in rows])
    return None if i is None else rows[i]
