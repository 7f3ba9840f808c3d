"""The ASHA audit: did ASHA's rungs rank trials as the end does, and whom may it have stopped too soon?

For a sweep run under ASHA, per rung (the epochs where ASHA may stop a trial: spec/cost.py's milestones, as
sources.py reads them from spec.yaml), from epochs.parquet (Sweep.epochs, read once per report):
- Spearman's rank correlation (scipy.stats.spearmanr, with n and p) between the metric at the rung and the final
  metric, over the trials that ran their whole protocol (stats.py); none below 3 trials. Below 30 trials the
  p-value is a permutation test's (scipy.stats.pearsonr of the ranks with PermutationMethod: 9999 pairings seeded
  0, every pairing below 8 trials), as spearmanr's t approximation calls a perfect ρ over 3 trials p = 0.
- "possible late bloomers": trials ASHA stopped at the rung whose metric there lay within the noise band of the
  weakest trial it promoted (one that ran past the rung).
The noise band at a rung is the median, over configurations with 2 or more replicates there, of the std of their
metric at that epoch; without replicates it is a stated default: 0.005 for an accuracy (half a point), 0.01 for a
loss (a declared metric, `metrics: {val_f1: max}`, takes an accuracy's when higher is better, else a loss's). Each
line says which.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sweeper.errors import SweeperError
from sweeper.report.sources import Sweep
from sweeper.report.stats import ran_to_end, scipy_stats
from sweeper.spec.metrics import METRICS, epoch_metrics
from sweeper.store.trials import Ended

DEFAULT_BAND = {"accuracy": 0.005, "loss": 0.01}
MIN_CORRELATED = 3
PERMUTATION_BELOW = 30  # fewer trials: a permutation test's p-value rather than the t approximation's


@dataclass
class Audit:
    """One ASHA sweep's audit: a row per rung, the possible late bloomers, or why there is nothing."""

    sweep: str
    metric: str
    rungs: pd.DataFrame | None = None  # rung, n, rho, p, stopped, promoted, weakest, band, band_from, bloomers
    bloomers: pd.DataFrame = field(default_factory=pd.DataFrame)  # trial_id, variant, rung, value, weakest, band
    note: str | None = None

    def lines(self) -> list[str]:
        if self.rungs is None:
            return [f"ASHA audit of {self.sweep}: {self.note}"]
        lines = [f"ASHA audit of {self.sweep}: Spearman's ρ between {self.metric} at each rung and at the end, over "
                 f"the n trials that ran their whole protocol; a trial stopped at a rung that was better than, or "
                 f"within the noise band of, the weakest trial promoted there is a possible late bloomer"]
        for row in self.rungs.itertuples():
            lines.append(f"noise band at epoch {row.rung}: {row.band:.4f} ({row.band_from})")
        for b in self.bloomers.itertuples():
            lines.append(f"possible late bloomer: {b.trial_id}{'' if pd.isna(b.variant) else f' ({b.variant})'} "
                         f"stopped at epoch {b.rung} with {self.metric} {b.value:.4f}; the weakest promoted had "
                         f"{b.weakest:.4f} (band {b.band:.4f})")
        if self.bloomers.empty:
            lines.append("no stopped trial was within the noise band of a promoted one")
        return lines


def _band(values: pd.Series, codes: pd.Series, metric: str, mode: str, epoch: int) -> tuple[float, str]:
    """The noise band at a rung: the median std of replicates there, else the stated default."""
    frame = pd.DataFrame({"value": values, "config": codes.reindex(values.index)})
    sizes = frame.groupby("config")["value"].count()
    stds = frame[frame["config"].isin(sizes[sizes >= 2].index)].groupby("config")["value"].std().dropna()
    if len(stds):
        return float(stds.median()), (f"median std of replicates at epoch {epoch} over {len(stds)} configuration"
                                      f"{'s' if len(stds) > 1 else ''}")
    kind = ("loss" if metric.endswith("loss") else "accuracy") if metric in METRICS else \
        ("accuracy" if mode == "max" else "loss")
    named = f"a{'n' if kind == 'accuracy' else ''} {kind}"
    if metric not in METRICS:
        named = f"{metric}, higher is better (as for {named})" if mode == "max" else \
            f"{metric}, lower is better (as for {named})"
    return DEFAULT_BAND[kind], f"no replicates: the default for {named}"


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's ρ and its two-sided p-value (see the module); NaNs when either side is constant."""
    st = scipy_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant input gives NaN, shown as "-"
        result = st.spearmanr(x, y)
        rho, p = float(result.statistic), float(result.pvalue)
        if len(x) < PERMUTATION_BELOW and not np.isnan(rho):
            method = st.PermutationMethod(n_resamples=9999, rng=np.random.default_rng(0))
            p = float(st.pearsonr(st.rankdata(x), st.rankdata(y), method=method).pvalue)
    return rho, p


