"""The Tune callback that records every reported epoch and every trial's end into Parquet.

It lives at module level so Ray can pickle it into the experiment state and bring it back on
`Tuner.restore`; the writer is (re)built in `setup`, from the files already in the folder, at every
launch and resume, so a resumed sweep adds to its results and never duplicates a row.

Progress: while `reporting_to(progress)` is open, the recorder also feeds that object's hooks (live.LiveView's:
start, trial_started, trial_result, trial_ended, experiment_ended, tick; then close). The object is held
here, in the driver process, never on the recorder: Ray pickles the recorder into the experiment state and a
resumed sweep's recorder comes back from that pickle, yet reports to whatever view the resuming process opened.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ray import tune

from sweeper.results import ResultsWriter, is_uri
from sweeper.spaces import Space
from sweeper.state import read_state


def error_message(trial: Any) -> str:
    """The last line of the trial's error (e.g. "FloatingPointError: train loss is nan at epoch 1")."""
    path = trial.error_file  # written locally before callbacks run; storage gets it later
    text = Path(path).read_text() if path and Path(path).is_file() else str(trial.get_error() or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "trial failed"


def describe(row: dict[str, Any], metric: str) -> str:
    """One line about a trial that ended: for plain progress output."""
    value = row.get(metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else f"{metric}=-"
    how = row.get("error") or {"asha": "stopped by ASHA", "early_stopping": "early stopping"}.get(
        row.get("stopped_by") or "", "completed")
    variant = f" {row['variant']}" if row.get("variant") else ""
    return f"trial {row['trial_id']}{variant}: {row['state']} after {row.get('epochs') or 0} epochs, {shown} ({how})"


_progress: list[Any] = []  # the progress view of the sweep this process runs (at most one at a time)


@contextmanager
def reporting_to(progress: Any | None) -> Iterator[None]:
    """Feed `progress` while a sweep runs in this process; close it when the sweep returns or fails."""
    if progress is None:
        yield
        return
    _progress.append(progress)
    try:
        yield
    finally:
        _progress.remove(progress)
        progress.close()


def _view() -> Any | None:
    return _progress[-1] if _progress else None


class ParquetRecorder(tune.Callback):
    """Feeds every reported epoch and every trial's end into a ResultsWriter."""

    def __init__(self, folder: str, space: Space, asha: bool, echo: Callable[[str], Any] | None = print) -> None:
        self.folder, self.space, self.asha, self.echo = folder, space, asha, echo
        self.writer: ResultsWriter | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writer": None}

    def setup(self, **info: Any) -> None:
        state = read_state(self.folder) or {}
        self.writer = ResultsWriter(self.folder, session=max(len(state.get("sessions", [])) - 1, 0))
        self._backfill()
        if (view := _view()) is not None:
            view.start(self.space, self.folder, list(self.writer.trials.values()))

    def _backfill(self) -> None:
        """Epochs a killed driver reported but had not yet written: Ray's per-trial result.json has them."""
        assert self.writer is not None
        if is_uri(self.folder):
            return
        for log in Path(self.folder).glob("*/result.json"):
            for line in log.read_text(errors="replace").splitlines():
                try:
                    result = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by the kill
                if "epoch" in result and "trial_id" in result:
                    self.writer.backfill(result["trial_id"], result)
        self.writer.flush()

    def _end(self, trial: Any, **fields: Any) -> None:
        assert self.writer is not None
        row = self.writer.trial(trial.trial_id, **fields)
        self.writer.flush()
        line = describe(row, self.space.spec.metric)
        if (view := _view()) is not None:
            view.trial_ended(row, line)
        elif self.echo is not None:
            self.echo(line)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        assert self.writer is not None
        params = self.space.trial_params(trial.config)
        self.writer.set_params(trial.trial_id, trial.config.get("variant"),
                               params.model_dump() | {"lr": params.learning_rate})
        row = self.writer.trial(trial.trial_id, state="RUNNING", error=None)
        if (view := _view()) is not None:
            view.trial_started(row)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        assert self.writer is not None
        self.writer.add_result(trial.trial_id, result)
        if (view := _view()) is not None:
            view.trial_result(self.writer.trials[trial.trial_id])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        finished = bool((trial.last_result or {}).get("finished"))
        stopped = None if finished else ("asha" if self.asha else "stopped")
        if stopped:
            self._end(trial, state="TERMINATED", stopped_by=stopped)
        else:
            self._end(trial, state="TERMINATED")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if (view := _view()) is not None:
            view.tick()  # plain progress lines keep coming while epochs are long

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, state="ERROR", error=error_message(trial)[:2000])

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Trials that neither completed nor failed were cut short by an interrupt (Ctrl-C, SIGTERM)."""
        assert self.writer is not None
        for trial in trials:
            row = self.writer.trials.get(trial.trial_id)
            if row is None:
                self.writer.trial(trial.trial_id, state="PENDING", variant=trial.config.get("variant"))
            elif row["state"] == "RUNNING":
                self.writer.trial(trial.trial_id, state="INTERRUPTED")
        self.writer.flush()
        if (view := _view()) is not None:
            view.experiment_ended(list(self.writer.trials.values()))
