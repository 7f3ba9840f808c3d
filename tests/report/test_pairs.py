"""Which of the study's differences are real (issue 12): neighbouring variants in the study's order, our difference
with its 95% interval and a Holm-corrected t-test, checked against scipy computed here; and the section every
format shows, on test_stats.py's sweep written with the real ResultsWriter."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

from sweeper.report.frame import Report
from sweeper.report.markdown_csv import markdown
from sweeper.report.pairs import reference_pairs
from tests.report.test_stats import SEEDS, TEST, rep, storage  # noqa: F401  (module fixtures)

# the study's order by reference: P > Q > R > S. P and Q share seeds (paired); R has other seeds (Welch);
# Q - R is large and real, R and S the other way round from the study; S against T: T has one replicate.
VALUES = {"P": [0.91, 0.92, 0.93], "Q": [0.905, 0.921, 0.928], "R": [0.85, 0.86, 0.855, 0.852],
          "S": [0.87, 0.88, 0.875], "T": [0.80]}
PAIR_SEEDS = {"P": [0, 1, 2], "Q": [0, 1, 2], "R": [3, 4, 5, 6], "S": [0, 1, 2], "T": [0]}
REFS = {"P": 0.93, "Q": 0.925, "R": 0.90, "S": 0.89, "T": 0.70}


def trials() -> pd.DataFrame:
    rows = [{"sweep": "s", "variant": v, "seed": seed, "end": "completed", "test_accuracy": x}
            for v in VALUES for seed, x in zip(PAIR_SEEDS[v], VALUES[v], strict=True)]
    rows.append({"sweep": "s", "variant": "P", "seed": 3, "end": "ASHA-stopped", "test_accuracy": 0.5})
    return pd.DataFrame(rows)


def test_pairs_match_scipy_and_holm() -> None:
    sweep = SimpleNamespace(name="s", references={v: {"test_accuracy": r} for v, r in reversed(REFS.items())})
    pairs, left_out = reference_pairs(trials(), [sweep], "test_accuracy")
    assert pairs is not None and left_out == []
    assert list(zip(pairs["a"], pairs["b"], strict=True)) == [("P", "Q"), ("Q", "R"), ("R", "S"), ("S", "T")]
    tests = [st.ttest_rel(VALUES["P"], VALUES["Q"]), st.ttest_ind(VALUES["Q"], VALUES["R"], equal_var=False),
             st.ttest_ind(VALUES["R"], VALUES["S"], equal_var=False)]
    p = np.array([t.pvalue for t in tests])
    order = np.argsort(p)
    holm = np.empty(3)
    holm[order] = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    for i, t in enumerate(tests):
        row = pairs.iloc[i]
        a, b = VALUES[row["a"]], VALUES[row["b"]]
        assert row["delta"] == pytest.approx(np.mean(a) - np.mean(b))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(t.confidence_interval(0.95)))
        assert row["p_holm"] == pytest.approx(holm[i])
        assert row["ref_delta"] == pytest.approx(REFS[row["a"]] - REFS[row["b"]])
    assert list(pairs["test"]) == ["paired", "Welch", "Welch", ""]
    assert holm[0] >= 0.05 and holm[1] < 0.05 and holm[2] < 0.05  # the data say what the verdicts below say
    assert list(pairs["verdict"]) == ["not shown", "real", "real, reversed", "untested"]
    assert list(pairs["n_a"]) == [3, 3, 4, 3]  # P's ASHA-stopped replicate is left out


def test_every_format_shows_the_pairs(rep: Report) -> None:  # noqa: F811
    md = markdown(rep)
    section = md.split("## The study's differences: test acc")[1].split("\n## ")[0]
    assert ("test acc: of the study's 3 differences between neighbouring variants, 1 is real at 95% (1 in the "
            "study's order, 0 reversed) and 0 not shown by our replicates; 2 untested (n < 2)") in section
    assert "| a | b | n | study Δ | our Δ | 95% CI of Δ | test | p (Holm) | difference |" in section
    a = pd.Series(TEST["A"])
    c = pd.Series(TEST["C"])
    welch = st.ttest_ind(a, c, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    assert SEEDS["A"] != SEEDS["C"]
    assert (f"| A | C | 3, 3 | +0.0950 | {a.mean() - c.mean():+.4f} | [{low:.4f}, {high:.4f}] | Welch | "
            f"{'<0.001' if welch.pvalue < 0.001 else f'{welch.pvalue:.3f}'} | real |") in section
    assert "| B | D | 3, 1 |" in section and "| D | A | 1, 3 |" in section


def test_a_sweep_of_alternatives_to_one_study_variant_has_no_study_order() -> None:
    same = {"test_accuracy": 0.93}
    followup = SimpleNamespace(name="f", references={"P": same, "Q": same})
    study = SimpleNamespace(name="s", references={v: {"test_accuracy": r} for v, r in REFS.items()})
    both = pd.concat([trials(), trials().assign(sweep="f")])
    pairs, left_out = reference_pairs(both, [followup, study], "test_accuracy")
    assert pairs is not None and set(pairs["sweep"]) == {"s"} and left_out == ["f"]
