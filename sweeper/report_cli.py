"""`sweeper report`: comparison tables (terminal, Markdown, CSV, HTML) and, with --out, files and plots.

pandas and matplotlib are imported inside the command, so `sweeper --help` stays fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sweeper.cliutil import StorageOpt, console, err_console, storage_or_default, user_errors
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    from sweeper.report import Report

TERMINAL_ROWS = 20  # the terminal shows the 20 best rows unless --top says otherwise


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    html = "html"


def write_out(rep: Report, out: Path, html: bool = False) -> list[Path]:
    """report.md (or also report.html), trials.csv (every trial that passes --where) and the PNG plots."""
    from sweeper import report_tables as tables
    from sweeper.report_plots import write_plots

    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        images, skipped = write_plots(rep, out)
        (out / "report.md").write_text(tables.markdown(rep, images))
        (out / "trials.csv").write_text(tables.csv_text(rep, all_trials=True))
        if html:
            (out / "report.html").write_text(tables.html_page(rep, images))
    except OSError as exc:
        raise SweeperError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    for note in skipped:
        err_console.print(note, markup=False, highlight=False)
    names = ["report.md", *(["report.html"] if html else []), "trials.csv", *(n for n, _ in images)]
    return [out / n for n in names]


@user_errors
def report(
    sweeps: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME|PATH]...", help="Sweep names under --storage, or results folders "
                       "(default: every sweep under --storage)."),
    ] = None,
    storage: StorageOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output on stdout.")] = Format.table,
    out: Annotated[
        Path | None, typer.Option(help="Also write report.md, trials.csv and PNG plots into this folder.")
    ] = None,
    sort_by: Annotated[
        str | None,
        typer.Option(help="Column to sort by; metrics sort best first, a leading '-' reverses "
                     "(default: variant order, then the metric best first)."),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(min=1, help="Show only the first N rows (default: all; the terminal table shows the "
                     f"{TERMINAL_ROWS} best)."),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(help="pandas condition over the columns, e.g. \"filters >= 32 and end == 'completed'\" "
                     "(param_ prefix optional)."),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        typer.Option(help="Aggregate over the other axes (seeds, repeats): one row per value of these "
                     "columns with mean±std and n. Repeatable, e.g. --group-by variant."),
    ] = None,
) -> None:
    """Comparison tables of one or more sweeps: varied parameters, how each trial ended, metrics, references."""
    from sweeper import report_tables as tables
    from sweeper.report import build, capped

    terminal_cap = fmt is Format.table and top is None  # files get every row; the terminal the best few
    rep = build(sweeps or [], storage_or_default(storage), where=where, sort_by=sort_by, top=top,
                group_by=group_by or [], best=TERMINAL_ROWS if terminal_cap and out is None else None)
    if fmt is Format.table:
        tables.print_rich(capped(rep, best=TERMINAL_ROWS) if terminal_cap and out is not None else rep, console)
    elif fmt is Format.markdown:
        typer.echo(tables.markdown(rep), nl=False)
    elif fmt is Format.csv:
        typer.echo(tables.csv_text(rep), nl=False)
    else:
        typer.echo(tables.html_page(rep), nl=False)
    if out is not None:
        written = write_out(rep, out, html=fmt is Format.html)
        err_console.print(f"wrote {', '.join(str(p) for p in written)}", markup=False, highlight=False,
                          soft_wrap=True)
