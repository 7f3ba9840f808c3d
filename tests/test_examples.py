"""The shipped examples (examples/, search_spaces/examples/) load as a user runs them, from the repository root:
their factories are read, their values checked, and every reachable architecture builds at Fashion-MNIST's shape.
scikit-learn (the `examples` extra) is not needed for this: the tabular example imports it only in its loaders."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.run.training.factories import check_forward, load_space

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["resnet_fmnist", "cancer_mlp"])
def test_example_spaces_load_with_their_own_models(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    space = load_space(REPO / "search_spaces" / "examples" / f"{name}.yaml")
    assert space.models and all(m.sha256 for m in space.models.values())
    assert space.num_trials == space.spec.num_samples * space.spec.repeats


def test_the_resnet_example_builds_every_reachable_architecture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    space = load_space(REPO / "search_spaces" / "examples" / "resnet_fmnist.yaml")
    counts = check_forward(space, (1, 28, 28), 10)
    # width 16 or 32 x blocks at both ends of its randint (the built-in cnn is checked by the spec on Fashion-MNIST)
    assert len(counts) == 4 and all(k.startswith("('resnet'") and n > 0 for k, n in counts.items())


def test_the_own_loop_example_loads_with_its_loop_keys_and_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    space = load_space(REPO / "search_spaces" / "examples" / "digits_loop.yaml")
    assert space.trainable is not None and space.trainable.ref == "examples.digits_loop:train"
    assert set(space.trainable.keys) == {"lr", "batch_size", "mixup", "weight_decay"} and space.trainable.sha256
    assert set(space.models) == {"net"} and space.spec.metric == "val_f1" and space.spec.mode == "max"
    p = space.trial_params({"lr": 0.001, "mixup": 0.2, "width": 64, "dropout": 0.1})
    assert p.model == "net" and p.model_keys() == {"width": 64, "dropout": 0.1}
    assert {k: v for k, v in p.recorded().items() if v is not None and k != "seed"} == {
        "model": "net", "lr": 0.001, "mixup": 0.2, "width": 64, "dropout": 0.1, "batch_size": 32,
        "weight_decay": 0.01}
    counts = check_forward(space, (1, 8, 8), 10)
    assert len(counts) == 3  # the factory at each width of its choice (dropout does not change the parameters)
