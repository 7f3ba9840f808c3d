"""Which parameters matter, with how sure we are: Optuna's PED-ANOVA importance under a bootstrap, and each
parameter's marginal effect with 95% intervals.

The trials are those that ran their whole protocol (stats.py), their value the sweep's metric (never a test
metric). They become an in-memory Optuna study (`optuna.create_study` + `add_trials` of
`optuna.trial.create_trial`), each parameter's distribution taken from the values seen: categorical for strings
and booleans (lists are stored as strings), an int or float range for numbers (log scale when it spans 100x); a
parameter a trial lacks (a CNN key on an MLP) is left out of that trial, which PED-ANOVA treats as a regime.
PED-ANOVA (`optuna.importance.PedAnovaImportanceEvaluator`) is used because fANOVA needs scikit-learn, which sweeper
does not depend on. Its importances are kept unnormalised (0 means the parameter's values among the best trials
look like those among all): normalised shares always sum to 1, so when nothing matters noise would read as an
effect. The interval is the 2.5-97.5 percentile over bootstrap resamples of the trials, drawn by a numpy
Generator seeded with 0 (PED-ANOVA itself is deterministic), so a report is reproducible. A parameter whose
interval reaches down to 0.01 has no measurable effect. Fewer than 8 trials: no importance, and the report says
so. Big sweeps use a seeded sample of 200 trials and fewer resamples, so a report stays within seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sweeper.report.stats import CONFIG_ID, REPLICATE_KEY, ran_to_end, t_interval

MIN_TRIALS = 8
EPSILON = 0.01  # an importance interval reaching this low: no measurable effect
RESAMPLES = 200
MIN_RESAMPLES = 50
TRIAL_COPIES = 10_000  # resamples x trials; bounds the time (Optuna copies every trial it adds)
MAX_TRIALS = 200
SEED = 0
CATEGORICAL_MAX = 12  # a numeric parameter with more distinct values is binned for its marginal effect
BINS = 6


@dataclass
class Importance:
    """PED-ANOVA importance per parameter with a bootstrap interval, or why there is none."""

    metric: str
    trials: int  # the trials that ran their whole protocol
    used: int = 0  # of those, the ones the study holds (a sample of big sweeps)
    resamples: int = 0
    quantile: float = 0.0  # PED-ANOVA's target quantile: the top share of trials compared with all
    rows: pd.DataFrame | None = None  # param, importance, low, high, measurable; most important first
    note: str | None = None  # why there are no rows

    def lines(self) -> list[str]:
        if self.rows is None:
            return [f"parameter importance: {self.note}"]
        sample = f"a random {self.used} of {self.trials}" if self.used < self.trials else f"{self.trials}"
        none = self.rows.loc[~self.rows["measurable"], "param"].tolist()
        lines = [f"parameter importance for {self.metric}: Optuna's PED-ANOVA (the top {self.quantile:.0%} of "
                 f"trials against all, unnormalised) over {sample} trials that ran their whole protocol; 95% "
                 f"percentile intervals over {self.resamples} bootstrap resamples of the trials (seed {SEED})"]
        if none:
            lines.append(f"no measurable effect (interval reaches {EPSILON} or below): {', '.join(none)}")
        return lines


def varied(trials: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """The parameters (other than seed) that take more than one value among these trials."""
    skip = {REPLICATE_KEY, CONFIG_ID}
    return [p for p in params if p in trials and p not in skip and trials[p].nunique(dropna=False) > 1]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value Optuna expects."""
    return value.item() if isinstance(value, np.generic) else value


def _numbers(values: pd.Series) -> pd.Series | None:
    """The values as numbers, or None when they are not all numbers (booleans count as categories)."""
    present = values.dropna().map(_plain)
    if present.empty or pd.api.types.is_bool_dtype(present) or present.map(lambda v: isinstance(v, bool)).any():
        return None
    numbers = pd.to_numeric(present, errors="coerce")
    return None if numbers.isna().any() else numbers


