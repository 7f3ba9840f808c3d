"""Time left per architecture: each unfinished trial's expected remaining epochs x its architecture's seconds per
epoch (calibrated, or measured in this sweep), packed onto the trials that run at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.spec.cost import architecture, cost, trial_architectures
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams
from sweeper.watch.tracker import Tracker, use_time_model

SPACE = """
name: tr
epochs: 4
scheduler: {type: fifo}
resources: {cpu: 1}
parameters:
  model: cnn
  filters: {grid: [8, 64]}
"""
CHEAP = architecture(TrialParams(filters=8).model_dump())
DEAR = architecture(TrialParams(filters=64).model_dump())


def row(trial_id: str, filters: int, epochs: int, state: str = "RUNNING", wall_s: float | None = None) -> dict:
    return {"trial_id": trial_id, "state": state, "epochs": epochs, "wall_s": wall_s, "param_model": "cnn",
            "param_filters": filters, "param_max_epochs": None, "param_batch_size": 32}


@pytest.fixture
def tracker(tmp_path: Path) -> Tracker:
    path = tmp_path / "tr.yaml"
    path.write_text(SPACE)
    space = load(path)
    t = Tracker(name="tr", total=2, epochs=4, cost=cost(space))
    use_time_model(t, space, {"seconds_per_epoch": {CHEAP: 2.0, DEAR: 30.0}, "slots": 2})
    assert t.planned == trial_architectures(space) == (CHEAP, DEAR)
    return t


def test_time_left_uses_each_running_trials_architecture(tracker: Tracker) -> None:
    tracker.update(row("a", 8, epochs=1), result=True)  # 3 epochs left at 2 s
    tracker.update(row("b", 64, epochs=3), result=True)  # 1 epoch left at 30 s
    assert tracker.left() == pytest.approx(max(3 * 2.0, 1 * 30.0))
    tracker.slots = 1  # fewer slots than running trials (a cluster said so): the running ones still all run
    assert tracker.left() == pytest.approx(30.0)


def test_measured_epochs_replace_the_calibration(tracker: Tracker) -> None:
    tracker.update(row("a", 8, epochs=2, wall_s=10.0), result=True)  # 5 s per epoch measured, not 2
    tracker.update(row("b", 64, epochs=2, wall_s=40.0), result=True)  # 20 s, not 30
    assert tracker.rates() == {CHEAP: 5.0, DEAR: 20.0}
    assert tracker.left() == pytest.approx(max(2 * 5.0, 2 * 20.0))


def test_pending_trials_queue_behind_the_running_ones(tracker: Tracker) -> None:
    tracker.slots = 1
    tracker.update(row("a", 8, epochs=2))  # the dear trial (planned second) has not started
    assert tracker.left() == pytest.approx(2 * 2.0 + 4 * 30.0)


def test_without_a_rate_for_an_architecture_it_falls_back_to_the_sessions_rate(tracker: Tracker) -> None:
    tracker.seconds = {CHEAP: 2.0}
    tracker.update(row("b", 64, epochs=1), result=True)
    tracker.started, tracker.reported = 0.0, 1
    assert tracker.left(now=10.0) == pytest.approx((3 + 4) / (1 / 10.0))  # 7 epochs at 0.1 per second
