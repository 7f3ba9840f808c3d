"""A Report -> sections of formatted cells (what the terminal, Markdown and HTML tables show) and the lines
around them. Every format shows the same sections, columns in the same order and the same rows; only the
terminal drops columns it has no room for (terminal.py), from the end of that order.

Columns, in the order a reader needs them (which is also the order they are dropped in, from the end):
  1. who: the sweep (several sweeps), the variant, the trial id (without the prefix all ids share), or the
     --group-by keys;
  2. the parameters that vary within the table: the spec's searched axes first, in its order, then others that
     vary (without a spec, every parameter that varies);
  3. how the trial ended and its epochs (groups: n, then how their trials ended); where configurations have
     replicates, whether the row's configuration is the best, indistinguishable from it (≈), worse or untested
     (stats.py; for groups only when each group is one configuration);
  4. the sweep's metric, its test counterpart, the other validation and test metrics, the other declared metrics
     (a space's `metrics:`), the train metrics, and wall time.
Parameters that do not vary are not columns: one constant in the whole report is in the "fixed:" header line;
one constant within a model family's section in a note above it; one that each variant fixes (constant within
each variant, different between them) in one line per variant ("4th CNN: conv_layers=2, filters=32"); one
that follows a searched axis (lr, when it is each optimizer's default) in a note ("lr follows optimizer: ...").
Tables are split per model family when a report mixes them. The best row (store/trials.py's rule) is starred.
Groups show each metric as mean±half its 95% t interval. The lines around the tables (header, pending trials,
errors, footer) are header_footer.py's; the tables of the statistics (configurations, references, importance, ASHA
audit) analysis.py's.
"""

from __future__ import annotations

import math
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.frame import MODEL_ORDER, Report
from sweeper.spec.metrics import METRICS, test_counterpart
from sweeper.spec.params import applies

LABELS = {
    "train_loss": "train loss", "val_loss": "val loss", "test_loss": "test loss", "train_accuracy": "train acc",
    "val_accuracy": "val acc", "test_accuracy": "test acc", "wall_s": "wall s", "trial_id": "trial",
    "end": "ended", "vs_best": "vs best",
}
STAR = "★"
MISSING = "-"
ERRORS_SHOWN = 20
VARIANTS_SHOWN = 40  # per-variant lines above one table; more are summed up in one line


def label(col: str) -> str:
    """A column's header: metrics abbreviated, parameters with spaces so a narrow column may wrap them."""
    return LABELS.get(col, col.replace("_", " "))


def metric_priority(metric: str, metrics: Collection[str] = METRICS) -> list[str]:
    """The metrics in the order a reader needs them: the sweep's metric, its test counterpart, the other
    standard validation and test metrics, the other declared metrics (each beside its test counterpart), then
    the standard train metrics (the metric's kind first; a declared metric's kind is accuracy's)."""
    standard = metric if metric in METRICS else "val_accuracy"
    split, _, kind = standard.partition("_")
    other = "loss" if kind == "accuracy" else "accuracy"
    splits = [split, *(s for s in ("val", "test", "train") if s != split)]
    held_out = [s for s in splits if s != "train"]
    lead = [metric, test_counterpart(metric) or metric]
    own = [m for m in metrics if m not in METRICS]
    order = [*lead, *(f"{s}_{k}" for k in (kind, other) for s in held_out), *own, f"train_{kind}", f"train_{other}"]
    return [m for m in dict.fromkeys(order) if m in metrics]


