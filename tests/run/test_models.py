"""Trial params and the MODELS registry: every entry builds; every study variant builds and runs."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from sweeper.run.models import MODELS, build_model, count_parameters
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams, check_feasible, cnn_plan
from tests.conftest import REPO


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registry_entry_maps_images_to_ten_logits(name: str) -> None:
    p = TrialParams(model=name, hidden=[16], filters=4)
    out = build_model(p)(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10)


def test_all_ten_study_variants_build_with_expected_shapes() -> None:
    space = load(REPO / "search_spaces" / "slides.yaml")
    assert len(space.variants) == 10
    sizes = {}
    for name in space.variants:
        p = space.trial_params({"variant": name})
        model = build_model(p)
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
        sizes[name] = count_parameters(model)
    assert sizes["Logistic regression"] == 784 * 10 + 10
    assert sizes["1st MLP"] == 784 * 10 + 10 + 10 * 10 + 10
    assert sizes["2nd MLP"] == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    # 4th CNN: conv(1->32,k3) 26 -> pool 13 -> conv(32->32,k3) 11 -> pool 5 -> dense 800->10
    assert sizes["4th CNN"] == (9 * 32 + 32) + (9 * 32 * 32 + 32) + (32 * 5 * 5 * 10 + 10)


def test_cnn_plan_follows_valid_padding_and_pooling() -> None:
    p = TrialParams(model="cnn", conv_layers=4, filters=64, kernel_size=3, pool_every=2)
    assert cnn_plan(p) == [("conv", 26), ("conv", 24), ("pool", 12), ("conv", 10), ("conv", 8), ("pool", 4)]
    same = TrialParams(model="cnn", conv_layers=2, kernel_size=3, padding="same")
    assert cnn_plan(same) == [("conv", 28), ("pool", 14), ("conv", 14), ("pool", 7)]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"conv_layers": 4, "kernel_size": 3}, "larger than the 1x1 feature map"),
        ({"conv_layers": 5, "kernel_size": 1}, "below 2x2"),
        ({"conv_layers": 1, "kernel_size": 29}, "larger than the 28x28 feature map"),
    ],
)
def test_infeasible_cnn_is_rejected_before_training(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_feasible(TrialParams(model="cnn", **values))


@pytest.mark.parametrize(
    "values",
    [{"optimizer": "rmsprop"}, {"dropout": 1.0}, {"lr": 0}, {"batch_size": 0}, {"hidden": [0]},
     {"nesterov": True}, {"units": 3}, {"early_stopping_patience": -1}],
)
def test_invalid_trial_params_are_rejected(values: dict) -> None:
    with pytest.raises(ValidationError):
        TrialParams(**values)


def test_learning_rate_defaults_follow_keras() -> None:
    assert TrialParams(optimizer="sgd").learning_rate == 0.01
    assert TrialParams(optimizer="adam").learning_rate == 0.001
    assert TrialParams(optimizer="sgd", lr=0.1).learning_rate == 0.1
