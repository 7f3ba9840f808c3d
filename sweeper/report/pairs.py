"""Which of the study's differences are real: the variants with a reference number for a metric, in the study's
order (best first), and for each neighbouring pair the study's difference beside ours, with the 95% interval of
ours and a two-sided t-test (stats.ttest: paired by seed where both variants hold the same seeds, Welch's
otherwise), Holm-corrected over the pairs. A difference is real when the corrected p < 0.05: in the study's
direction ("real") or against it ("real, reversed"); otherwise our replicates cannot tell the two
variants apart ("not shown"). Pairs where a side has fewer than 2 replicates are untested.

Neighbours in the study's ranking are its smallest differences, the ones it could not settle ("small differences
in results"). This compares finished variants the study chose, on its final score: it selects nothing, so the
test set stays the final score. For the same reason Holm over these pairs alone holds its 5%: they are fixed by the
study's order before our data is seen, unlike "vs best" (stats.versus_best), whose best is picked from the data and
whose correction therefore runs over every pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.stats import ALPHA, CONFIDENCE, REPLICATE_KEY, UNTESTED, holm, ran_to_end, ttest

SAME, REVERSED, NOT_SHOWN = "real", "real, reversed", "not shown"


def _samples(trials: pd.DataFrame, done: np.ndarray, metric: str) -> pd.DataFrame:
    seeds = trials[REPLICATE_KEY] if REPLICATE_KEY in trials else pd.Series(np.nan, index=trials.index)
    return pd.DataFrame({"variant": trials.loc[done, "variant"].to_numpy(), "seed": seeds[done].to_numpy(),
                         "value": pd.to_numeric(trials.loc[done, metric]).to_numpy(float)})


def _pair(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """Our difference mean(a) - mean(b), its 95% interval, p and the test; no test where a side has n < 2."""
    row: dict[str, Any] = {"n_a": len(a), "n_b": len(b), "delta": a["value"].mean() - b["value"].mean(),
                           "ci_low": np.nan, "ci_high": np.nan, "p": np.nan, "test": ""}
    if len(a) < 2 or len(b) < 2:
        return row
    result, kind = ttest(a, b)
    low, high = result.confidence_interval(CONFIDENCE)
    p = float(result.pvalue)
    return {**row, "ci_low": float(low), "ci_high": float(high), "p": 1.0 if np.isnan(p) else p, "test": kind}


def _verdict(row: dict[str, Any], sign: float) -> str:
    if np.isnan(row["p_holm"]):
        return UNTESTED
    if row["p_holm"] >= ALPHA:
        return NOT_SHOWN
    return SAME if sign * row["delta"] * np.sign(row["ref_delta"]) >= 0 else REVERSED


def reference_pairs(trials: pd.DataFrame, sweeps: list[Any], metric: str) -> tuple[pd.DataFrame | None, list[str]]:
    """Per sweep, its variants with a reference for `metric` and trials in the report, best reference first; per
    neighbouring pair (a, b): the study's difference ref_a - ref_b, ours with its 95% interval, n of each side, the
    test and its Holm-corrected p (over every tested pair of the report), and the verdict. Also the sweeps left
    out: those whose variants share a study number (alternatives of one study variant, as in a follow-up sweep)
    have no study order to test."""
    sign = 1.0 if metric.endswith("accuracy") else -1.0  # accuracy: higher is better; loss: lower
    done = ran_to_end(trials, metric) & trials["variant"].notna().to_numpy()
    rows, alternatives = [], []
    for s in sweeps:
        mine = done & trials["sweep"].eq(s.name).to_numpy()
        samples = dict(list(_samples(trials, mine, metric).groupby("variant", sort=False)))
        refs = sorted(((v, r[metric]) for v, r in s.references.items() if metric in r and v in samples),
                      key=lambda vr: -sign * vr[1])
        if len({r for _, r in refs}) < len(refs):
            alternatives.append(s.name)
            continue
        for (va, ra), (vb, rb) in zip(refs, refs[1:], strict=False):
            rows.append({"sweep": s.name, "a": va, "b": vb, "ref_delta": ra - rb, **_pair(samples[va], samples[vb])})
    if not rows:
        return None, alternatives
    pairs = pd.DataFrame(rows)
    tested = pairs["p"].notna()
    pairs["p_holm"] = np.nan
    if tested.any():
        pairs.loc[tested, "p_holm"] = holm(pairs.loc[tested, "p"].to_numpy())
    pairs["verdict"] = [_verdict(r, sign) for r in pairs.to_dict("records")]
    return pairs, alternatives


def pair_lines(pairs: pd.DataFrame, name: str, alternatives: list[str]) -> list[str]:
    """The finding in one sentence, the sweeps left out, and how it was tested."""
    counts = pairs["verdict"].value_counts()
    real = int(counts.get(SAME, 0) + counts.get(REVERSED, 0))
    line = (f"{name}: of the study's {len(pairs)} differences between neighbouring variants, {real} "
            f"{'is' if real == 1 else 'are'} real at 95% ({int(counts.get(SAME, 0))} in the study's order, "
            f"{int(counts.get(REVERSED, 0))} reversed) and {int(counts.get(NOT_SHOWN, 0))} not shown by our "
            f"replicates")
    untested = int(counts.get(UNTESTED, 0))
    line += f"; {untested} untested (n < 2)" if untested else ""
    kinds = sorted({k for k in pairs["test"] if k}, reverse=True)
    how = ("variants in the study's order, best first; Δ = a - b, the study's beside ours with its 95% interval; "
           f"p: two-sided {' and '.join(kinds) or 'Welch'} t-tests, Holm-corrected over the pairs, which the verdict "
           f"uses (the intervals are each pair's own, not corrected: one may exclude 0 while the corrected p says "
           f"not shown)")
    left = [f"not in this table: {', '.join(alternatives)} (its variants share study numbers: alternatives of one "
            f"study variant, with no study order between them)"] if alternatives else []
    return [line, *left, how]