@dataclass
class Section:
    """One table: header labels, formatted cells, which row is the best, lines printed above it."""

    title: str
    keys: list[str]  # frame columns, in priority order (the terminal drops from the end)
    columns: list[str]  # header labels
    cells: list[list[str]]
    right: list[bool]  # right-align (numbers)
    best: int | None = None
    notes: list[str] = field(default_factory=list)  # lines above the table
    variants: list[str] = field(default_factory=list)  # one line per variant: the keys it fixes
    keep: list[str] = field(default_factory=list)  # keys never dropped for width
    priority: list[str] | None = None  # the order to drop columns in, from the end (default: keys)

    def starred(self) -> list[list[str]]:
        """Cells with the best row's first cell marked."""
        if self.best is None:
            return self.cells
        rows = [list(r) for r in self.cells]
        rows[self.best][0] = f"{STAR} {rows[self.best][0]}"
        return rows

    def without(self, drop: set[str]) -> Section:
        keep = [i for i, k in enumerate(self.keys) if k not in drop]
        return replace(self, keys=[self.keys[i] for i in keep], columns=[self.columns[i] for i in keep],
                       cells=[[row[i] for i in keep] for row in self.cells], right=[self.right[i] for i in keep],
                       priority=None if self.priority is None else [k for k in self.priority if k not in drop])


def isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def fmt_value(v: Any, col: str = "", metrics: Collection[str] = METRICS) -> str:
    """A cell: metrics (`metrics`: the report's) and reference numbers to 4 decimals."""
    if isna(v):
        return MISSING
    if col.startswith("delta_"):
        return f"{v:+.4f}"
    if col in metrics or col in METRICS or col.startswith("ref_"):
        return f"{v:.4f}"
    if col == "wall_s":
        return f"{v:.1f}"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.4g}"
    return str(v)


def id_prefix(rep: Report) -> str:
    """The prefix every trial id of the table shares, up to its last '_' (Ray's `<experiment>_`), or ''."""
    if rep.group_by or "trial_id" not in rep.table or rep.table.empty:
        return ""
    ids = [str(t) for t in rep.table["trial_id"].tolist()]
    common = os.path.commonprefix(ids)
    return common[: common.rfind("_") + 1]


def fmt_column(df: pd.DataFrame, col: str, prefix: str = "", metrics: Collection[str] = METRICS) -> list[str]:
    """A column's cells; a metric with a <m>_ci column beside it (groups) shows mean±half its 95% interval (else
    mean±std with a <m>_std column); trial ids lose `prefix`."""
    if col == "epochs" and "n" in df:  # a mean over trials
        return [MISSING if isna(v) else f"{v:.1f}".removesuffix(".0") for v in df[col].tolist()]
    if col == "trial_id" and prefix:
        return [str(v).removeprefix(prefix) for v in df[col].tolist()]
    values = [fmt_value(v, col, metrics) for v in df[col].tolist()]
    spread = f"{col}_ci" if f"{col}_ci" in df else f"{col}_std"
    if spread in df:
        stds = df[spread].tolist()
        values = [v if isna(s) or v == MISSING else f"{v}±{s:.4f}" for v, s in zip(values, stds, strict=True)]
    return values


def fixed_text(df: pd.DataFrame, cols: list[str]) -> str:
    return ", ".join(f"{c}={fmt_value(df[c].iloc[0], c)}" for c in cols)


def _is_number(s: pd.Series) -> bool:
    """Right-align it? Numbers, also in an object column (ints beside a sweep that lacks the key)."""
    if pd.api.types.is_bool_dtype(s):
        return False
    return pd.api.types.is_numeric_dtype(s) or pd.api.types.infer_dtype(s, skipna=True) in (
        "integer", "floating", "mixed-integer-float", "decimal")


def _dedupe(cols: list[str]) -> list[str]:
    return list(dict.fromkeys(cols))


def _models(df: pd.DataFrame) -> list[str]:
    if "model" not in df:
        return []
    found = [str(m) for m in df["model"].dropna().unique()]
    return [m for m in MODEL_ORDER if m in found] + [m for m in found if m not in MODEL_ORDER]


@dataclass
class _Part:
    """The rows of one table section: a model family (or everything), as a mask over rep.table."""

    model: str | None
    mask: np.ndarray  # bool per row of rep.table
    rows: pd.DataFrame  # its shown rows

    def first(self, table: pd.DataFrame, col: str) -> Any:
        return table[col].iloc[int(np.argmax(self.mask))]


