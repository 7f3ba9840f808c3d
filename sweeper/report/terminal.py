"""The report at a terminal: sections (sections.py, and the statistics' from analysis.py) as rich tables fitted to
the console's width; the at most 20 best configurations; the other metrics' reference numbers with --all-metrics and
parameter importance with --importance.

Columns keep the order sections.py gives them, which is the order of what a reader needs; when the terminal is
too narrow for all of them, columns go from the end of that order (never who the row is, nor the sweep's
metric), and a line above the table names them. Columns are two spaces apart when everything fits so, one
otherwise; the rule under the header is broken between columns, so they read apart however close. The best
row is starred in a one-character gutter. Markdown, HTML and CSV keep every column.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.box import Box
from rich.cells import cell_len
from rich.measure import Measurement
from rich.segment import Segment

from sweeper.report.analysis import analysis_lines, analysis_sections, reference_sections
from sweeper.report.frame import Report
from sweeper.report.header_footer import error_lines, footer_lines, header_lines, pending_line
from sweeper.report.sections import ERRORS_SHOWN, STAR, Section, label, row_sections

CONFIGURATIONS_SHOWN = 20

# No lines but the rule under the header, broken where one column ends and the next begins.
RULED = Box("    \n    \n ─  \n    \n    \n    \n    \n    \n")


def _wrappable(text: str) -> str:
    return text.replace("_", " ")  # lets rich wrap a long parameter name in a narrow column


def _widths(sec: Section) -> tuple[list[int], list[int]]:
    """Per column: the natural width (no wrapping) and the least that breaks no number and no word; the first
    column has the star's gutter when the section holds the best row."""
    natural, least = [], []
    for i, head in enumerate(sec.columns):
        texts = [_wrappable(head), *(row[i] for row in sec.cells)]
        gutter = 1 if i == 0 and sec.best is not None else 0
        natural.append(max(cell_len(t) for t in texts) + gutter)
        words = [cell_len(w) for t in texts for w in t.split()]
        numbers = [cell_len(row[i]) for row in sec.cells] if sec.right[i] else []
        least.append(max(words + numbers + [1]) + gutter)
    return natural, least


def _gaps(sec: Section, gap: int) -> int:
    return gap * (len(sec.keys) - 1)


def fit_columns(sec: Section, width: int, keep: set[str] | None = None) -> tuple[Section, list[int], int]:
    """Column widths and the gap between columns for a terminal `width`: natural widths two apart if that fits;
    else one apart, dropping columns from the end of the section's priority (saying which; never those in
    `keep` or the section's own keep) until the least widths fit, then widening columns to their natural
    width, those lacking least first, while the line has room. Nothing is cut in the middle of a number."""
    natural, least = _widths(sec)
    if sum(natural) + _gaps(sec, 2) <= width:
        return sec, natural, 2
    protected = set(keep or ()) | set(sec.keep)
    dropped = []
    for key in reversed(sec.priority or sec.keys):
        if sum(least) + _gaps(sec, 1) <= width:
            break
        if key in sec.keys and key not in protected and not key.startswith(("ref_", "delta_")):
            sec = sec.without({key, f"ref_{key}", f"delta_{key}"})  # a reference triple goes as one
            dropped.append(label(key))
            natural, least = _widths(sec)
    if dropped:
        dropped.reverse()  # in the order of the columns
        note = f"hidden at width {width}: {', '.join(dropped)} (a wider terminal, --format markdown or csv show them)"
        sec = dataclasses.replace(sec, notes=[*sec.notes, note])
    spare = width - _gaps(sec, 1) - sum(least)
    widths = list(least)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - least[i]):  # unwrap as many as fit
        give = max(0, min(natural[i] - least[i], spare))
        widths[i] += give
        spare -= give
    return sec, widths, 1


class _Fitted:
    """A cell that fits its column on one line, padded to the width: rich need neither wrap nor justify it
    (half the cost of a Text cell, which is most of the time the terminal table takes)."""

    __slots__ = ("text",)

    def __init__(self, text: str, width: int, right: bool) -> None:
        pad = " " * (width - cell_len(text))
        self.text = pad + text if right else text + pad

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield Segment(self.text)

    def __rich_measure__(self, console: Any, options: Any) -> Measurement:
        return Measurement(len(self.text), len(self.text))


def _gutter(sec: Section) -> list[list[str]]:
    """Cells with the first column behind a one-character gutter that stars the best row."""
    if sec.best is None:
        return sec.cells
    return [[(STAR if i == sec.best else " ") + row[0], *row[1:]] for i, row in enumerate(sec.cells)]


def print_rich(rep: Report, console: Any, all_metrics: bool = False, importance: bool = False) -> None:
    """The report at the console's width; the reference numbers of metrics other than the headline one only with
    `all_metrics`, parameter importance only with `importance` (Markdown and HTML always show both)."""
    from rich.table import Table
    from rich.text import Text

    def say(line: str, style: str | None = None) -> None:
        console.print(line, markup=False, highlight=False, style=style)

    for line in header_lines(rep):
        say(line)
    sections = row_sections(rep) + analysis_sections(rep, all_metrics, importance, limit=CONFIGURATIONS_SHOWN)
    for sec in sections:
        sec, widths, gap = fit_columns(sec, console.width, {rep.metric})
        console.print()
        for note in sec.notes + sec.variants:
            say(note)
        table = Table(title=Text(sec.title), title_justify="left", box=RULED, header_style="bold",
                      show_edge=False, pad_edge=False, padding=(0, 0, 0, gap - 1))  # + the box's 1 between
        heads = [(" " if i == 0 and sec.best is not None else "") + _wrappable(c) for i, c in enumerate(sec.columns)]
        for i, (head, right) in enumerate(zip(heads, sec.right, strict=True)):
            table.add_column(Text(head), justify="right" if right else "left", overflow="fold",
                             width=widths[i])  # given widths: rich need not measure every cell
        for i, row in enumerate(_gutter(sec)):
            cells = [_Fitted(c, w, r) if cell_len(c) <= w else Text(c) for c, w, r in zip(row, widths, sec.right,
                                                                                          strict=True)]
            table.add_row(*cells, style="bold green" if i == sec.best else None)
        console.print(table)
    console.print()
    pending = pending_line(rep)
    if pending:
        say(pending)
    errors = error_lines(rep, ERRORS_SHOWN)
    if errors:
        say("errors:", "bold red")
        for line in errors:
            say(f"  {line}")
    for line in footer_lines(rep) + analysis_lines(rep, importance):
        say(line)
    if not all_metrics and reference_sections(rep)[1] is not None:
        say("the other metrics against the reference: --all-metrics, or --format markdown/html")
