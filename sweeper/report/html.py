"""`report --format html`: one self-contained page that works offline. Everything is inlined: the styles, a few
lines of JavaScript that sort a table by the column clicked, plotly's own bundle (plotly.offline.get_plotlyjs())
and every figure's data (html_figures.py); the page requests nothing but itself.

It shows what Markdown shows (the same sections, columns, rows and lines: sections.py, analysis.py,
header_footer.py), the trial tables first, then the figures: parameters against the metric in parallel coordinates,
learning curves, configurations and reference numbers with 95% intervals as error bars, importance and marginal
effects.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from sweeper.report.analysis import analysis_lines, analysis_sections
from sweeper.report.frame import Report
from sweeper.report.header_footer import error_lines, footer_lines, header_lines, pending_line
from sweeper.report.sections import Section, row_sections

STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:2px 6px}td.num{text-align:right}th{cursor:pointer;background:#f4f4f4}"
         "tr.best{font-weight:bold;background:#e6f4ea}.figure{margin:1em 0}")
# Click a header to sort by that column (again to reverse): numbers by value (a leading star, "[" or "±..." aside),
# numbers before text, "-" (missing) last.
SORT_JS = """
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.title = "click to sort";
    th.addEventListener("click", function () {
      var dir = th.dataset.dir === "asc" ? -1 : 1;
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      function key(row) {
        var text = row.cells[col].textContent.replace(/^[\\u2605\\s\\[]+/, "");
        var x = parseFloat(text);
        return text === "-" ? null : isNaN(x) ? text : x;
      }
      var rows = Array.from(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
        if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    });
  });
});
"""


def html_table(sec: Section) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in sec.columns)
    body = []
    for i, row in enumerate(sec.starred()):
        cls = ' class="best"' if i == sec.best else ""
        tds = "".join(f'<td{" class=num" if r else ""}>{html.escape(c)}</td>' for c, r in zip(row, sec.right,
                                                                                                strict=True))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(sec: Section, kind: str) -> str:
    parts = [f'<section class="{kind}"><h2>{html.escape(sec.title)}</h2>']
    parts += [f"<p>{html.escape(n)}</p>" for n in sec.notes]
    if sec.variants:
        parts += ["<ul>"] + [f"<li>{html.escape(v)}</li>" for v in sec.variants] + ["</ul>"]
    return "\n".join([*parts, html_table(sec), "</section>"])


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


def figure_divs(rep: Report) -> list[str]:
    """Each figure there is data for as a div and the script that draws it (plotly's bundle is in the head)."""
    import plotly.io as pio

    from sweeper.report.html_figures import FIGURES

    out = []
    for name, build in FIGURES:
        fig: Any = build(rep)
        if fig is None:
            continue
        div = pio.to_html(_lists(fig.to_plotly_json()), full_html=False, include_plotlyjs=False, div_id=name,
                          config={"displaylogo": False, "responsive": True}, default_height=None)
        out.append(f'<div class="figure">{_inline_script(div)}</div>')
    return out


def html_page(rep: Report) -> str:
    """The whole report as one offline HTML page."""
    from plotly.offline import get_plotlyjs

    title = html.escape(f"Sweep report: {', '.join(s.name for s in rep.sweeps)}")
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>{STYLE}</style>",
             f"<script>{get_plotlyjs()}</script></head><body><h1>{title}</h1><ul>"]
    parts += [f"<li>{html.escape(line)}</li>" for line in header_lines(rep)] + ["</ul>"]
    parts += [_section(sec, "trials") for sec in row_sections(rep)]
    pending = pending_line(rep)
    if pending:
        parts.append(f"<p>{html.escape(pending)}</p>")
    parts += [_section(sec, "statistics") for sec in analysis_sections(rep)]
    errors = error_lines(rep)
    if errors:
        parts += ["<h2>Errors</h2><ul>"] + [f"<li>{html.escape(e)}</li>" for e in errors] + ["</ul>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in [*footer_lines(rep), *analysis_lines(rep)]]
    parts += ["<h2>Figures</h2>", *figure_divs(rep)]
    return "\n".join(parts) + f"\n<script>{SORT_JS}</script>\n</body></html>\n"
