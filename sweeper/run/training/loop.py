"""The per-trial loop: train an epoch, evaluate, report, checkpoint, stop early.

`train_trial` is plain PyTorch and takes everything as arguments (tests and benchmarks call it directly);
run/trial.py's `ray_trainable` is what Ray Tune runs: it resolves the trial's params, restores the last
checkpoint, and turns every epoch into `tune.report(metrics, checkpoint=...)`.

A checkpoint (`state.pt`) holds only tensors, numbers, strings and plain containers, so it loads with
`torch.load(..., weights_only=True)` (no pickled classes): the weights, the optimizer's and the scheduler's
state, the shuffling/augmentation generator, torch's RNG (dropout), and the progress as a dict of numbers.
Checkpoints written before that (progress as a pickled `Progress`) still load: that one class is allow-listed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from sweeper.run.training.augment import augment, augmenting
from sweeper.run.training.data import Splits
from sweeper.run.training.models import build_model
from sweeper.run.training.schedules import make_scheduler, per_batch
from sweeper.spec.params import TrialParams
from sweeper.spec.usermodels import UserModel

EVAL_BATCH = 2048
CHECKPOINT_FILE = "state.pt"  # in each epoch's checkpoint folder


@dataclass
class Tensors:
    """A trial's data on the trial's device: uint8 images scaled to [0, 1] (an (N, H, W) array gains a channel axis,
    so Fashion-MNIST is (N, 1, 28, 28)), any other input as float32. No test split: x_test and y_test are None."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @classmethod
    def from_splits(cls, s: Splits, device: torch.device) -> Tensors:
        return cls(inputs(s.x_train, device), labels(s.y_train, device), inputs(s.x_val, device),
                   labels(s.y_val, device), None if s.x_test is None else inputs(s.x_test, device),
                   None if s.y_test is None else labels(s.y_test, device), s.num_classes)


