"""MODELS registry: name -> builder(params) -> nn.Module for 1x28x28 images and 10 classes.

Outputs are logits; CrossEntropyLoss applies the softmax (the study's "output softmax").
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from sweeper.spec.params import IMAGE_SIDE, TrialParams, cnn_plan

NUM_CLASSES = 10


def _dense_stack(in_features: int, hidden: list[int], dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for units in hidden:
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
    """flatten -> [linear -> relu -> dropout] per hidden layer -> linear."""
    return nn.Sequential(nn.Flatten(), *_dense_stack(IMAGE_SIDE * IMAGE_SIDE, list(p.hidden), p.dropout))


def build_cnn(p: TrialParams) -> nn.Module:
    """Conv-relu layers with 2x2 pooling + dropout every `pool_every` layers, flatten, dense head."""
    layers: list[nn.Module] = []
    channels = 1
    plan = cnn_plan(p)
    pool = nn.MaxPool2d if p.pooling == "max" else nn.AvgPool2d
    for kind, _ in plan:
        if kind == "conv":
            layers += [nn.Conv2d(channels, p.filters, p.kernel_size, padding=p.padding), nn.ReLU()]
            channels = p.filters
        else:
            layers.append(pool(2))
            if p.dropout > 0:
                layers.append(nn.Dropout(p.dropout))
    layers.append(nn.Flatten())
    if p.pooling == "none" and p.dropout > 0:
        layers.append(nn.Dropout(p.dropout))
    side = plan[-1][1]
    return nn.Sequential(*layers, *_dense_stack(channels * side * side, list(p.dense), p.dropout))


MODELS: dict[str, Callable[[TrialParams], nn.Module]] = {
    "logreg": build_logreg,
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(p: TrialParams) -> nn.Module:
    """Build the network a trial's params describe (seeded by the caller)."""
    return MODELS[p.model](p)


def count_parameters(model: nn.Module) -> int:
    return sum(t.numel() for t in model.parameters())

