"""The PNG plots `report --out` writes (matplotlib, Agg): learning curves, the final score (test accuracy, or the test
counterpart of the sweep's declared metric, in a file named after it: report/metrics.py) against the reference
(means with 95% t intervals), parameter effects (means with 95% t intervals, importance with its bootstrap interval).

Every plot covers the trials that pass --where (not only the --top rows). Trials are coloured by variant (else
by sweep, model, or the first varied parameter with few values); how a trial ended is a marker at the end of
its curve, so ASHA stops are visible. Figures have fixed sizes (no tight bounding box), so pixel sizes are known.
Which trials are drawn and coloured how, and the curves' points, are plot_data.py's (the HTML figures' too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.frame import Report
from sweeper.report.metrics import curve_metric, final_metric, spelled
from sweeper.report.plot_data import MAX_CURVES, categories, colour_key, curve_points, sample, varied_params
from sweeper.report.stats import half_widths
from sweeper.store.trials import Ended

DPI = 100
CURVES_SIZE = (10.0, 6.0)  # inches; 1000 x 600 pixels
TEST_SIZE = (10.0, 6.0)
EFFECT_PANEL = (4.0, 3.2)  # per parameter panel, three panels a row
MAX_POINTS = 2000  # per parameter panel (its mean uses every trial)
MISSING_COLOUR = (0.1, 0.1, 0.1, 1.0)  # trials without a value of the colour key (e.g. no variant)
CATEGORICAL_MAX = 12  # a numeric parameter with more distinct values is drawn as a continuous axis
END_MARKERS = {Ended.ASHA.value: ("x", "black", "ASHA-stopped"), Ended.EARLY.value: ("v", "dimgray", "early-stopped"),
               Ended.ERROR.value: ("X", "red", "error"), Ended.RUNNING.value: (">", "tab:blue", "running")}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def palette(n: int) -> list[Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis")
    return [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]


class Colours:
    """Colour of every trial (row of rep.trials) by the colour key; near-black where the key is missing."""

    def __init__(self, rep: Report) -> None:
        self.key = colour_key(rep)
        self.cats = categories(rep, self.key)
        self.colours = palette(len(self.cats)) + [MISSING_COLOUR]
        codes = pd.Categorical(rep.trials[self.key], categories=self.cats).codes if self.key else \
            np.zeros(len(rep.trials), dtype=int)
        self.codes = np.where(codes < 0, len(self.cats), codes)
        self.missing = bool(self.key) and bool((codes < 0).any())
        self.rgba = np.array(self.colours)[self.codes] if len(rep.trials) else np.zeros((0, 4))

    def legend(self, ax: Any, extra: list[Any], limit: int = 15) -> None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=c, label=str(v)) for v, c in zip(self.cats[:limit], self.colours,
                                                                          strict=False)]
        if len(self.cats) > limit:
            handles.append(Line2D([], [], ls="", label=f"... {len(self.cats) - limit} more"))
        if self.missing:
            handles.append(Line2D([], [], color=MISSING_COLOUR, label=f"no {self.key}"))
        if handles or extra:
            # a fixed corner: "best" tests every drawn point, seconds on a big sweep; curves rise, so the
            # lower right is mostly empty
            ax.legend(handles=handles + extra, fontsize=7, loc="lower right", title=self.key, title_fontsize=7)


def plot_curves(rep: Report, colours: Colours, path: Path) -> str | None:
    """The curve metric (val accuracy, or the sweep's own) per epoch, a line per trial; returns why nothing was
    drawn, or None."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    drawn = sample(rep, MAX_CURVES)
    points = curve_points(rep, drawn)
    if points is None:
        return "no epoch results yet"
    p, x, y = points
    starts = np.r_[0, np.flatnonzero(np.diff(p)) + 1]
    ends = np.r_[starts[1:] - 1, len(p) - 1]
    trial = p[starts]
    n = len(trial)
    plt = _plt()
    fig, ax = plt.subplots(figsize=CURVES_SIZE, dpi=DPI)
    segments = np.split(np.column_stack((x, y)), starts[1:])
    alpha = 0.9 if n <= 20 else max(0.05, min(0.9, 20 / n))
    ax.add_collection(LineCollection(segments, colors=colours.rgba[trial], linewidths=1.2 if n <= 50 else 0.5,
                                     alpha=alpha))
    ax.autoscale_view()
    extra = []
    end_of = rep.trials["end"].to_numpy()[trial]
    for label, (marker, colour, text) in END_MARKERS.items():
        hit = end_of == label
        if hit.any():
            ax.scatter(x[ends[hit]], y[ends[hit]], marker=marker, c=colour, s=18, zorder=3, linewidths=1)
            extra.append(Line2D([], [], ls="", marker=marker, color=colour, label=text))
    rungs = next((s.asha_rungs for s in rep.sweeps if s.asha_rungs), [])
    for r in rungs:
        ax.axvline(r, ls=":", lw=0.8, color="gray")
    if rungs:
        extra.append(Line2D([], [], ls=":", color="gray", label="ASHA rungs"))
    title = f"Learning curves ({n} trials)" if len(drawn) == len(rep.trials) else \
        f"Learning curves ({n:,} of {len(rep.trials):,} trials drawn: the 20 best and a random sample)"
    ax.set(xlabel="epoch", ylabel=spelled(curve_metric(rep.metric)), title=title)
    ax.grid(alpha=0.3)
    colours.legend(ax, extra)
    _save(fig, path)
    return None


def _reference(rep: Report, variant: Any, metric: str) -> float:
    for s in rep.sweeps:
        value = s.references.get(str(variant), {}).get(metric)
        if value is not None:
            return float(value)
    return float("nan")


def plot_test_accuracy(rep: Report, colours: Colours, path: Path) -> str | None:
    """Mean final score (test accuracy, or the declared metric's test counterpart) per colour group (variant) with
    its spread, beside the reference where known."""
    t = rep.trials
    final = final_metric(rep.metric, t.columns)
    done = t["state"].eq("TERMINATED") & pd.to_numeric(t[final], errors="coerce").notna()
    if not done.any():
        return f"no trial has finished with a {spelled(final)} yet"
    labels = colours.cats if colours.key else ["all trials"]
    codes = colours.codes[done.to_numpy()]
    acc = pd.to_numeric(t.loc[done, final]).to_numpy()
    stats = pd.DataFrame({"code": codes, "acc": acc}).groupby("code")["acc"].agg(["mean", "std", "count"])
    stats = stats.reindex(range(len(labels)))
    stats["ci"] = half_widths(stats["std"], stats["count"])
    refs = np.array([_reference(rep, v, final) if colours.key == "variant" else np.nan for v in labels])
    plt = _plt()
    fig, ax = plt.subplots(figsize=TEST_SIZE, dpi=DPI)
    ypos = np.arange(len(labels))[::-1]
    ax.barh(ypos + 0.2, stats["mean"].fillna(0), height=0.4, xerr=stats["ci"].fillna(0),
            color=[colours.colours[i] for i in range(len(labels))], label="reproduced (mean, 95% t interval)")
    if np.isfinite(refs).any():
        ax.barh(ypos - 0.2, np.nan_to_num(refs), height=0.4, color="lightgray", edgecolor="black", hatch="//",
                label="reference (study)")
    for yv, m, r in zip(ypos, stats["mean"], refs, strict=True):
        if np.isfinite(m):
            ax.text(m, yv + 0.2, f" {m:.4f}", va="center", fontsize=7)
        if np.isfinite(r):
            ax.text(r, yv - 0.2, f" {r:.4f}", va="center", fontsize=7)
    values = np.concatenate([stats["mean"].dropna().to_numpy(), refs[np.isfinite(refs)]])
    ax.set_xlim(*_limits(float(values.min()), float(values.max())))
    ns = stats["count"].fillna(0).astype(int)
    ax.set_yticks(ypos, [f"{v} (n={n})" for v, n in zip(labels, ns, strict=True)], fontsize=8)
    versus = " vs the reference" if np.isfinite(refs).any() else ""
    ax.set(xlabel=spelled(final), title=spelled(final).capitalize() + " per " + (colours.key or "sweep") + versus)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    return None


def _limits(low: float, high: float) -> tuple[float, float]:
    """The score axis: 0.05 beyond the values within [0, 1] (accuracies, F1); 5% of their range beyond others."""
    if 0.0 <= low and high <= 1.0:
        return max(0.0, low - 0.05), min(1.0, high + 0.05)
    pad = 0.05 * (high - low) if high > low else 0.05 * max(abs(high), 1.0)
    return low - pad, high + pad


def _effect_panel(ax: Any, x: pd.Series, y: np.ndarray, rgba: np.ndarray, title: str, dots: np.ndarray,
                  effect: pd.DataFrame | None) -> None:
    """One parameter against the metric: a dot per trial (those in `dots`); per value (or bin of a continuous axis)
    the mean of the trials that ran their whole protocol with its 95% t interval (importance.py), as error bars or a
    band; a parameter without one (seed) gets its plain means."""
    numeric = pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x)
    if numeric and x.nunique() > CATEGORICAL_MAX:
        xv = x.to_numpy(float)
        ax.scatter(xv[dots], y[dots], c=rgba[dots], s=10, alpha=0.7, linewidths=0)
        if np.nanmin(xv) > 0 and np.nanmax(xv) / np.nanmin(xv) >= 100:
            ax.set_xscale("log")
        if effect is not None and len(effect):
            ax.plot(effect["x"], effect["mean"], color="black", marker="D", ms=4, zorder=3)
            ax.fill_between(effect["x"], effect["ci_low"], effect["ci_high"], color="black", alpha=0.15, lw=0)
    else:
        keys = x.astype(object).where(x.notna(), None).map(str)
        order = sorted(keys.unique(), key=lambda v: (len(v), v)) if not numeric else \
            [str(v) for v in sorted(x.dropna().unique())] + (["None"] if x.isna().any() else [])
        index = keys.map({v: i for i, v in enumerate(order)}).to_numpy(float)
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(index))
        ax.scatter((index + jitter)[dots], y[dots], c=rgba[dots], s=10, alpha=0.7, linewidths=0)
        if effect is not None and len(effect):
            at = effect["label"].map({v: i for i, v in enumerate(order)}).to_numpy(float)
            mean = effect["mean"].to_numpy(float)
            spread = [np.nan_to_num(mean - effect["ci_low"].to_numpy(float)),
                      np.nan_to_num(effect["ci_high"].to_numpy(float) - mean)]
            ax.errorbar(at, mean, yerr=spread, fmt="D", color="black", ms=5, capsize=3, zorder=3)
        else:
            means = pd.Series(y).groupby(index).mean()
            ax.scatter(means.index, means.to_numpy(), marker="D", c="black", s=30, zorder=3)
        ax.set_xticks(range(len(order)), order, fontsize=7, rotation=30 if max(map(len, order)) > 4 else 0)
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3)