def inputs(a: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """A split's x as a trial trains on it (torch.tensor copies: the arrays come read-only, from Ray's object store
    or a memory-mapped file): uint8 images to [0, 1], (N, H, W) with a channel axis; anything else as float32."""
    t = torch.tensor(a).to(device)
    if t.dtype == torch.uint8:
        return (t.unsqueeze(1) if t.ndim == 3 else t).float().div_(255.0)
    return t.float()


def labels(a: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.tensor(a).to(device=device, dtype=torch.long)


@dataclass
class Progress:
    """What a checkpoint must hold besides the weights to continue exactly where a trial stopped (stored as a
    plain dict, `as_dict`; older checkpoints pickled the dataclass itself)."""

    epoch: int = 0
    best_val_loss: float = math.inf
    bad_epochs: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return {"epoch": self.epoch, "best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs}

    @classmethod
    def of(cls, stored: Any) -> Progress:
        """From a checkpoint: a dict (now) or a Progress (checkpoints written before)."""
        if isinstance(stored, Progress):
            return stored
        return cls(int(stored["epoch"]), float(stored["best_val_loss"]), int(stored["bad_epochs"]))


def load_checkpoint(source: Path | Any, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A state.pt (a path or a binary file object), loaded with weights_only=True: no code runs."""
    # checkpoints from before progress became a dict; those from before run/ had rooms name the class's old module
    with torch.serialization.safe_globals([Progress, (Progress, "sweeper.run.trainable.Progress")]):
        state: dict[str, Any] = torch.load(source, map_location=device, weights_only=True)
    return state


def make_optimizer(p: TrialParams, model: nn.Module) -> torch.optim.Optimizer:
    if p.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=p.learning_rate, momentum=p.momentum, nesterov=p.nesterov,
        weight_decay=p.weight_decay,
    )


def train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int,
    gen: torch.Generator, p: TrialParams | None = None, batch_step: LRScheduler | None = None,
) -> tuple[float, float]:
    """One pass over shuffled training data; mean batch loss and accuracy (as Keras reports them).

    From `p`: label smoothing of the loss and augmentation of each batch (drawn from `gen` after the shuffle);
    `batch_step`: a scheduler stepped after every batch (onecycle). With batch norm, a last batch of one image is
    left out (batch statistics need two); without it every image counts, as always."""
    model.train()
    p = p or TrialParams()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=p.label_smoothing)
    augmented = augmenting(p.augment_shift, p.augment_flip)
    order = torch.randperm(len(y), generator=gen).to(y.device)
    total_loss = torch.zeros((), device=y.device)
    correct = torch.zeros((), device=y.device, dtype=torch.long)
    n = len(y)
    for start in range(0, len(y), batch_size):
        idx = order[start : start + batch_size]
        if p.batch_norm and len(idx) == 1:
            n -= 1
            continue
        xb, yb = x[idx], y[idx]
        if augmented:
            xb = augment(xb, p.augment_shift, p.augment_flip, gen)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if batch_step is not None:
            batch_step.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    return total_loss.item() / n, correct.item() / n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy over a whole split: plain cross-entropy (no label smoothing), no augmentation."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        logits = model(xb)
        total_loss += loss_fn(logits, yb).item()
        correct += (logits.argmax(1) == yb).sum().item()
    return total_loss / len(y), correct / len(y)


Reporter = Callable[[dict[str, Any], Callable[[Path], None]], None]


def train_trial(
    p: TrialParams, data: Tensors, epochs: int, report: Reporter, restore_from: Path | None = None,
    models: Mapping[str, UserModel] | None = None,
) -> dict[str, Any]:
    """Train for up to `epochs`, calling `report(metrics, save)` after each epoch.

    `save(dir)` writes a checkpoint into dir; `restore_from` (a dir `save` wrote) continues a trial; `models`: the
    space's own models (a trial of one is built by its factory). The last report has `finished=True` and the test
    metrics (none without a test split); returns that report.
    """
    torch.manual_seed(p.seed)
    device = data.y_train.device
    model = build_model(p, data.input_shape, data.num_classes, models).to(device)
    opt = make_optimizer(p, model)
    epochs = min(epochs, p.max_epochs or epochs)  # the trial's budget: its schedule spans it
    sched = make_scheduler(p, opt, epochs, math.ceil(len(data.y_train) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)
    progress = Progress()
    restored_from = 0
    if restore_from is not None:
        state = load_checkpoint(restore_from / CHECKPOINT_FILE, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        progress = Progress.of(state["progress"])
        restored_from = progress.epoch

    def save(folder: Path) -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                 "torch_rng": torch.get_rng_state(), "progress": progress.as_dict()}
        if sched is not None:
            state["scheduler"] = sched.state_dict()
        torch.save(state, folder / CHECKPOINT_FILE)

    metrics: dict[str, Any] = {}
    while progress.epoch < epochs:
        started = time.perf_counter()
        lr = opt.param_groups[0]["lr"]  # at the epoch's start (onecycle moves it every batch)
        train_loss, train_acc = train_epoch(model, opt, data.x_train, data.y_train, p.batch_size, gen, p,
                                            sched if per_batch(p) else None)
        if sched is not None and not per_batch(p):
            sched.step()
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} at epoch {progress.epoch + 1}")
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        progress.epoch += 1
        metrics = {
            "epoch": progress.epoch, "train_loss": train_loss, "train_accuracy": train_acc,
            "val_loss": val_loss, "val_accuracy": val_acc, "time_s": time.perf_counter() - started,
            "restored_from": restored_from, "reported_at": time.time(), "lr": lr,
        }
        if val_loss < progress.best_val_loss:
            progress.best_val_loss, progress.bad_epochs = val_loss, 0
        else:
            progress.bad_epochs += 1
        early = 0 < p.early_stopping_patience <= progress.bad_epochs
        if early or progress.epoch >= epochs:
            if data.x_test is not None and data.y_test is not None:
                metrics |= dict(zip(("test_loss", "test_accuracy"), evaluate(model, data.x_test, data.y_test),
                                    strict=True))
            metrics |= {"finished": True, "early_stopped": early}
        report(metrics, save)
        if early:
            break
    return metrics