def distribution(values: pd.Series) -> Any:
    """An Optuna distribution covering the values seen; None when fewer than two values are seen."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    present = values.dropna().map(_plain)
    if present.nunique() < 2:
        return None
    numbers = _numbers(present)
    if numbers is None:
        return CategoricalDistribution(sorted({str(v) if not isinstance(v, bool) else v for v in present}, key=str))
    low, high = float(numbers.min()), float(numbers.max())
    log = low > 0 and high / low >= 100
    if (numbers == numbers.round()).all() and not pd.api.types.is_float_dtype(values):
        return IntDistribution(int(low), int(high), log=log and low >= 1)
    return FloatDistribution(low, high, log=log)


def _optuna_value(value: Any, dist: Any) -> Any:
    from optuna.distributions import CategoricalDistribution, IntDistribution

    value = _plain(value)
    if isinstance(dist, CategoricalDistribution):
        return value if isinstance(value, bool) else str(value)
    return int(value) if isinstance(dist, IntDistribution) else float(value)


def _evaluate(frozen: list[Any], direction: Literal["maximize", "minimize"], quantile: float, names: list[str]
              ) -> list[float]:
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    study = optuna.create_study(direction=direction)
    study.add_trials(frozen)
    found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(target_quantile=quantile),
                                  normalize=False)
    return [float(found.get(name, 0.0)) for name in names]


def importance(trials: pd.DataFrame, params: Sequence[str], metric: str, mode: str) -> Importance:
    """PED-ANOVA importance of every varied parameter with a bootstrap interval (see the module)."""
    import optuna
    from optuna.trial import create_trial

    done = trials[ran_to_end(trials, metric)]
    result = Importance(metric, len(done))
    names = varied(done, params)
    if len(done) < MIN_TRIALS:
        result.note = f"needs at least {MIN_TRIALS} trials that ran their whole protocol; {len(done)} have"
        return result
    if not names:
        result.note = "no parameter other than seed varies"
        return result
    rng = np.random.default_rng(SEED)
    if len(done) > MAX_TRIALS:
        done = done.iloc[np.sort(rng.choice(len(done), MAX_TRIALS, replace=False))]
    dists = {p: distribution(done[p]) for p in names}
    names = [p for p in names if dists[p] is not None]
    values = pd.to_numeric(done[metric]).to_numpy(float)
    frozen = []
    for i in range(len(done)):
        row = {p: done[p].iat[i] for p in names}
        given = {p: _optuna_value(v, dists[p]) for p, v in row.items() if v is not None and not pd.isna(v)}
        frozen.append(create_trial(params=given, distributions={p: dists[p] for p in given},
                                   value=float(values[i])))
    n = len(frozen)
    quantile = min(0.5, max(0.1, 5 / n))  # at least 5 trials in the top, as PED-ANOVA's docs advise
    resamples = int(min(RESAMPLES, max(MIN_RESAMPLES, TRIAL_COPIES // n)))
    direction: Literal["maximize", "minimize"] = "maximize" if mode == "max" else "minimize"
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA warns about small regimes; the interval shows the cost
            full = _evaluate(frozen, direction, quantile, names)
            boot = np.array([_evaluate([frozen[i] for i in rng.integers(0, n, n)], direction, quantile, names)
                             for _ in range(resamples)])
    finally:
        optuna.logging.set_verbosity(verbosity)
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    rows = pd.DataFrame({"param": names, "importance": full, "low": low, "high": high})
    rows["measurable"] = rows["low"] > EPSILON
    rows = rows.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    return Importance(metric, len(trials[ran_to_end(trials, metric)]), n, resamples, quantile, rows)


def marginal_effects(trials: pd.DataFrame, params: Sequence[str], metric: str) -> dict[str, pd.DataFrame]:
    """Per varied parameter: the metric's mean, 95% t interval and n per value (numbers with many values in
    quantile bins), over the trials that ran their whole protocol. Columns: label, x (a number or NaN), n, mean,
    ci_low, ci_high; in the order of the values."""
    done = trials[ran_to_end(trials, metric)]
    y = pd.to_numeric(done[metric]).to_numpy(float) if len(done) else np.zeros(0)
    out = {}
    for p in varied(done, params):
        numbers = _numbers(done[p])
        if numbers is not None and done[p].notna().all() and numbers.nunique() > CATEGORICAL_MAX:
            x = numbers.to_numpy(float)
            edges = np.unique(np.quantile(x, np.linspace(0, 1, BINS + 1)))
            key = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
            labels = [f"{edges[k]:.3g}-{edges[k + 1]:.3g}" for k in range(len(edges) - 1)]
            xs = [float(np.median(x[key == k])) if (key == k).any() else np.nan for k in range(len(labels))]
        else:
            present = done[p].notna().to_numpy()
            order = sorted(done[p][present].unique(), key=(lambda v: float(v)) if numbers is not None else str)
            labels = [str(v) for v in order] + (["None"] if not present.all() else [])
            text = np.where(present, done[p].map(str).to_numpy(dtype=object), "None")
            key = pd.Series(text).map({label: i for i, label in enumerate(labels)}).to_numpy(int)
            xs = [float(v) if numbers is not None else np.nan for v in order] + [np.nan] * (not present.all())
        rows = []
        for k, label in enumerate(labels):
            values = y[key == k]
            if len(values):
                low, high = t_interval(values)
                rows.append({"label": label, "x": xs[k], "n": len(values), "mean": float(values.mean()),
                             "ci_low": low, "ci_high": high})
        out[p] = pd.DataFrame(rows)
    return out
