"""The per-trial loop: learning, reporting, checkpoint/restore, early stopping, threads, and real data."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from sweeper.run.training import data
from sweeper.run.training.loop import (
    CHECKPOINT_FILE,
    Progress,
    Tensors,
    evaluate,
    make_optimizer,
    train_epoch,
    train_trial,
)
from sweeper.run.training.models import build_model
from sweeper.run.training.schedules import make_scheduler
from sweeper.spec.cost import threads
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec
from tests.conftest import REPO


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
    assert [threads(c) for c in (0.25, 1, 1.5, 2)] == [1, 1, 2, 2]


def test_real_fashion_mnist_study_variant_beats_chance_clearly(tmp_path: Path, real_data: Path) -> None:
    """The study's logistic regression (SGD lr 0.1, batch 32) on 3,000 real training images, 3 epochs."""
    splits = data.load(real_data, DataSpec(train_subset=3000, val_subset=1000, test_subset=2000))
    tensors = Tensors.from_splits(splits, torch.device("cpu"))
    rec = Recorder(tmp_path)
    last = train_trial(TrialParams(model="logreg", optimizer="sgd", lr=0.1), tensors, 3, rec)
    assert last["test_accuracy"] > 0.7, last  # chance is 0.10
    assert last["val_accuracy"] > 0.7, last


# -- keys beyond the study: defaults change nothing; schedules, label smoothing, checkpoints ----------------------

# Metrics the code gave before these keys existed (1 thread, CPU), for trials that leave them at their defaults:
# they must come out the same (same weights init order, same use of every RNG): accuracies exactly, losses to
# float32 rounding. Bit for bit is only true on one CPU: torch picks AVX2 or AVX-512 kernels at run time, and their
# float32 sums round differently in the 7th digit (CI's machine gave 2.287011464 where this one gives 2.287011719).
# A change in initialisation order or RNG use moves the losses in the 2nd-3rd digit and most accuracies with them.
# Since issue 27 trials run the fast path (channels_last, fused optimizers, relu after the max-pool, another
# evaluation batch: float rounding only, see test_loop_fast.py): these numbers, computed by the plain loop, still
# come out within LOSS_RTOL and with the same accuracies over their 2 epochs on these small data.
LOSS_RTOL = 1e-5
# tiny_data, 2 epochs: per epoch (train_loss, train_accuracy, val_loss, val_accuracy), then (test_loss, test_acc).
BEFORE_TINY: dict[str, tuple[dict[str, Any], list[tuple[float, ...]]]] = {
    "cnn": (dict(model="cnn", conv_layers=2, filters=4, kernel_size=3, dropout=0.2, optimizer="adam", seed=3), [
        (2.3002772013346355, 0.11458333333333333, 2.284107971191406, 0.31666666666666665),
        (2.2719085693359373, 0.23958333333333334, 2.2507970174153646, 0.35),
        (2.2561300659179686, 0.27),
    ]),
    "cnn_dense": (dict(model="cnn", conv_layers=2, filters=4, kernel_size=2, padding="same", pool_every=2,
                       dense=[16], dropout=0.3, optimizer="sgd", momentum=0.9, nesterov=True, seed=5), [
        (2.3042093912760415, 0.10416666666666667, 2.289751180013021, 0.15833333333333333),
        (2.28701171875, 0.15208333333333332, 2.2657750447591147, 0.20833333333333334),
        (2.2784808349609373, 0.195),
    ]),
    "mlp": (dict(model="mlp", hidden=[32, 16], dropout=0.2, optimizer="sgd", lr=0.1, weight_decay=1e-4, seed=1), [
        (2.2554244995117188, 0.17291666666666666, 2.1871429443359376, 0.30833333333333335),
        (2.0827091217041014, 0.42916666666666664, 1.921423848470052, 0.775),
        (1.8669549560546874, 0.815),
    ]),
    "logreg": (dict(model="logreg", optimizer="sgd", lr=0.1, seed=0), [
        (1.0055281321207683, 0.8583333333333333, 0.3384929021199544, 1.0),
        (0.2288990020751953, 1.0, 0.15295359293619792, 1.0),
        (0.15179916381835937, 1.0),
    ]),
}
# The cheapest study variants of slides.yaml on 300/200/200 real images, 2 epochs: the last report's
# (train_loss, val_loss, val_accuracy, test_loss, test_accuracy).
BEFORE_STUDY = {
    "Logistic regression": (1.3167548624674479, 1.3177903747558595, 0.535, 1.393175048828125, 0.53),
    "1st MLP": (2.2607545979817707, 2.2409849548339844, 0.115, 2.247752227783203, 0.15),
    "3rd MLP": (2.290965779622396, 2.2899024963378904, 0.115, 2.2923922729492188, 0.15),
    "1st CNN": (2.268285929361979, 2.269359283447266, 0.175, 2.268188018798828, 0.2),
    "2nd CNN": (2.2985184733072916, 2.297516632080078, 0.145, 2.2993643188476565, 0.14),
}


