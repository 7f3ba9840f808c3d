"""The HTML report's interactive figures (plotly), in the page's order: configurations and reference numbers with
their 95% intervals as error bars (the answer's own), parameters against the metric in parallel coordinates, learning
curves, parameter importance with its bootstrap interval, and each parameter's marginal effect with an interval band.

Each builder returns a plotly Figure, or None when there is nothing to draw. Figures cover every trial that passes
--where (learning curves: plot_data.py's sample of a big sweep). Parallel coordinates draw one line per trial with a
value of the metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.analysis import configurations, effects_of, headline_of, importance_of
from sweeper.report.frame import Report
from sweeper.report.importance import varied
from sweeper.report.metrics import curve_metric, spelled
from sweeper.report.plot_data import MAX_CURVES, categories, colour_key, curve_points, sample
from sweeper.report.sections import LABELS
from sweeper.report.stats import BEST, TIED, WORSE

MARK_COLOURS = {BEST: "#1a9850", TIED: "#4575b4", WORSE: "#d73027"}
OTHER = "#7f7f7f"
TICKS_MAX = 12  # a numeric axis with more distinct values is drawn continuous


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _palette(n: int) -> list[str]:
    from plotly.colors import qualitative

    colours = qualitative.Plotly if n <= 10 else qualitative.Alphabet
    return [colours[i % len(colours)] for i in range(n)]


def _dimension(name: str, values: pd.Series) -> dict[str, Any]:
    """A parallel-coordinates axis: numbers as they are (log10 when they span 100x), anything else as codes."""
    numbers = pd.to_numeric(values, errors="coerce")
    if values.notna().all() and numbers.notna().all() and not pd.api.types.is_bool_dtype(values):
        x = numbers.to_numpy(float)
        if x.min() > 0 and x.max() / x.min() >= 100:
            return {"label": f"{name} (log10)", "values": np.log10(x)}
        distinct = np.unique(x)
        if len(distinct) <= TICKS_MAX:
            return {"label": name, "values": x, "tickvals": distinct, "ticktext": [f"{v:g}" for v in distinct]}
        return {"label": name, "values": x}
    text = values.astype(object).where(values.notna(), "-").map(str)
    order = sorted(text.unique())
    return {"label": name, "values": text.map({v: i for i, v in enumerate(order)}).to_numpy(float),
            "tickvals": list(range(len(order))), "ticktext": order}


def parallel_coordinates(rep: Report) -> Any:
    """One line per trial with a value of the metric: its varied parameters, then the metric (also the colour)."""
    t = rep.trials.iloc[rep.trial_order]
    value = pd.to_numeric(t[rep.metric], errors="coerce")
    t, value = t[value.notna()], value[value.notna()]
    if t.empty:
        return None
    dims = [_dimension(p, t[p]) for p in varied(t, rep.trial_params)]
    dims.append({"label": rep.metric, "values": value.to_numpy(float)})
    go = _go()
    fig = go.Figure(go.Parcoords(line={"color": value.to_numpy(float), "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": {"text": rep.metric}}}, dimensions=dims))
    fig.update_layout(title=f"Parameters against {rep.metric}: one line per trial ({len(t)})", height=480)
    return fig


def learning_curves(rep: Report) -> Any:
    """The curve metric (val accuracy, or the sweep's own) per epoch, a line per trial (plot_data.py's sample of a
    big sweep), coloured as the PNG is."""
    drawn = sample(rep, MAX_CURVES)
    points = curve_points(rep, drawn)
    if points is None:
        return None
    pos, x, y = points
    key = colour_key(rep)
    cats = categories(rep, key)
    codes = pd.Categorical(rep.trials[key], categories=cats).codes if key else np.full(len(rep.trials), -1)
    point_codes = np.asarray(codes)[pos]
    ids = rep.trials["trial_id"].astype(str).to_numpy()
    go = _go()
    fig = go.Figure()
    for k, (cat, colour) in enumerate(zip([*cats, None], [*_palette(len(cats)), OTHER], strict=True)):
        mine = np.flatnonzero(point_codes == (k if cat is not None else -1))
        if not len(mine):
            continue
        xs: list[Any] = []
        ys: list[Any] = []
        text: list[Any] = []
        for run in np.split(mine, np.flatnonzero(np.diff(pos[mine])) + 1):  # one line per trial, None between
            xs += [*x[run].tolist(), None]
            ys += [*y[run].tolist(), None]
            text += [ids[pos[run[0]]]] * len(run) + [None]
        name = str(cat) if cat is not None else "other" if cats else "trials"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                                 line={"color": colour, "width": 1}, hovertext=text, hoverinfo="text+x+y"))
    name = spelled(curve_metric(rep.metric))
    fig.update_layout(title=f"Learning curves: {name} per epoch ({len(np.unique(pos))} trials)",
                      xaxis_title="epoch", yaxis_title=name, height=480)
    return fig


def _error_bars(fig: Any, frame: pd.DataFrame, name: str, colour: Any, y: str = "label") -> None:
    go = _go()
    fig.add_trace(go.Scatter(
        x=frame["mean"], y=frame[y], mode="markers", name=name, marker={"color": colour, "size": 8},
        error_x={"type": "data", "symmetric": False, "array": (frame["ci_high"] - frame["mean"]).fillna(0),
                 "arrayminus": (frame["mean"] - frame["ci_low"]).fillna(0)},
        hovertext=[f"n={n}" for n in frame["n"]]))


def configuration_intervals(rep: Report) -> Any:
    """Each configuration's mean with its 95% interval, coloured by how it compares with the best."""
    if not rep.comparison.replicated:
        return None
    configs, _ = configurations(rep)
    configs = configs.iloc[::-1]  # best at the top
    go = _go()
    fig = go.Figure()
    for mark in (BEST, TIED, WORSE, "untested"):
        part = configs[configs["mark"] == mark]
        if len(part):
            _error_bars(fig, part, mark, MARK_COLOURS.get(mark, OTHER))
    fig.update_layout(title=f"{rep.metric} per configuration: mean and 95% t interval (n in the hover)",
                      xaxis_title=rep.metric, height=max(300, 120 + 24 * len(configs)))
    _rows_in_order(fig, configs["label"])
    return fig


