"""`report --format html`: one self-contained page that works offline. Everything is inlined: the style and the
scripts that sort a table and open a folded one (html_assets.py), plotly's own bundle (plotly.offline.get_plotlyjs())
and every figure's data (html_figures.py); the page requests nothing but itself.

It answers first: a bar of links to its parts; the answer box (html_answer.py: the best configuration with its
interval, those indistinguishable from it, what is real among the study's differences, the reproduction against
the study, the compute); then the figures; then the sweeps' header lines; then every table Markdown has (the same
sections, columns, rows and lines: sections.py, analysis.py, header_footer.py), each folded in a <details> (the
first open): the evidence for the answer (configurations, the study's numbers and differences), the trials per
model family (the first open too), the other statistics; then errors and the footer's lines.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from sweeper.report.analysis import (
    analysis_lines,
    audit_sections,
    configurations_section,
    importance_section,
    pairs_section,
    reference_sections,
)
from sweeper.report.frame import Report
from sweeper.report.header_footer import error_lines, footer_lines, header_lines, pending_line
from sweeper.report.html_answer import answer_html
from sweeper.report.html_assets import OPEN_JS, SORT_JS, STYLE
from sweeper.report.sections import Section, row_sections


def html_table(sec: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in sec.columns)
    body = []
    for i, row in enumerate(sec.starred()):
        cls = ' class="best"' if i == sec.best else ""
        tds = "".join(f'<td{" class=num" if r else ""}>{html.escape(c)}</td>' for c, r in zip(row, sec.right,
                                                                                                strict=True))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def anchor(title: str, taken: set[str]) -> str:
    """An id for a section from its title ("Configurations (4)" -> "t-configurations-4"), unique in the page."""
    base = "t-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "table")
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    taken.add(name)
    return name


def _section(sec: Section, kind: str, name: str, fold_open: bool) -> str:
    """A table with its notes and per-variant lines, folded in a <details> (open when `fold_open`)."""
    parts = [f'<section class="{kind}" id="{name}"><details{" open" if fold_open else ""}><summary><h2>'
             f'{html.escape(sec.title)}</h2></summary><div class="body">']
    parts += [f"<p>{html.escape(n)}</p>" for n in sec.notes]
    if sec.variants:
        parts += ["<ul>"] + [f"<li>{html.escape(v)}</li>" for v in sec.variants] + ["</ul>"]
    return "\n".join([*parts, f'<div class="scroll">{html_table(sec)}</div>', "</div></details></section>"])


def _inline_script(markup: str) -> str:
    """Figure markup whose script cannot end early: "</" inside it (a trial id, say) becomes "<\\/"."""
    start, end = markup.find("<script"), markup.rfind("</script>")
    if start < 0 or end < 0:
        return markup
    body_at = markup.index(">", start) + 1
    return markup[:body_at] + markup[body_at:end].replace("</", "<\\/") + markup[end:]


def _lists(value: Any) -> Any:
    """A figure's data with every array as a plain list: plotly keeps numpy arrays as base64 typed arrays
    ({"dtype", "bdata"}), which readers of the page's data (gd.data[0].dimensions[0].values) cannot count."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", "")).split(",") if n.strip()]  # "2, 3" when 2-D
        return _lists(array.reshape(shape) if shape else array)
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas series
        return _lists(value.tolist())
    return value


def figure_divs(rep: Report) -> list[tuple[str, str, str]]:
    """Each figure there is data for: its div id, its title and its markup (a div and the script that draws it;
    plotly's bundle is in the head)."""
    import plotly.io as pio

    from sweeper.report.html_figures import FIGURES

    out = []
    for name, build in FIGURES:
        fig: Any = build(rep)
        if fig is None:
            continue
        div = pio.to_html(_lists(fig.to_plotly_json()), full_html=False, include_plotlyjs=False, div_id=name,
                          config={"displaylogo": False, "responsive": True}, default_height=None)
        title = fig.layout.title.text or name
        out.append((name, title, f'<div class="figure">{_inline_script(div)}</div>'))
    return out


def _toc(links: list[tuple[str, str]]) -> str:
    items = "".join(f'<li><a href="#{n}">{html.escape(t)}</a></li>' for n, t in links)
    return f'<ul class="toc">{items}</ul>' if links else ""


def _tables(rep: Report, groups: list[tuple[str, Sequence[Section | None]]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Each group's tables (a group: the section's class and its Sections, None where there is no table), folded,
    the first of the page and the first of the trials open; the pending line after the trials; and the links to
    them (id, title)."""
    taken: set[str] = set()
    tables, links, first = [], [], True
    for kind, sections in groups:
        for i, sec in enumerate(s for s in sections if s is not None):
            name = anchor(sec.title, taken)
            links.append((name, sec.title))
            tables.append(_section(sec, kind, name, first or (kind == "trials" and i == 0)))
            first = False
        pending = pending_line(rep) if kind == "trials" else None
        if pending:
            tables.append(f"<p>{html.escape(pending)}</p>")
    return tables, links


def html_page(rep: Report) -> str:
    """The whole report as one offline HTML page: the answer, the figures, then the tables."""
    from plotly.offline import get_plotlyjs

    names = ", ".join(s.name for s in rep.sweeps)
    title = html.escape(f"Sweep report: {names}")
    configs, (head, rest), pairs = configurations_section(rep), reference_sections(rep), pairs_section(rep)
    trials = row_sections(rep)
    tables, links = _tables(rep, [("statistics", [configs, head, pairs]), ("trials", trials),
                                  ("statistics", [rest, importance_section(rep), *audit_sections(rep)])])
    figures = figure_divs(rep)
    errors = error_lines(rep)
    notes = [*footer_lines(rep), *analysis_lines(rep)]
    bar = [("answer", "Answer"), ("plots", "Plots") if figures else None, ("sweeps", "Sweeps"), ("tables", "Tables"),
           ("errors", f"Errors ({len(errors)})") if errors else None, ("notes", "Notes") if notes else None]
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
             f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>",
             f'<header class="bar"><div class="in"><h1>{title}</h1><nav>'
             + "".join(f'<a href="#{n}">{t}</a>' for n, t in filter(None, bar)) + "</nav></div></header><main>",
             answer_html(rep, configs, head, pairs, trials)]
    if figures:
        parts += ['<section id="plots"><h2>Plots</h2>', _toc([(n, t) for n, t, _ in figures]),
                  *(markup for _, _, markup in figures), "</section>"]
    parts += ['<section id="sweeps" class="about"><h2>Sweeps</h2><ul>',
              *(f"<li>{html.escape(line)}</li>" for line in header_lines(rep)), "</ul></section>"]
    parts += ['<section id="tables"><h2>Tables</h2>', _toc(links), *tables, "</section>"]
    if errors:
        parts += ['<section id="errors"><h2>Errors</h2><ul>', *(f"<li>{html.escape(e)}</li>" for e in errors),
                  "</ul></section>"]
    if notes:
        parts += ['<section id="notes" class="notes"><h2>Notes</h2>', *(f"<p>{html.escape(n)}</p>" for n in notes),
                  "</section>"]
    return "\n".join(parts) + f"\n</main><script>{SORT_JS}{OPEN_JS}</script>\n</body></html>\n"
