"""A small ResNet for 28x28 (or any) images, as a sweeper model factory.

    models: {resnet: examples.resnet:build}
    parameters: {model: {choice: [cnn, resnet]}, width: {choice: [16, 32]}, blocks: {randint: [1, 4]}}

Layout, for an input of shape (C, H, W): a 3x3 stem conv (C -> width channels) -> batch norm -> relu -> 2x2 max
pool; then `blocks` residual blocks at `width` channels (conv3x3-bn-relu-conv3x3-bn, plus the identity, relu) with
a 2x2 max pool after every second block; global average pooling, dropout, a linear head to `num_classes` logits.
On Fashion-MNIST the blocks run at 14x14 (blocks 1-2), 7x7 (3-4) and 3x3 (5-6): the pooling keeps it cheap on CPU.
Every block keeps the channel count, so the shortcut is a plain identity (no projection).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn


class ResidualBlock(nn.Module):
    """conv3x3 -> bn -> relu -> conv3x3 -> bn, plus the input, then relu (`channels` in and out)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ResNet(nn.Module):
    """Stem, residual blocks with 2x2 max pools, global average pool, dropout, linear head (see the module)."""

    def __init__(self, in_channels: int, width: int, blocks: int, dropout: float, num_classes: int,
                 side: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.MaxPool2d(2))
        layers: list[nn.Module] = []
        side //= 2
        for i in range(blocks):
            layers.append(ResidualBlock(width))
            if i % 2 == 1 and side >= 2:  # after every second block, while there is something left to pool
                layers.append(nn.MaxPool2d(2))
                side //= 2
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(self.dropout(torch.flatten(self.pool(x), 1)))


def build(width: int = 32, blocks: Annotated[int, Field(ge=1, le=6)] = 2, dropout: float = 0.0, *,
          input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A small ResNet for images of `input_shape` (C, H, W) giving (N, num_classes) logits.

    width: channels of the stem and of every residual block; blocks: residual blocks (1-6); dropout: before the
    linear head (0 = none). sweeper passes input_shape and num_classes from the data.
    """
    if len(input_shape) != 3:
        raise ValueError(f"examples.resnet takes images (C, H, W), but the data's input is {tuple(input_shape)}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    channels, height, w = input_shape
    if min(height, w) < 2:
        raise ValueError(f"examples.resnet needs images of at least 2x2, got {height}x{w}")
    return ResNet(channels, width, blocks, dropout, num_classes, min(height, w))
