"""What the PNG plots (png_plots.py) and the HTML page's figures (html_figures.py) both draw from: which trials a
big sweep's learning curves sample, the key trials are coloured by and its categories in order, and every
drawn trial's curve metric per epoch (val accuracy, or the sweep's own declared metric: report/metrics.py) from
epochs.parquet (Sweep.epochs: read once per report, however many outputs draw the curves). No plotting library is
imported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeper.errors import SweeperError
from sweeper.report.frame import Report
from sweeper.report.metrics import curve_metric
from sweeper.spec.params import applies

MAX_COLOURS = 20
MAX_CURVES = 1000  # more lines are a blur and slow to draw; the rest of a big sweep is sampled


def varied_params(rep: Report) -> list[str]:
    trials = rep.trials
    models = set(trials["model"].dropna().astype(str)) if "model" in trials else set()
    params = [p for p in rep.trial_params if applies(p, models, rep.key_models)]
    unique = trials[params].nunique(dropna=False)
    return [p for p in params if unique[p] > 1]


def colour_key(rep: Report) -> str | None:
    t = rep.trials
    if t["variant"].notna().any():
        return "variant"
    if len(rep.sweeps) > 1:
        return "sweep"
    for p in ["model", *varied_params(rep)]:  # not seed: replicates are not a factor to compare
        if p != "seed" and p in t and 1 < t[p].nunique() <= MAX_COLOURS:
            return p
    return None


def categories(rep: Report, key: str | None) -> list[Any]:
    if key is None:
        return []
    found = list(rep.trials[key].dropna().unique())
    if key == "variant":
        order = [v for s in rep.sweeps for v in s.variants]
        return [v for v in dict.fromkeys(order) if v in found] + [v for v in found if v not in order]
    try:
        return sorted(found)
    except TypeError:
        return found


def sample(rep: Report, limit: int) -> np.ndarray:
    """Positions of the trials to draw: all, or the 20 best by the metric and a seeded random rest."""
    n = len(rep.trials)
    if n <= limit:
        return np.arange(n)
    value = pd.to_numeric(rep.trials[rep.metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    best = np.argsort(-value if rep.mode == "max" else value, kind="stable")[:20]
    rest = np.setdiff1d(np.arange(n), best)
    return np.sort(np.concatenate([best, np.random.default_rng(0).choice(rest, limit - len(best), replace=False)]))


def curve_points(rep: Report, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(trial row position, epoch, curve metric) of every epoch of the drawn trials, in curve order; a sweep whose
    epochs.parquet lacks the curve metric (a report of sweeps with different metrics) draws none."""
    metric = curve_metric(rep.metric)
    pos, xs, ys = [], [], []
    wanted = np.zeros(len(rep.trials), dtype=bool)
    wanted[drawn] = True
    for s in rep.sweeps:
        mine = np.flatnonzero(rep.trials["sweep"].eq(s.name).to_numpy() & wanted)
        lookup = pd.Series(mine, index=rep.trials["trial_id"].to_numpy()[mine])
        lookup = lookup[~lookup.index.duplicated()]
        try:
            ep = s.epochs()
        except SweeperError:
            continue
        if metric not in ep:
            continue
        codes, uniques = pd.factorize(ep["trial_id"])  # 1M strings: hash once, then look up 10k
        at = np.append(lookup.reindex(uniques).to_numpy(dtype=float, na_value=np.nan), np.nan)
        p = at[codes]  # code -1 (no trial_id) picks the appended NaN
        keep = ~np.isnan(p)
        pos.append(p[keep].astype(np.int64))
        xs.append(ep["epoch"].to_numpy(dtype=float, na_value=np.nan)[keep])
        ys.append(pd.to_numeric(ep[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[keep])
    if not pos or not sum(len(p) for p in pos):
        return None
    p, x, y = np.concatenate(pos), np.concatenate(xs), np.concatenate(ys)
    order = np.lexsort((x, p))
    return p[order], x[order], y[order]
