"""The report as Markdown (`--format markdown`, report.md) and as CSV (`--format csv`, trials.csv): text that
out_folder.py writes into --out (the HTML page is html.py's).

Markdown and HTML show the terminal's tables (sections.py, analysis.py): the same sections, columns in the same
order, the same rows, the same lines per variant, pending line and footer; they have room for every column and
every metric's reference numbers. CSV holds every column of every trial (also those not reported yet), unless
--top picked rows; trials.csv always all.
"""

from __future__ import annotations

import io

import pandas as pd

from sweeper.report.analysis import analysis_lines, analysis_sections
from sweeper.report.frame import Report, with_references
from sweeper.report.header_footer import error_lines, footer_lines, header_lines, pending_line
from sweeper.report.sections import Section, row_sections
from sweeper.spec.metrics import METRICS


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(sec: Section) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(c) for c in sec.columns) + " |",
             "|" + "|".join("---:" if r else "---" for r in sec.right) + "|"]
    for i, row in enumerate(sec.starred()):
        cells = [_md_cell(c) for c in row]
        if i == sec.best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(rep: Report, images: list[tuple[str, str]] | tuple[()] = ()) -> str:
    """The report as Markdown; images are (file name, caption) pairs linked at the end."""
    out = [f"# Sweep report: {', '.join(s.name for s in rep.sweeps)}", ""]
    out += [f"- {line}" for line in header_lines(rep)] + [""]
    for sec in row_sections(rep) + analysis_sections(rep):
        out += [f"## {sec.title}", ""] + [line for n in sec.notes for line in (_md_cell(n), "")]  # a paragraph each
        out += [f"- {_md_cell(v)}" for v in sec.variants] + ([""] if sec.variants else [])
        out += _md_table(sec) + [""]
    pending = pending_line(rep)
    if pending:
        out += [pending, ""]
    errors = error_lines(rep)
    if errors:
        out += ["## Errors", ""] + [f"- {_md_cell(e)}" for e in errors] + [""]
    out += [*footer_lines(rep), *analysis_lines(rep), ""]
    if images:
        out += ["## Plots", ""] + [f"![{caption}]({name})\n" for name, caption in images]
    return "\n".join(out)


TRIAL_LEAD = ("sweep", "trial_id", "variant")
TRIAL_STATE = ("epochs", "end", "state", "stopped_by")  # then the metrics (the sweeps' own too), then TRIAL_END
TRIAL_END = ("wall_s", "node", "error")


def export_frame(rep: Report, all_trials: bool = False) -> pd.DataFrame:
    """What CSV holds: every column of the trials (plus reference and delta), in report order, those not
    reported yet last; only the rows shown when --top picked them; or the groups' means and stds."""
    if rep.group_by and not all_trials:
        return rep.rows
    every = all_trials or not rep.cut
    df = with_references(rep.trials.iloc[rep.trial_order] if every else rep.rows, rep.sweeps)
    refs = [c for c in df.columns if c.startswith(("ref_", "delta_"))]
    params = [p for p in rep.trial_params if p in df]
    metrics = [m for m in dict.fromkeys([*METRICS, *rep.metrics]) if m in df]  # as trials.parquet orders them
    tail = [*TRIAL_STATE, *metrics, *TRIAL_END]
    named = {*TRIAL_LEAD, *params, *tail, *refs}
    other = [c for c in df.columns if c not in named and not c.startswith("_")]  # newer schema columns
    return df[[*TRIAL_LEAD, *params, *tail, *other, *refs]]


def csv_text(rep: Report, all_trials: bool = False) -> str:
    """CSV of export_frame, written by pyarrow (ten times pandas' speed on a big sweep)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    table = pa.Table.from_pandas(export_frame(rep, all_trials), preserve_index=False)
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="needed"))
    return buf.getvalue().decode()
