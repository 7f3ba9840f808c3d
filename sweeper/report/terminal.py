"""The report at a terminal: sections as rich tables fitted to the console's width."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.cells import cell_len
from rich.measure import Measurement
from rich.segment import Segment

from sweeper.report.frame import Report
from sweeper.report.sections import (
    ERRORS_SHOWN,
    LABELS,
    Section,
    error_lines,
    footer_lines,
    header_lines,
    reference_section,
    row_sections,
)

# Dropped first when the terminal is too narrow for every column (Markdown and CSV keep them all).
DROP_ORDER = ("train_loss", "test_loss", "train_accuracy", "wall_s", "trial_id", "val_loss", "epochs")
KEEP = {"sweep", "variant", "n", "val_accuracy", "test_accuracy"}  # never hidden (nor the sweep's metric)


def _label(text: str) -> str:
    return text.replace("_", " ")  # lets rich wrap a long parameter name in a narrow column


def _widths(sec: Section) -> tuple[list[int], list[int]]:
    """Per column: the natural width (no wrapping) and the least that breaks no number and no word."""
    natural, least = [], []
    for i, head in enumerate(sec.columns):
        texts = [_label(head), *(row[i] for row in sec.cells)]
        star = 2 if i == 0 and sec.best is not None else 0
        natural.append(max(len(t) for t in texts) + star)
        words = [len(w) for t in texts for w in t.split()]
        numbers = [len(row[i]) for row in sec.cells] if sec.right[i] else []
        least.append(max(words + numbers + [1]) + star)
    return natural, least


def _overhead(sec: Section) -> int:
    return 2 * len(sec.keys) - 1  # a space of padding left of each column, a separator between columns


def fit_columns(sec: Section, width: int, keep: set[str]) -> tuple[Section, list[int]]:
    """Column widths for a terminal `width`: natural if it fits, else drop low-priority columns (saying so;
    never those in `keep`) until the least widths fit, then widen columns to their natural width, those
    lacking least first, while the line has room. Nothing is ever cut in the middle of a number."""
    natural, least = _widths(sec)
    if sum(natural) + _overhead(sec) <= width:
        return sec, natural
    keep = keep | KEEP
    # then parameters from the right, then how trials ended
    candidates = [*DROP_ORDER, *(k for k in reversed(sec.keys) if k not in DROP_ORDER and k != "end"), "end"]
    dropped = []
    for key in candidates:
        if sum(least) + _overhead(sec) <= width:
            break
        if key in sec.keys and key not in keep and not key.startswith(("ref_", "delta_")):
            sec = sec.without({key, f"ref_{key}", f"delta_{key}"})  # a reference triple goes as one
            dropped.append(LABELS.get(key, key))
            natural, least = _widths(sec)
    if dropped:
        note = f"hidden at width {width}: {', '.join(dropped)} (a wider terminal, --format markdown or csv show them)"
        sec = dataclasses.replace(sec, notes=[*sec.notes, note])
    spare = width - _overhead(sec) - sum(least)
    widths = list(least)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - least[i]):  # unwrap as many as fit
        give = max(0, min(natural[i] - least[i], spare))
        widths[i] += give
        spare -= give
    return sec, widths


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


def print_rich(rep: Report, console: Any) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    def say(line: str, style: str | None = None) -> None:
        console.print(line, markup=False, highlight=False, style=style)

    for line in header_lines(rep):
        say(line)
    sections = row_sections(rep)
    ref = reference_section(rep)
    for sec in sections + ([ref] if ref else []):
        sec, widths = fit_columns(sec, console.width, {rep.metric})
        console.print()
        for note in sec.notes:
            say(note)
        table = Table(title=Text(sec.title), title_justify="left", box=box.SIMPLE_HEAD, header_style="bold",
                      show_edge=False, padding=(0, 0, 0, 1))  # two characters between columns, see fit()
        for i, (label, right) in enumerate(zip(sec.columns, sec.right, strict=True)):
            table.add_column(Text(_label(label)), justify="right" if right else "left", overflow="fold",
                             width=widths[i])  # given widths: rich need not measure every cell
        for i, row in enumerate(sec.starred()):
            cells = [_Fitted(c, w, r) if cell_len(c) <= w else Text(c) for c, w, r in zip(row, widths, sec.right,
                                                                                          strict=True)]
            table.add_row(*cells, style="bold green" if i == sec.best else None)
        console.print(table)
    errors = error_lines(rep, ERRORS_SHOWN)
    if errors:
        say("errors:", "bold red")
        for line in errors:
            say(f"  {line}")
    for line in footer_lines(rep):
        say(line)