def _split(rep: Report) -> list[_Part]:
    """One part per model family when they are mixed (their columns differ), else one for everything."""
    table, rows = rep.table, rep.rows
    models = _models(table)
    if len(models) <= 1 or table["model"].isna().any():
        return [_Part(models[0] if models else None, np.ones(len(table), dtype=bool), rows)]
    model = table["model"].to_numpy()
    return [_Part(m, model == m, rows[rows["model"].eq(m)]) for m in models]


def global_fixed(rep: Report) -> list[str]:
    models = set(_models(rep.table))
    return [p for p, (_, n) in rep.param_codes.items() if n == 1 and p not in rep.group_by
            and applies(p, models, rep.key_models)]


def _varies(rep: Report, p: str, mask: np.ndarray) -> bool:
    codes, n = rep.param_codes[p]
    if n <= 1:
        return False
    picked = codes[mask]
    return bool(picked.size) and picked.min() != picked.max()


def _follows(codes: np.ndarray, by: np.ndarray) -> bool:
    """Is `codes` constant within each value of `by` (both integer codes of the same rows)?"""
    if not codes.size:
        return False
    pairs = by.astype(np.int64) * (int(codes.max()) + 1) + codes
    return bool(np.unique(pairs).size == np.unique(by).size)


def _axes(rep: Report) -> list[str]:
    """The keys the sweeps' specs search, in their order."""
    return list(dict.fromkeys(a for s in rep.sweeps for a in s.axes))


@dataclass
class _Columns:
    """What one section shows: columns, and the parameters it names in lines instead."""

    cols: list[str]
    keep: list[str]  # never dropped for width: who the row is, and the metric
    local_fixed: list[str]  # constant in this section, not in the whole report
    by_variant: list[str]  # fixed by each variant
    follows: dict[str, str]  # parameter -> the searched axis it follows


def _row_columns(rep: Report, part: _Part, split: bool, fixed_everywhere: set[str]) -> _Columns:
    models = {part.model} if part.model else set(_models(rep.table))
    params = [p for p in rep.param_codes if applies(p, models, rep.key_models) and not (split and p == "model")]
    varying = [p for p in params if p in rep.group_by or _varies(rep, p, part.mask)]
    local_fixed = [p for p in params if p not in varying and p not in fixed_everywhere]
    axes = [a for a in _axes(rep) if a in varying]
    has_variant = "variant" in rep.table and bool(rep.table["variant"].notna().to_numpy()[part.mask].any())
    variant_codes = pd.factorize(rep.table["variant"], use_na_sentinel=False)[0][part.mask] if has_variant else None
    by_variant: list[str] = []
    follows: dict[str, str] = {}
    for p in varying:
        if p in rep.group_by or p in axes:
            continue
        codes = rep.param_codes[p][0][part.mask]
        if variant_codes is not None and _follows(codes, variant_codes):
            by_variant.append(p)
        else:
            axis = next((a for a in axes if _follows(codes, rep.param_codes[a][0][part.mask])), None)
            if axis is not None:
                follows[p] = axis
    shown = [*axes, *(p for p in varying if p not in axes and p not in by_variant and p not in follows)]
    who = ["sweep"] if len(rep.sweeps) > 1 and "sweep" in rep.table else []
    if has_variant:
        who.append("variant")
    if rep.group_by:
        who += [k for k in rep.group_by if k not in rep.params]
    else:
        who.append("trial_id")
    who = _dedupe(who)
    tail = [*(["n"] if rep.group_by else []), "end", "epochs", "vs_best", *metric_priority(rep.metric, rep.metrics),
            "wall_s"]
    cols = [c for c in _dedupe(who + [p for p in shown if p not in who] + tail) if c in rep.table]
    keep = [c for c in who if c != "trial_id" or not has_variant] + [rep.metric]
    return _Columns(cols, keep, local_fixed, by_variant, follows)


NO_VARIANT = "(no variant)"


