"""MODELS registry: name -> builder(params, input shape, classes) -> nn.Module; your own models through their
factories (run/training/factories.py). Built-ins default to Fashion-MNIST's 1x28x28 images and 10 classes.

Outputs are logits; CrossEntropyLoss applies the softmax (the study's "output softmax"). With `batch_norm`, a
conv layer is conv (no bias: the norm's shift replaces it) -> BatchNorm2d -> relu, and a hidden dense layer is
linear (no bias) -> BatchNorm1d -> relu; without it the layers are built exactly as before the key existed.

A conv layer followed by a 2x2 max-pool applies its relu after the pool, not before: relu and max commute
(relu(max(a, b)) = max(relu(a), relu(b)), and the gradient reaches the same input or none), so outputs and
gradients are bit for bit those of conv -> relu -> pool, with the relu on a quarter of the values. Neither layer
has parameters, so the state_dict's keys are those of the other order (checkpoints and exports of either load).
An average pool does not commute with relu: there the relu stays before the pool.

Dropout on a CPU draws its mask in the tensor's logical (N, C, H, W) order whatever the layout (`Dropout`), so a
cnn trained in channels_last (run/training/loop.py) drops the very units it dropped in the contiguous layout.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sweeper.run.training.usercode import resolve
from sweeper.spec.params import IMAGE_SIDE, TrialParams, cnn_plan, conv_filters
from sweeper.spec.usermodels import UserModel

NUM_CLASSES = 10
FASHION_SHAPE = (1, IMAGE_SIDE, IMAGE_SIDE)


class Dropout(nn.Dropout):
    """nn.Dropout whose mask, on a CPU, is drawn in the input's logical order: torch draws it in memory order, so a
    channels_last activation would get other units dropped than the same activation stored contiguous (the same
    generator, the same numbers, other places). The same draws as nn.Dropout on a contiguous input; a GPU's own
    fused kernel elsewhere. No parameters, so the state_dict is nn.Dropout's."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0 < self.p < 1 or x.device.type != "cpu" or x.is_contiguous():
            return F.dropout(x, self.p, self.training, self.inplace)
        keep = 1 - self.p
        noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(keep).div_(keep)
        if x.is_contiguous(memory_format=torch.channels_last):  # a product of two layouts is 3-4x slower
            noise = noise.contiguous(memory_format=torch.channels_last)
        return x * noise


def _dense_stack(in_features: int, hidden: list[int], dropout: float, batch_norm: bool = False,
                 num_classes: int = NUM_CLASSES) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for units in hidden:
        if batch_norm:
            layers += [nn.Linear(in_features, units, bias=False), nn.BatchNorm1d(units), nn.ReLU()]
        else:
            layers += [nn.Linear(in_features, units), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = units
    layers.append(nn.Linear(in_features, num_classes))
    return layers


Shape = tuple[int, ...]


def build_logreg(p: TrialParams, shape: Shape = FASHION_SHAPE, k: int = NUM_CLASSES) -> nn.Module:
    """Multinomial logistic regression: flatten -> linear."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), k))


def build_mlp(p: TrialParams, shape: Shape = FASHION_SHAPE, k: int = NUM_CLASSES) -> nn.Module:
    """flatten -> [linear -> (batch norm) -> relu -> dropout] per hidden layer -> linear."""
    return nn.Sequential(nn.Flatten(), *_dense_stack(math.prod(shape), list(p.hidden), p.dropout, p.batch_norm, k))


def build_cnn(p: TrialParams, shape: Shape = FASHION_SHAPE, k: int = NUM_CLASSES) -> nn.Module:
    """Conv-(batch norm)-relu layers with 2x2 pooling + dropout every `pool_every` layers, flatten, dense head
    (a max-pool goes before its conv's relu: the same outputs, see the module's note). Takes square images (C, S, S)."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"the built-in cnn takes square images (C, S, S), but the data's input is {tuple(shape)}")
    layers: list[nn.Module] = []
    channels = shape[0]
    plan = cnn_plan(p, shape[1])
    widths = iter(conv_filters(p))
    pool = nn.MaxPool2d if p.pooling == "max" else nn.AvgPool2d
    for i, (kind, _) in enumerate(plan):
        if kind == "conv":
            out = next(widths)
            if p.batch_norm:
                layers += [nn.Conv2d(channels, out, p.kernel_size, padding=p.padding, bias=False),
                           nn.BatchNorm2d(out)]
            else:
                layers.append(nn.Conv2d(channels, out, p.kernel_size, padding=p.padding))
            pooled_next = p.pooling == "max" and i + 1 < len(plan) and plan[i + 1][0] == "pool"
            if not pooled_next:  # else the relu follows the max-pool
                layers.append(nn.ReLU())
            channels = out
        else:
            layers.append(pool(2))
            if p.pooling == "max":
                layers.append(nn.ReLU())
            if p.dropout > 0:
                layers.append(Dropout(p.dropout))
    layers.append(nn.Flatten())
    if p.pooling == "none" and p.dropout > 0:
        layers.append(Dropout(p.dropout))
    side = plan[-1][1]
    return nn.Sequential(*layers, *_dense_stack(channels * side * side, list(p.dense), p.dropout, p.batch_norm, k))


@functools.cache
def factory(ref: str, roots: tuple[str, ...]) -> Callable[..., Any]:
    """A user model's factory, imported once per process (a trial's worker imports it again: the spec's folder is
    put on its sys.path; on a cluster, Ray's runtime_env ships the package)."""
    return resolve(ref, roots, f"model {ref}")


MODELS: dict[str, Callable[[TrialParams, Shape, int], nn.Module]] = {
    "logreg": build_logreg,
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(p: TrialParams, shape: Shape = FASHION_SHAPE, k: int = NUM_CLASSES,
                models: Mapping[str, UserModel] | None = None) -> nn.Module:
    """Build the network a trial's params describe for inputs of `shape` and `k` classes (seeded by the caller): a
    built-in family, or the user model of that name (`models`: the space's)."""
    if p.model in MODELS:
        return MODELS[p.model](p, tuple(shape), k)
    if models is None or p.model not in models:
        raise ValueError(f"model {p.model!r} is neither built in ({', '.join(MODELS)}) nor under `models:`")
    user = models[p.model]
    model = factory(user.ref, user.roots)(**p.model_keys(), input_shape=tuple(shape), num_classes=k)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{models[p.model].ref} returned a {type(model).__name__}, not a torch.nn.Module")
    return model

