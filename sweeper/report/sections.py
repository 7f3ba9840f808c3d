"""A Report -> sections of formatted cells (what the terminal, Markdown and HTML tables show) and the lines
around them.

Columns are chosen from the data: the parameters that vary (per model family when the sweep mixes families,
constant ones in a "fixed" line), how many epochs ran, how the trial ended, the six metrics and wall time. The
best row by the sweep's metric is marked with a star. Sweeps with reference numbers get a second table:
reference, reproduced and delta per variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sweeper.report.frame import MODEL_ORDER, Report
from sweeper.spec.metrics import METRICS
from sweeper.spec.params import applies
from sweeper.store.trials import Ended

LABELS = {
    "train_loss": "train loss", "val_loss": "val loss", "test_loss": "test loss", "train_accuracy": "train acc",
    "val_accuracy": "val acc", "test_accuracy": "test acc", "wall_s": "wall s", "trial_id": "trial",
    "end": "ended",
}
SUMMARY_METRICS = ("val_loss", "val_accuracy", "test_accuracy")  # the study's summary tables, for narrow output
STAR = "★"
MISSING = "-"
ERRORS_SHOWN = 20


@dataclass
class Section:
    """One table: header labels, formatted cells, which row is the best, lines printed above it."""

    title: str
    keys: list[str]  # frame columns
    columns: list[str]  # header labels
    cells: list[list[str]]
    right: list[bool]  # right-align (numbers)
    best: int | None = None
    notes: list[str] = field(default_factory=list)

    def starred(self) -> list[list[str]]:
        """Cells with the best row's first cell marked."""
        if self.best is None:
            return self.cells
        rows = [list(r) for r in self.cells]
        rows[self.best][0] = f"{STAR} {rows[self.best][0]}"
        return rows

    def without(self, drop: set[str]) -> Section:
        keep = [i for i, k in enumerate(self.keys) if k not in drop]
        return Section(self.title, [self.keys[i] for i in keep], [self.columns[i] for i in keep],
                       [[row[i] for i in keep] for row in self.cells], [self.right[i] for i in keep], self.best,
                       self.notes)


