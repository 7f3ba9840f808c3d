"""A worker reused for the next trial (reuse_actors) after ASHA stopped the previous one: Ray Tune waits for the
stopped trial's thread to end before handing the worker on, 2 s by default, then fails the NEW trial. A loaded
machine's clean-up takes longer (the chaos soak and CI met it). sweeper waits up to 60 s (startup.REUSE_WAIT_S),
and a trial Ray fails that way is recorded as an ERROR, never left pending.

The stopped trial's clean-up is made slow on purpose: the loop's `finally` takes 3 s when the trial is stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from sweeper.run.driver.startup import REUSE_WAIT_VAR
from tests.drivers import Driver

pytestmark = pytest.mark.e2e

LOOP = """\
import time


def train(ctx, *, lr: float = 0.1):
    try:
        for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
            ctx.report(epoch, val_loss=lr + epoch / 100)
    finally:
        if ctx.last_epoch < ctx.epochs:  # stopped (by ASHA, or the rehearsal): a slow clean-up
            time.sleep(3)
"""
SPACE = """\
name: reuse
trainable: slowstop.train
metric: val_loss
epochs: 3
max_concurrent: 1
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
parameters: {lr: {grid: [0.1, 0.3, 0.2]}}
"""


def run(tmp_path: Path, tiny_data: Path, drivers: list[Driver], wait: str | None) -> tuple[int, str, pd.DataFrame]:
    (tmp_path / "slowstop.py").write_text(LOOP)
    space = tmp_path / "reuse.yaml"
    space.write_text(SPACE.replace("slowstop.train", "slowstop:train"))
    env = {k: v for k, v in os.environ.items() if k != REUSE_WAIT_VAR} | ({REUSE_WAIT_VAR: wait} if wait else {})
    driver = Driver("launch", str(space), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data), "-q",
                    env=env)
    drivers.append(driver)
    code, out = driver.wait(300)
    return code, out, pd.read_parquet(tmp_path / "runs" / "reuse" / "trials.parquet")


def test_a_stopped_trials_slow_clean_up_does_not_fail_the_next_trial(
    tmp_path: Path, tiny_data: Path, drivers: list[Driver]
) -> None:
    code, out, trials = run(tmp_path, tiny_data, drivers, None)
    assert code == 0, out
    assert len(trials) == 3 and set(trials.state) == {"TERMINATED"}, trials
    assert (trials.stopped_by == "asha").sum() >= 1  # a worker was handed on after a stop


def test_a_trial_ray_failed_before_it_started_is_recorded_as_an_error_not_pending(tmp_path: Path) -> None:
    """Ray fails a trial it could not hand a worker without telling the callbacks' on_trial_error (the reuse
    failure above, with Ray's default wait): at the experiment's end the recorder records it as an ERROR with its
    params, so the sweep ends 'trials failed' (exit 1), not 'interrupted' (130) with a trial pending forever."""
    from ray.tune.experiment import Trial

    from sweeper.run.driver.recorder import ParquetRecorder
    from sweeper.spec.loader import load_text
    from sweeper.store.storage import Storage

    space = load_text("name: rec\nepochs: 1\nscheduler: {type: fifo}\nparameters: {model: logreg, lr: 0.2}\n",
                      tmp_path / "rec.yaml")
    folder = Storage.parse(str(tmp_path / "runs")).folder("rec")
    recorder = ParquetRecorder(folder, space, echo=None)
    recorder.setup()
    failed = Trial("ray_trainable", config={}, trial_id="never_ran", stub=True)
    failed.set_status(Trial.ERROR)
    recorder.on_experiment_end(trials=[failed])
    row = pd.read_parquet(folder.path / "trials.parquet").set_index("trial_id").loc["never_ran"]
    assert row.state == "ERROR" and row.param_lr == 0.2 and row.param_model == "logreg"
