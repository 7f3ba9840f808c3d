"""The study's 4th CNN written as a user would write it (a factory for `models:`), for benchmarks/user_model.py:
conv 3x3 32 -> relu -> 2x2 max-pool -> dropout, twice, then flatten and a linear layer to the classes; the same
layers, in the same order, as sweeper's built-in `cnn` with conv_layers 2, filters 32, kernel_size 3."""

from __future__ import annotations

from torch import nn


def build(dropout: float = 0.2, *, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    channels, side, _ = input_shape
    layers: list[nn.Module] = []
    for _ in range(2):
        layers += [nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout)]
        channels, side = 32, (side - 2) // 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(32 * side * side, num_classes))
