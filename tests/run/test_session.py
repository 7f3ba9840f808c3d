"""A session's run with real failures (run/session.py), in real `python -m sweeper` driver subprocesses: SIGTERM
as a clean stop (exit 130), and a trial whose worker process is killed retried from its last epoch checkpoint
(--max-failures)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pyarrow.parquet as pq

from tests.drivers import Driver, cmdline, session_pids, wait_until
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures

INTERRUPT = """
name: term
epochs: 4
scheduler: {type: fifo}
max_concurrent: 1
data: {train_subset: 3000, val_subset: 200, test_subset: 200}
parameters: {model: mlp, hidden: [16], batch_size: 8, lr: {grid: [0.1, 0.05, 0.02]}}
"""


def test_sigterm_stops_the_sweep_cleanly_with_code_130(tmp_path: Path, real_data: Path, reaped: list[Driver]) -> None:
    space = tmp_path / "term.yaml"
    space.write_text(INTERRUPT)
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "term"
    driver = Driver("launch", str(space), "--storage", str(runs), "--data-dir", str(real_data), "--quiet")
    reaped.append(driver)
    wait_until("the first epoch is in Parquet", lambda: pq.read_table(folder / "epochs.parquet").num_rows, driver)
    driver.proc.send_signal(signal.SIGTERM)
    code, out = driver.wait(timeout=300)

    assert code == 130, out
    assert f"Resume with: sweeper resume term --storage {runs}" in out
    assert "Traceback" not in out
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["state"] == "interrupted" and sweep["sessions"][-1]["outcome"] == "interrupted"
    assert not (folder / ".lock").exists()
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    assert epochs and {e["trial_id"] for e in epochs} <= {t["trial_id"] for t in trials}
    assert "INTERRUPTED" in {t["state"] for t in trials}
    assert not any(t["state"] == "RUNNING" for t in trials)
    assert len({(e["trial_id"], e["epoch"]) for e in epochs}) == len(epochs)


RETRY = """
name: retry
epochs: 5
scheduler: {type: fifo}
data: {train_subset: 12000, val_subset: 200, test_subset: 200}
parameters: {model: mlp, hidden: [16], batch_size: 8}
"""


def test_max_failures_retries_a_killed_trial_from_its_last_checkpoint(
    tmp_path: Path, real_data: Path, reaped: list[Driver]
) -> None:
    """The trial's worker process (the Ray actor running it) is SIGKILLed during epoch 3: a real failure, the
    kind a node's OOM killer causes. With --max-failures 1 Ray retries the trial from its epoch-2 checkpoint."""
    space = tmp_path / "retry.yaml"
    space.write_text(RETRY)
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "retry"
    driver = Driver("launch", str(space), "--storage", str(runs), "--data-dir", str(real_data), "--max-failures",
                    "1", "--quiet")
    reaped.append(driver)

    def worker_after_epoch_2() -> int | None:
        if 2 not in pq.read_table(folder / "epochs.parquet")["epoch"].to_pylist():
            return None
        if list(folder.glob("ray_trainable_*/checkpoint_000000")):
            return None  # epoch 2's checkpoint is registered once Ray has deleted epoch 1's (num_to_keep=1)
        workers = [p for p in session_pids(driver.proc.pid) if cmdline(p).startswith("ray::ImplicitFunc")]
        assert len(workers) <= 1, workers  # one trial, one worker
        return workers[0] if workers else None

    worker = wait_until("epoch 2 reported, and the trial's worker found", worker_after_epoch_2, driver)
    os.kill(worker, signal.SIGKILL)
    at_kill = pq.read_table(folder / "epochs.parquet")["epoch"].to_pylist()
    assert max(at_kill) == 2, f"the kill came after epoch 3 was reported: {at_kill}"

    code, out = driver.wait(timeout=600)
    assert code == 0, out  # the retry finished the trial: nothing failed in the end
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    assert len(trials) == 1, trials
    trial = trials[0]
    assert trial["state"] == "TERMINATED" and trial["epochs"] == 5 and trial["error"] is None, trial
    assert trial["restored_from"] == 2  # continued from the epoch-2 checkpoint, not from scratch
    assert sorted(e["epoch"] for e in epochs) == [1, 2, 3, 4, 5]  # every epoch once
    assert {e["session"] for e in epochs} == {0}  # all in the launch's session: a retry is no resume
    assert json.loads((folder / "sweep.json").read_text())["state"] == "finished"
