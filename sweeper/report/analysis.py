"""The statistics as sections (sections.py's Section, so every format draws them alike): configurations with
their intervals and which are tied with the best (stats.py), the study's reference numbers against our
intervals, parameter importance (importance.py) and the ASHA audit (audit.py).

The reference table leads with the headline metric (the final score: test accuracy, or the test counterpart of a
sweep's declared metric, report/metrics.py) and puts the other metrics in
a second table, one row per variant and metric, which Markdown and HTML always show and the terminal with
--all-metrics. Importance and the audit are computed once per report (Report.cached); importance takes seconds
(Optuna evaluates every bootstrap resample), so the terminal shows it only with --importance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.audit import Audit, audits
from sweeper.report.frame import Report
from sweeper.report.importance import MIN_TRIALS, Importance, importance, marginal_effects
from sweeper.report.metrics import final_metric
from sweeper.report.pairs import pair_lines, reference_pairs
from sweeper.report.sections import LABELS, MISSING, Section, fmt_value, label, metric_priority
from sweeper.report.stats import half_widths, ran_to_end
from sweeper.spec.metrics import test_counterpart

HEADLINE = "test_accuracy"  # the reference table's first metric: the study's final score


def interval(low: Any, high: Any) -> str:
    return MISSING if pd.isna(low) else f"[{low:.4f}, {high:.4f}]"


def pvalue(p: Any) -> str:
    return MISSING if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def test_metric(metric: str) -> str:
    """The test counterpart of the sweep's metric (test accuracy for val accuracy, test_f1 for val_f1)."""
    return test_counterpart(metric) or "test_" + metric.partition("_")[2]


def headline_of(rep: Report, metrics: list[str]) -> str:
    """The reference table's first metric, of those it has (`metrics`): the final score where it is there."""
    final = final_metric(rep.metric, rep.trials.columns)
    return next((m for m in (final, HEADLINE) if m in metrics), metrics[0])


def _table(title: str, frame: pd.DataFrame, spec: list[tuple[str, str, bool, Any]], **kwargs: Any) -> Section:
    """A Section from (key, header, right-aligned, cell function of a row) per column."""
    cells = [[fn(row) for _, _, _, fn in spec] for row in frame.to_dict("records")]
    return Section(title, [k for k, _, _, _ in spec], [h for _, h, _, _ in spec], cells, [r for _, _, r, _ in spec],
                   **kwargs)


def _who(rep: Report, reps: pd.DataFrame) -> list[str]:
    """The columns that tell configurations apart: sweep, variant, the parameters that vary between them except
    seed and those each variant fixes."""
    who = (["sweep"] if len(rep.sweeps) > 1 else []) + (["variant"] if reps["variant"].notna().any() else [])
    params = [p for p in rep.trial_params if p != "seed" and p in reps and reps[p].nunique(dropna=False) > 1]
    if "variant" in who:
        fixed = reps.groupby("variant", dropna=False)[params].nunique(dropna=False).le(1).all() if params else {}
        params = [p for p in params if not fixed[p]]
    return who + params


def configurations(rep: Report) -> tuple[pd.DataFrame, list[str]]:
    """stats.py's configurations, best first, each with its first trial's columns (sweep, variant, parameters),
    its test score's mean and 95% interval, and a label; and the columns that tell them apart."""
    comp = rep.comparison
    trials = rep.trials.reset_index(drop=True)
    first = pd.Series(np.arange(len(trials))).groupby(comp.codes).first()
    picked = trials.iloc[first.reindex(comp.configs["config"]).to_numpy()].reset_index(drop=True)
    configs = comp.configs.join(picked.drop(columns=list(comp.configs.columns), errors="ignore"))
    test = test_metric(rep.metric)
    done = ran_to_end(trials, test) if test in trials else np.zeros(len(trials), dtype=bool)
    scores = pd.DataFrame({"count": [], "mean": [], "std": []})
    if done.any():
        scores = pd.to_numeric(trials.loc[done, test]).groupby(comp.codes[done]).agg(["count", "mean", "std"])
    half = half_widths(scores["std"], scores["count"])
    configs["test_mean"] = configs["config"].map(scores["mean"])
    configs["test_ci_low"] = configs["config"].map(scores["mean"] - half)
    configs["test_ci_high"] = configs["config"].map(scores["mean"] + half)
    who = _who(rep, configs)
    configs["label"] = [", ".join(str(r[k]) if k in ("sweep", "variant") else f"{k}={fmt_value(r[k], k)}"
                                  for k in who) or f"configuration {i + 1}"
                        for i, r in enumerate(configs.to_dict("records"))]
    twice = configs["label"].duplicated(keep=False)  # configurations named alike (config_id): numbered
    configs.loc[twice, "label"] += " #" + (configs[twice].groupby("label").cumcount() + 1).astype(str)
    return configs, who


