"""The HTML page answers first, in a real headless browser (Debian's chromium, Playwright, as test_html_browser.py
drives it), on a real report: the beyond study's confirmations, rebuilt from the Parquet kept in reports/beyond/data.

At the top, the answer box: its best configuration's value, interval and n are the Configurations table's best
row's cells, its counts of ≈ and worse that table's; the page loads offline without a console error, every figure
drew, a header click sorts, a link opens the table it leads to, no table makes the page scroll sideways at 1280 px,
and the top of the page (1280x800) is saved as a screenshot: to tmp_path, and to docs/img/report-top.png (the docs
show it) only with SWEEPER_REFRESH_DOCS=1. Without a browser, the answer of a sweep with the study's references
(its differences and its reproduction, each as its own table says) and of one without replicates (the best trial).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.report.analysis import pairs_section, reference_sections
from sweeper.report.frame import build_report
from sweeper.report.html import html_page
from sweeper.report.sections import row_sections
from sweeper.store.storage import Storage
from tests.report.browser import Loaded, html_report, open_page
from tests.report.writing import Planned, write_sweep

REPO = Path(__file__).resolve().parents[2]
BEYOND = ["beyond_confirm", "beyond_confirm_third", "beyond_long"]
SCREENSHOT = REPO / "docs" / "img" / "report-top.png"
WIDTH, HEIGHT = 1280, 800
FIGURES = ".figure .plotly-graph-div"
DRAWN = ["configurations", "parcoords", "curves", "importance", "effects"]
CONFIG_ROWS = "Array.from(document.querySelectorAll('#t-configurations-4 tbody tr'))"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beyond")
    html_report(BEYOND, REPO / "reports" / "beyond" / "data", out)
    return out / "report.html"


@pytest.fixture(scope="module")
def loaded(page_file: Path) -> Iterator[Loaded]:
    drawn = f"Array.from(document.querySelectorAll('{FIGURES}')).filter(d => d.data).length === {len(DRAWN)}"
    with open_page(page_file, drawn, WIDTH, HEIGHT) as opened:
        yield opened


def cells(page: Any, rows: str, header: str) -> list[str]:
    """A column's cells (by its header's text) in the rows `rows` (a JS expression)."""
    heads = page.evaluate(f"Array.from({rows}[0].closest('table').querySelectorAll('th')).map(t => t.textContent)")
    return page.evaluate(f"{rows}.map(r => r.cells[{heads.index(header)}].textContent)")


def test_the_page_loads_offline_without_errors(loaded: Loaded, page_file: Path) -> None:
    page, requests, errors = loaded
    assert errors == []
    assert requests == [page_file.as_uri()]


def test_the_answer_is_at_the_top_and_is_the_configurations_tables(loaded: Loaded) -> None:
    page, _, _ = loaded
    assert page.evaluate("document.querySelector('main').firstElementChild.id") == "answer"
    box = page.locator("#answer").bounding_box()
    assert box["y"] < 100 and box["y"] + box["height"] <= HEIGHT  # whole, in the first screen
    marks = cells(page, CONFIG_ROWS, "vs best")
    best = marks.index("best")
    for cls, header in (("mean", "val acc"), ("ci", "95% CI"), ("n", "n"), ("test", "test acc")):
        assert page.text_content(f"#answer-best .{cls}") == cells(page, CONFIG_ROWS, header)[best]
    who = [cells(page, CONFIG_ROWS, h)[best] for h in ("sweep", "variant")]
    assert page.text_content("#answer-best .label") == ", ".join(who)
    assert page.text_content("#answer-tied .tied-count") == str(marks.count("≈")) == "3"
    assert page.text_content("#answer-tied .worse-count") == str(marks.count("worse")) == "0"
    tied = page.text_content("#answer-tied")
    assert "Holm-corrected over all 6 pairs of configurations" in tied
    assert page.locator("#answer-tied li").count() == 3
    assert page.text_content("#answer-compute").count("CPU-hours") == len(BEYOND)


def test_every_figure_drew(loaded: Loaded) -> None:
    page, _, _ = loaded
    ids = page.evaluate(f"Array.from(document.querySelectorAll('{FIGURES}')).map(d => d.id)")
    assert ids == DRAWN
    for name in ids:
        assert page.evaluate(f"document.querySelectorAll('#{name} .main-svg').length") > 0, name
        assert page.locator(f"#{name}").bounding_box()["width"] > 1000, name  # the column's width
    assert page.evaluate("document.querySelectorAll('#configurations .errorbar').length") == 4
    assert page.evaluate("document.querySelectorAll('#parcoords canvas').length") > 0  # WebGL lines
    assert page.evaluate("document.querySelectorAll('#curves .scatterlayer .trace').length") > 0
    assert page.evaluate("document.querySelectorAll('#effects .scatterlayer .trace').length") > 0


def test_a_header_click_sorts_and_tables_scroll_in_their_box(loaded: Loaded) -> None:
    page, _, _ = loaded
    first = [float(v) for v in cells(page, CONFIG_ROWS, "val acc")]
    assert first == sorted(first, reverse=True)
    heads = page.evaluate(f"Array.from({CONFIG_ROWS}[0].closest('table').querySelectorAll('th')).map(t => "
                          "t.textContent)")
    header = page.locator("#t-configurations-4 th").nth(heads.index("val acc"))
    header.click()
    assert [float(v) for v in cells(page, CONFIG_ROWS, "val acc")] == sorted(first)
    header.click()
    assert [float(v) for v in cells(page, CONFIG_ROWS, "val acc")] == sorted(first, reverse=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH  # the page never scrolls sideways
    wide = "Array.from(document.querySelectorAll('.scroll')).filter(s => s.scrollWidth > s.clientWidth).length"
    assert page.evaluate(wide) >= 1  # the trial table scrolls inside its box instead


def test_links_lead_to_the_parts_and_open_a_folded_table(loaded: Loaded) -> None:
    page, _, _ = loaded
    folded = "document.querySelector('#t-parameter-importance-ped-anova details').open"
    assert page.evaluate("document.querySelector('#t-configurations-4 details').open")  # the first table: open
    assert not page.evaluate(folded)
    page.click("#tables .toc a[href='#t-parameter-importance-ped-anova']")
    page.wait_for_function(folded)
    page.click("header.bar a[href='#answer']")
    page.wait_for_function("window.scrollY === 0 || document.querySelector('#answer').getBoundingClientRect().top "
                           "< 100")
    links = page.evaluate("Array.from(document.querySelectorAll('header.bar a')).map(a => a.hash)")
    assert links == ["#answer", "#plots", "#sweeps", "#tables", "#notes"]
    assert all(page.evaluate(f"!!document.querySelector('{link}')") for link in links)


def test_the_top_of_the_page_as_a_screenshot(loaded: Loaded, tmp_path: Path) -> None:
    page, _, _ = loaded
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = d.matches('#t-configurations-4 "
                  "details')); window.scrollTo(0, 0)")
    page.wait_for_function("window.scrollY === 0")
    shot = tmp_path / "report-top.png"
    page.screenshot(path=str(shot))
    from PIL import Image, ImageStat

    with Image.open(shot) as img:
        assert img.size == (WIDTH, HEIGHT) and ImageStat.Stat(img.convert("L")).stddev[0] > 10  # drawn, not blank
    if os.environ.get("SWEEPER_REFRESH_DOCS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def answer(page: str, key: str) -> str:
    """The text of the answer box's item `key`."""
    found = re.search(rf'<div class="item" id="answer-{key}"><dt>(.*?)</dt><dd>(.*?)</dd></div>', page, re.S)
    assert found, f"no answer-{key}"
    inline = re.sub(r"</?(span|strong)[^>]*>", "", found.group(2))
    return html.unescape(re.sub(r"<[^>]+>", " ", inline))


