"""scikit-learn's bundled data sets as sweeper data sources, and an MLP factory for feature vectors.

    data: {source: examples.tabular:breast_cancer, args: {standardize: true}}
    models: {tabmlp: examples.tabular:mlp}

Both data sets ship inside the scikit-learn wheel (`pip install -e .[examples]`): nothing is downloaded. sweeper
passes `seed` (the space's `data.seed`) to each source, so a sweep's splits are the same in every trial.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import Field
from torch import nn

import sweeper


def _stratified_split(y: np.ndarray, seed: int, fractions: tuple[float, ...]) -> list[np.ndarray]:
    """Row indices of each part, stratified by class: each class's rows shuffled (seeded) and cut by `fractions`."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(rows)).astype(int)
        for i, chunk in enumerate(np.split(rows, cuts)):
            parts[i].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def breast_cancer(seed: int = 0, standardize: bool = True) -> sweeper.Dataset:
    """Wisconsin diagnostic breast cancer (569 tumours x 30 features; 212 malignant, 357 benign) from
    sklearn.datasets.load_breast_cancer, split 60/20/20 into train/val/test, stratified by class and seeded.

    standardize: scale every feature to mean 0, std 1 with the training split's mean and std (val and test never
    inform it). Labels: 0 malignant, 1 benign (scikit-learn's coding).
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    train, val, test = _stratified_split(y, seed, (0.6, 0.2, 0.2))
    if standardize:
        mean, std = x[train].mean(axis=0), x[train].std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0)
    x = x.astype(np.float32)
    return sweeper.Dataset(train=(x[train], y[train]), val=(x[val], y[val]), test=(x[test], y[test]),
                           classes=[str(c) for c in bunch.target_names])


def digits(seed: int = 0) -> sweeper.Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes) as (N, 1, 8, 8) float32 in [0, 1]
    (pixel values 0-16 divided by 16), split 60/20/20 into train/val/test, stratified by class and seeded. Small
    enough for tests: an epoch of a small CNN takes well under a second."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    train, val, test = _stratified_split(y, seed, (0.6, 0.2, 0.2))
    return sweeper.Dataset(train=(x[train], y[train]), val=(x[val], y[val]), test=(x[test], y[test]),
                           classes=[str(c) for c in bunch.target_names])


def mlp(width: int = 64, depth: Annotated[int, Field(ge=1, le=4)] = 2, dropout: float = 0.0, *,
        input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """An MLP for feature vectors (any input shape is flattened): `depth` hidden layers of `width` units, each
    linear -> relu -> dropout (none at 0), then a linear layer to `num_classes` logits."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    layers: list[nn.Module] = [nn.Flatten()]
    features = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        features = width
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)
