"""Which differences are real (issue 12): intervals, ties with the best and the reference verdicts, checked against
scipy computed here, on a sweep written with the real ResultsWriter.

Four variants (configurations): A and B with seeds 0-2, almost equal; C clearly worse with seeds 3-5 (so A against
C is Welch's test, A against B paired); D with one seed (untested). A has a fourth, ASHA-stopped replicate that the
comparison leaves out.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from rich.console import Console

from sweeper.report.analysis import configurations
from sweeper.report.frame import Report, build_report
from sweeper.report.markdown_csv import markdown
from sweeper.report.stats import configuration_codes, holm, pair_pvalues, replicate_matrix
from sweeper.report.terminal import print_rich
from sweeper.store.storage import Storage
from tests.report.writing import Planned, table, write_sweep

SPEC = """\
name: tied
metric: val_accuracy
epochs: 3
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters:
  model: mlp
  seed: {choice: [0, 1, 2, 3, 4, 5]}
variants:
  - {name: A, lr: 0.001, reference: {test_accuracy: 0.895, val_accuracy: 0.905}}
  - {name: B, lr: 0.01, reference: {test_accuracy: 0.95}}
  - {name: C, lr: 0.1, reference: {test_accuracy: 0.80}}
  - {name: D, lr: 0.05, reference: {test_accuracy: 0.9}}