def flat(text: str) -> str:
    return " ".join(text.split())


def test_a_study_sweeps_answer_says_what_its_reference_tables_say(tmp_path: Path) -> None:
    from tests.report.test_report import make_slides

    make_slides(tmp_path / "slides")
    rep = build_report(["slides"], Storage.parse(str(tmp_path)))
    page = html_page(rep)
    head, _ = reference_sections(rep)
    pairs = pairs_section(rep)
    assert head is not None and pairs is not None
    differences, reference = flat(answer(page, "differences")), flat(answer(page, "reference"))
    assert flat(pairs.notes[0]) in differences and flat(head.notes[0]) in reference
    real = [dict(zip(pairs.keys, row, strict=True)) for row in pairs.cells]
    for row in real:
        said = f"{row['a']} − {row['b']}: {row['verdict']}; study {row['ref_delta']}, ours {row['delta']} {row['ci']}"
        assert (said in differences) == (row["verdict"] in ("real", "real, reversed"))
    off = [dict(zip(head.keys, row, strict=True)) for row in head.cells]
    for row in off:
        said = f"{row['variant']}: study {row['ref']}, {row['verdict']} our {row['mean']} {row['ci']}, n={row['n']}"
        assert (said in reference) == (row["verdict"] in ("above", "below"))
    assert page.index('id="answer"') < page.index('id="plots"') < page.index("<table>")  # answer, plots, tables


SINGLE = """\
name: single
metric: val_accuracy
epochs: 3
parameters:
  model: cnn
  filters: {grid: [8, 16, 32]}
"""


def test_without_replicates_the_answer_says_so_and_shows_the_best_trial(tmp_path: Path) -> None:
    storage = write_sweep(tmp_path, "single", SINGLE, [Planned({"filters": f}, [0.7, 0.8, v], test=v - 0.02)
                                                       for f, v in ((8, 0.85), (16, 0.9), (32, 0.88))])
    rep = build_report(["single"], storage)
    page = html_page(rep)
    assert answer(page, "tied").startswith("No comparison over seeds was possible: no configuration has 2 or more")
    (sec,) = row_sections(rep)
    assert sec.best is not None
    row = dict(zip(sec.keys, sec.cells[sec.best], strict=True))
    assert (row["trial_id"], row["filters"], row["val_accuracy"], row["test_accuracy"]) == ("00001", "16", "0.9000",
                                                                                            "0.8800")
    assert flat(answer(page, "best")) == "trial 00001 (filters=16): val_accuracy 0.9000, test acc 0.8800, one run " \
                                         "(no interval)"
    assert "Configurations (" not in page
