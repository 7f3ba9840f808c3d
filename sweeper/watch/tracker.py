"""A Tracker: what is known about a sweep's trials while it runs (or from its folder), and the time left.

Thread-safe: the live panel draws from a thread while Ray's driver loop updates it. Trial outcomes, "best" and
the count of trials come from their one definitions (store/trials.py, spec/space.py); time left from the one
cost model (spec/cost.py).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sweeper.spec.cost import Cost, pack, row_architecture, trial_architectures
from sweeper.spec.space import Space
from sweeper.store.trials import Ended, best, count_ended, ended_of, present


def duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


@dataclass
class Tracker:
    """What is known about a sweep's trials; safe to read from a drawing thread while the driver updates it."""

    name: str
    metric: str = "val_accuracy"
    mode: str = "max"
    total: int = 0  # trials the sweep runs
    epochs: int = 1  # the sweep's epochs: a trial's budget unless its own max_epochs is smaller
    varied: tuple[str, ...] = ()  # searched keys, shown beside each running trial
    cost: Cost | None = None  # for time left; None: unknown
    state: str = "running"
    started: float = field(default_factory=time.time)  # when the current session started
    elapsed_before: float = 0.0  # run time of earlier sessions
    first_started: float | None = None  # when the sweep was launched
    finished_at: float | None = None
    reported: int = 0  # epochs reported in the current session: the fallback rate behind time left
    seconds: dict[str, float] = field(default_factory=dict)  # calibrated seconds per epoch per architecture
    slots: int = 0  # trials at once (0: unknown)
    planned: tuple[str, ...] = ()  # each planned trial's architecture, aligned with cost.budgets
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (label, text): the folder, how to resume...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, row: dict[str, Any], result: bool = False) -> None:
        with self._lock:
            self.rows[str(row["trial_id"])] = dict(row)
            self.reported += int(result)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.rows.values())

    def counts(self, rows: list[dict[str, Any]] | None = None) -> dict[Ended, int]:
        """Trials per outcome; those not started yet are pending."""
        return count_ended(self.snapshot() if rows is None else rows, self.total)

    def best(self, rows: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """The best trial (store/trials.py's rule)."""
        return best(self.snapshot() if rows is None else rows, self.metric, self.mode)

    def budget(self, row: dict[str, Any]) -> int:
        own = row.get("param_max_epochs")
        return min(self.epochs, int(own)) if own is not None and present(own) else self.epochs

    def elapsed(self, now: float | None = None) -> float:
        end = self.finished_at if self.finished_at is not None else (now or time.time())
        return self.elapsed_before + max(end - self.started, 0.0)

    def rates(self, rows: list[dict[str, Any]] | None = None) -> dict[str, float]:
        """Seconds per epoch per architecture: measured in this sweep (its trials' run time over their epochs)
        where any of that architecture ran, else calibrated."""
        spent: dict[str, list[float]] = {}
        for r in self.snapshot() if rows is None else rows:
            wall, epochs = r.get("wall_s"), int(r.get("epochs") or 0)
            if epochs > 0 and wall is not None and present(wall) and float(wall) > 0:
                total = spent.setdefault(row_architecture(r), [0.0, 0.0])
                total[0] += float(wall)
                total[1] += epochs
        return {**self.seconds, **{a: s / n for a, (s, n) in spent.items()}}

    def _left_by_architecture(self, rows: list[dict[str, Any]], pending: int) -> float | None:
        """Each unfinished trial's expected remaining epochs x its architecture's seconds per epoch, packed onto
        the trials at once (spec/cost.py); None if an architecture's rate is unknown."""
        assert self.cost is not None
        rates = self.rates(rows)
        model = self.cost.model
        running: list[float] = []
        queued: list[float] = []
        for r in rows:
            ended = ended_of(r)
            if ended in (Ended.RUNNING, Ended.INTERRUPTED):
                rate = rates.get(row_architecture(r))
                if rate is None:
                    return None
                work = model.expected(self.budget(r), int(r.get("epochs") or 0)) * rate
                (running if ended == Ended.RUNNING else queued).append(work)
        tail = range(len(self.planned) - pending, len(self.planned)) if pending else range(0)
        for i in tail:
            rate = rates.get(self.planned[i])
            if rate is None:
                return None
            queued.append(model.expected(self.cost.budgets[i]) * rate)
        return pack(queued, max(self.slots, len(running)), busy=running)

    def left(self, now: float | None = None) -> float | None:
        """Seconds until the sweep ends: per architecture (calibrated or measured seconds per epoch) when known,
        else at the current session's epoch rate; None while that is unknown."""
        rows = self.snapshot()
        counts = self.counts(rows)
        if all(e.finished for e, n in counts.items() if n):
            return 0.0
        if self.cost is None or self.finished_at is not None:
            return None
        pending = counts[Ended.PENDING]
        if self.slots and len(self.planned) == len(self.cost.budgets) >= pending:
            left = self._left_by_architecture(rows, pending)
            if left is not None:
                return left
        spent = (now or time.time()) - self.started
        if self.reported == 0 or spent <= 0:
            return None
        remaining = sum(self.cost.model.expected(self.budget(r), int(r.get("epochs") or 0))
                        for r in rows if ended_of(r) == Ended.RUNNING)
        remaining += (pending + counts[Ended.INTERRUPTED]) * self.cost.mean_trial
        return remaining / (self.reported / spent)

    def epochs_done(self, rows: list[dict[str, Any]] | None = None) -> int:
        rows = self.snapshot() if rows is None else rows
        return sum(int(r.get("epochs") or 0) for r in rows)


def counts_text(counts: dict[Ended, int], zeros: tuple[Ended, ...] = ()) -> str:
    """"4 completed, 1 ASHA-stopped, 1 running": the outcomes that have trials (and those in `zeros` always)."""
    return ", ".join(f"{n} {e.value}" for e, n in counts.items() if n or e in zeros) or "0"


def use_time_model(t: Tracker, space: Space, sweep_state: dict[str, Any]) -> None:
    """Give the tracker what launch stored in sweep.json for time left: seconds per epoch per architecture and
    the trials at once; and each planned trial's architecture."""
    seconds = sweep_state.get("seconds_per_epoch")
    t.seconds = {str(k): float(v) for k, v in seconds.items()} if isinstance(seconds, dict) else {}
    t.slots = int(sweep_state.get("slots") or 0)
    t.planned = trial_architectures(space)