def _isna(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


def fmt_value(v: Any, col: str = "") -> str:
    if _isna(v):
        return MISSING
    if col.startswith("delta_"):
        return f"{v:+.4f}"
    if col in METRICS or col.startswith("ref_"):
        return f"{v:.4f}"
    if col == "wall_s":
        return f"{v:.1f}"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else f"{v:.4g}"
    return str(v)


def fmt_column(df: pd.DataFrame, col: str) -> list[str]:
    """A column's cells; a metric with a <m>_std column beside it (groups) shows mean±std."""
    if col == "epochs" and "n" in df:  # a mean over trials
        return [MISSING if _isna(v) else f"{v:.1f}".removesuffix(".0") for v in df[col].tolist()]
    values = [fmt_value(v, col) for v in df[col].tolist()]
    if f"{col}_std" in df:
        stds = df[f"{col}_std"].tolist()
        values = [v if _isna(s) or v == MISSING else f"{v}±{s:.4f}" for v, s in zip(values, stds, strict=True)]
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
    return [p for p, (_, n) in rep.param_codes.items() if n == 1 and p not in rep.group_by and applies(p, models)]


def _varies(rep: Report, p: str, mask: np.ndarray) -> bool:
    codes, n = rep.param_codes[p]
    if n <= 1:
        return False
    picked = codes[mask]
    return bool(picked.size) and picked.min() != picked.max()


def _row_columns(rep: Report, part: _Part, split: bool, fixed_everywhere: set[str]) -> tuple[list[str], list[str]]:
    """(columns shown, parameters fixed within this section but not across the report)."""
    models = {part.model} if part.model else set(_models(rep.table))
    params = [p for p in rep.param_codes if applies(p, models) and not (split and p == "model")]
    varied = [p for p in params if p in rep.group_by or _varies(rep, p, part.mask)]
    local_fixed = [p for p in params if p not in varied and p not in fixed_everywhere]
    lead = ["sweep"] if len(rep.sweeps) > 1 and "sweep" in rep.table else []
    if rep.group_by:
        lead += [k for k in rep.group_by if k not in rep.params]
    else:
        lead.append("trial_id")
    if "variant" in rep.table and rep.table["variant"].notna().to_numpy()[part.mask].any():
        lead.append("variant")
    tail = (["n"] if rep.group_by else []) + ["epochs", "end", *METRICS, "wall_s"]
    return _dedupe(lead + varied + tail), local_fixed


def _cells(df: pd.DataFrame, cols: list[str], best_label: Any) -> tuple[list[list[str]], int | None]:
    columns = [fmt_column(df, c) for c in cols]
    cells = [list(row) for row in zip(*columns, strict=True)] if cols and len(df) else []
    labels = list(df.index)
    return cells, (labels.index(best_label) if best_label in labels else None)


def row_sections(rep: Report) -> list[Section]:
    parts = _split(rep)
    split = len(parts) > 1
    fixed_everywhere = set(global_fixed(rep))
    best_label = rep.best
    sections = []
    for part in parts:
        if part.rows.empty:
            continue
        cols, local_fixed = _row_columns(rep, part, split, fixed_everywhere)
        cells, best = _cells(part.rows, cols, best_label)
        total = int(part.mask.sum())
        what = ("group" if rep.group_by else "trial") + ("" if total == 1 else "s")
        count = f"{len(part.rows)} {what}" if len(part.rows) == total else f"{len(part.rows)} of {total} {what}"
        title = f"{part.model}: {count}" if split else f"{', '.join(s.name for s in rep.sweeps)}: {count}"
        fixed = ", ".join(f"{c}={fmt_value(part.first(rep.table, c), c)}" for c in local_fixed)
        notes = [f"fixed in {part.model or 'these'} trials: {fixed}"] if local_fixed else []
        right = [_is_number(part.rows[c]) for c in cols]
        sections.append(Section(title, cols, [LABELS.get(c, c) for c in cols], cells, right, best, notes))
    return sections


def reference_section(rep: Report, metrics: tuple[str, ...] = SUMMARY_METRICS) -> Section | None:
    ref = rep.references
    if ref is None or ref.empty:
        return None
    metrics = tuple(m for m in metrics if ref[f"ref_{m}"].notna().any())
    cols = (["sweep"] if len(rep.sweeps) > 1 else []) + ["variant", "n", "epochs"]
    labels = [LABELS.get(c, c) for c in cols]
    for m in metrics:
        cols += [f"ref_{m}", m, f"delta_{m}"]
        labels += [f"{LABELS[m]} ref", LABELS[m], "Δ"]
    columns = [fmt_column(ref, c) for c in cols]
    cells = [list(row) for row in zip(*columns, strict=True)]
    title = "Reference: the study's numbers beside the reproduction (mean of finished trials; Δ = ours - ref)"
    return Section(title, cols, labels, cells, [c not in ("sweep", "variant") for c in cols])


def header_lines(rep: Report) -> list[str]:
    lines = []
    for s in rep.sweeps:
        ends = rep.trials["end"] if len(rep.sweeps) == 1 else rep.trials.loc[rep.trials["sweep"].eq(s.name), "end"]
        counts = ", ".join(f"{n} {label}" for label, n in ends.value_counts().items()) or "none"
        matching = f", {len(ends)} match --where" if rep.where else ""
        lines.append(f"sweep {s.name} ({s.folder}): {len(s.trials)} trials{matching}: {counts}")
    lines.append(f"metric: {rep.metric} ({rep.mode})")
    unfinished = (~rep.trials["end"].map(lambda e: Ended(e).finished)).sum()
    if unfinished:
        lines.append(f"{unfinished} trial{'s' if unfinished > 1 else ''} not finished (sweep running or "
                     f"interrupted): numbers as last written")
    if rep.where:
        total = sum(len(s.trials) for s in rep.sweeps)
        lines.append(f"where {rep.where}: {len(rep.trials)} of {total} trials")
    fixed = global_fixed(rep)
    if fixed:
        lines.append(f"fixed: {fixed_text(rep.table, fixed)}")
    if rep.group_by:
        lines.append(f"grouped by {', '.join(rep.group_by)}: metrics are mean±std over the n finished trials of each")
    return lines + rep.notes


def error_lines(rep: Report, limit: int | None = None) -> list[str]:
    failed = rep.trials["end"].eq(Ended.ERROR.value)
    errors = rep.trials.loc[failed, ["trial_id", "variant", "sweep", "error"]]
    lines = []
    for row in errors.head(limit).itertuples():
        where = ", ".join(str(v) for v in (row.variant, row.sweep if len(rep.sweeps) > 1 else None) if not _isna(v))
        lines.append(f"{row.trial_id}{f' ({where})' if where else ''}: {row.error if not _isna(row.error) else '?'}")
    if limit is not None and len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more (see --format csv, column error)")
    return lines


def footer_lines(rep: Report) -> list[str]:
    lines = []
    best = rep.best
    if best is not None:
        row = rep.rows.loc[best]
        who = row.get("trial_id") if not rep.group_by else ", ".join(f"{k}={row[k]}" for k in rep.group_by)
        variant = row.get("variant")
        lines.append(f"{STAR} best {rep.metric}: {fmt_value(row[rep.metric], rep.metric)} "
                     f"({who}{'' if _isna(variant) or rep.group_by else f', {variant}'})")
    if len(rep.rows) < len(rep.table):
        which = f"the {len(rep.rows)} best by {rep.metric}" if rep.shown_best else f"{len(rep.rows)}"
        lines.append(f"showing {which} of {len(rep.table)} rows; --top N to change, --format csv or "
                     f"--out DIR for all")
    if rep.trials.empty:
        lines.append(f"no trials match --where {rep.where}")
    return lines
