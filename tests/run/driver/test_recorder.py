"""ParquetRecorder on a real Tune run: a trial shows as RUNNING in trials.parquet as soon as it starts, before its
first epoch, so `sweeper status` right after a launch or resume says which trials are running."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.run.driver.recorder import ParquetRecorder
from sweeper.spec.loader import load_text
from sweeper.store.storage import Storage

DEADLINE_S = 120  # for the trial to start on a machine shared with other test runs


def test_a_started_trial_is_running_in_parquet_before_its_first_epoch(tmp_path: Path, ray_session: Any) -> None:
    from ray import tune

    from sweeper.run.search.plans import grid_plan

    space = load_text("name: rec\nepochs: 1\nscheduler: {type: fifo}\nparameters: {model: logreg}\n",
                      tmp_path / "rec.yaml")
    folder = Storage.parse(str(tmp_path / "runs")).folder("rec")
    go = tmp_path / "go"  # the trainable reports only once the test has seen the RUNNING row
    seen: list[dict[str, Any]] = []

    def trainable(config: dict[str, Any]) -> None:
        deadline = time.monotonic() + DEADLINE_S
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        tune.report({"epoch": 1, "val_accuracy": 0.5, "finished": True})

    def watch() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and not seen:
            try:
                seen.extend(r for r in pq.read_table(folder.path / "trials.parquet").to_pylist()
                            if r["state"] == "RUNNING")
            except (OSError, pa.ArrowException):  # not written yet
                pass
            time.sleep(0.05)
        go.touch()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    tuner = tune.Tuner(
        trainable, param_space=grid_plan(space).param_space,
        run_config=tune.RunConfig(name="rec", storage_path=str(tmp_path / "runs"), verbose=0,
                                  callbacks=[ParquetRecorder(folder, space, echo=None)]),
    )
    result = tuner.fit()[0]
    watcher.join(timeout=DEADLINE_S)

    assert result.error is None, result.error
    assert seen, "the trial never showed as RUNNING in trials.parquet before it reported"
    (row,) = seen
    assert row["epochs"] == 0 and row["val_accuracy"] is None
    assert row["param_model"] == "logreg" and row["config_id"]
    (final,) = pq.read_table(folder.path / "trials.parquet").to_pylist()
    assert final["trial_id"] == row["trial_id"]
    assert final["state"] == "TERMINATED" and final["epochs"] == 1