def plot_effects(rep: Report, colours: Colours, path: Path) -> str | None:
    """A panel per varied parameter: the metric of every trial against the parameter's value, the means with their
    95% intervals, and the parameter's importance with its bootstrap interval where there is one."""
    from sweeper.report.analysis import effects_of, importance_of

    params = varied_params(rep)
    y = pd.to_numeric(rep.trials[rep.metric], errors="coerce")
    have = y.notna().to_numpy()
    if not params:
        return "no parameter varies"
    if not have.any():
        return f"no trial has reported {rep.metric} yet"
    effects = effects_of(rep)
    imp = importance_of(rep).rows
    found = {} if imp is None else {r["param"]: r for r in imp.to_dict("records")}
    plt = _plt()
    ncols = min(3, len(params))
    nrows = -(-len(params) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(EFFECT_PANEL[0] * ncols, EFFECT_PANEL[1] * nrows), dpi=DPI,
                             squeeze=False)
    dots = np.zeros(len(have), dtype=bool)
    dots[sample(rep, MAX_POINTS)] = True
    for ax, name in zip(axes.flat, params, strict=False):
        r = found.get(name)
        title = name if r is None else f"{name}: importance {r['importance']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"
        _effect_panel(ax, rep.trials[name][have].reset_index(drop=True), y[have].to_numpy(),
                      colours.rgba[have], title, dots[have], effects.get(name))
    for ax in axes.flat[len(params):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(rep.metric)
    fig.suptitle(f"Effect of each varied parameter on {rep.metric}\n(a dot per trial; black: mean and 95% t interval "
                 f"of the trials that ran their whole protocol)", fontsize=9)
    inch_w, inch_h = fig.get_size_inches()  # fixed margins: tight_layout costs a second on a dozen panels
    fig.subplots_adjust(left=0.8 / inch_w, right=1 - 0.2 / inch_w, bottom=0.8 / inch_h, top=1 - 0.8 / inch_h,
                        wspace=0.3, hspace=0.65)
    _save(fig, path, tight=False)
    return None


def _save(fig: Any, path: Path, tight: bool = True) -> None:
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    _plt().close(fig)


def plots(rep: Report) -> list[tuple[str, str, Any]]:
    """(file name, caption, drawing function) of each plot; the final score's is named after it (test_accuracy.png,
    test_f1.png)."""
    final = final_metric(rep.metric, rep.trials.columns)
    return [
        ("learning_curves.png", f"{spelled(curve_metric(rep.metric))} per epoch, one line a trial", plot_curves),
        (f"{final}.png", f"{spelled(final)} per variant (or model, or varied key), beside the study's reference "
         "where there is one", plot_test_accuracy),
        ("effects.png", "effect of each varied parameter on the metric, means with 95% intervals", plot_effects),
    ]


def write_plots(rep: Report, out: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw every plot there is data for into out; ((file name, caption) written, notes on those skipped)."""
    written: list[tuple[str, str]] = []
    skipped: list[str] = []
    if rep.trials.empty:
        for name, _, _ in plots(rep):
            (out / name).unlink(missing_ok=True)
        return written, ["no trials to plot"]
    colours = Colours(rep)
    for name, caption, draw in plots(rep):
        why_not = draw(rep, colours, out / name)
        if why_not:
            (out / name).unlink(missing_ok=True)  # not a stale one from an earlier report in the same folder
            skipped.append(f"{name} not drawn: {why_not}")
        else:
            written.append((name, caption))
    return written, skipped
