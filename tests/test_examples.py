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
