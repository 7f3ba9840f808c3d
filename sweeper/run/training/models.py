"""MODELS registry: name -> builder(params) -> nn.Module for 1x28x28 images and 10 classes.

Outputs are logits; CrossEntropyLoss applies the softmax (the study's "output softmax"). With `batch_norm`, a
conv layer is conv (no bias: the norm's shift replaces it) -> BatchNorm2d -> relu, and a hidden dense layer is
linear (no bias) -> BatchNorm1d -> relu; without it the layers are built exactly as before the key existed.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sweeper.spec.params import IMAGE_SIDE, TrialParams, cnn_plan, conv_filters

NUM_CLASSES = 10


def _dense_stack(in_features: int, hidden: list[int], dropout: float, batch_norm: bool = False) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for units in hidden:
        if batch_norm:
            layers += [nn.Linear(in_features, units, bias=False), nn.BatchNorm1d(units), nn.ReLU()]
        else:
            layers += [nn.Linear(in_features, units), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = units
    layers.append(nn.Linear(in_features, NUM_CLASSES))
    return layers


def build_logreg(p: TrialParams) -> nn.Module:
    """Multinomial logistic regression: flatten -> linear."""
    return nn.Sequential(nn.Flatten(), nn.Linear(IMAGE_SIDE * IMAGE_SIDE, NUM_CLASSES))


def build_mlp(p: TrialParams) -> nn.Module:
    """flatten -> [linear -> (batch norm) -> relu -> dropout] per hidden layer -> linear."""
    return nn.Sequential(nn.Flatten(), *_dense_stack(IMAGE_SIDE * IMAGE_SIDE, list(p.hidden), p.dropout,
                                                     p.batch_norm))


def build_cnn(p: TrialParams) -> nn.Module:
    """Conv-(batch norm)-relu layers with 2x2 pooling + dropout every `pool_every` layers, flatten, dense head."""
    layers: list[nn.Module] = []
    channels = 1
    plan = cnn_plan(p)
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
    return nn.Sequential(*layers, *_dense_stack(channels * side * side, list(p.dense), p.dropout, p.batch_norm))


MODELS: dict[str, Callable[[TrialParams], nn.Module]] = {
    "logreg": build_logreg,
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(p: TrialParams) -> nn.Module:
    """Build the network a trial's params describe (seeded by the caller)."""
    return MODELS[p.model](p)

