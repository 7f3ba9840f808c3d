"""The lines around a report's tables, alike in every format: the header (sweeps, metric, what is fixed), the
trials without a result yet, errors, and the footer (the best row, what was shown)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from sweeper.report.frame import Report
from sweeper.report.sections import STAR, fixed_text, fmt_value, global_fixed, id_prefix, isna
from sweeper.store.trials import Ended


def _count_text(counts: dict[Ended, int]) -> str:
    return ", ".join(f"{n} {e.value}" for e, n in counts.items() if n)


def compute_line(s: Any) -> str | None:
    """What a sweep's trials cost: trial-epochs, and their run time (Ray's, over every session; a trial's lost
    partial epoch at an interruption is not in it) times the CPUs (and GPUs) each held."""
    epochs = pd.to_numeric(s.trials.get("epochs"), errors="coerce").sum() if "epochs" in s.trials else 0
    wall = pd.to_numeric(s.trials.get("wall_s"), errors="coerce").sum() if "wall_s" in s.trials else 0.0
    if not wall:
        return None
    hours = wall / 3600
    text = f"compute of {s.name}: {int(epochs):,} trial-epochs in {hours:.2f} trial-hours (each trial's run time, "
    text += "summed)"
    if not s.cpus:
        return text + "; CPUs a trial held: unknown (no spec.yaml)"
    text += f" x {s.cpus:g} CPU{'s' if s.cpus != 1 else ''} a trial = {hours * s.cpus:.2f} CPU-hours"
    return text + (f", {hours * s.gpus:.2f} GPU-hours" if s.gpus else "")


def header_lines(rep: Report) -> list[str]:
    lines = []
    for s in rep.sweeps:
        ends = rep.trials["end"] if len(rep.sweeps) == 1 else rep.trials.loc[rep.trials["sweep"].eq(s.name), "end"]
        counts = dict.fromkeys(Ended, 0)
        for value, n in ends.value_counts().items():
            counts[Ended(value)] += int(n)
        unseen = sum(n for (name, _), n in rep.unseen.items() if name == s.name)  # planned, not written yet
        counts[Ended.PENDING] += unseen
        matching = f", {len(ends)} match --where" if rep.where else ""
        total = len(s.trials) + unseen
        where = f"{str(s.folder.storage).rstrip('/')}/{s.folder.name}"  # as --storage was given: relative stays so
        lines.append(f"sweep {s.name} ({where}): {total} trials{matching}: {_count_text(counts) or 'none'}")
        compute = compute_line(s)
        lines += [compute] if compute else []
    lines.append(f"metric: {rep.metric} ({rep.mode})")
    unfinished = int((~rep.trials["end"].isin([e.value for e in Ended if e.finished or e is Ended.PENDING])).sum())
    if unfinished:
        lines.append(f"{unfinished} trial{'s' if unfinished > 1 else ''} not finished (sweep running or "
                     f"interrupted): numbers as last written")
    if rep.where:
        total = sum(len(s.trials) for s in rep.sweeps)
        lines.append(f"where {rep.where}: {len(rep.trials)} of {total} trials")
    fixed = global_fixed(rep)
    if fixed:
        lines.append(f"fixed: {fixed_text(rep.table, fixed)}")
    prefix = id_prefix(rep)
    if prefix:
        example = str(rep.table["trial_id"].iloc[0])
        lines.append(f"trial ids are shown without the prefix they share: {example} as {example.removeprefix(prefix)}")
    if rep.group_by:
        lines.append(f"grouped by {', '.join(rep.group_by)}: metrics are mean±half the 95% t interval over the n "
                     f"finished trials of each (no interval where n < 2)")
        if rep.trials["end"].eq(Ended.ASHA.value).any():
            lines.append("ASHA-stopped trials count in these means with their last value; the configurations' "
                         "statistics and `vs best` use only trials that ran their whole protocol")
    return lines + rep.notes


def _where_label(sweep: Any, variant: Any, several: bool) -> str | None:
    parts = [str(sweep)] if several and not isna(sweep) else []
    parts += [] if isna(variant) else [str(variant)]
    return " ".join(parts) or None


def pending_line(rep: Report) -> str | None:
    """"8 pending: 2conv-32f-k3 x1, 4conv-64f-k3 x2": trials that are not rows, per variant (in the spec's
    order), or only their number when there are no variants."""
    counts = rep.pending_counts()
    if not counts:
        return None
    several = len(rep.sweeps) > 1
    per: dict[str, int] = {}
    if rep.waiting is not None and not rep.waiting.empty:
        for sweep, variant in rep.waiting[["sweep", "variant"]].itertuples(index=False):
            where = _where_label(sweep, variant, several)
            if where is not None:
                per[where] = per.get(where, 0) + 1
    for (sweep, variant), n in rep.unseen.items():
        where = _where_label(sweep, variant, several)
        if where is not None:
            per[where] = per.get(where, 0) + n
    rank = {_where_label(s.name, v, several): i for i, (s, v) in
            enumerate((s, v) for s in rep.sweeps for v in s.variants)}
    ordered = sorted(per, key=lambda w: rank.get(w, len(rank)))
    head = ", ".join(f"{n} {e.value}" for e, n in counts.items())
    if set(counts) != {Ended.PENDING}:
        head += f" (no {rep.metric} yet)"
    return head + (": " + ", ".join(f"{w} x{per[w]}" for w in ordered) if ordered else "")


def error_lines(rep: Report, limit: int | None = None) -> list[str]:
    failed = rep.trials["end"].eq(Ended.ERROR.value)
    errors = rep.trials.loc[failed, ["trial_id", "variant", "sweep", "error"]]
    lines = []
    for row in errors.head(limit).itertuples():
        where = ", ".join(str(v) for v in (row.variant, row.sweep if len(rep.sweeps) > 1 else None) if not isna(v))
        lines.append(f"{row.trial_id}{f' ({where})' if where else ''}: {row.error if not isna(row.error) else '?'}")
    if limit is not None and len(errors) > limit:
        lines.append(f"... and {len(errors) - limit} more (see --format csv, column error)")
    return lines


def shown_line(rep: Report) -> str | None:
    """Exactly what the tables show, when it is not everything: "showing the 20 best of 32 trials by
    val_accuracy; 8 pending not shown"."""
    counts = rep.pending_counts() if not rep.group_by else {}
    if not rep.cut and not counts:
        return None
    what = "groups" if rep.group_by else "trials"
    n, total = len(rep.rows), rep.total
    if rep.sort_by:
        head = f"showing {'the first ' if rep.cut else ''}{n} of {total} {what}, sorted by {rep.sort_by}"
    elif rep.cut:
        head = f"showing the {n} best of {total} {what} by {rep.metric}"
    else:
        head = f"showing {n} of {total} {what}, best {rep.metric} first"
    if counts:
        head += "; " + ", ".join(f"{k} {e.value}" for e, k in counts.items()) + " not shown"
    if rep.cut:
        head += "; --top N to change, --format csv or --out DIR for all"
    return head


def footer_lines(rep: Report) -> list[str]:
    lines = []
    best = rep.best
    if best is not None:
        row = rep.table.loc[best]
        who = row.get("trial_id") if not rep.group_by else ", ".join(f"{k}={row[k]}" for k in rep.group_by)
        variant = row.get("variant")
        lines.append(f"{STAR} best {rep.metric}: {fmt_value(row[rep.metric], rep.metric, rep.metrics)} "
                     f"({who}{'' if isna(variant) or rep.group_by else f', {variant}'})")
    shown = shown_line(rep)
    if shown:
        lines.append(shown)
    if not rep.comparison.replicated and len(rep.comparison.configs) > 1:
        lines += rep.comparison.lines()  # why no difference is tested
    if rep.trials.empty:
        lines.append(f"no trials match --where {rep.where}")
    return lines
