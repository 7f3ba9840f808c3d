"""Which differences are real: configurations, their replicates, 95% intervals and the tests between them.

A configuration is the set of trials that share a `config_id` (trials.parquet has that column once a spec asks
for `repeats`), else the trials with equal sweep, variant and parameters except `seed` (`configuration_codes`,
the one place that says so): its trials are replicates. Only replicates that ran their whole protocol are
compared (completed, or stopped by their own early stopping): ASHA-stopped, failed and unfinished trials ran
fewer epochs, so they are left out and counted.

Per configuration: n, mean, std and a 95% t interval of the sweep's metric (scipy.stats.t.interval around the
mean with scipy.stats.sem; none where n < 2: those configurations are untested). The best configuration is the
best mean among those with n >= 2; every other one with n >= 2 is compared with it by a two-sided t-test,
paired by seed when both hold the same seeds (scipy.stats.ttest_rel), else Welch's (ttest_ind, equal_var=False),
and the p-values are Holm-corrected over all k(k-1)/2 pairs of those configurations, not only the k-1 comparisons
with the best: the best is picked from the same data, and only a family that holds every pair keeps the family-wise
error at 5% whichever one is picked (versus_best says why; tests/report/test_vs_best_error.py simulates it). A
configuration whose corrected p is >= 0.05 is indistinguishable from the best ("≈"), otherwise it is worse. The test
set is never used here: the metric is the sweep's own (validation) metric.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from sweeper.store.trials import Ended

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
REPLICATE_KEY = "seed"  # the parameter replicates differ in
CONFIG_ID = "config_id"  # trials.parquet's column naming a configuration, once specs have `repeats`
RAN_TO_END = (Ended.COMPLETED.value, Ended.EARLY.value)
BEST, TIED, WORSE, UNTESTED = "best", "≈", "worse", "untested"


def configuration_codes(trials: pd.DataFrame, params: list[str]) -> np.ndarray:
    """Per trial, an integer naming its configuration: equal `config_id` (within a sweep) where trials have one,
    else equal sweep, variant and parameters other than `seed`."""
    if trials.empty:
        return np.zeros(0, dtype=np.int64)
    keys = [c for c in ("sweep", "variant", *params) if c in trials and c != REPLICATE_KEY]
    by_params = trials.groupby(keys, dropna=False, sort=False).ngroup().to_numpy() if keys else \
        np.zeros(len(trials), dtype=np.int64)
    if CONFIG_ID not in trials or trials[CONFIG_ID].isna().all():
        return by_params
    given = trials[CONFIG_ID].notna().to_numpy()
    sweep = trials["sweep"].astype(str) if "sweep" in trials else pd.Series("", index=trials.index)
    names = np.where(given, "id " + sweep + "/" + trials[CONFIG_ID].astype(str), "params " + by_params.astype(str))
    return pd.factorize(pd.Series(names, index=trials.index))[0]


def ran_to_end(trials: pd.DataFrame, metric: str) -> np.ndarray:
    """Trials that ran their whole protocol and have a value of the metric: the ones compared."""
    value = pd.to_numeric(trials[metric], errors="coerce") if metric in trials else pd.Series(np.nan, trials.index)
    return (trials["end"].isin(RAN_TO_END) & value.notna()).to_numpy()


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95% t interval of the mean of `values`; NaNs when n < 2; a point when every value is equal."""
    n = len(values)
    if n < 2:
        return np.nan, np.nan
    mean, sem = float(np.mean(values)), float(scipy_stats().sem(values))
    if sem == 0:
        return mean, mean
    low, high = scipy_stats().t.interval(CONFIDENCE, n - 1, loc=mean, scale=sem)
    return float(low), float(high)