def _rows_in_order(fig: Any, labels: pd.Series) -> None:
    """Every label on the y axis, in the frame's order from the bottom up (plotly would order them by trace)."""
    fig.update_yaxes(categoryorder="array", categoryarray=list(labels), tickmode="array", tickvals=list(labels))


def reference_intervals(rep: Report) -> Any:
    """Per variant with a reference: our headline metric with its 95% interval, and the study's number."""
    ref = rep.references
    if ref is None or ref.empty:
        return None
    top = ref[ref["metric"] == headline_of(rep, list(dict.fromkeys(ref["metric"])))]
    top = top.iloc[::-1].assign(label=lambda f: f["variant"].astype(str))
    go = _go()
    fig = go.Figure()
    _error_bars(fig, top, "ours (mean, 95% interval)", "#4575b4")
    fig.add_trace(go.Scatter(x=top["ref"], y=top["label"], mode="markers", name="the study",
                             marker={"symbol": "x", "size": 10, "color": "black"}))
    name = LABELS.get(top["metric"].iloc[0], top["metric"].iloc[0])
    fig.update_layout(title=f"{name}: ours against the study's", xaxis_title=name, height=max(300, 120 + 24 * len(top)))
    _rows_in_order(fig, top["label"])
    return fig


def importance_figure(rep: Report) -> Any:
    imp = importance_of(rep)
    if imp.rows is None:
        return None
    rows = imp.rows.iloc[::-1]
    go = _go()
    fig = go.Figure(go.Scatter(
        x=rows["importance"], y=rows["param"], mode="markers", marker={"size": 9},
        error_x={"type": "data", "symmetric": False, "array": rows["high"] - rows["importance"],
                 "arrayminus": rows["importance"] - rows["low"]}))
    fig.update_layout(title=f"Parameter importance for {imp.metric} (PED-ANOVA) with 95% bootstrap intervals",
                      xaxis_title="importance (unnormalised)", height=max(280, 40 + 32 * len(rows)))
    return fig


def effects_figure(rep: Report) -> Any:
    """A panel per varied parameter: the metric's mean per value with its 95% interval (a band for numbers)."""
    from plotly.subplots import make_subplots

    effects = effects_of(rep)
    if not effects:
        return None
    imp = importance_of(rep)
    found = {} if imp.rows is None else {r["param"]: r for r in imp.rows.to_dict("records")}
    titles = [p + (f" (importance {found[p]['importance']:.2f} [{found[p]['low']:.2f}, {found[p]['high']:.2f}])"
                   if p in found else "") for p in effects]
    cols = min(3, len(effects))
    rows = -(-len(effects) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles)
    go = _go()
    for i, e in enumerate(effects.values()):
        at = {"row": i // cols + 1, "col": i % cols + 1}
        numeric = e["x"].notna().all()
        x = e["x"] if numeric else e["label"]
        if numeric:
            fig.add_trace(go.Scatter(x=list(x) + list(x[::-1]), y=list(e["ci_high"]) + list(e["ci_low"][::-1]),
                                     fill="toself", mode="lines", line={"width": 0}, fillcolor="rgba(69,117,180,0.2)",
                                     showlegend=False, hoverinfo="skip"), **at)
        fig.add_trace(go.Scatter(
            x=x, y=e["mean"], mode="lines+markers" if numeric else "markers", showlegend=False,
            marker={"color": "#4575b4"}, hovertext=[f"n={n}" for n in e["n"]],
            error_y=None if numeric else {"type": "data", "symmetric": False,
                                          "array": (e["ci_high"] - e["mean"]).fillna(0),
                                          "arrayminus": (e["mean"] - e["ci_low"]).fillna(0)}), **at)
    fig.update_layout(title=f"Marginal effect of each parameter on {rep.metric}: mean and 95% t interval per value",
                      height=320 * rows)
    return fig


FIGURES = (  # the answer's own first: configurations and the study's numbers, then how the sweep got there
    ("configurations", configuration_intervals),
    ("reference", reference_intervals),
    ("parcoords", parallel_coordinates),
    ("curves", learning_curves),
    ("importance", importance_figure),
    ("effects", effects_figure),
)