def _variant_names(values: pd.Series) -> np.ndarray:
    """Variant names as objects, trials without one (a sweep without variants beside one with) named so."""
    names = values.to_numpy(dtype=object)
    return np.where(pd.isna(names), NO_VARIANT, names)


def _variant_lines(rep: Report, part: _Part, keys: list[str]) -> list[str]:
    """"4th CNN: conv_layers=2, filters=32": per variant shown in this section (in the spec's order), the keys
    it fixes."""
    if not keys or part.rows.empty:
        return []
    shown = list(dict.fromkeys(_variant_names(part.rows["variant"]).tolist()))
    spec = [v for s in rep.sweeps for v in s.variants if v in shown]
    order = list(dict.fromkeys([*spec, *shown]))
    names = _variant_names(rep.table["variant"])[part.mask]
    first_at: dict[str, int] = {}  # each variant's first row in this section, as a position of rep.table
    for name, at in zip(names.tolist(), np.flatnonzero(part.mask).tolist(), strict=True):
        first_at.setdefault(name, at)
    first = rep.table.iloc[[first_at[v] for v in order[:VARIANTS_SHOWN]]][keys]
    lines = []
    for variant, row in zip(order[:VARIANTS_SHOWN], first.itertuples(index=False), strict=True):
        values = ", ".join(f"{k}={fmt_value(v, k)}" for k, v in zip(keys, row, strict=True) if not isna(v))
        lines.append(f"{variant}: {values}" if values else str(variant))
    if len(order) > VARIANTS_SHOWN:
        lines.append(f"... and {len(order) - VARIANTS_SHOWN} more variants (--format csv lists their keys)")
    return lines


def _follow_notes(rep: Report, part: _Part, follows: dict[str, str]) -> list[str]:
    """"lr follows optimizer: adam=0.001, sgd=0.01"."""
    table = rep.table[part.mask]
    notes = []
    for p, axis in follows.items():
        pairs = table[[axis, p]].drop_duplicates(axis)
        values = ", ".join(f"{fmt_value(a, axis)}={fmt_value(v, p)}" for a, v in pairs.itertuples(index=False))
        notes.append(f"{p} follows {axis}: {values}")
    return notes


def _cells(df: pd.DataFrame, cols: list[str], best_label: Any, prefix: str, metrics: Collection[str]
           ) -> tuple[list[list[str]], int | None]:
    columns = [fmt_column(df, c, prefix, metrics) for c in cols]
    cells = [list(row) for row in zip(*columns, strict=True)] if cols and len(df) else []
    labels = list(df.index)
    return cells, (labels.index(best_label) if best_label in labels else None)


def row_sections(rep: Report) -> list[Section]:
    parts = _split(rep)
    split = len(parts) > 1
    fixed_everywhere = set(global_fixed(rep))
    best_label = rep.best
    prefix = id_prefix(rep)
    sections = []
    for part in parts:
        if part.rows.empty:
            continue
        c = _row_columns(rep, part, split, fixed_everywhere)
        cells, best = _cells(part.rows, c.cols, best_label, prefix, rep.metrics)
        total = int(part.mask.sum())
        what = ("group" if rep.group_by else "trial") + ("" if total == 1 else "s")
        count = f"{len(part.rows)} {what}" if len(part.rows) == total else f"{len(part.rows)} of {total} {what}"
        title = f"{part.model}: {count}" if split else f"{', '.join(s.name for s in rep.sweeps)}: {count}"
        fixed = ", ".join(f"{k}={fmt_value(part.first(rep.table, k), k)}" for k in c.local_fixed)
        notes = [f"fixed in {part.model or 'these'} trials: {fixed}"] if c.local_fixed else []
        notes += _follow_notes(rep, part, c.follows)
        right = [_is_number(part.rows[k]) for k in c.cols]
        sections.append(Section(title, c.cols, [label(k) for k in c.cols], cells, right, best, notes,
                                _variant_lines(rep, part, c.by_variant), c.keep))
    return sections
