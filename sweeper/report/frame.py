"""The sweeps' trials (sources.py) -> one frame, filtered, grouped and sorted, with the study's reference numbers
beside the reproduction: the Report every renderer (sections.py, terminal.py, markdown_csv.py, html.py,
png_plots.py) draws from.

Which rows a report shows, for every format alike: the trials that have a value of the sweep's metric (or have
ended), best first by store/trials.py's rule (a running trial by its latest value; failed trials after those
that count for "best", trials without a value last); `--sort-by` overrides that order. Trials that have not
reported yet (pending, or running or interrupted before their first result) are not rows: they are counted,
per variant, in one line, with the trials the spec plans that trials.parquet does not hold yet. `--top N` and
the terminal's cap keep the first N rows of that order: the N best.

Every report also compares configurations (stats.py) over the trials that pass --where; where some have
replicates, each trial (and each group that is one configuration) gets a `vs_best` column.

Its metric columns are the sweeps' (report/metrics.py): the standard six, then those the spaces declare with their
test counterparts; every table, group and sort treats them alike.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from sweeper.errors import SweeperError, did_you_mean
from sweeper.report.metrics import merged_modes
from sweeper.report.sources import Sweep, read_sweep, resolve_sweeps
from sweeper.report.stats import Comparison, compare_configurations, half_widths, reference_rows
from sweeper.spec.metrics import METRICS, mode_of
from sweeper.store.schema import PARAM_PREFIX, TRIAL_SCHEMA
from sweeper.store.storage import Storage
from sweeper.store.trials import Ended, TrialState, best_position, ended

MODEL_ORDER = ("logreg", "mlp", "cnn")


@dataclass
class Report:
    """Everything the renderers need; frames use bare parameter names (the `param_` prefix dropped)."""

    sweeps: list[Sweep]
    trials: pd.DataFrame  # every trial that passes --where, in file order
    table: pd.DataFrame  # what the tables are made of: trials that reported, or their groups (--group-by)
    rows: pd.DataFrame  # the rows shown: from table, in report order, after --top (or the terminal's cap)
    params: list[str]  # parameter columns of `table`, in file order
    trial_params: list[str]  # parameter columns of `trials`
    trial_order: np.ndarray  # positions of `trials` in report order (for files of every trial)
    order: np.ndarray  # positions of `table` in report order
    metric: str
    mode: str
    comparison: Comparison  # configurations, their intervals, which are tied with the best (stats.py)
    group_by: list[str] = field(default_factory=list)
    references: pd.DataFrame | None = None  # per variant and metric: ref, mean, 95% interval, n, delta, verdict
    where: str | None = None
    sort_by: str | None = None
    notes: list[str] = field(default_factory=list)
    waiting: pd.DataFrame | None = None  # trials without a result yet (pending, ...): counted, not rows
    # (sweep, variant) -> trials its spec plans that trials.parquet does not hold yet: pending (not with --where)
    unseen: dict[tuple[str, str | None], int] = field(default_factory=dict)
    cut: bool = False  # rows are the first of `table` in report order (--top, or the terminal's cap)
    cache: dict[str, Any] = field(default_factory=dict)  # slow analyses, shared by the report's capped copies
    modes: dict[str, str] = field(default_factory=lambda: {m: mode_of(m) for m in METRICS})  # metric -> min/max

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric columns, in order: the standard six, then the declared ones and their test counterparts."""
        return tuple(self.modes)

    def cached(self, key: str, compute: Any) -> Any:
        """compute(), once per report (importance and the ASHA audit take seconds, and read epochs.parquet)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @cached_property
    def key_models(self) -> dict[str, set[str]]:
        """Which model families each family key belongs to, the sweeps' own models included."""
        out: dict[str, set[str]] = {}
        for sweep in self.sweeps:
            for key, owners in sweep.key_models.items():
                out.setdefault(key, set()).update(owners)
        return out

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

    @cached_property
    def best(self) -> Any:
        """Index label of the best row of `table` (store/trials.py's rule: ties to the first in file order), or
        None; every renderer marks it where it is shown."""
        if self.metric not in self.table:
            return None
        values = pd.to_numeric(self.table[self.metric], errors="coerce").tolist()
        states = self.table["state"].tolist() if "state" in self.table else None
        i = best_position(values, self.mode, states)
        return None if i is None else self.table.index[i]

    def pending_counts(self) -> dict[Ended, int]:
        """Trials that are not rows, by how they stand (pending first), the planned ones not written yet too."""
        counts: dict[Ended, int] = {}
        if self.waiting is not None:
            for label, n in self.waiting["end"].value_counts(sort=False).items():
                counts[Ended(label)] = int(n)
        unseen = sum(self.unseen.values())
        if unseen:
            counts[Ended.PENDING] = counts.get(Ended.PENDING, 0) + unseen
        return {e: counts[e] for e in (Ended.PENDING, *Ended) if e in counts}

    @property
    def total(self) -> int:
        """Everything the table stands for: its rows (trials or groups) and, for trials, those not shown."""
        return len(self.table) + (0 if self.group_by else sum(self.pending_counts().values()))


