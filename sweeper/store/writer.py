"""`ResultsWriter`: trial and epoch rows gathered as results arrive, flushed atomically into the sweep's folder.

The sweep's Tune callback (run/driver/recorder.py) feeds it and it rewrites both files after every result, as one
generation of the pair (store/pair.py), so a crash at any moment leaves two readable files holding every epoch
reported before it, which readers put together whole. Only when rewriting gets expensive (a huge sweep) does it
batch: it then waits 10x the last write's duration between writes, so writing never takes more than about a tenth
of the driver's time; a trial's start and end always flush. It starts from the files already in the folder, so a
resumed sweep adds to them without duplicating a row; a pair a kill left disagreeing on disk it writes again at
once, whole.

Each flush is a pair that agrees: a trial's `epochs` is its last epoch row. A trial that reports an epoch below
rows it has (it went on from an earlier checkpoint, or started over) loses the rows of the timeline it left, and
an epoch found only in Ray's log (`backfill`) moves the trial's row up to it.

Its metric columns are the standard ones, those of the space's declared metrics (`metrics`: spec/metrics.py's
epoch_metrics and trial_metrics) and any other metric column the files already hold: a writer built without the
space (run/recovery.py's, which reconciles and backfills on resume) keeps the declared metrics' columns, their
values and their type, and fills them from Ray's own result lines too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from sweeper.spec.metrics import Mode, epoch_metrics, trial_metrics
from sweeper.store.pair import next_generation, read_pair, write_pair
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA, epoch_schema, held_metrics, param_columns, trial_schema
from sweeper.store.storage import SweepFolder
from sweeper.store.trials import StoppedBy, TrialState


class ResultsWriter:
    """Collects trial and epoch rows in memory and flushes them atomically."""

    def __init__(self, folder: SweepFolder, flush_every_s: float | None = None, session: int = 0,
                 metrics: Mapping[str, Mode] | None = None) -> None:
        self.folder = folder
        self.session = session  # which launch/resume of the sweep wrote a row (0 = the launch)
        self.flush_every_s = flush_every_s  # None: adaptive, 10x the last write's duration
        self._last_write_s = 0.0
        self.trials: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._last_flush: float | None = None
        self._dirty = False
        self.generation: str | None = None  # the token of the pair last read or written (store/pair.py)
        self._last_epoch: dict[str, int] = {}  # each trial's highest epoch row
        self.epoch_metrics = epoch_metrics(metrics)  # reported every epoch: epochs.parquet's metric columns
        self.trial_metrics = trial_metrics(metrics)  # trials.parquet's: those and the test ones, reported at the end
        torn = self._load_existing()
        self.epoch_schema, self.trial_schema = epoch_schema(self.epoch_metrics), trial_schema(self.trial_metrics)
        if torn:  # a kill between the two files' writes: the pair is whole in memory, so on disk again now
            self.flush()

    def _load_existing(self) -> bool:
        """The rows of the pair in the folder (store/pair.py); whether the files on disk disagreed."""
        pair = read_pair(self.folder, wait=False)  # the writer is alone on the folder (store/lock.py)
        self.generation = pair.generation
        epochs = pair.epochs()
        if pair.trials is not None:  # metric columns the files hold that `metrics` did not name: kept
            self.trial_metrics = _merged(self.trial_metrics, held_metrics(pair.trials.schema, TRIAL_SCHEMA))
            for row in map(_without_nan, pair.trials.to_pylist()):
                self.trials[row["trial_id"]] = row
        if epochs is not None:
            self.epoch_metrics = _merged(self.epoch_metrics, held_metrics(epochs.schema, EPOCH_SCHEMA))
            for row in map(_without_nan, epochs.to_pylist()):
                key = (row["trial_id"], int(row["epoch"]))
                self.epochs[key] = row
                self._last_epoch[key[0]] = max(self._last_epoch.get(key[0], 0), key[1])
        self.trial_metrics = _merged(self.trial_metrics, self.epoch_metrics)
        return pair.torn

    @property
    def final_metrics(self) -> tuple[str, ...]:
        """trials.parquet's metrics that are not reported every epoch: the test ones, in a trial's last result."""
        return tuple(m for m in self.trial_metrics if m not in self.epoch_metrics)

    def trial(self, trial_id: str, **fields: Any) -> dict[str, Any]:
        row = self.trials.setdefault(trial_id, {"trial_id": trial_id, "state": TrialState.PENDING.value, "epochs": 0})
        row.update(fields)
        self._dirty = True
        return row

    def set_params(self, trial_id: str, variant: str | None, params: dict[str, Any]) -> None:
        self.trial(trial_id, variant=variant, **param_columns(params))

    def add_epoch(self, trial_id: str, result: dict[str, Any]) -> int:
        """The epochs row of one report; returns its epoch."""
        epoch = int(result["epoch"])
        self._last_epoch[trial_id] = max(self._last_epoch.get(trial_id, 0), epoch)
        self.epochs[(trial_id, epoch)] = {"trial_id": trial_id, "epoch": epoch, "time_s": result.get("time_s"),
                                          "session": self.session, "reported_at": result.get("reported_at"),
                                          **{m: result.get(m) for m in self.epoch_metrics}}
        self._dirty = True
        return epoch

    def add_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """One epoch's report: an epochs row plus the trial row's latest metrics. Rows after this epoch are of a
        timeline the trial left (it went on from an earlier checkpoint, or started over): dropped."""
        epoch = self.add_epoch(trial_id, result)
        for later in range(epoch + 1, self._last_epoch[trial_id] + 1):
            self.epochs.pop((trial_id, later), None)
        self._last_epoch[trial_id] = epoch
        fields: dict[str, Any] = {m: result.get(m) for m in self.epoch_metrics}
        fields |= {"state": TrialState.RUNNING.value, "epochs": epoch, "node": result.get("node"),
                   "wall_s": result.get("time_total_s"), "restored_from": result.get("restored_from")}
        if result.get("finished"):
            fields |= {m: result.get(m) for m in self.final_metrics}
            fields["stopped_by"] = StoppedBy.EARLY_STOPPING.value if result.get("early_stopped") else None
        self.trial(trial_id, **fields)
        self.maybe_flush()

    def backfill(self, trial_id: str, result: dict[str, Any]) -> None:
        """A report found in Ray's own per-trial log: add its epoch row if a crash kept it from the files; a trial's
        row that stopped short of it moves up to it (its epochs and latest metrics), so the pair still agrees."""
        epoch = int(result["epoch"])
        if (trial_id, epoch) in self.epochs:
            return
        self.add_epoch(trial_id, result)
        self.epochs[(trial_id, epoch)]["session"] = max(self.session - 1, 0)
        row = self.trials.get(trial_id)
        if row is not None and epoch > int(row.get("epochs") or 0):
            self.trial(trial_id, epochs=epoch, **{m: result.get(m) for m in self.epoch_metrics})

    def drop(self, trial_ids: set[str]) -> None:
        """Forget trials, their row and their epochs: unfinished trials that will run again under new ids (a resume
        whose Ray snapshot missed them, an extension that starts them over)."""
        for trial_id in trial_ids:
            self.trials.pop(trial_id, None)
        self.epochs = {k: v for k, v in self.epochs.items() if k[0] not in trial_ids}
        for trial_id in trial_ids:
            self._last_epoch.pop(trial_id, None)
        self._dirty = True

    def maybe_flush(self) -> None:
        every = self.flush_every_s if self.flush_every_s is not None else 10 * self._last_write_s
        if self._last_flush is None or time.monotonic() - self._last_flush >= every:
            self.flush()

    def flush(self) -> None:
        if not self._dirty and self._last_flush is not None:
            return
        started = time.monotonic()
        epochs = [self.epochs[k] for k in sorted(self.epochs)]
        self.generation = next_generation(self.generation)
        write_pair(self.folder, list(self.trials.values()), self.trial_schema, epochs, self.epoch_schema,
                   self.generation)
        self._last_flush = time.monotonic()
        self._last_write_s = self._last_flush - started
        self._dirty = False


def _without_nan(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _merged(names: tuple[str, ...], more: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*names, *more)))
