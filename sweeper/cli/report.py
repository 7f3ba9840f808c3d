"""`sweeper report`: comparison tables (terminal, Markdown, CSV, HTML) and, with --out, files and plots.

pandas and matplotlib are imported inside the command, so `sweeper --help` stays fast.
"""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from sweeper.cli.common import StorageOpt, console, plain_err, storage_of, user_errors

TERMINAL_ROWS = 20  # the terminal shows the 20 best rows unless --top says otherwise


class Format(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    html = "html"
    yaml = "yaml"


def _command(sweeps: list[str] | None, sort_by: str | None, top: int | None, where: str | None) -> str:
    """The report command that picked the rows, as a user would type it."""
    args = ["sweeper", "report", *(sweeps or []), *(["--sort-by", sort_by] if sort_by else []),
            *(["--top", str(top)] if top else []), *(["--where", where] if where else [])]
    return shlex.join(args)


@user_errors
def report(
    sweeps: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME|PATH]...", help="Sweep names under --storage, or results folders "
                       "(default: every sweep under --storage)."),
    ] = None,
    storage: StorageOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output on stdout; yaml: the rows shown as spec "
                                        "parameters and variants, to train them again.")] = Format.table,
    out: Annotated[
        Path | None, typer.Option(help="Also write report.md, trials.csv and PNG plots into this folder (and "
                                  "report.html with --format html).")
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
                     "columns with mean±half its 95% interval and n. Repeatable, e.g. --group-by variant."),
    ] = None,
    all_metrics: Annotated[
        bool, typer.Option("--all-metrics", help="Terminal: every metric against the study's reference numbers, "
                           "not only test accuracy (Markdown and HTML always show them).")
    ] = False,
    importance: Annotated[
        bool, typer.Option("--importance", help="Terminal: parameter importance with bootstrap intervals (takes "
                           "seconds; Markdown and HTML always show it).")
    ] = False,
) -> None:
    """Comparison tables of one or more sweeps: varied parameters, how each trial ended, metrics, references."""
    from sweeper.report import markdown_csv
    from sweeper.report.frame import build_report, capped
    from sweeper.report.html import html_page
    from sweeper.report.out_folder import write_out
    from sweeper.report.terminal import print_rich

    terminal_cap = fmt is Format.table and top is None  # files get every row; the terminal the best few
    rep = build_report(sweeps or [], storage_of(storage), where=where, sort_by=sort_by, top=top,
                group_by=group_by or [], best=TERMINAL_ROWS if terminal_cap and out is None else None)
    if fmt is Format.table:
        print_rich(capped(rep, best=TERMINAL_ROWS) if terminal_cap and out is not None else rep, console,
                   all_metrics=all_metrics, importance=importance)
    elif fmt is Format.markdown:
        typer.echo(markdown_csv.markdown(rep), nl=False)
    elif fmt is Format.csv:
        typer.echo(markdown_csv.csv_text(rep), nl=False)
    elif fmt is Format.yaml:
        from sweeper.report.respec import variants_yaml

        typer.echo(variants_yaml(rep, _command(sweeps, sort_by, top, where)), nl=False)
    else:
        typer.echo(html_page(rep), nl=False)
    if out is not None:
        written, skipped = write_out(rep, out, html=fmt is Format.html)
        for note in skipped:
            plain_err(note)
        plain_err(f"wrote {', '.join(str(p) for p in written)}")
