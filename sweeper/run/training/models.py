"""MODELS registry: name -> builder(params, input shape, classes) -> nn.Module; your own models through their
factories (run/training/factories.py). Built-ins default to Fashion-MNIST's 1x28x28 images and 10 classes.

Outputs are logits; CrossEntropyLoss applies the softmax (the study's "output softmax"). With `batch_norm`, a
conv layer is conv (no bias: the norm's shift replaces it) -> BatchNorm2d -> relu, and a hidden dense layer is
linear (no bias) -> BatchNorm1d -> relu; without it the layers are built exactly as before the key existed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from sweeper.run.training.usercode import resolve
from sweeper.spec.params import IMAGE_SIDE, TrialParams, cnn_plan, conv_filters
from sweeper.spec.usermodels import UserModel

NUM_CLASSES = 10
FASHION_SHAPE = (1, IMAGE_SIDE, IMAGE_SIDE)


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
    """Conv-(batch norm)-relu layers with 2x2 pooling + dropout every `pool_every` layers, flatten, dense head.
    Takes square images (C, S, S)."""
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ValueError(f"the built-in cnn takes square images (C, S, S), but the data's input is {tuple(shape)}")
    layers: list[nn.Module] = []
    channels = shape[0]
    plan = cnn_plan(p, shape[1])
    widths = iter(conv_filters(p))
    pool = nn.MaxPool2d if p.pooling == "max" else nn.AvgPool2d
    for kind, _ in plan:
        if kind == "conv":
            out = next(widths)
            if p.batch_norm:
                layers += [nn.Conv2d(channels, out, p.kernel_size, padding=p.padding, bias=False),
                           nn.BatchNorm2d(out), nn.ReLU()]
            else:
                layers += [nn.Conv2d(channels, out, p.kernel_size, padding=p.padding), nn.ReLU()]
            channels = out
        else:
            layers.append(pool(2))
            if p.dropout > 0:
                layers.append(nn.Dropout(p.dropout))
    layers.append(nn.Flatten())
    if p.pooling == "none" and p.dropout > 0:
        layers.append(nn.Dropout(p.dropout))
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

