"""The loggers every sweep's Ray run config names: Ray's per-trial result.json (a resume backfills from it) and
progress.csv, and `NoTensorBoard` in place of Ray's TensorBoard logger.

Ray Tune adds a logger of each kind a run config lacks. Its TensorBoard logger imports tensorboardX, and torch
with it, into the driver (about 2 s of a launch's start-up on 2 cores, in a process that otherwise needs no torch),
and writes event files nothing of sweeper reads. A run config holding a `NoTensorBoard` has one of that kind, so Ray
adds none; nothing process-wide changes (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS would turn Ray's loggers off for
every Tuner in the process, a user's own included). Ray pickles the run config with the experiment, so this module's
path is part of every saved sweep's state.
"""

from __future__ import annotations

from typing import Any

from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback


class NoTensorBoard(TBXLoggerCallback):
    """Stands where Ray's TensorBoard logger would: writes nothing, imports nothing."""

    _SAVED_FILE_TEMPLATES: list[str] = []  # no event files to bring back on restore

    def __init__(self) -> None:  # no super().__init__(): that imports tensorboardX
        self._trial_writer: dict[Any, Any] = {}
        self._trial_result: dict[Any, Any] = {}

    def log_trial_start(self, trial: Any) -> None:
        return None

    def log_trial_result(self, iteration: int, trial: Any, result: dict[str, Any]) -> None:
        return None

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        return None


def file_loggers() -> list[Any]:
    """The loggers of a sweep's run config: result.json, progress.csv, and no TensorBoard."""
    return [JsonLoggerCallback(), CSVLoggerCallback(), NoTensorBoard()]