# ---- all sweeps as one frame ----------------------------------------------------------------------------------

def end_labels(state: pd.Series, stopped_by: pd.Series) -> pd.Series:
    """How each trial ended (store/trials.py's Ended), as the `end` column shows it."""
    labels = [ended(s, b).value for s, b in zip(state.tolist(), stopped_by.tolist(), strict=True)]
    return pd.Series(labels, index=state.index, dtype=object)


def combine(sweeps: list[Sweep], metrics: tuple[str, ...] = METRICS) -> tuple[pd.DataFrame, list[str]]:
    """One frame of every sweep's trials with a `sweep` column and bare parameter names; the parameter list."""
    frames = [s.trials.assign(sweep=s.name) for s in sweeps]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    for col in TRIAL_SCHEMA.names:
        if col not in df:
            df[col] = None
    for col in metrics:
        if col not in df:
            df[col] = np.nan
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


def group(df: pd.DataFrame, keys: list[str], params: list[str], metrics: tuple[str, ...] = METRICS
          ) -> tuple[pd.DataFrame, list[str]]:
    """One row per combination of `keys`: metrics as mean, <m>_std and <m>_ci (half the 95% t interval) over the n
    finished trials, how all ended; `vs_best` where each group is one configuration."""
    keys = [_column(df, k, "--group-by") for k in keys]
    bad = [k for k in keys if k in metrics or k in ("wall_s", "epochs", "trial_id")]
    if bad:
        raise SweeperError(f"--group-by {bad[0]!r}: group by parameters (or variant, sweep, end), not a measured "
                           f"column")
    gid = df.groupby(keys, dropna=False, sort=False).ngroup()
    g = df.groupby(gid)
    candidates = [c for c in ("sweep", "variant", *params, "vs_best", "_config") if c in df and c not in keys]
    unique = g[candidates].nunique(dropna=False) if candidates else pd.DataFrame(index=g.size().index)
    kept = [c for c in candidates if (unique[c] <= 1).all()]
    if "_config" not in kept:  # a mark of tied configurations only where each group is one configuration
        kept = [c for c in kept if c != "vs_best"]
    out = g[keys + kept].first()
    done = df["state"].eq(TrialState.TERMINATED)  # errors and unfinished trials show in `end`, not in the means
    out["n"] = done.groupby(gid).sum()
    values = numeric(df, [*metrics, "epochs", "wall_s"]).where(done, axis=0)
    means, stds = values.groupby(gid).mean(), values[list(metrics)].groupby(gid).std()
    out = out.join(means).join(stds.add_suffix("_std"))
    counts = values[list(metrics)].groupby(gid).count()
    for m in metrics:
        out[f"{m}_ci"] = half_widths(out[f"{m}_std"], counts[m])
    ends = pd.crosstab(gid, df["end"])
    order = {e.value: i for i, e in enumerate(Ended)}  # Ended's order, as the header counts them
    ends = ends[sorted(ends.columns, key=lambda c: order.get(c, len(order)))]
    parts = [np.where(ends[c] > 0, ends[c].astype(str) + f" {c}", "") for c in ends.columns]
    out["end"] = pd.Series([", ".join(p for p in row if p) for row in zip(*parts, strict=True)], index=ends.index)
    return out.reset_index(drop=True), [p for p in params if p in keys or p in kept]


def _metric_values(df: pd.DataFrame, metric: str, mode: str) -> np.ndarray:
    """The metric as floats, negated where higher is better, so ascending is best first and NaN last."""
    value = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return -value if mode == "max" else value


