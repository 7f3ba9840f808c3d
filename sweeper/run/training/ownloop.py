"""A trial of your own loop: `train(ctx, **params)` called with a TrialContext, its keys from the trial's params.

Plain PyTorch like the built-in loop (run/training/loop.py's `train_trial`): run/trial.py calls it in a Ray worker
with Ray's report, run/training/rehearsal.py before a sweep starts with a recorder of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sweeper.run.training.context import LoopData, Send, TrialContext, seed_everything
from sweeper.run.training.loop import Tensors
from sweeper.run.training.models import build_model
from sweeper.run.training.usercode import resolve
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space


def loop_data(data: Tensors, classes: tuple[str, ...] | None = None) -> LoopData:
    test = None if data.x_test is None or data.y_test is None else (data.x_test, data.y_test)
    return LoopData((data.x_train, data.y_train), (data.x_val, data.y_val), test, data.input_shape,
                    data.num_classes, classes)


def loop_function(space: Space) -> Callable[..., Any]:
    """The space's `trainable:` function, imported (from where launch found it)."""
    own = space.trainable
    if own is None:
        raise ValueError("the space has no trainable")
    return resolve(own.ref, own.roots, f"{space.path}: key 'trainable'")


def loop_kwargs(space: Space, p: TrialParams) -> dict[str, Any]:
    """What the loop is called with: each key it declares, at the trial's value (its own default where unset)."""
    assert space.trainable is not None
    return {k: p.user.get(k, default) for k, default in space.trainable.keys.items()}


def run_own_loop(space: Space, p: TrialParams, data: Tensors, epochs: int, send: Send,
                 restore_from: Path | None = None, classes: tuple[str, ...] | None = None,
                 fn: Callable[..., Any] | None = None) -> TrialContext:
    """Seed, call the loop, and end the trial as the loop left it (see context.py). `epochs`: the sweep's budget
    (a trial's own max_epochs may lower it)."""
    fn = fn or loop_function(space)
    seed_everything(p.seed)
    device = data.y_train.device

    def build() -> nn.Module:
        return build_model(p, data.input_shape, data.num_classes, space.models)

    ctx = TrialContext(data=loop_data(data, classes), device=torch.device(device), seed=p.seed,
                       epochs=min(epochs, p.max_epochs or epochs), metric=space.spec.metric,
                       declared=space.spec.metrics, send=send, restore_from=restore_from,
                       build=build if space.models else None)
    fn(ctx, **loop_kwargs(space, p))
    ctx.close()
    return ctx
