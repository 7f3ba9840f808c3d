"""Which of a report's columns are metrics, which way each is better, and which one each plot draws.

A sweep's metrics are the standard six and the ones its spec declares (`metrics: {val_f1: max}`) with their test
counterparts (spec/metrics.py's trial_metrics), plus any other metric column its trials.parquet holds (a results
folder without spec.yaml: float columns that are not parameters, store/schema.py's rule). A test counterpart is
better the way its validation metric is. Your own loop may leave standard metrics out (no accuracy for a
regression): those none of its trials reported are not the sweep's metrics, so no table shows their empty column.

The learning curves draw the sweep's metric where it is a declared one, else val accuracy; the final score (the
test plot, the reference table's first metric) is the declared metric's test counterpart where the trials have it,
else test accuracy: so a report of the standard metrics looks as it did before metrics could be declared.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from sweeper.spec.metrics import METRICS, Mode, mode_of, test_counterpart, trial_metrics
from sweeper.store.schema import PARAM_PREFIX, TRIAL_SCHEMA

STANDARD_CURVE = "val_accuracy"
STANDARD_FINAL = "test_accuracy"


def held_metrics(trials: pd.DataFrame) -> list[str]:
    """Metric columns trials.parquet holds beyond the standard ones: float columns that are not parameters."""
    return [c for c in trials.columns if c not in TRIAL_SCHEMA.names and not str(c).startswith(PARAM_PREFIX)
            and pd.api.types.is_float_dtype(trials[c])]


def sweep_modes(declared: Mapping[str, Mode], trials: pd.DataFrame, own_loop: bool = False) -> dict[str, Mode]:
    """A sweep's metric columns, in the files' order, each with the way it is better. With your own loop
    (`own_loop`), a standard metric it never reported (nor its validation form, for a test one) is left out."""
    modes: dict[str, Mode] = {}
    for m in (*trial_metrics(declared), *held_metrics(trials)):
        if m not in modes and not (own_loop and m in METRICS and not _reported(trials, m)):
            modes[m] = mode_of(m, declared)
    for m in declared:
        counterpart = test_counterpart(m)
        if counterpart is not None:
            modes[counterpart] = declared[m]
    return modes


def _reported(trials: pd.DataFrame, metric: str) -> bool:
    """Has any trial a value of the metric (a test metric: or of its validation form, so it shows from the start)?"""
    names = [metric, "val_" + metric.removeprefix("test_")] if metric.startswith("test_") else [metric]
    return any(n in trials and bool(pd.to_numeric(trials[n], errors="coerce").notna().any()) for n in names)


def merged_modes(sweeps: Iterable[Mapping[str, Mode]]) -> dict[str, Mode]:
    """The report's metrics: every sweep's (the standard ones first, in their order), the first sweep's mode where
    they disagree."""
    out: dict[str, Mode] = {}
    for modes in sweeps:
        for m, mode in modes.items():
            out.setdefault(m, mode)
    return {m: out[m] for m in sorted(out, key=lambda m: METRICS.index(m) if m in METRICS else len(METRICS))}


def own(metric: str) -> bool:
    """Is it a declared metric (not one of the standard six)?"""
    return metric not in METRICS


def curve_metric(metric: str) -> str:
    """What the learning curves draw for a sweep of this metric."""
    return metric if own(metric) else STANDARD_CURVE


def final_metric(metric: str, columns: Iterable[str]) -> str:
    """The final score a report shows first for a sweep of this metric, given the trials' columns."""
    counterpart = test_counterpart(metric) if own(metric) else None
    return counterpart if counterpart is not None and counterpart in set(columns) else STANDARD_FINAL


def spelled(metric: str) -> str:
    """A metric in words, as plot titles and axes name it: "val accuracy", "test f1"."""
    return metric.replace("_", " ")
