"""The Tune callback that records every reported epoch and every trial's end into Parquet, and tells a
progress view (a `Progress`) as it goes.

Ray pickles the callback into the experiment state; the writer and the progress view are left out of that
pickle, and on resume run/recovery.py puts a fresh recorder in place of the one Ray brings back. The writer is
built in `setup`, from the files already in the folder, so a resumed sweep adds to its results and never
duplicates a row (run/recovery.py has by then backfilled the epochs a killed driver never wrote).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ray import tune

from sweeper.run.driver.startup import Startup
from sweeper.spec.space import Space
from sweeper.spec.usermodels import code_version
from sweeper.store.state import read_state, sessions
from sweeper.store.storage import SweepFolder
from sweeper.store.trials import StoppedBy, TrialState, ended_of
from sweeper.store.writer import ResultsWriter


def error_message(trial: Any) -> str:
    """The last line of the trial's error (e.g. "FloatingPointError: train loss is nan at epoch 1")."""
    try:
        path = trial.error_file  # written locally before callbacks run; storage gets it later
    except AttributeError:  # a trial Ray never placed has no storage yet
        path = None
    text = Path(path).read_text() if path and Path(path).is_file() else str(trial.get_error() or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "trial failed"


def describe(row: dict[str, Any], metric: str) -> str:
    """One line about a trial that ended: for plain progress output."""
    value = row.get(metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else f"{metric}=-"
    how = row.get("error") or ended_of(row).describe
    variant = f" {row['variant']}" if row.get("variant") else ""
    return f"trial {row['trial_id']}{variant}: {row['state']} after {row.get('epochs') or 0} epochs, {shown} ({how})"


class Progress(Protocol):
    """What the recorder tells a progress view (watch/live.py's LiveView) while a sweep runs in this process."""

    def start(self, space: Space, folder: SweepFolder, rows: list[dict[str, Any]]) -> None: ...
    def trial_started(self, row: dict[str, Any]) -> None: ...
    def trial_result(self, row: dict[str, Any]) -> None: ...
    def trial_ended(self, row: dict[str, Any], line: str) -> None: ...
    def experiment_ended(self, rows: list[dict[str, Any]]) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


class ParquetRecorder(tune.Callback):
    """Feeds every reported epoch and every trial's end into a ResultsWriter, and into `progress` if given."""

    def __init__(self, folder: SweepFolder, space: Space, echo: Callable[[str], Any] | None = print,
                 progress: Progress | None = None, runs: SweepFolder | None = None,
                 startup: Startup | None = None) -> None:
        self.folder, self.space, self.echo, self.progress = folder, space, echo, progress
        self.startup = startup  # --verbose: say how long the first trial took to start
        self.runs = runs or folder  # the Ray experiment's folder: the sweep's, or an extension's inside it
        self.asha = space.spec.scheduler.type == "asha"
        self.writer: ResultsWriter | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "writer": None, "progress": None, "echo": None, "startup": None}

    def _writer(self) -> ResultsWriter:
        if self.writer is None:
            raise RuntimeError("ParquetRecorder used before Ray called setup()")
        return self.writer

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        state = read_state(self.folder) or {}
        self.writer = ResultsWriter(self.folder, session=max(len(sessions(state)) - 1, 0),
                                    metrics=self.space.spec.metrics)
        if self.progress is not None:
            self.progress.start(self.space, self.folder, list(self.writer.trials.values()))

    def _end(self, trial: Any, **fields: Any) -> None:
        writer = self._writer()
        row = writer.trial(trial.trial_id, **fields)
        writer.flush()
        line = describe(row, self.space.spec.metric)
        if self.progress is not None:
            self.progress.trial_ended(row, line)
        elif self.echo is not None:
            self.echo(line)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        writer = self._writer()
        params = self.space.trial_params(trial.config)
        writer.set_params(trial.trial_id, trial.config.get("variant"), params.recorded())
        code = {"code": code_version(self.space.own_models)} if self.space.own_models else {}  # which version it ran
        row = writer.trial(trial.trial_id, state=TrialState.RUNNING.value, error=None, config_id=params.config_id(),
                           **code)
        writer.flush()  # `sweeper status` shows it running now, not only after its first epoch
        if self.progress is not None:
            self.progress.trial_started(row)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        writer = self._writer()
        writer.add_result(trial.trial_id, result)
        line = self.startup.first_result(result) if self.startup is not None else None
        if line is not None and self.echo is not None:
            self.echo(line)
        if self.progress is not None:
            self.progress.trial_result(writer.trials[trial.trial_id])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if (trial.last_result or {}).get("finished"):
            self._end(trial, state=TrialState.TERMINATED.value)
        else:
            stopped = StoppedBy.ASHA if self.asha else StoppedBy.SCHEDULER
            self._end(trial, state=TrialState.TERMINATED.value, stopped_by=stopped.value)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.progress is not None:
            self.progress.tick()  # plain progress lines keep coming while epochs are long

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, state=TrialState.ERROR.value, error=error_message(trial)[:2000])

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        """Trials that neither completed nor failed were cut short by an interrupt (Ctrl-C, SIGTERM)."""
        writer = self._writer()
        for trial in trials:
            row = writer.trials.get(trial.trial_id)
            if trial.status == "ERROR" and (row is None or not ended_of(row).finished):
                # failed before it started (Ray could not hand it a worker): no on_trial_error reached us
                writer.set_params(trial.trial_id, trial.config.get("variant"),
                                  self.space.trial_params(trial.config).recorded())
                writer.trial(trial.trial_id, state=TrialState.ERROR.value, error=error_message(trial)[:2000])
            elif row is None:
                writer.trial(trial.trial_id, state=TrialState.PENDING.value, variant=trial.config.get("variant"))
            elif row["state"] == TrialState.RUNNING:
                writer.trial(trial.trial_id, state=TrialState.INTERRUPTED.value)
        writer.flush()
        if self.progress is not None:
            self.progress.experiment_ended(list(writer.trials.values()))