def configurations_section(rep: Report, limit: int | None = None) -> Section | None:
    """One row per configuration, best first: n, mean, 95% interval and std of the metric, how it compares with
    the best (its p, Holm-corrected over every pair, and the test), and its test score's mean and 95% interval
    (reported, not ranked by)."""
    if not rep.comparison.replicated:
        return None
    configs, who = configurations(rep)
    test = test_metric(rep.metric)
    shown = configs if limit is None else configs.head(limit)
    spec: list[tuple[str, str, bool, Any]] = [(k, label(k), False, lambda r, k=k: fmt_value(r[k], k)) for k in who]
    spec += [("n", "n", True, lambda r: str(int(r["n"]))),
             (rep.metric, label(rep.metric), True, lambda r: fmt_value(r["mean"], rep.metric, rep.metrics)),
             ("ci", "95% CI", True, lambda r: interval(r["ci_low"], r["ci_high"])),
             ("std", "std", True, lambda r: MISSING if pd.isna(r["std"]) else f"{r['std']:.4f}"),
             ("vs_best", "vs best", False, lambda r: r["mark"]),
             ("p", "p (Holm)", True, lambda r: pvalue(r["p_holm"])),
             ("test", "test", False, lambda r: r["test"] or MISSING),
             (test, label(test), True, lambda r: fmt_value(r["test_mean"], test, rep.metrics)),
             ("test_ci", f"{label(test)} 95% CI", True, lambda r: interval(r["test_ci_low"], r["test_ci_high"]))]
    count = f"{len(shown)} of {len(configs)}" if len(shown) < len(configs) else f"{len(configs)}"
    how = (f"mean {rep.metric} over the replicates that ran their whole protocol, 95% t interval, n; p: the test "
           f"against the best, Holm-corrected over every pair of configurations; {label(test)}: the final score, mean "
           f"and 95% t interval over the same replicates (reported, never used to rank)")
    return _table(f"Configurations ({count})", shown, spec, notes=[*rep.comparison.lines(), how],
                  keep=[*who[:2], rep.metric])  # no star: ★ is the best trial; "best" says which configuration


def _verdict_counts(rows: pd.DataFrame, name: str) -> str:
    counts = rows["verdict"].value_counts()
    line = (f"{name}: of {len(rows)} variants, the study's number lies inside our 95% interval for "
            f"{counts.get('inside', 0)}, above it (we score lower) for {counts.get('above', 0)}, below it (we score "
            f"higher) for {counts.get('below', 0)}")
    untested = int(counts.get("untested", 0))
    return line + (f"; {untested} untested (n < 2)" if untested else "")


def reference_sections(rep: Report) -> tuple[Section | None, Section | None]:
    """The headline table (one row per variant) and the other metrics (one row per variant and metric)."""
    ref = rep.references
    if ref is None or ref.empty:
        return None, None
    metrics = [m for m in metric_priority(rep.metric, rep.metrics) if m in set(ref["metric"])]
    headline = headline_of(rep, metrics)
    who = (["sweep"] if len(rep.sweeps) > 1 else []) + ["variant"]
    spec: list[tuple[str, str, bool, Any]] = [(k, label(k), False, lambda r, k=k: str(r[k])) for k in who]
    spec.append(("n", "n", True, lambda r: str(int(r["n"]))))
    values = [("ref", "ref", True, lambda r: fmt_value(r["ref"], "ref_")),
              ("mean", "ours", True, lambda r: fmt_value(r["mean"], headline)),
              ("ci", "95% CI", True, lambda r: interval(r["ci_low"], r["ci_high"])),
              ("delta", "Δ", True, lambda r: fmt_value(r["delta"], "delta_")),
              ("verdict", "ref vs CI", False, lambda r: r["verdict"])]
    top = ref[ref["metric"] == headline]
    lead = [*spec, ("epochs", "epochs", True, lambda r: fmt_value(r["epochs"]))]
    lead += [(k, f"{LABELS[headline]} {h}" if k in ("ref", "mean") else h, r, f) for k, h, r, f in values]
    if top["vs_best"].notna().any():
        lead.append(("vs_best", "vs best", False, lambda r: r["vs_best"] or MISSING))
    notes = [_verdict_counts(top, LABELS[headline])]
    notes += [f"{r['variant']}: over {r['configs']} configurations" for r in top.to_dict("records") if r["configs"] > 1]
    notes.append("the study's numbers beside ours: mean over the trials that ran their whole protocol, 95% t "
                 "interval, n; Δ = ours - ref")
    first = _table(f"Reference: {LABELS[headline]}", top, lead, notes=notes, keep=who)
    rest = ref[ref["metric"] != headline].copy()
    if rest.empty:
        return first, None
    rest["order"] = rest["metric"].map({m: i for i, m in enumerate(metrics)})
    rest["variant_at"] = pd.factorize(rest["sweep"] + "/" + rest["variant"])[0]  # in the spec's order
    rest = rest.sort_values(["variant_at", "order"], kind="stable")
    other = [*spec[:-1], ("metric", "metric", False, lambda r: LABELS[r["metric"]]), spec[-1]]
    other += [(k, h, r, f if k not in ("ref", "mean") else (lambda row, k=k: fmt_value(row[k], row["metric"])))
              for k, h, r, f in values]
    return first, _table("Reference, the other metrics", rest, other, keep=[*who, "metric"])


