"""Your own training loop (`trainable: examples.digits_loop:train`): a small CNN on scikit-learn's bundled 8x8
digits, trained with AdamW and mixup, reporting macro-F1 (`metrics: {val_f1: max}`) beside the standard metrics.

sweeper calls `train(ctx, **params)` with this trial's keys; ASHA decides at each `ctx.report` (the loop never asks
whether to stop); `ctx.restore()` gives back the last reported checkpoint and puts the random streams back where
they were, so a resumed trial continues exactly. The model comes from the factory `net` (`models:`), built by
`ctx.build_model()`, so `sweeper export` can rebuild it from checkpoint["model"].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import sweeper


def net(width: int = 32, dropout: float = 0.1, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Two 3x3 conv layers of `width` channels, a 2x2 max-pool, and a linear layer to the classes."""
    channels, side = input_shape[0], input_shape[-1]
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * (side // 2) ** 2, num_classes),
    )


def macro_f1(logits: torch.Tensor, y: torch.Tensor, k: int) -> float:
    """The unweighted mean over classes of each class's F1 (a class never predicted nor present counts as 0)."""
    pred = logits.argmax(1)
    f1 = []
    for c in range(k):
        tp = ((pred == c) & (y == c)).sum().item()
        fp = ((pred == c) & (y != c)).sum().item()
        fn = ((pred != c) & (y == c)).sum().item()
        f1.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1) / k


@torch.no_grad()
def score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[float, float, float]:
    """Loss, accuracy and macro-F1 over a whole split."""
    model.eval()
    logits = model(x)
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item(), macro_f1(logits, y, k)


def train(ctx: sweeper.TrialContext, *, lr: float = 1e-3, batch_size: int = 32, mixup: float = 0.0,
          weight_decay: float = 0.01) -> None:
    x, y = ctx.data.train
    k = ctx.data.num_classes
    model = ctx.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    if (state := ctx.restore()) is not None:  # after building: the random streams come back with it
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=ctx.generator)
        total, correct = 0.0, 0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            xb, yb = x[idx], y[idx]
            if mixup > 0:  # mix each batch with a shuffled copy of itself
                lam = float(torch.distributions.Beta(mixup, mixup).sample())
                perm = torch.randperm(len(idx), generator=ctx.generator)
                logits = model(lam * xb + (1 - lam) * xb[perm])
                loss = lam * F.cross_entropy(logits, yb) + (1 - lam) * F.cross_entropy(logits, yb[perm])
            else:
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        val_loss, val_acc, val_f1 = score(model, *ctx.data.val, k)
        ctx.report(epoch, train_loss=total / len(y), train_accuracy=correct / len(y), val_loss=val_loss,
                   val_accuracy=val_acc, val_f1=val_f1,
                   checkpoint={"model": model.state_dict(), "opt": opt.state_dict()})
    if ctx.data.test is not None:
        test_loss, test_acc, test_f1 = score(model, *ctx.data.test, k)
        ctx.finish(test_loss=test_loss, test_accuracy=test_acc, test_f1=test_f1)
