"""The metrics a trial records, which of them a sweep may optimise, and which way is better.

Six are standard (below). A space with your own training loop may declare more (`metrics: {val_f1: max}`): each
is reported every epoch beside the standard ones, becomes a column of epochs.parquet and trials.parquet, and may be
the sweep's `metric`. A declared `val_<name>` has a test counterpart, `test_<name>`, that the loop may report once
at its end (`ctx.finish(test_f1=...)`): the final score, never used for selection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

# Reported after every epoch, so ASHA can act on them: a sweep's `metric` is one of these (or a declared one).
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
# All six, in the order reports show them: losses, then accuracies. test_loss and test_accuracy are measured once,
# at a trial's end, on the test split: the final score, never used for selection.
METRICS = ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy", "test_accuracy")

Mode = Literal["min", "max"]

METRIC_NAME = r"[a-z][a-z0-9_]*"
# Names a declared metric may not take: the Parquet files' own columns and what Ray Tune adds to every result.
RESERVED = frozenset({
    "trial_id", "variant", "state", "epoch", "epochs", "stopped_by", "wall_s", "node", "error", "restored_from",
    "restore_note", "config_id", "code", "time_s", "session", "reported_at", "lr", "finished", "early_stopped",
    "device",
    "done", "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "timestamp", "date",
    "pid", "hostname", "node_ip", "config", "iterations_since_restore", "checkpoint_dir_name", "should_checkpoint",
    "experiment_tag", "trial_resources",
})


def mode_of(metric: str, declared: Mapping[str, Mode] | None = None) -> Mode:
    """Which way is better: a declared metric's own mode; else lower for a loss, higher for an accuracy."""
    if declared and metric in declared:
        return declared[metric]
    return "min" if metric.endswith("loss") else "max"


def test_counterpart(metric: str) -> str | None:
    """The final-score column of an epoch metric: val_accuracy -> test_accuracy, val_f1 -> test_f1 (None for a
    metric that is not a validation one)."""
    return "test_" + metric.removeprefix("val_") if metric.startswith("val_") else None


def epoch_metrics(declared: Mapping[str, Mode] | None = None) -> tuple[str, ...]:
    """What every epoch may report: the standard four, then the declared ones (epochs.parquet's metric columns)."""
    return (*EPOCH_METRICS, *(m for m in declared or {} if m not in EPOCH_METRICS))


def trial_metrics(declared: Mapping[str, Mode] | None = None) -> tuple[str, ...]:
    """trials.parquet's metric columns: the standard six, then each declared metric and its test counterpart."""
    out = list(METRICS)
    for m in declared or {}:
        for name in (m, test_counterpart(m)):
            if name is not None and name not in out:
                out.append(name)
    return tuple(out)


def final_metrics(declared: Mapping[str, Mode] | None = None) -> tuple[str, ...]:
    """What a loop may report once at its end (`ctx.finish`): the test counterparts."""
    return tuple(m for m in trial_metrics(declared) if m.startswith("test_"))


def check_declared(name: str) -> str | None:
    """Why `name` cannot be declared under `metrics:` (None: it can)."""
    if re.fullmatch(METRIC_NAME, name) is None:
        return f"metric name {name!r}: lower-case letters, digits and _, starting with a letter"
    if name in METRICS:
        return f"{name!r} is a standard metric ({', '.join(METRICS)}); declare only names beyond them"
    if name.startswith("test_"):
        return (f"{name!r}: a test_ metric is the final score, reported once by ctx.finish; declare its validation "
                f"form (val_{name.removeprefix('test_')}) and test_{name.removeprefix('test_')} comes with it")
    if name in RESERVED or name.startswith("param_"):
        return f"{name!r} is a column sweeper or Ray Tune writes itself; pick another name"
    return None