def half_widths(std: pd.Series, n: pd.Series) -> pd.Series:
    """Half the width of the 95% t interval of a mean, from each row's std and n (NaN where n < 2)."""
    n, std = pd.to_numeric(n, errors="coerce").astype(float), pd.to_numeric(std, errors="coerce").astype(float)
    out = pd.Series(np.nan, index=std.index)
    ok = (n >= 2) & std.notna()
    if ok.any():
        sem = (std[ok] / np.sqrt(n[ok])).to_numpy()
        high = scipy_stats().t.interval(CONFIDENCE, (n[ok] - 1).to_numpy(), loc=0.0, scale=np.where(sem > 0, sem, 1))[1]
        out[ok] = np.where(sem > 0, high, 0.0)
    return out


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment along the last axis (one family per row): the i-th smallest of m p-values times
    (m - i + 1), kept monotone, at most 1."""
    p = np.asarray(pvalues, dtype=float)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    scaled = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.empty_like(p)
    np.put_along_axis(adjusted, order, np.minimum(1.0, np.maximum.accumulate(scaled, axis=-1)), axis=-1)
    return adjusted


def scipy_stats() -> Any:
    import scipy.stats

    return scipy.stats


def ttest(a: pd.DataFrame, b: pd.DataFrame) -> tuple[Any, str]:
    """scipy's two-sided t-test of mean(a.value) - mean(b.value) (its result has .pvalue and
    .confidence_interval()) and its kind: paired by seed when both hold the same seeds, each once; Welch's
    otherwise."""
    st = scipy_stats()
    seeds_a, seeds_b = a["seed"], b["seed"]
    paired = (seeds_a.notna().all() and seeds_b.notna().all() and seeds_a.is_unique and seeds_b.is_unique
              and set(seeds_a) == set(seeds_b))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if paired:
            x, y = a.sort_values("seed")["value"], b.sort_values("seed")["value"]
            return st.ttest_rel(x.to_numpy(), y.to_numpy()), "paired"
        return st.ttest_ind(a["value"].to_numpy(), b["value"].to_numpy(), equal_var=False), "Welch"


def _p_two_sided(diff: np.ndarray, se: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided t p-values of diff / se on df degrees of freedom, as scipy's t-tests give them, except that a zero
    difference with no spread is p = 1 (scipy: NaN) and a nonzero one p = 0."""
    with np.errstate(all="ignore"):
        p = 2 * scipy_stats().t.sf(np.abs(diff / se), df)
    p = np.where(se > 0, p, np.where(diff != 0, 0.0, 1.0))
    return np.where(np.isnan(p), 1.0, p)