@pytest.fixture
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def same_metrics(got: tuple[float, ...], expected: tuple[float, ...], losses: tuple[int, ...]) -> bool:
    """Accuracies equal exactly, losses (at the positions `losses`) to LOSS_RTOL."""
    return len(got) == len(expected) and all(
        g == pytest.approx(e, rel=LOSS_RTOL) if i in losses else g == e
        for i, (g, e) in enumerate(zip(got, expected, strict=True)))


@pytest.mark.parametrize("case", sorted(BEFORE_TINY))
def test_default_keys_train_as_before(tmp_path: Path, tiny_tensors: Tensors, one_thread: None, case: str) -> None:
    values, expected = BEFORE_TINY[case]
    rec = Recorder(tmp_path)
    train_trial(TrialParams(**values), tiny_tensors, 2, rec)
    got = [(r["train_loss"], r["train_accuracy"], r["val_loss"], r["val_accuracy"]) for r in rec.reports]
    assert len(got) == 2
    for epoch, want in zip(got, expected[:2], strict=True):
        assert same_metrics(epoch, want, losses=(0, 2)), (epoch, want)
    test = (rec.reports[-1]["test_loss"], rec.reports[-1]["test_accuracy"])
    assert same_metrics(test, expected[2], losses=(0,)), (test, expected[2])


def test_cheapest_study_variants_train_as_before(tmp_path: Path, real_data: Path, one_thread: None) -> None:
    splits = data.load(real_data, DataSpec(train_subset=300, val_subset=200, test_subset=200))
    tensors = Tensors.from_splits(splits, torch.device("cpu"))
    space = load(REPO / "search_spaces" / "slides.yaml")
    for name, expected in BEFORE_STUDY.items():
        rec = Recorder(tmp_path / name.replace(" ", "_"))
        last = train_trial(space.trial_params({"variant": name}), tensors, 2, rec)
        got = tuple(last[k] for k in ("train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"))
        assert same_metrics(got, expected, losses=(0, 1, 3)), (name, got, expected)


def lrs(p: TrialParams, tensors: Tensors, epochs: int, root: Path) -> list[float]:
    rec = Recorder(root)
    train_trial(p, tensors, epochs, rec)
    return [r["lr"] for r in rec.reports]


def test_cosine_schedule_anneals_each_epoch_over_the_trials_budget(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="logreg", optimizer="sgd", lr=0.1, lr_schedule="cosine")
    got = lrs(p, tiny_tensors, 4, tmp_path / "a")
    assert got == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)], rel=1e-12)
    # The budget is the trial's own (max_epochs), so it still anneals to 0 by its end.
    capped = lrs(p.model_copy(update={"max_epochs": 3}), tiny_tensors, 6, tmp_path / "b")
    assert capped == pytest.approx([0.1 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)], rel=1e-12)
    assert lrs(TrialParams(model="logreg", lr=0.1), tiny_tensors, 2, tmp_path / "c") == [0.1, 0.1]  # none