def pairs_section(rep: Report) -> Section | None:
    """The study's neighbouring variants in the headline metric (pairs.py): its difference beside ours, our
    interval, the test and whether the difference is real."""
    ref = rep.references
    if ref is None or ref.empty or not (ref["metric"] == HEADLINE).any():
        return None
    pairs, alternatives = rep.cached("pairs", lambda: reference_pairs(rep.trials, rep.sweeps, HEADLINE))
    if pairs is None:
        return None
    who: list[tuple[str, str, bool, Any]] = [("sweep", "sweep", False, lambda r: r["sweep"])] if len(rep.sweeps) > 1 \
        else []
    spec = [*who, ("a", "a", False, lambda r: r["a"]), ("b", "b", False, lambda r: r["b"]),
            ("n", "n", True, lambda r: f"{r['n_a']}, {r['n_b']}"),
            ("ref_delta", "study Δ", True, lambda r: fmt_value(r["ref_delta"], "delta_")),
            ("delta", "our Δ", True, lambda r: fmt_value(r["delta"], "delta_")),
            ("ci", "95% CI of Δ", True, lambda r: interval(r["ci_low"], r["ci_high"])),
            ("test", "test", False, lambda r: r["test"] or MISSING),
            ("p", "p (Holm)", True, lambda r: pvalue(r["p_holm"])),
            ("verdict", "difference", False, lambda r: r["verdict"])]
    return _table(f"The study's differences: {LABELS[HEADLINE]}", pairs, spec,
                  notes=pair_lines(pairs, LABELS[HEADLINE], alternatives), keep=["a", "b", "verdict"])


def importance_of(rep: Report) -> Importance:
    return rep.cached("importance", lambda: importance(rep.trials, rep.trial_params, rep.metric, rep.mode))


def effects_of(rep: Report) -> dict[str, pd.DataFrame]:
    return rep.cached("effects", lambda: marginal_effects(rep.trials, rep.trial_params, rep.metric))


def audits_of(rep: Report) -> list[Audit]:
    return rep.cached("audits", lambda: audits(rep.sweeps, rep.trials, rep.comparison.codes))


def importance_section(rep: Report) -> Section | None:
    imp = importance_of(rep)
    if imp.rows is None:
        return None
    spec: list[tuple[str, str, bool, Any]] = [
        ("param", "parameter", False, lambda r: r["param"]),
        ("importance", "importance", True, lambda r: f"{r['importance']:.3f}"),
        ("ci", "95% interval", True, lambda r: f"[{r['low']:.3f}, {r['high']:.3f}]"),
        ("effect", "effect", False, lambda r: "measurable" if r["measurable"] else "none measurable")]
    return _table("Parameter importance (PED-ANOVA)", imp.rows, spec, notes=imp.lines(),
                  keep=["param", "importance"])


def audit_sections(rep: Report) -> list[Section]:
    out = []
    for a in audits_of(rep):
        if a.rungs is None:
            continue
        spec: list[tuple[str, str, bool, Any]] = [
            ("rung", "rung epoch", True, lambda r: str(r["rung"])),
            ("n", "n", True, lambda r: str(r["n"])),
            ("rho", "Spearman ρ", True, lambda r: MISSING if pd.isna(r["rho"]) else f"{r['rho']:+.3f}"),
            ("p", "p", True, lambda r: pvalue(r["p"])),
            ("stopped", "stopped", True, lambda r: str(r["stopped"])),
            ("promoted", "promoted", True, lambda r: str(r["promoted"])),
            ("weakest", "weakest promoted", True, lambda r, m=a.metric: fmt_value(r["weakest"], m, rep.metrics)),
            ("band", "noise band", True, lambda r: f"{r['band']:.4f}"),
            ("bloomers", "late bloomers", True, lambda r: str(r["bloomers"]))]
        out.append(_table(f"ASHA audit: {a.sweep}", a.rungs, spec, notes=a.lines(), keep=["rung", "rho"]))
    return out


def analysis_lines(rep: Report, importance: bool = True) -> list[str]:
    """What the analyses say where they have no table (too few trials, no epochs yet); without `importance` (the
    terminal's default: it takes seconds) a pointer to it instead."""
    lines = []
    if importance:
        imp = importance_of(rep)
        lines += imp.lines() if imp.rows is None and imp.note and "varies" not in imp.note else []
    elif rep.comparison.configs["n"].sum() >= MIN_TRIALS:
        lines.append("parameter importance with bootstrap intervals: --importance, or --format markdown/html")
    return lines + [line for a in audits_of(rep) if a.rungs is None for line in a.lines()]


def analysis_sections(rep: Report, all_metrics: bool = True, importance: bool = True, limit: int | None = None
                      ) -> list[Section]:
    """Every statistics table there is data for, in reading order; the other metrics' reference table only with
    `all_metrics`, importance only with `importance`; at most `limit` configurations."""
    head, rest = reference_sections(rep)
    sections = [configurations_section(rep, limit), head, pairs_section(rep), rest if all_metrics else None,
                importance_section(rep) if importance else None, *audit_sections(rep)]
    return [s for s in sections if s is not None]