def audit(sweep: Sweep, trials: pd.DataFrame, codes: np.ndarray, metric: str, mode: str) -> Audit:
    """The audit of one sweep's trials (rows of the report's trials frame, with their configuration codes)."""
    out = Audit(sweep.name, metric)
    if metric not in epoch_metrics(sweep.declared):
        out.note = f"{metric} is not reported per epoch"
        return out
    try:
        epochs = sweep.epochs()  # read once per report, shared with the learning curves
    except SweeperError as exc:
        out.note = str(exc)
        return out
    ids = trials["trial_id"].astype(str)
    config = pd.Series(codes, index=ids.to_numpy())
    last = pd.Series(pd.to_numeric(trials["epochs"], errors="coerce").to_numpy(float), index=ids.to_numpy())
    end = pd.Series(trials["end"].to_numpy(), index=ids.to_numpy())
    final = pd.Series(pd.to_numeric(trials[metric], errors="coerce").to_numpy(float), index=ids.to_numpy())
    finished = ids[ran_to_end(trials, metric)].to_numpy()
    if not len(finished):
        out.note = "no trial has run its whole protocol yet"
        return out
    epochs = epochs[epochs["epoch"].isin(sweep.asha_rungs) & epochs["trial_id"].isin(set(ids))]
    at = epochs.pivot_table(index="trial_id", columns="epoch", values=metric, aggfunc="last")
    sign = 1.0 if mode == "max" else -1.0
    stopped = end.index[end.eq(Ended.ASHA.value).to_numpy()]
    stop_rung = {t: max((r for r in sweep.asha_rungs if r <= last[t]), default=None) for t in stopped}
    variant = pd.Series(trials["variant"].to_numpy(), index=ids.to_numpy())
    rows, bloomers = [], []
    for r in sweep.asha_rungs:
        values = at[r].dropna() if r in at else pd.Series(dtype=float)
        x = values.reindex(finished).dropna()
        rho = p = np.nan
        if len(x) >= MIN_CORRELATED:
            rho, p = spearman(x.to_numpy(), final[x.index].to_numpy())
        promoted = values[last.reindex(values.index).to_numpy() > r]
        here = [t for t in stopped if stop_rung[t] == r and t in values.index]
        band, source = _band(values, config, metric, mode, r)
        weakest = float((sign * promoted).min() * sign) if len(promoted) else np.nan
        late = [t for t in here if len(promoted) and sign * values[t] >= sign * weakest - band]
        bloomers += [{"trial_id": t, "variant": variant[t], "rung": r, "value": float(values[t]), "weakest": weakest,
                      "band": band} for t in sorted(late, key=lambda t: -sign * values[t])]
        rows.append({"rung": r, "n": len(x), "rho": rho, "p": p, "stopped": len(here), "promoted": len(promoted),
                     "weakest": weakest, "band": band, "band_from": source, "bloomers": len(late)})
    out.rungs = pd.DataFrame(rows)
    out.bloomers = pd.DataFrame(bloomers, columns=["trial_id", "variant", "rung", "value", "weakest", "band"])
    return out


def audits(sweeps: list[Sweep], trials: pd.DataFrame, codes: np.ndarray) -> list[Audit]:
    """The audit of every sweep in the report that ran under ASHA, by its own metric."""
    out = []
    for s in sweeps:
        if not s.asha_rungs:
            continue
        mine = trials["sweep"].eq(s.name).to_numpy()
        out.append(audit(s, trials[mine], codes[mine], s.metric, s.mode))
    return out