"""
VAL = {"A": [0.900, 0.905, 0.910], "B": [0.899, 0.906, 0.908], "C": [0.850, 0.852, 0.848], "D": [0.930]}
TEST = {"A": [0.890, 0.896, 0.899], "B": [0.900, 0.901, 0.902], "C": [0.840, 0.842, 0.838], "D": [0.920]}
SEEDS = {"A": [0, 1, 2], "B": [0, 1, 2], "C": [3, 4, 5], "D": [0]}


def plan() -> list[Planned]:
    out = [Planned({"seed": seed}, [v - 0.2, v - 0.1, v], variant, test=t)
           for variant in VAL for seed, v, t in zip(SEEDS[variant], VAL[variant], TEST[variant], strict=True)]
    return out + [Planned({"seed": 3}, [0.70], "A", end="asha")]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    return write_sweep(tmp_path_factory.mktemp("runs"), "tied", SPEC, plan())


@pytest.fixture(scope="module")
def rep(storage: Storage) -> Report:
    return build_report(["tied"], storage)


def render(rep: Report, width: int = 200, **kwargs: bool) -> str:
    out = io.StringIO()
    print_rich(rep, Console(width=width, file=out, color_system=None), **kwargs)
    return out.getvalue()


def expected_holm() -> dict[str, float]:
    """Holm over all three pairs of the tested configurations (A-B, A-C and B-C: the best is picked from the data, so
    every pair is in the family), computed here from scipy's p-values; the entries for the comparisons with the best
    (A)."""
    p = {"B": st.ttest_rel(VAL["A"], VAL["B"]).pvalue,  # same seeds: paired
         "C": st.ttest_ind(VAL["A"], VAL["C"], equal_var=False).pvalue,  # other seeds: Welch
         "B-C": st.ttest_ind(VAL["B"], VAL["C"], equal_var=False).pvalue}
    ranked = sorted(p, key=lambda pair: p[pair])
    adjusted, running = {}, 0.0
    for i, pair in enumerate(ranked):
        running = max(running, min(1.0, (3 - i) * p[pair]))
        adjusted[pair] = running
    return {"B": adjusted["B"], "C": adjusted["C"]}


def test_intervals_and_the_tie_set_match_scipy(rep: Report) -> None:
    configs, who = configurations(rep)
    assert who == ["variant"]
    by = configs.set_index("variant")
    assert list(configs["variant"]) == ["A", "B", "C", "D"]  # best, tied, worse, untested
    assert by["mark"].to_dict() == {"A": "best", "B": "≈", "C": "worse", "D": "untested"}
    for variant in "ABC":
        values = VAL[variant]
        low, high = st.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=st.sem(values))
        row = by.loc[variant]
        assert row["n"] == 3 and row["mean"] == pytest.approx(np.mean(values))
        assert row["std"] == pytest.approx(np.std(values, ddof=1))
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
        scores = TEST[variant]  # the final score: mean and interval over the same replicates, never ranked by
        low, high = st.t.interval(0.95, len(scores) - 1, loc=np.mean(scores), scale=st.sem(scores))
        assert row["test_mean"] == pytest.approx(np.mean(scores))
        assert (row["test_ci_low"], row["test_ci_high"]) == pytest.approx((low, high))
    assert by.loc["D", "n"] == 1 and np.isnan(by.loc["D", "ci_low"])  # n < 2: no interval
    assert by.loc["D", "test_mean"] == pytest.approx(0.920) and np.isnan(by.loc["D", "test_ci_low"])
    holm_p = expected_holm()
    assert by.loc["B", "p_holm"] == pytest.approx(holm_p["B"]) and holm_p["B"] >= 0.05
    assert by.loc["C", "p_holm"] == pytest.approx(holm_p["C"]) and holm_p["C"] < 0.05
    assert by.loc["B", "test"] == "paired" and by.loc["C", "test"] == "Welch"
    assert rep.comparison.left_out == {"ASHA-stopped": 1}


def test_the_sentence_and_what_is_left_out(rep: Report) -> None:
    assert rep.comparison.lines() == [
        "1 configuration is indistinguishable from the best at 95% (paired and Welch t-tests against the best, n=3 "
        "each; Holm-corrected over all 3 pairs of configurations, a family-wise 5% that includes picking the best); "
        "1 worse",
        "1 configuration with n < 2: untested",
        "left out of the comparison: 1 trial that did not run the whole protocol or has no value (1 ASHA-stopped)"]


def test_every_table_marks_the_tie(rep: Report) -> None:
    text = render(rep, all_metrics=True)
    header, rows = table(text, "tied: 11 trials")
    assert header[:6] == ["variant", "trial", "seed", "ended", "epochs", "vs best"]
    assert {r[1]: r[5] for r in rows} == {
        "00000": "best", "00001": "best", "00002": "best", "00003": "≈", "00004": "≈", "00005": "≈",
        "00006": "worse", "00007": "worse", "00008": "worse", "00009": "untested", "00010": "best"}
    assert "1 configuration is indistinguishable from the best at 95%" in " ".join(text.split())
    header, rows = table(text, "Configurations (4)")
    assert header == ["variant", "n", "val acc", "95% CI", "std", "vs best", "p (Holm)", "test", "test acc",
                      "test acc 95% CI"]
    a = VAL["A"]
    low, high = st.t.interval(0.95, 2, loc=np.mean(a), scale=st.sem(a))
    assert rows[0][:5] == ["A", "3", f"{np.mean(a):.4f}", f"[{low:.4f}, {high:.4f}]", f"{np.std(a, ddof=1):.4f}"]
    t = TEST["A"]
    low, high = st.t.interval(0.95, 2, loc=np.mean(t), scale=st.sem(t))
    assert rows[0][8:] == [f"{np.mean(t):.4f}", f"[{low:.4f}, {high:.4f}]"] and rows[3][8:] == ["0.9200", "-"]
    assert [r[5] for r in rows] == ["best", "≈", "worse", "untested"]
    assert [r[7] for r in rows] == ["-", "paired", "Welch", "-"]
    header, rows = table(text, "Reference: test acc")
    assert header[-1] == "vs best" and [r[-1] for r in rows] == ["best", "≈", "worse", "untested"]
    md = markdown(rep)
    assert "| variant | n | val acc | 95% CI | std | vs best | p (Holm) | test | test acc | test acc 95% CI |" in md
    assert "| vs best |" in md.split("## Reference: ")[1]


def test_reference_table_says_where_the_study_lies(rep: Report) -> None:
    ref = rep.references
    assert ref is not None
    top = ref[ref["metric"] == "test_accuracy"].set_index("variant")
    assert top["verdict"].to_dict() == {"A": "inside", "B": "above", "C": "below", "D": "untested"}
    for variant in "ABC":
        values = TEST[variant]
        low, high = st.t.interval(0.95, 2, loc=np.mean(values), scale=st.sem(values))
        assert (top.loc[variant, "ci_low"], top.loc[variant, "ci_high"]) == pytest.approx((low, high))
        assert top.loc[variant, "n"] == 3  # the ASHA-stopped replicate of A has no test score, nor counts
    text = " ".join(render(rep).split())
    assert ("test acc: of 4 variants, the study's number lies inside our 95% interval for 1, above it (we score "
            "lower) for 1, below it (we score higher) for 1; 1 untested (n < 2)") in text
    assert "Reference, the other metrics" not in text and "--all-metrics" in text
    assert "Reference, the other metrics" in render(rep, all_metrics=True)
    other = markdown(rep).split("## Reference, the other metrics")[1]
    assert "| A | val acc | 3 | 0.9050 | 0.9050 |" in other and "| inside |" in other


def test_group_by_shows_mean_interval_n_and_the_mark(storage: Storage) -> None:
    rep = build_report(["tied"], storage, group_by=["variant"])
    text = render(rep)
    header, rows = table(text, "tied: 4 groups")
    assert header[:6] == ["variant", "n", "ended", "epochs", "vs best", "val acc"]
    b = VAL["B"]
    half = st.t.interval(0.95, 2, loc=0, scale=st.sem(b))[1]
    assert rows[1] == ["B", "3", "3 completed", "3", "≈", f"{np.mean(b):.4f}±{half:.4f}", *rows[1][6:]]
    assert "mean±half the 95% t interval over the n finished trials" in " ".join(text.split())
    mixed = build_report(["tied"], storage, group_by=["model"])  # one group of four configurations: no mark
    assert "vs_best" not in mixed.table


def test_no_replicates_no_marks(tmp_path: Path) -> None:
    storage = write_sweep(tmp_path, "single", SPEC, [Planned({"seed": 0}, [0.8, 0.9], v) for v in "ABCD"])
    rep = build_report(["single"], storage)
    assert "vs_best" not in rep.table and not rep.comparison.replicated
    assert ("no configuration has 2 or more replicates that ran their whole protocol, so no difference between "
            "configurations is tested") in " ".join(render(rep).split())
    assert rep.references is not None and set(rep.references["verdict"]) == {"untested"}


def test_configuration_id_when_present_else_parameters_but_seed() -> None:
    trials = pd.DataFrame({"sweep": "s", "variant": None, "lr": [0.1, 0.1, 0.1, 0.2], "seed": [0, 1, 2, 0]})
    assert configuration_codes(trials, ["lr", "seed"]).tolist() == [0, 0, 0, 1]
    trials["config_id"] = ["a", "a", "b", None]  # the column wins where it is given
    codes = configuration_codes(trials, ["lr", "seed"]).tolist()
    assert codes[0] == codes[1] != codes[2] and codes[3] not in codes[:3]


def test_holm_and_welch() -> None:
    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    rows = holm(np.array([[0.01, 0.04, 0.03], [0.5, 0.01, 0.02]]))  # one family per row
    assert rows.ravel().tolist() == pytest.approx([0.03, 0.06, 0.06, 0.5, 0.03, 0.04])
    a = pd.DataFrame({"value": [0.90, 0.91, 0.92], "seed": [0, 1, 2]})
    b = pd.DataFrame({"value": [0.88, 0.90, 0.89, 0.87], "seed": [0, 1, 2, 3]})  # seeds differ: Welch
    c = pd.DataFrame({"value": [0.89, 0.92, 0.90], "seed": [2, 0, 1]})  # a's seeds in another order: paired
    values, seed_sets = replicate_matrix([a, b, c, a])
    assert seed_sets[0] == seed_sets[2] == seed_sets[3] != seed_sets[1]
    p = pair_pvalues(values[None], seed_sets)[0]
    assert p[0, 1] == p[1, 0] == pytest.approx(st.ttest_ind(a["value"], b["value"], equal_var=False).pvalue)
    assert p[0, 2] == pytest.approx(st.ttest_rel(a["value"], c.sort_values("seed")["value"]).pvalue)
    assert p[0, 3] == 1.0  # identical replicates: no difference
    assert np.isnan(np.diag(p)).all()


def test_the_header_says_what_the_sweep_cost(tmp_path: Path) -> None:
    spec = SPEC.replace("epochs: 3\n", "epochs: 3\nresources: {cpu: 2, gpu: 0.5}\n")
    plan = [Planned({"seed": s}, [0.8, 0.9], "A", extra={"wall_s": 1800.0}) for s in range(3)]
    storage = write_sweep(tmp_path, "costly", spec, plan)
    lines = markdown(build_report(["costly"], storage)).splitlines()
    # 3 trials x 2 epochs; 3 x 1800 s = 1.5 trial-hours, each holding 2 CPUs and half a GPU
    assert ("- compute of costly: 6 trial-epochs in 1.50 trial-hours (each trial's run time, summed) x 2 CPUs a "
            "trial = 3.00 CPU-hours, 0.75 GPU-hours") in lines
