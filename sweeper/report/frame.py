"""The sweeps' trials (sources.py) -> one frame, filtered, grouped and sorted, with the study's reference numbers
beside the reproduction: the Report every renderer (sections.py, terminal.py, files.py, plots.py) draws from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from sweeper.errors import SweeperError, did_you_mean
from sweeper.report.sources import Sweep, read_sweep, resolve_sweeps
from sweeper.spec.metrics import METRICS
from sweeper.store.schema import PARAM_PREFIX, TRIAL_SCHEMA
from sweeper.store.storage import Storage
from sweeper.store.trials import TrialState, best_position, ended

MODEL_ORDER = ("logreg", "mlp", "cnn")


@dataclass
class Report:
    """Everything the renderers need; frames use bare parameter names (the `param_` prefix dropped)."""

    sweeps: list[Sweep]
    trials: pd.DataFrame  # every trial that passes --where, in file order
    table: pd.DataFrame  # what the tables are made of: trials, or groups with --group-by (in any order)
    rows: pd.DataFrame  # the rows shown: from table, in report order, after --top (or the terminal's cap)
    params: list[str]  # parameter columns of `table`, in file order
    trial_params: list[str]  # parameter columns of `trials`
    trial_order: np.ndarray  # positions of `trials` in report order (for files of every trial)
    order: np.ndarray  # positions of `table` in report order
    metric: str
    mode: str
    group_by: list[str] = field(default_factory=list)
    references: pd.DataFrame | None = None  # per variant: ref_<m>, <m> (mean), <m>_std, delta_<m>, n, epochs
    where: str | None = None
    sort_by: str | None = None
    notes: list[str] = field(default_factory=list)
    shown_best: bool = False  # rows are the best few of `table` (the terminal's cap), in table order

    @cached_property
    def param_codes(self) -> dict[str, tuple[np.ndarray, int]]:
        """Per parameter column of `table`: its values as integer codes (missing is a value too) and how
        many distinct values there are; what deciding varied and fixed columns needs, computed once."""
        out = {}
        for p in self.params:
            if p in self.table:
                codes, uniques = pd.factorize(self.table[p], use_na_sentinel=False)
                out[p] = (codes, len(uniques))
        return out

    @property
    def best(self) -> Any:
        """Index label of the best shown row (store/trials.py's rule), or None."""
        if self.metric not in self.rows:
            return None
        values = pd.to_numeric(self.rows[self.metric], errors="coerce").tolist()
        states = self.rows["state"].tolist() if "state" in self.rows else None
        i = best_position(values, self.mode, states)
        return None if i is None else self.rows.index[i]


# ---- all sweeps as one frame ----------------------------------------------------------------------------------

def end_labels(state: pd.Series, stopped_by: pd.Series) -> pd.Series:
    """How each trial ended (store/trials.py's Ended), as the `end` column shows it."""
    labels = [ended(s, b).value for s, b in zip(state.tolist(), stopped_by.tolist(), strict=True)]
    return pd.Series(labels, index=state.index, dtype=object)


def combine(sweeps: list[Sweep]) -> tuple[pd.DataFrame, list[str]]:
    """One frame of every sweep's trials with a `sweep` column and bare parameter names; the parameter list."""
    frames = [s.trials.assign(sweep=s.name) for s in sweeps]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    for col in TRIAL_SCHEMA.names:
        if col not in df:
            df[col] = None
    taken = set(df.columns)
    rename = {c: c.removeprefix(PARAM_PREFIX) for c in df.columns
              if c.startswith(PARAM_PREFIX) and c.removeprefix(PARAM_PREFIX) not in taken}
    params = [rename.get(c, c) for c in df.columns if c.startswith(PARAM_PREFIX)]
    df = df.rename(columns=rename)
    df["end"] = end_labels(df["state"], df["stopped_by"])
    return df, params


def apply_where(df: pd.DataFrame, expr: str, params: list[str]) -> pd.DataFrame:
    """Rows for which the pandas expression holds; parameters may be named with or without `param_`."""
    resolvers = [{PARAM_PREFIX + p: df[p] for p in params if p in df}]
    try:
        mask = df.eval(expr, engine="python", resolvers=resolvers)
    except pd.errors.UndefinedVariableError as exc:
        name = str(exc).split("'")[1] if "'" in str(exc) else ""
        hint = did_you_mean(name, [c for c in df.columns if not c.startswith("_")]) if name else ""
        raise SweeperError(f"--where {expr!r}: unknown column {name!r}{hint}") from None
    except Exception as exc:  # pandas raises many kinds for a bad expression; all are the user's input
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise SweeperError(f"--where {expr!r}: not a valid pandas condition over the trial columns: {first}") from None
    if not isinstance(mask, pd.Series) or mask.dtype != bool:
        raise SweeperError(f"--where {expr!r}: must be a true/false condition such as "
                           f"\"filters >= 32 and end == 'completed'\", but it gives {type(mask).__name__}")
    return df[mask]


def _column(df: pd.DataFrame, name: str, option: str) -> str:
    col = name.strip().replace(" ", "_").removeprefix(PARAM_PREFIX)  # the terminal shows "kernel size"
    if col not in df.columns or col.startswith("_"):
        shown = [c for c in df.columns if not c.startswith("_")]
        raise SweeperError(f"{option} {name!r}: no such column{did_you_mean(col, shown)}; columns: {', '.join(shown)}")
    return col


def group(df: pd.DataFrame, keys: list[str], params: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """One row per combination of `keys`: metrics as mean and <m>_std over the n finished trials, how all ended."""
    keys = [_column(df, k, "--group-by") for k in keys]
    bad = [k for k in keys if k in METRICS or k in ("wall_s", "epochs", "trial_id")]
    if bad:
        raise SweeperError(f"--group-by {bad[0]!r}: group by parameters (or variant, sweep, end), not a measured "
                           f"column")
    gid = df.groupby(keys, dropna=False, sort=False).ngroup()
    g = df.groupby(gid)
    candidates = [c for c in ("sweep", "variant", *params) if c in df and c not in keys]
    unique = g[candidates].nunique(dropna=False) if candidates else pd.DataFrame(index=g.size().index)
    kept = [c for c in candidates if (unique[c] <= 1).all()]
    out = g[keys + kept].first()
    done = df["state"].eq(TrialState.TERMINATED)  # errors and unfinished trials show in `end`, not in the means
    out["n"] = done.groupby(gid).sum()
    values = numeric(df, [*METRICS, "epochs", "wall_s"]).where(done, axis=0)
    means, stds = values.groupby(gid).mean(), values[list(METRICS)].groupby(gid).std()
    out = out.join(means).join(stds.add_suffix("_std"))
    ends = pd.crosstab(gid, df["end"])
    parts = [np.where(ends[c] > 0, ends[c].astype(str) + f" {c}", "") for c in ends.columns]
    out["end"] = pd.Series([", ".join(p for p in row if p) for row in zip(*parts, strict=True)], index=ends.index)
    return out.reset_index(drop=True), [p for p in params if p in keys or p in kept]


def _metric_values(df: pd.DataFrame, metric: str, mode: str) -> np.ndarray:
    """The metric as floats, negated where higher is better, so ascending is best first and NaN last."""
    value = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return -value if mode == "max" else value


def sort_order(df: pd.DataFrame, sort_by: str | None, metric: str, mode: str, variants: list[str]) -> np.ndarray:
    """Row positions in report order: --sort-by COL (a leading '-' reverses; metrics sort best first), else
    the spec's variant order, then the metric best first."""
    if sort_by:
        col = _column(df, sort_by.lstrip("-"), "--sort-by")
        ascending = ("accuracy" not in col) != sort_by.startswith("-")  # accuracies best (highest) first
        values = df[col].reset_index(drop=True)
        try:
            ordered = values.sort_values(ascending=ascending, na_position="last", kind="stable")
        except TypeError:  # mixed types in one column
            ordered = values.sort_values(ascending=ascending, na_position="last", kind="stable",
                                         key=lambda v: v.astype(str))
        return ordered.index.to_numpy()
    keys = [_metric_values(df, metric, mode)]
    if variants and "variant" in df:
        rank = pd.Categorical(df["variant"], categories=list(dict.fromkeys(variants))).codes
        keys.append(np.where(rank < 0, len(variants), rank))
    return np.lexsort(keys)  # stable; the last key is the primary one


def pick(df: pd.DataFrame, order: np.ndarray, metric: str, mode: str, best: int) -> np.ndarray:
    """The `best` rows by the metric, as positions in report order."""
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    chosen = np.argsort(_metric_values(df, metric, mode), kind="stable")[:best]
    return order[np.sort(rank[chosen])]


def numeric(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """These columns as floats (a column of only nulls may have come back as objects)."""
    out = df[cols]
    odd = [c for c in cols if not pd.api.types.is_numeric_dtype(out[c])]
    return out.astype({c: float for c in odd}) if odd else out


def reference_table(df: pd.DataFrame, sweeps: list[Sweep]) -> pd.DataFrame | None:
    """Per variant with reference numbers: the reference, the reproduction (mean over finished trials), delta."""
    rows = []
    for s in sweeps:
        if not s.references:
            continue
        mine = df["sweep"].eq(s.name).to_numpy() if len(sweeps) > 1 else np.ones(len(df), dtype=bool)
        codes, names = pd.factorize(df["variant"])
        present = set(names[np.unique(codes[mine & (codes >= 0)])])
        done = mine & df["state"].eq(TrialState.TERMINATED).to_numpy() & (codes >= 0)
        by_variant = numeric(df, [*METRICS, "epochs"])[done].groupby(codes[done])
        means, stds = by_variant.mean().to_dict("index"), by_variant.std().to_dict("index")
        counts = by_variant.size().to_dict()
        index = {name: i for i, name in enumerate(names)}
        for variant, ref in s.references.items():
            if variant not in present:
                continue
            i = index[variant]
            mean, std = means.get(i, {}), stds.get(i, {})
            row: dict[str, Any] = {"sweep": s.name, "variant": variant, "n": counts.get(i, 0),
                                   "epochs": mean.get("epochs", np.nan)}
            for m in METRICS:
                row |= {f"ref_{m}": ref.get(m, np.nan), m: mean.get(m, np.nan), f"{m}_std": std.get(m, np.nan),
                        f"delta_{m}": mean.get(m, np.nan) - ref.get(m, np.nan)}
            rows.append(row)
    return pd.DataFrame(rows) if rows else None


def with_references(df: pd.DataFrame, sweeps: list[Sweep]) -> pd.DataFrame:
    """Trials plus ref_<m> and delta_<m> columns for trials of a variant with reference numbers."""
    if not any(s.references for s in sweeps):
        return df
    out = df.copy()
    for m in METRICS:
        ref = pd.Series(np.nan, index=df.index)
        for s in sweeps:
            mine = df["sweep"].eq(s.name)
            values = {v: r[m] for v, r in s.references.items() if m in r}
            ref[mine] = df.loc[mine, "variant"].map(values)
        out[f"ref_{m}"] = ref.astype(float)
        out[f"delta_{m}"] = pd.to_numeric(df[m], errors="coerce") - out[f"ref_{m}"]
    return out


def build_report(
    args: list[str], storage: Storage, *, where: str | None = None, sort_by: str | None = None,
    top: int | None = None, group_by: list[str] | None = None, best: int | None = None,
) -> Report:
    """Read the sweeps and shape the report; raises SweeperError for anything the user got wrong.

    `top` keeps the first rows in report order; `best` (the terminal's cap, used without --top) keeps the
    best rows by the metric, in report order, or the first ones when --sort-by chose the order.
    """
    sweeps, notes = [], []
    for name, folder in resolve_sweeps(args, storage):
        sweep = read_sweep(name, folder)
        if sweep.trials.empty:
            notes.append(f"{name}: no trials recorded yet in {folder}")
            continue
        sweeps.append(sweep)
        if sweep.note:
            notes.append(sweep.note)
        if sweep.description:
            notes.append(f"{name}: {sweep.description}")
    if not sweeps:
        raise SweeperError(f"no results: {'; '.join(notes)}")
    metric, mode = sweeps[0].metric, sweeps[0].mode
    if len({(s.metric, s.mode) for s in sweeps}) > 1:
        notes.append(f"the sweeps optimise different metrics; best and default order use {metric} ({mode})")
    trials, params = combine(sweeps)
    if where:
        trials = apply_where(trials, where, params)
    variants = list(dict.fromkeys(v for s in sweeps for v in s.variants))
    trial_order = sort_order(trials, None if group_by else sort_by, metric, mode, variants)
    table, shown_params, order = trials, params, trial_order
    if group_by:
        table, shown_params = group(trials, group_by, params)
        order = sort_order(table, sort_by, metric, mode, variants)
    rep = Report(sweeps=sweeps, trials=trials, table=table, rows=table.iloc[:0], params=shown_params,
                 trial_params=params, trial_order=trial_order, order=order, metric=metric, mode=mode,
                 group_by=list(group_by or []), references=reference_table(trials, sweeps), where=where,
                 sort_by=sort_by, notes=notes)
    return capped(rep, order[:top] if top else None, None if top else best)


def capped(rep: Report, chosen: np.ndarray | None = None, best: int | None = None) -> Report:
    """The report showing the rows at positions `chosen` of its table, else at most `best` rows (the
    terminal's default; files get every row): the best by the metric kept in report order, so no variant is
    cut off just for coming late in the spec; with --sort-by, simply the first."""
    shown_best = False
    if chosen is None:
        if best is None or len(rep.order) <= best:
            chosen = rep.order
        elif rep.sort_by:
            chosen = rep.order[:best]
        else:
            chosen, shown_best = pick(rep.table, rep.order, rep.metric, rep.mode, best), True
    return dataclasses.replace(rep, rows=rep.table.iloc[chosen], shown_best=shown_best)
