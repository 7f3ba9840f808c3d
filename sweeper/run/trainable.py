"""The per-trial loop: train an epoch, evaluate, report, checkpoint, stop early; and its Ray wrapper.

`train_trial` is plain PyTorch and takes everything as arguments (tests and benchmarks call it directly);
`ray_trainable` is what Ray Tune runs: it resolves the trial's params, restores the last checkpoint,
and turns every epoch into `tune.report(metrics, checkpoint=...)`.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sweeper.run.data import Splits
from sweeper.run.models import build_model
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space

EVAL_BATCH = 2048
CHECKPOINT_FILE = "state.pt"  # in each epoch's checkpoint folder


@dataclass
class Tensors:
    """A trial's data, scaled to [0, 1], shaped (N, 1, 28, 28), on the trial's device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @classmethod
    def from_splits(cls, s: Splits, device: torch.device) -> Tensors:
        def x(a: Any) -> torch.Tensor:
            return torch.from_numpy(a).to(device).unsqueeze(1).float().div_(255.0)

        def y(a: Any) -> torch.Tensor:
            return torch.from_numpy(a).to(device=device, dtype=torch.long)

        return cls(x(s.x_train), y(s.y_train), x(s.x_val), y(s.y_val), x(s.x_test), y(s.y_test))


@dataclass
class Progress:
    """What a checkpoint must hold besides the weights to continue exactly where a trial stopped."""

    epoch: int = 0
    best_val_loss: float = math.inf
    bad_epochs: int = 0


def make_optimizer(p: TrialParams, model: nn.Module) -> torch.optim.Optimizer:
    if p.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=p.learning_rate, momentum=p.momentum, nesterov=p.nesterov,
        weight_decay=p.weight_decay,
    )


def train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int,
    gen: torch.Generator,
) -> tuple[float, float]:
    """One pass over shuffled training data; mean batch loss and accuracy (as Keras reports them)."""
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(len(y), generator=gen).to(y.device)
    total_loss = torch.zeros((), device=y.device)
    correct = torch.zeros((), device=y.device, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        idx = order[start : start + batch_size]
        xb, yb = x[idx], y[idx]
        logits = model(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    n = len(y)
    return total_loss.item() / n, correct.item() / n


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean loss and accuracy over a whole split."""
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
    p: TrialParams, data: Tensors, epochs: int, report: Reporter, restore_from: Path | None = None
) -> dict[str, Any]:
    """Train for up to `epochs`, calling `report(metrics, save)` after each epoch.

    `save(dir)` writes a checkpoint into dir; `restore_from` (a dir `save` wrote) continues a trial.
    The last report has `finished=True` and the test metrics; returns that report.
    """
    torch.manual_seed(p.seed)
    device = data.y_train.device
    model = build_model(p).to(device)
    opt = make_optimizer(p, model)
    gen = torch.Generator().manual_seed(p.seed)
    progress = Progress()
    restored_from = 0
    if restore_from is not None:
        state = torch.load(restore_from / CHECKPOINT_FILE, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        progress = state["progress"]
        restored_from = progress.epoch

    def save(folder: Path) -> None:
        torch.save(
            {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
             "torch_rng": torch.get_rng_state(), "progress": progress},
            folder / CHECKPOINT_FILE,
        )

    metrics: dict[str, Any] = {}
    epochs = min(epochs, p.max_epochs or epochs)
    while progress.epoch < epochs:
        started = time.perf_counter()
        train_loss, train_acc = train_epoch(model, opt, data.x_train, data.y_train, p.batch_size, gen)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} at epoch {progress.epoch + 1}")
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val)
        progress.epoch += 1
        metrics = {
            "epoch": progress.epoch, "train_loss": train_loss, "train_accuracy": train_acc,
            "val_loss": val_loss, "val_accuracy": val_acc, "time_s": time.perf_counter() - started,
            "restored_from": restored_from, "reported_at": time.time(),
        }
        if val_loss < progress.best_val_loss:
            progress.best_val_loss, progress.bad_epochs = val_loss, 0
        else:
            progress.bad_epochs += 1
        early = 0 < p.early_stopping_patience <= progress.bad_epochs
        if early or progress.epoch >= epochs:
            test_loss, test_acc = evaluate(model, data.x_test, data.y_test)
            metrics |= {"test_loss": test_loss, "test_accuracy": test_acc, "finished": True,
                        "early_stopped": early}
        report(metrics, save)
        if early:
            break
    return metrics


def _trial_threads(cpus: float) -> int:
    return max(1, math.ceil(cpus))


def ray_trainable(config: dict[str, Any], *, splits: Splits, space: Space, epochs: int, cpus: float) -> None:
    """What Ray Tune runs for one trial (wrapped with tune.with_parameters / with_resources)."""
    import ray
    from ray import tune

    torch.set_num_threads(_trial_threads(cpus))
    p = space.trial_params(config)
    use_gpu = bool(ray.get_gpu_ids()) and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    ctx = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()}:{ctx.get_node_id()[:8]}"
    data = Tensors.from_splits(splits, device)

    def report(metrics: dict[str, Any], save: Callable[[Path], None]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            save(Path(folder))
            tune.report({**metrics, "node": node, "device": str(device)},
                        checkpoint=tune.Checkpoint.from_directory(folder))

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        train_trial(p, data, epochs, report)
    else:
        with checkpoint.as_directory() as folder:
            train_trial(p, data, epochs, report, restore_from=Path(folder))
