"""`report --out DIR`: the folder of files a report leaves behind: report.md and trials.csv (markdown_csv.py), the
PNG plots (png_plots.py) and, with --format html, report.html (html.py).
"""

from __future__ import annotations

from pathlib import Path

from sweeper.errors import SweeperError
from sweeper.report.frame import Report
from sweeper.report.html import html_page
from sweeper.report.markdown_csv import csv_text, markdown


def write_out(rep: Report, out: Path, html: bool = False) -> tuple[list[Path], list[str]]:
    """report.md (and with `html` the self-contained report.html), trials.csv (every trial that passes --where)
    and the PNG plots; returns the files written and a note per plot that was left out."""
    from sweeper.report.png_plots import write_plots

    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        images, skipped = write_plots(rep, out)
        (out / "report.md").write_text(markdown(rep, images))
        (out / "trials.csv").write_text(csv_text(rep, all_trials=True))
        if html:
            (out / "report.html").write_text(html_page(rep))
    except OSError as exc:
        raise SweeperError(f"--out {out}: cannot write there: {exc.strerror or exc}") from None
    names = ["report.md", *(["report.html"] if html else []), "trials.csv", *(n for n, _ in images)]
    return [out / n for n in names], skipped
