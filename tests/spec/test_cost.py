"""The time model's arithmetic (spec/cost.py): architecture keys, data sizes, trials at once, list-scheduled
packing and the expected wall time from known seconds per epoch and ASHA's expectations."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.spec.cost import (
    Cost,
    CostModel,
    architecture,
    cost,
    data_sizes,
    expected_wall,
    pack,
    row_architecture,
    trial_architectures,
    trials_at_once,
)
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec
from sweeper.spec.space import Space

SPACE = """
name: t
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
resources: {cpu: 1}
parameters:
  model: cnn
  filters: {grid: [8, 64]}
  lr: {grid: [0.1, 0.01]}
"""


def test_architecture_keeps_only_the_keys_that_decide_an_epochs_cost() -> None:
    a = architecture(TrialParams(model="cnn", filters=8, lr=0.1).model_dump())
    assert a == architecture(TrialParams(model="cnn", filters=8, lr=0.5, dropout=0.3).model_dump())
    assert a != architecture(TrialParams(model="cnn", filters=64).model_dump())
    assert architecture({"model": "logreg", "filters": 64}) == "model=logreg batch_size=32"
    # trials.parquet: param_ columns, null where a key does not apply, lists as arrays
    row = {"param_model": "mlp", "param_hidden": (256, 128), "param_filters": None, "param_batch_size": 32.0}
    assert row_architecture(row) == architecture(TrialParams(model="mlp", hidden=[256, 128]).model_dump())


def test_data_sizes_and_trials_at_once(tmp_path: Path) -> None:
    assert data_sizes(DataSpec()) == (48_000, 12_000)
    assert data_sizes(DataSpec(train_subset=1000, val_subset=200)) == (1000, 200)
    spec = space_of(tmp_path).spec
    assert trials_at_once(spec, cpus=2, trials=4) == 2
    assert trials_at_once(spec, cpus=16, trials=4) == 4
    assert trials_at_once(spec.model_copy(update={"max_concurrent": 3}), cpus=16, trials=10) == 3


def space_of(tmp_path: Path) -> Space:
    path = tmp_path / "t.yaml"
    path.write_text(SPACE)
    return load(path)


def test_pack_is_list_scheduling_in_order() -> None:
    assert pack([10, 10, 10], slots=1) == 30
    assert pack([10, 10, 10], slots=2) == 20  # two at once, the third after the first ends
    assert pack([4, 3, 2, 1], slots=2) == 5  # 4 | 3+2 -> 4+1 = 5
    assert pack([5], slots=2, busy=[7, 1]) == 7  # the new trial goes where a running one ends first
    assert pack([], slots=3, busy=[2]) == 2
    assert pack([], slots=0) == 0


def test_expected_wall_from_seconds_per_epoch_and_asha(tmp_path: Path) -> None:
    space = space_of(tmp_path)
    c = cost(space)
    archs = trial_architectures(space)
    assert len(archs) == 4 and len(set(archs)) == 2  # lr does not change an epoch's cost
    cheap, dear = archs[0], next(a for a in archs if a != archs[0])
    seconds = {cheap: 1.0, dear: 10.0}
    per_trial = c.model.expected(9)  # rungs at 1, 3 (9 is the end): 1 epoch, 2 more if it passes 1, 6 if also 3
    first, second = c.model.passing[:2]
    assert per_trial == pytest.approx(1 + 2 * first + 6 * first * second)
    works = [per_trial * seconds[a] for a in archs]
    bare = {"per_trial": 0.0, "per_epoch": 0.0}
    assert expected_wall(c, archs, seconds, slots=1, startup=5, **bare) == pytest.approx(5 + sum(works))
    assert expected_wall(c, archs, seconds, slots=4, startup=0, **bare) == pytest.approx(max(works))
    # two at once in run order (filters 8, 8, 64, 64): each slot runs a cheap trial, then a dear one
    assert archs == (cheap, cheap, dear, dear)
    assert expected_wall(c, archs, seconds, slots=2, startup=0, **bare) == pytest.approx(per_trial * (1.0 + 10.0))
    # each trial's start and each epoch's report count too (what dominates a sweep of many tiny trials)
    assert expected_wall(c, archs, seconds, slots=1, startup=0, per_trial=2.0, per_epoch=0.5) == \
        pytest.approx(sum(works) + 4 * 2.0 + 4 * per_trial * 0.5)


def test_fifo_packing_by_hand() -> None:
    c = Cost((2, 4, 2), CostModel(), asha=False)
    seconds = {"a": 3.0, "b": 1.0}
    # 2 slots: trial 1 (6 s) | trial 2 (4 s), trial 3 (6 s) after trial 2 -> 10 s
    assert expected_wall(c, ["a", "b", "a"], seconds, slots=2, startup=1.5, per_trial=0, per_epoch=0) == \
        pytest.approx(11.5)
