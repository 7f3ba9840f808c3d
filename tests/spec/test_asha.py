"""spec/asha.py: Ray's promotion rule as sweeper plays it, checked against Ray's own scheduler and recorded sweeps."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import yaml
from ray.tune.schedulers import TrialScheduler
from ray.tune.schedulers.async_hyperband import _Bracket

from sweeper.spec.asha import TPE_TREND, goes_on, passing
from sweeper.spec.cost import CostModel, asha_milestones

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("rf", [2, 3, 4.5])
def test_the_rule_is_rays(rf: float) -> None:
    """The same results in the same order: Ray's ASHA bracket and goes_on stop the same trials at a rung."""
    rng = random.Random(7)
    bracket = _Bracket(min_t=1, max_t=100, reduction_factor=rf, s=0)
    recorded: list[float] = []
    decisions = []
    for i in range(300):
        result = round(rng.random(), 2)  # ties too
        ray_says = bracket.on_result(SimpleNamespace(trial_id=f"t{i}"), 1, result)  # type: ignore[arg-type]
        ours = goes_on(recorded, result, rf)
        assert ours == (ray_says == TrialScheduler.CONTINUE), (i, result)
        decisions.append(ours)
    assert 0 < sum(decisions) < 300  # both kinds met
    assert decisions[0]  # the first at a rung always goes on


def test_more_than_one_in_rf_passes_and_tpe_more_still() -> None:
    milestones, budgets = (1, 3, 9), [27] * 60
    fair = passing(milestones, budgets, 3, 2)
    assert all(1 / 3 < p < 1 for p in fair)
    assert fair[0] < fair[1] < fair[2]  # fewer trials reach a higher rung: the early arrivals' low bar counts more
    learning = passing(milestones, budgets, 3, 2, TPE_TREND)
    assert all(a < b for a, b in zip(fair, learning, strict=True))  # later, better trials beat the bar more often
    assert passing(milestones, budgets, 3, 2) == fair  # seeded: the same estimate every time
    assert passing(milestones, [27], 3, 1) == (1.0, 1.0, 1.0)  # a trial alone passes every rung


@pytest.mark.parametrize("example", ["resnet_fmnist", "digits_loop"])
def test_tpe_sweeps_on_record_cost_what_the_model_expects(example: str) -> None:
    """The two TPE + ASHA examples whose results the repository keeps: trial-epochs run against expected. These are
    two of the sweeps TPE_TREND was chosen on, so this guards the model against drifting, it does not validate it."""
    folder = REPO / "reports" / "examples" / example / "data" / example
    spec = yaml.safe_load((folder / "spec.yaml").read_text())
    trials = pq.read_table(folder / "trials.parquet", columns=["epochs"]).column("epochs").to_pylist()
    assert spec["search"]["type"] == "tpe" and spec["scheduler"]["type"] == "asha"
    sched, epochs = spec["scheduler"], spec["epochs"]
    milestones = asha_milestones(epochs, sched["grace_period"], sched["reduction_factor"])
    budgets = [epochs] * len(trials)
    model = CostModel(milestones, passing(milestones, budgets, sched["reduction_factor"],
                                          spec.get("max_concurrent") or 2, TPE_TREND))
    expected = sum(model.expected(b) for b in budgets)
    assert expected == pytest.approx(sum(trials), rel=0.08)
    synchronous = CostModel(milestones, tuple(1 / sched["reduction_factor"] for _ in milestones))
    assert sum(synchronous.expected(b) for b in budgets) < 0.85 * sum(trials)  # what the model said before