def sort_order(df: pd.DataFrame, sort_by: str | None, metric: str, mode: str,
               modes: dict[str, str] | None = None) -> np.ndarray:
    """Row positions in report order: --sort-by COL (a leading '-' reverses; metrics sort best first: `modes`
    says which way, else an accuracy is best highest), else the metric best first: failed trials after those
    that count for "best", rows without a value last; ties keep file order (so the first row is
    store/trials.py's best)."""
    if sort_by:
        col = _column(df, sort_by.lstrip("-"), "--sort-by")
        known = modes or {}
        high = known[col] == "max" if col in known else "accuracy" in col
        ascending = (not high) != sort_by.startswith("-")  # accuracies best (highest) first
        values = df[col].reset_index(drop=True)
        try:
            ordered = values.sort_values(ascending=ascending, na_position="last", kind="stable")
        except TypeError:  # mixed types in one column
            ordered = values.sort_values(ascending=ascending, na_position="last", kind="stable",
                                         key=lambda v: v.astype(str))
        return ordered.index.to_numpy()
    value = _metric_values(df, metric, mode)
    failed = df["state"].eq(TrialState.ERROR).to_numpy() if "state" in df else np.zeros(len(df), dtype=bool)
    rank = np.where(np.isnan(value), 2, failed.astype(int))  # counts for best, failed, no value
    return np.lexsort((value, rank))  # stable; the last key is the primary one


def waiting_mask(df: pd.DataFrame, metric: str) -> np.ndarray:
    """Trials that are not rows: not ended for good, and without a value of the metric yet."""
    unfinished = ~df["end"].isin([e.value for e in Ended if e.finished]).to_numpy()
    return unfinished & pd.to_numeric(df[metric], errors="coerce").isna().to_numpy()


def unseen_trials(sweeps: list[Sweep]) -> dict[tuple[str, str | None], int]:
    """Per (sweep, variant): trials the sweep's spec plans that trials.parquet does not hold yet."""
    out: dict[tuple[str, str | None], int] = {}
    for s in sweeps:
        if not s.planned:
            continue
        variants = s.trials["variant"] if "variant" in s.trials else pd.Series(None, index=s.trials.index, dtype=object)
        have: dict[Any, int] = {**variants.dropna().value_counts().to_dict(), None: int(variants.isna().sum())}
        for variant, n in s.planned.items():
            left = n - int(have.get(variant, 0))
            if left > 0:
                out[(s.name, variant)] = left
    return out


def numeric(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """These columns as floats (a column of only nulls may have come back as objects)."""
    out = df[cols]
    odd = [c for c in cols if not pd.api.types.is_numeric_dtype(out[c])]
    return out.astype({c: float for c in odd}) if odd else out


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

    `top` (--top) and `best` (the terminal's cap, used without --top) both keep the first rows in report order:
    the best by the metric, or the first by --sort-by.
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
        if sweep.no_test:
            notes.append(f"{name}: its data source {sweep.no_test} gives no test split, so there are no test scores "
                         "(the test columns are empty)")
    if not sweeps:
        raise SweeperError(f"no results: {'; '.join(notes)}")
    metric, mode = sweeps[0].metric, sweeps[0].mode
    if len({(s.metric, s.mode) for s in sweeps}) > 1:
        notes.append(f"the sweeps optimise different metrics; best and default order use {metric} ({mode})")
    modes: dict[str, str] = dict(merged_modes(s.modes for s in sweeps))
    metrics = tuple(modes)
    trials, params = combine(sweeps, metrics)
    if where:
        trials = apply_where(trials, where, params)
    comparison = compare_configurations(trials, params, metric, mode)
    if comparison.replicated:  # every table marks whether a row's configuration is tied with the best
        trials = trials.assign(vs_best=comparison.marks(), _config=comparison.codes)
    waiting = waiting_mask(trials, metric)
    reported = trials[~waiting] if waiting.any() else trials
    trial_order = sort_order(trials, None if group_by else sort_by, metric, mode, modes)
    table, shown_params = reported, params
    if group_by:
        table, shown_params = group(reported, group_by, params, metrics)
    order = sort_order(table, sort_by, metric, mode, modes)
    rep = Report(sweeps=sweeps, trials=trials, table=table, rows=table.iloc[:0], params=shown_params,
                 trial_params=params, trial_order=trial_order, order=order, metric=metric, mode=mode,
                 comparison=comparison, group_by=list(group_by or []),
                 references=reference_rows(trials, sweeps, comparison, METRICS), where=where,
                 sort_by=sort_by, notes=notes, waiting=trials[waiting],
                 unseen={} if where else unseen_trials(sweeps), modes=modes)
    return capped(rep, best=top or best)


def capped(rep: Report, chosen: np.ndarray | None = None, best: int | None = None) -> Report:
    """The report showing the rows at positions `chosen` of its table, else its first `best` rows in report
    order (the N best, or the first N by --sort-by), else every row."""
    if chosen is None:
        chosen = rep.order if best is None else rep.order[:best]
    return dataclasses.replace(rep, rows=rep.table.iloc[chosen], cut=len(chosen) < len(rep.order))