def test_step_schedule_drops_by_gamma_every_step_size_epochs(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="logreg", optimizer="adamw", lr=0.01, lr_schedule="step", lr_step_size=2, lr_gamma=0.5)
    assert lrs(p, tiny_tensors, 5, tmp_path) == pytest.approx([0.01 * 0.5 ** (e // 2) for e in range(5)], rel=1e-12)


def one_cycle(step: int, total: int, max_lr: float) -> float:
    """OneCycleLR's closed form (torch defaults: 30% warm-up from max/25, cosine down to max/25/1e4)."""
    start, end = max_lr / 25, max_lr / 25 / 1e4
    peak = 0.3 * total - 1

    def cos(a: float, b: float, pct: float) -> float:
        return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)

    if step <= peak:
        return cos(start, max_lr, step / peak)
    return cos(max_lr, end, (step - peak) / (total - 1 - peak))


def test_onecycle_schedule_steps_every_batch_over_the_budget(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="logreg", optimizer="sgd", lr=0.2, batch_size=32, lr_schedule="onecycle")
    batches = math.ceil(len(tiny_tensors.y_train) / 32)  # 480 images: 15
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.2)
    sched = make_scheduler(p, opt, 3, batches)
    assert sched is not None
    seen = []
    for _ in range(3 * batches):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([one_cycle(s, 3 * batches, 0.2) for s in range(3 * batches)], rel=1e-9)
    assert seen[0] == pytest.approx(0.2 / 25) and 0.199 < max(seen) <= 0.2 and seen[-1] < 0.2 / 25
    # In a trial: the learning rate at each epoch's start is the one after epoch x batches steps.
    got = lrs(p, tiny_tensors, 3, tmp_path)
    assert got == pytest.approx([one_cycle(e * batches, 3 * batches, 0.2) for e in range(3)], rel=1e-9)


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "step"])
def test_resumed_trial_continues_the_schedule_exactly(tmp_path: Path, tiny_tensors: Tensors, schedule: str) -> None:
    p = TrialParams(model="cnn", filters=[4, 8], batch_norm=True, dropout=0.2, optimizer="adamw", lr=0.01,
                    weight_decay=0.01, lr_schedule=schedule, lr_step_size=1, lr_gamma=0.5, label_smoothing=0.1,
                    augment_shift=2, augment_flip=True, seed=4)
    straight = Recorder(tmp_path / "a")
    train_trial(p, tiny_tensors, 4, straight)
    first = Recorder(tmp_path / "b")
    with pytest.raises(Interrupt):
        train_trial(p, tiny_tensors, 4, StopAfter(first, 2))
    resumed = Recorder(tmp_path / "c")
    train_trial(p, tiny_tensors, 4, resumed, restore_from=tmp_path / "b" / "epoch2")
    assert [r["epoch"] for r in resumed.reports] == [3, 4] and resumed.reports[0]["restored_from"] == 2
    assert [r["lr"] for r in first.reports + resumed.reports] == [r["lr"] for r in straight.reports]
    for got, want in zip(resumed.reports, straight.reports[2:], strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert got[key] == pytest.approx(want[key], rel=1e-6), key
    assert resumed.reports[-1]["test_loss"] == pytest.approx(straight.reports[-1]["test_loss"], rel=1e-6)


class Interrupt(Exception):
    pass


class StopAfter:
    """A reporter that checkpoints like Recorder and then stops the trial after `epochs` epochs (a killed trial)."""

    def __init__(self, inner: Recorder, epochs: int) -> None:
        self.inner, self.epochs = inner, epochs

    def __call__(self, metrics: dict[str, Any], save: Any) -> None:
        self.inner(metrics, save)
        if metrics["epoch"] >= self.epochs:
            raise Interrupt


def test_label_smoothing_changes_the_training_loss_but_not_the_evaluation_loss(tiny_tensors: Tensors) -> None:
    x, y = tiny_tensors.x_train, tiny_tensors.y_train
    torch.manual_seed(0)
    model = build_model(TrialParams(model="logreg"))
    with torch.no_grad():
        model[-1].weight.mul_(30)  # confident predictions, so smoothing the targets shows in the loss
        logits = model(x)
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # the weights stay as they are
    results = {}
    for smoothing in (0.0, 0.2):
        train_loss, _ = train_epoch(model, frozen, x, y, 32, torch.Generator().manual_seed(0),
                                    TrialParams(label_smoothing=smoothing))
        results[smoothing] = (train_loss, evaluate(model, x, y)[0])
    smoothed = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.2).item()
    plain = torch.nn.functional.cross_entropy(logits, y).item()
    assert abs(smoothed - plain) > 0.1
    assert results[0.2][0] == pytest.approx(smoothed, rel=1e-5)  # training: smoothed targets
    assert results[0.0][0] == pytest.approx(plain, rel=1e-5)
    assert results[0.2][1] == results[0.0][1] == pytest.approx(plain, rel=1e-5)  # evaluation: plain cross-entropy


def test_checkpoint_loads_with_weights_only_and_old_checkpoints_still_resume(
    tmp_path: Path, tiny_tensors: Tensors
) -> None:
    p = TrialParams(model="mlp", hidden=[16], dropout=0.2, optimizer="adam", lr_schedule="cosine", seed=2)
    straight = Recorder(tmp_path / "a")
    train_trial(p, tiny_tensors, 3, straight)
    state = torch.load(tmp_path / "a" / "epoch2" / CHECKPOINT_FILE, weights_only=True)  # no pickled classes
    assert state["progress"]["epoch"] == 2 and isinstance(state["progress"]["best_val_loss"], float)
    assert "scheduler" in state
    # A checkpoint written before progress became a dict (a pickled Progress) resumes too, still weights_only.
    plain_p = TrialParams(model="mlp", hidden=[16], dropout=0.2, optimizer="adam", seed=2)
    plain = Recorder(tmp_path / "b")
    train_trial(plain_p, tiny_tensors, 3, plain)
    old = torch.load(tmp_path / "b" / "epoch2" / CHECKPOINT_FILE, weights_only=True)
    old["progress"] = Progress(**old["progress"])
    (tmp_path / "old").mkdir()
    torch.save(old, tmp_path / "old" / CHECKPOINT_FILE)
    resumed = Recorder(tmp_path / "c")
    train_trial(plain_p, tiny_tensors, 3, resumed, restore_from=tmp_path / "old")
    assert resumed.reports[0]["val_loss"] == pytest.approx(plain.reports[2]["val_loss"], rel=1e-6)


def test_adamw_trains_and_applies_weight_decay(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="mlp", hidden=[32], optimizer="adamw")
    opt = make_optimizer(p.model_copy(update={"weight_decay": 0.05}), build_model(p))
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["weight_decay"] == 0.05
    assert opt.param_groups[0]["lr"] == 0.001
    last = train_trial(p, tiny_tensors, 3, Recorder(tmp_path))
    assert last["val_accuracy"] > 0.5


def test_batch_norm_leaves_out_a_last_batch_of_one_image(tmp_path: Path, tiny_tensors: Tensors) -> None:
    p = TrialParams(model="mlp", hidden=[16], batch_norm=True, batch_size=479)  # 480 images: batches of 479 and 1
    last = train_trial(p, tiny_tensors, 1, Recorder(tmp_path))
    assert math.isfinite(last["train_loss"]) and last["finished"]
