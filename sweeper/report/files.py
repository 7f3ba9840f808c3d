"""The report as files: Markdown, a static HTML page, CSV of every trial, and `--out DIR` with the plots.

Markdown and HTML show the terminal's tables (sections.py): the same sections, columns in the same order, the
same rows, the same lines per variant, pending line and footer; they have room for every column. CSV holds
every column of every trial (also those not reported yet), unless --top picked rows; trials.csv always all.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import pandas as pd

from sweeper.errors import SweeperError
from sweeper.report.frame import Report, with_references
from sweeper.report.sections import (
    Section,
    error_lines,
    footer_lines,
    header_lines,
    pending_line,
    reference_section,
    row_sections,
)
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
    ref = reference_section(rep, METRICS)
    for sec in row_sections(rep) + ([ref] if ref else []):
        out += [f"## {sec.title}", ""] + [f"{_md_cell(n)}" for n in sec.notes] + ([""] if sec.notes else [])
        out += [f"- {_md_cell(v)}" for v in sec.variants] + ([""] if sec.variants else [])
        out += _md_table(sec) + [""]
    pending = pending_line(rep)
    if pending:
        out += [pending, ""]
    errors = error_lines(rep)
    if errors:
        out += ["## Errors", ""] + [f"- {_md_cell(e)}" for e in errors] + [""]
    out += [line for line in footer_lines(rep)] + [""]
    if images:
        out += ["## Plots", ""] + [f"![{caption}]({name})\n" for name, caption in images]
    return "\n".join(out)


def _html_table(sec: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in sec.columns)
    body = []
    for i, row in enumerate(sec.starred()):
        cls = ' class="best"' if i == sec.best else ""
        tds = "".join(f'<td{" class=num" if r else ""}>{html.escape(c)}</td>' for c, r in zip(row, sec.right,
                                                                                                strict=True))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


HTML_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
              "td,th{border:1px solid #ccc;padding:2px 6px}td.num{text-align:right}"
              "tr.best{font-weight:bold;background:#e6f4ea}img{max-width:100%}")


def html_page(rep: Report, images: list[tuple[str, str]] | tuple[()] = ()) -> str:
    title = html.escape(f"Sweep report: {', '.join(s.name for s in rep.sweeps)}")
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>"
             f"<style>{HTML_STYLE}</style></head><body><h1>{title}</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in header_lines(rep)] + ["</ul>"]
    ref = reference_section(rep, METRICS)
    for sec in row_sections(rep) + ([ref] if ref else []):
        parts.append(f"<h2>{html.escape(sec.title)}</h2>")
        parts += [f"<p>{html.escape(n)}</p>" for n in sec.notes]
        if sec.variants:
            parts += ["<ul>"] + [f"<li>{html.escape(v)}</li>" for v in sec.variants] + ["</ul>"]
        parts.append(_html_table(sec))
    pending = pending_line(rep)
    if pending:
        parts.append(f"<p>{html.escape(pending)}</p>")
    errors = error_lines(rep)
    if errors:
        parts += ["<h2>Errors</h2><ul>"] + [f"<li>{html.escape(e)}</li>" for e in errors] + ["</ul>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in footer_lines(rep)]
    parts += [f'<figure><img src="{html.escape(n)}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}'
              f"</figcaption></figure>" for n, c in images]
    return "\n".join(parts) + "\n</body></html>\n"


TRIAL_LEAD = ("sweep", "trial_id", "variant")
TRIAL_TAIL = ("epochs", "end", "state", "stopped_by", *METRICS, "wall_s", "node", "error")


def export_frame(rep: Report, all_trials: bool = False) -> pd.DataFrame:
    """What CSV holds: every column of the trials (plus reference and delta), in report order, those not
    reported yet last; only the rows shown when --top picked them; or the groups' means and stds."""
    if rep.group_by and not all_trials:
        return rep.rows
    every = all_trials or not rep.cut
    df = with_references(rep.trials.iloc[rep.trial_order] if every else rep.rows, rep.sweeps)
    refs = [c for c in df.columns if c.startswith(("ref_", "delta_"))]
    params = [p for p in rep.trial_params if p in df]
    named = {*TRIAL_LEAD, *params, *TRIAL_TAIL, *refs}
    other = [c for c in df.columns if c not in named and not c.startswith("_")]  # newer schema columns
    return df[[*TRIAL_LEAD, *params, *TRIAL_TAIL, *other, *refs]]


def csv_text(rep: Report, all_trials: bool = False) -> str:
    """CSV of export_frame, written by pyarrow (ten times pandas' speed on a big sweep)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    buf = io.BytesIO()
    table = pa.Table.from_pandas(export_frame(rep, all_trials), preserve_index=False)
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="needed"))
    return buf.getvalue().decode()


def write_out(rep: Report, out: Path, html: bool = False) -> tuple[list[Path], list[str]]:
    """report.md (or also report.html), trials.csv (every trial that passes --where) and the PNG plots; returns
    the files written and a note per plot that was left out."""
    from sweeper.report.plots import write_plots

    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        images, skipped = write_plots(rep, out)
        (out / "report.md").write_text(markdown(rep, images))
        (out / "trials.csv").write_text(csv_text(rep, all_trials=True))
        if html:
            (out / "report.html").write_text(html_page(rep, images))
    except OSError as exc:
        raise SweeperError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    names = ["report.md", *(["report.html"] if html else []), "trials.csv", *(n for n, _ in images)]
    return [out / n for n in names], skipped
