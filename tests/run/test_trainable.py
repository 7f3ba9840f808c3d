"""The per-trial loop: learning, reporting, checkpoint/restore, early stopping, threads, and real data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from sweeper.run import data
from sweeper.run.trainable import Tensors, _trial_threads, train_trial
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec


@pytest.fixture(scope="module")
def tiny_tensors(tiny_data: Path) -> Tensors:
    return Tensors.from_splits(data.load(tiny_data, DataSpec()), torch.device("cpu"))


class Recorder:
    """A reporter that keeps every report and saves a checkpoint into a folder per epoch."""

    def __init__(self, root: Path) -> None:
        self.root, self.reports = root, []

    def __call__(self, metrics: dict[str, Any], save: Any) -> None:
        folder = self.root / f"epoch{metrics['epoch']}"
        folder.mkdir(parents=True)
        save(folder)
        self.reports.append(metrics)


def test_tensors_are_scaled_and_shaped(tiny_tensors: Tensors) -> None:
    assert tiny_tensors.x_train.shape == (480, 1, 28, 28)
    assert tiny_tensors.x_train.dtype == torch.float32
    assert 0.0 <= tiny_tensors.x_train.min() and tiny_tensors.x_train.max() <= 1.0


@pytest.mark.parametrize("model", ["logreg", "mlp", "cnn"])
def test_fit_learns_and_reports_every_epoch(tmp_path: Path, tiny_tensors: Tensors, model: str) -> None:
    p = TrialParams(model=model, hidden=[32], filters=4, optimizer="adam", lr=0.01)
    rec = Recorder(tmp_path)
    last = train_trial(p, tiny_tensors, 3, rec)
    assert [r["epoch"] for r in rec.reports] == [1, 2, 3]
    assert "test_accuracy" not in rec.reports[0] and last["finished"] is True
    assert last["val_accuracy"] > 0.5 and last["test_accuracy"] > 0.5  # chance is 0.1
    assert rec.reports[-1]["train_loss"] < rec.reports[0]["train_loss"]
    assert all(r["time_s"] > 0 for r in rec.reports)


def test_restore_continues_exactly_where_the_checkpoint_stopped(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="mlp", hidden=[16], dropout=0.2, optimizer="sgd", momentum=0.9, seed=7)
    straight = Recorder(tmp_path / "a")
    train_trial(p, tiny_tensors, 3, straight)
    first = Recorder(tmp_path / "b")
    train_trial(p, tiny_tensors, 2, first)
    resumed = Recorder(tmp_path / "c")
    train_trial(p, tiny_tensors, 3, resumed, restore_from=tmp_path / "b" / "epoch2")
    assert [r["epoch"] for r in resumed.reports] == [3]
    for key in ("train_loss", "val_loss", "test_loss", "val_accuracy"):
        assert resumed.reports[0][key] == pytest.approx(straight.reports[2][key], rel=1e-6)


def test_seed_makes_runs_repeatable_and_different_seeds_differ(tmp_path: Path, tiny_tensors: Tensors) -> None:
    runs = []
    for i, seed in enumerate((1, 1, 2)):
        rec = Recorder(tmp_path / str(i))
        train_trial(TrialParams(model="mlp", hidden=[8], seed=seed), tiny_tensors, 1, rec)
        runs.append(rec.reports[0]["train_loss"])
    assert runs[0] == runs[1] != runs[2]


def test_early_stopping_ends_the_trial_and_evaluates_test(tmp_path: Path, tiny_tensors: Tensors) -> None:
    # A learning rate this large makes val loss stop improving at once.
    p = TrialParams(model="logreg", optimizer="sgd", lr=50.0, early_stopping_patience=1)
    rec = Recorder(tmp_path)
    last = train_trial(p, tiny_tensors, 20, rec)
    assert len(rec.reports) < 20
    assert last["early_stopped"] is True and "test_loss" in last


def test_max_epochs_caps_the_trial(tmp_path: Path, tiny_tensors: Tensors) -> None:
    rec = Recorder(tmp_path)
    train_trial(TrialParams(model="logreg", max_epochs=2), tiny_tensors, 5, rec)
    assert [r["epoch"] for r in rec.reports] == [1, 2] and rec.reports[-1]["finished"]


def test_diverging_loss_fails_the_trial(tmp_path: Path, tiny_tensors: Tensors) -> None:
    with pytest.raises(FloatingPointError, match="train loss is nan"):
        train_trial(TrialParams(model="mlp", hidden=[64], optimizer="sgd", lr=1e6), tiny_tensors, 2, Recorder(tmp_path))


def test_trial_threads_follow_the_trials_cpus() -> None:
    assert [_trial_threads(c) for c in (0.25, 1, 1.5, 2)] == [1, 1, 2, 2]


def test_real_fashion_mnist_study_variant_beats_chance_clearly(tmp_path: Path, real_data: Path) -> None:
    """The study's logistic regression (SGD lr 0.1, batch 32) on 3,000 real training images, 3 epochs."""
    splits = data.load(real_data, DataSpec(train_subset=3000, val_subset=1000, test_subset=2000))
    tensors = Tensors.from_splits(splits, torch.device("cpu"))
    rec = Recorder(tmp_path)
    last = train_trial(TrialParams(model="logreg", optimizer="sgd", lr=0.1), tensors, 3, rec)
    assert last["test_accuracy"] > 0.7, last  # chance is 0.10
    assert last["val_accuracy"] > 0.7, last
