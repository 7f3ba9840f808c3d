"""Trial params and the MODELS registry: every entry builds; every study variant builds and runs."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from sweeper.run.training.models import MODELS, build_model
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
        sizes[name] = sum(t.numel() for t in model.parameters())
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


# -- keys beyond the study: batch norm, per-block filters, adamw -------------------------------------------------


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_batch_norm_adds_norm_layers_that_act_differently_in_train_and_eval(model: str) -> None:
    p = TrialParams(model=model, hidden=[16], dense=[16], filters=4, batch_norm=True)
    net = build_model(p)
    kinds = [type(m) for m in net.modules()]
    if model == "cnn":
        assert kinds.count(torch.nn.BatchNorm2d) == 2 and kinds.count(torch.nn.BatchNorm1d) == 1
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert all(c.bias is None for c in convs)  # the norm's shift replaces the bias
    else:
        assert kinds.count(torch.nn.BatchNorm1d) == 1
    x = torch.rand(8, 1, 28, 28)
    net.train()
    train_out = net(x)
    net.eval()
    assert not torch.allclose(train_out, net(x))  # batch statistics vs running statistics
    plain = build_model(TrialParams(model=model, hidden=[16], dense=[16], filters=4))
    assert not any(isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d) for m in plain.modules())


@pytest.mark.parametrize("pooling", ["max", "avg", "none"])
def test_batch_norm_comes_after_each_conv_and_before_its_relu(pooling: str) -> None:
    """conv -> norm -> relu; a max-pool may sit between the norm and the relu (they commute, see
    test_relu_after_max_pool_is_bit_identical), an average pool never."""
    net = build_model(TrialParams(model="cnn", filters=4, batch_norm=True, pooling=pooling))
    layers = list(net)
    for i, layer in enumerate(layers):
        if isinstance(layer, torch.nn.Conv2d):
            assert isinstance(layers[i + 1], torch.nn.BatchNorm2d)
            between = layers[i + 2 : i + 3] if isinstance(layers[i + 2], torch.nn.ReLU) else layers[i + 2 : i + 4]
            assert isinstance(between[-1], torch.nn.ReLU), layers
            assert all(isinstance(m, torch.nn.MaxPool2d) for m in between[:-1]), layers


def test_per_block_filters_build_those_conv_channels() -> None:
    p = TrialParams(model="cnn", conv_layers=3, filters=[8, 16, 32], padding="same", pool_every=1)
    net = build_model(p)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(1, 8), (8, 16), (16, 32)]
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert head.in_features == 32 * 3 * 3  # 28 -> 14 -> 7 -> 3
    # An int means the same width for every layer, as before lists existed.
    same = [m.out_channels for m in build_model(TrialParams(model="cnn", conv_layers=2, filters=8)).modules()
            if isinstance(m, torch.nn.Conv2d)]
    assert same == [8, 8]


def test_per_block_filters_must_give_one_entry_per_conv_layer() -> None:
    with pytest.raises(ValueError, match=r"filters \[8, 16\] has 2 entries but conv_layers is 3"):
        check_feasible(TrialParams(model="cnn", conv_layers=3, filters=[8, 16], padding="same"))
    check_feasible(TrialParams(model="mlp", conv_layers=3, filters=[8, 16]))  # filters do not apply to an MLP


@pytest.mark.parametrize(
    "values",
    [{"filters": []}, {"filters": [8, 0]}, {"filters": 0}, {"filters": True}, {"filters": [8.5]},
     {"lr_schedule": "exponential"}, {"lr_gamma": 0}, {"lr_gamma": 1.5}, {"lr_step_size": 0},
     {"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"augment_shift": -1}, {"augment_shift": 28},
     {"optimizer": "adamax"}],
)
def test_invalid_new_trial_params_are_rejected(values: dict) -> None:
    with pytest.raises(ValidationError):
        TrialParams(**values)


def test_new_keys_default_to_the_study_behaviour() -> None:
    p = TrialParams()
    assert (p.batch_norm, p.lr_schedule, p.label_smoothing, p.augment_shift, p.augment_flip) == (
        False, "none", 0.0, 0, False)
    assert TrialParams(optimizer="adamw").learning_rate == 0.001
    assert TrialParams(filters=[4, 8]).recorded()["filters"] == [4, 8]
