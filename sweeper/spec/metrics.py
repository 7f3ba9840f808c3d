"""The metrics a trial records, which of them a sweep may optimise, and which way is better."""

from __future__ import annotations

from typing import Literal

# Reported after every epoch, so ASHA can act on them: a sweep's `metric` is one of these.
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# All six, in the order reports show them: losses, then accuracies. test_loss and test_accuracy are measured once,
# at a trial's end, on the test split: the final score, never used for selection.
METRICS = ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy")

Mode = Literal["min", "max"]


def mode_of(metric: str) -> Mode:
    """Which way is better: lower for a loss, higher for an accuracy."""
    return "min" if metric.endswith("loss") else "max"