def pair_pvalues(values: np.ndarray, seed_sets: np.ndarray) -> np.ndarray:
    """Two-sided p-values of every pair of configurations, per sweep: `values` is (sweeps, configurations,
    replicates), NaN-padded, every configuration with 2 or more; `seed_sets` is (configurations,): configurations
    with the same label >= 0 hold the same seeds, each once, in the same columns, and are compared by a paired t-test
    (scipy.stats.ttest_rel's statistic), the others by Welch's (ttest_ind, equal_var=False). Returns
    (sweeps, configurations, configurations), symmetric, NaN on the diagonal."""
    x = np.asarray(values, dtype=float)
    sweeps, k = x.shape[:2]
    first, second = np.triu_indices(k, 1)
    labels = np.asarray(seed_sets)
    paired = (labels[first] >= 0) & (labels[first] == labels[second])
    upper = np.empty((sweeps, len(first)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if (~paired).any():
            a, b = first[~paired], second[~paired]
            n = np.sum(~np.isnan(x), axis=-1).astype(float)
            mean, vn = np.nanmean(x, axis=-1), np.nanvar(x, axis=-1, ddof=1) / n
            se2 = vn[:, a] + vn[:, b]
            df = se2**2 / (vn[:, a] ** 2 / (n[:, a] - 1) + vn[:, b] ** 2 / (n[:, b] - 1))
            upper[:, ~paired] = _p_two_sided(mean[:, a] - mean[:, b], np.sqrt(se2), df)
        if paired.any():
            d = x[:, first[paired]] - x[:, second[paired]]  # NaN in the same columns: the pair's seeds are one set
            m = np.sum(~np.isnan(d), axis=-1).astype(float)
            diff = np.nansum(d, axis=-1) / m
            var = np.nansum((d - diff[..., None]) ** 2, axis=-1) / (m - 1)
            upper[:, paired] = _p_two_sided(diff, np.sqrt(var / m), m - 1)
    p = np.full((sweeps, k, k), np.nan)
    p[:, first, second] = upper
    p[:, second, first] = upper
    return p


class VersusBest(NamedTuple):
    """Per sweep: its best configuration, and per configuration its p against the best, corrected, and the verdict."""

    best: np.ndarray  # (sweeps,): the index of the best configuration
    p: np.ndarray  # (sweeps, configurations): two-sided p against the best; NaN for the best itself
    p_holm: np.ndarray  # the same, Holm-corrected over all pairs (see versus_best)
    worse: np.ndarray  # (sweeps, configurations): p_holm < ALPHA, the report's "worse"


def versus_best(values: np.ndarray, seed_sets: np.ndarray, mode: str) -> VersusBest:
    """Per sweep (`values` and `seed_sets` as in pair_pvalues): the best configuration (best mean, the first on a
    tie) and each configuration's two-sided p against it, Holm-corrected over all k(k-1)/2 pairs of configurations,
    not only the k-1 with the best. A configuration is worse than the best where its corrected p < ALPHA.

    Why all pairs: the best is picked from the same data, so which k-1 comparisons get tested is itself random; Holm
    over those alone lets the picked best's luck through (simulated with equal configurations, paired: one was called
    worse in 6% of sweeps at k = 3, n = 3, and 16% at k = 20, n = 5). Holm over every pair bounds the chance of
    rejecting any true equality among all pairs by 5%, whatever the data, so it bounds it for the pairs the best's
    pick selects too: the family-wise 5% includes the choice of the best. The price is power: the smallest p is
    multiplied by k(k-1)/2 (190 at k = 20), not k-1."""
    x = np.asarray(values, dtype=float)
    sweeps, k = x.shape[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=-1)
    best = np.argmin((-1.0 if mode == "max" else 1.0) * mean, axis=-1)
    pairs = pair_pvalues(x, seed_sets)
    first, second = np.triu_indices(k, 1)
    adjusted = np.full_like(pairs, np.nan)
    if len(first):
        corrected = holm(pairs[:, first, second])
        adjusted[:, first, second] = corrected
        adjusted[:, second, first] = corrected
    rows = np.arange(sweeps)
    p_holm = adjusted[rows, best]
    return VersusBest(best, pairs[rows, best], p_holm, p_holm < ALPHA)


def replicate_matrix(groups: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """Configurations' replicates (each a frame of value and seed) as versus_best takes them: one row each, a column
    per seed for those whose seeds are given and distinct (so equal seed sets line up), the others' values after
    those columns; and each row's seed set label (-1: no seeds to pair by)."""
    sets: dict[frozenset[Any], int] = {}
    columns: dict[Any, int] = {}
    labels = []
    for g in groups:
        seeds = g["seed"]
        if seeds.notna().all() and seeds.is_unique:
            labels.append(sets.setdefault(frozenset(seeds), len(sets)))
            for s in seeds:
                columns.setdefault(s, len(columns))
        else:
            labels.append(-1)
    loose = max([len(g) for g, label in zip(groups, labels, strict=True) if label < 0], default=0)
    out = np.full((len(groups), len(columns) + loose), np.nan)
    for row, (g, label) in enumerate(zip(groups, labels, strict=True)):
        at = [columns[s] for s in g["seed"]] if label >= 0 else list(range(len(columns), len(columns) + len(g)))
        out[row, at] = g["value"].to_numpy(float)
    return out, np.array(labels, dtype=np.int64)


def family(configurations: int) -> str:
    """How the p against the best is corrected, in words, for this many tested configurations."""
    pairs = configurations * (configurations - 1) // 2
    if pairs < 2:
        return "one pair, so no correction"
    return f"Holm-corrected over all {pairs} pairs of configurations, a family-wise 5% that includes picking the best"


@dataclass
class Comparison:
    """The configurations of a report's trials and which of them are indistinguishable from the best."""

    metric: str
    mode: str
    codes: np.ndarray  # per trial (row of the trials frame): its configuration
    configs: pd.DataFrame  # per configuration, best first: config, n, mean, std, ci_low, ci_high, mark, p, test
    left_out: dict[str, int] = field(default_factory=dict)  # how trials not compared ended -> how many

    @property
    def replicated(self) -> bool:
        """Does any configuration have two replicates to put an interval on?"""
        return bool((self.configs["n"] >= 2).any()) if not self.configs.empty else False

    def marks(self) -> np.ndarray:
        """Per trial: its configuration's mark (best, ≈, worse or untested)."""
        lookup = dict(zip(self.configs["config"].tolist(), self.configs["mark"].tolist(), strict=True))
        return np.array([lookup.get(c, UNTESTED) for c in self.codes.tolist()], dtype=object)

    def lines(self) -> list[str]:
        """The finding in one sentence, and what it leaves out."""
        c = self.configs
        tested = c[c["n"] >= 2]
        if len(tested) < 2:
            have = "one configuration has" if len(tested) == 1 else "no configuration has"
            return [f"{have} 2 or more replicates that ran their whole protocol, so no difference between "
                    f"configurations is tested (`repeats: N` in a spec runs replicates)"]
        others = tested[tested["mark"] != BEST]
        tied = int((others["mark"] == TIED).sum())
        kinds = sorted(set(others["test"]), reverse=True)  # paired before Welch
        how = f"{' and '.join(kinds)} t-test{'s' if len(others) > 1 else ''} against the best"
        ns = sorted(set(tested["n"].astype(int)))
        how += f", n={ns[0]} each" if len(ns) == 1 else f", n={ns[0]}-{ns[-1]}"
        how += f"; {family(len(tested))}"
        if tied:
            verb = "is" if tied == 1 else "are"
            lines = [f"{tied} configuration{'' if tied == 1 else 's'} {verb} indistinguishable from the best at 95% "
                     f"({how}); {len(others) - tied} worse"]
        else:
            than = "the other one" if len(others) == 1 else f"each of the {len(others)} others"
            lines = [f"the best configuration is better than {than} at 95% ({how})"]
        untested = int((c["n"] < 2).sum())
        if untested:
            lines.append(f"{untested} configuration{'s' if untested > 1 else ''} with n < 2: untested")
        if self.left_out:
            n = sum(self.left_out.values())
            counts = ", ".join(f"{k} {end}" for end, k in self.left_out.items())
            lines.append(f"left out of the comparison: {n} trial{'s' if n > 1 else ''} that did not run the whole "
                         f"protocol or {'has' if n == 1 else 'have'} no value ({counts})")
        return lines


def compare_configurations(trials: pd.DataFrame, params: list[str], metric: str, mode: str) -> Comparison:
    """Per configuration: n, mean, std and 95% interval of the metric over the replicates that ran their whole
    protocol; the best (mean, among n >= 2) and a test of every other one against it, Holm-corrected over all pairs
    (versus_best)."""
    codes = configuration_codes(trials, params)
    used = ran_to_end(trials, metric)
    left = trials.loc[~used, "end"].value_counts()
    left_out = {str(k): int(v) for k, v in left.items() if v}
    seeds = trials[REPLICATE_KEY] if REPLICATE_KEY in trials else pd.Series(np.nan, index=trials.index)
    data = pd.DataFrame({"config": codes[used], "value": pd.to_numeric(trials.loc[used, metric]).to_numpy(float),
                         "seed": seeds[used].to_numpy()})
    grouped = data.groupby("config", sort=False)["value"]
    configs = grouped.agg(n="count", mean="mean", std="std").reset_index()  # std: ddof 1, NaN for n = 1
    half = half_widths(configs["std"], configs["n"])  # scipy's t interval around each mean, vectorised
    configs = configs.assign(ci_low=configs["mean"] - half, ci_high=configs["mean"] + half, mark=UNTESTED, p=np.nan,
                             p_holm=np.nan, test="")
    tested = configs.index[configs["n"] >= 2].to_numpy()
    if len(tested):
        by_config = dict(list(data.groupby("config", sort=False)))
        values, seed_sets = replicate_matrix([by_config[c] for c in configs.loc[tested, "config"]])
        result = versus_best(values[None], seed_sets, mode)
        best, p, adjusted, worse = result.best[0], result.p[0], result.p_holm[0], result.worse[0]
        others = np.arange(len(tested)) != best
        configs.loc[tested[best], "mark"] = BEST
        configs.loc[tested[others], "p"] = p[others]
        configs.loc[tested[others], "p_holm"] = adjusted[others]
        paired = (seed_sets >= 0) & (seed_sets == seed_sets[best])
        configs.loc[tested[others], "test"] = np.where(paired[others], "paired", "Welch")
        configs.loc[tested[others], "mark"] = np.where(worse[others], WORSE, TIED)
    rank = configs["mark"].map({BEST: 0, TIED: 1, WORSE: 2, UNTESTED: 3})
    sign = -1.0 if mode == "max" else 1.0
    order = np.lexsort((sign * configs["mean"].to_numpy(float), rank.to_numpy()))
    return Comparison(metric, mode, codes, configs.iloc[order].reset_index(drop=True), left_out)


def verdict(ref: float, low: float, high: float, n: int) -> str:
    """Where the study's number lies against our 95% interval."""
    if n < 2 or np.isnan(low):
        return UNTESTED
    return "above" if ref > high else "below" if ref < low else "inside"


def reference_rows(trials: pd.DataFrame, sweeps: list[Any], comparison: Comparison, metrics: tuple[str, ...]
                   ) -> pd.DataFrame | None:
    """Per (variant with reference numbers, metric it has one for): the reference, our mean, 95% interval and n over
    the variant's trials that ran their whole protocol, delta (ours - ref) and where the reference lies."""
    rows = []
    marks = comparison.marks()
    for s in sweeps:
        mine = trials["sweep"].eq(s.name).to_numpy() & trials["variant"].notna().to_numpy()
        for variant, ref in s.references.items():
            at = mine & trials["variant"].eq(variant).to_numpy()
            if not at.any():
                continue
            configs = np.unique(comparison.codes[at])
            mark = marks[at][0] if len(configs) == 1 and comparison.replicated else None
            for m in metrics:
                if m not in ref:
                    continue
                done = at & ran_to_end(trials, m)
                values = pd.to_numeric(trials.loc[done, m]).to_numpy(float)
                low, high = t_interval(values)
                mean = float(values.mean()) if len(values) else np.nan
                epochs = pd.to_numeric(trials.loc[done, "epochs"]).mean() if done.any() else np.nan
                rows.append({"sweep": s.name, "variant": variant, "metric": m, "n": len(values), "epochs": epochs,
                             "configs": len(configs), "ref": ref[m], "mean": mean, "ci_low": low, "ci_high": high,
                             "delta": mean - ref[m], "verdict": verdict(ref[m], low, high, len(values)),
                             "vs_best": mark})
    return pd.DataFrame(rows) if rows else None
