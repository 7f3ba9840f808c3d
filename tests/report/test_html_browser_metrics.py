"""The HTML page of a sweep of your own loop with a declared metric (val_f1; tests/report/own_loop.py) in a real
headless browser (Debian's chromium, Playwright), as test_html_browser.py drives it: it loads offline without an
error; its trial table has val f1 and test f1 columns, best val_f1 first, and sorts by them; parallel coordinates
end on val_f1; the learning curves are val_f1 per epoch, one line per trial; the configurations' intervals are
of val_f1. Without chromium this test fails, it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.report.browser import Loaded, html_report, open_page
from tests.report.own_loop import NAME, TRIALS, write_own

ROWS = "Array.from(document.querySelectorAll('section.trials table tbody tr'))"


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_own(root)
    out = root / "html"
    html_report([NAME], root, out)
    return out / "report.html"


@pytest.fixture(scope="module")
def loaded(page_file: Path) -> Iterator[Loaded]:
    drawn = "document.getElementById('curves') && document.getElementById('curves').data"
    with open_page(page_file, drawn) as opened:
        yield opened


def column(page: Any, label: str) -> list[float]:
    heads = page.evaluate("Array.from(document.querySelectorAll('section.trials th')).map(th => th.textContent)")
    col = heads.index(label)
    return page.evaluate(f"{ROWS}.map(r => parseFloat(r.cells[{col}].textContent.replace(/^\\u2605 /, '')))")


def test_the_page_loads_offline_and_its_table_shows_and_sorts_val_f1(loaded: Loaded, page_file: Path) -> None:
    page, requests, errors = loaded
    assert errors == [] and requests == [page_file.as_uri()]
    assert page.evaluate(f"{ROWS}.length") == TRIALS
    f1 = column(page, "val f1")
    assert f1 == sorted(f1, reverse=True) and f1[0] == pytest.approx(0.818)  # best first
    test = [v for v in column(page, "test f1") if v == v]
    assert len(test) == TRIALS - 2 and max(test) == pytest.approx(0.808)  # the ASHA-stopped have none
    heads = page.evaluate("Array.from(document.querySelectorAll('section.trials th')).map(th => th.textContent)")
    page.click(f"section.trials th:nth-child({heads.index('val f1') + 1})")
    assert column(page, "val f1") == sorted(f1)
    assert "val acc" not in heads  # the loop reported no accuracy


def test_figures_draw_val_f1(loaded: Loaded, page_file: Path) -> None:
    page, _, _ = loaded
    dims = page.evaluate("document.getElementById('parcoords').data[0].dimensions.map(d => d.label)")
    assert dims == ["lr", "width", "val_f1"]  # the varied keys in the file's order, then the metric
    assert page.evaluate("document.getElementById('curves').layout.yaxis.title.text") == "val f1"
    ys = page.evaluate("document.getElementById('curves').data.flatMap(t => t.y.filter(y => y !== null))")
    epochs = pq.read_table(page_file.parents[1] / NAME / "epochs.parquet").column("val_f1").to_pylist()
    assert sorted(ys) == pytest.approx(sorted(epochs))
    lines = page.evaluate("document.getElementById('curves').data.map(t => t.x.filter(x => x === null).length)")
    assert sum(lines) == TRIALS
    assert page.evaluate("document.querySelectorAll('#configurations .errorbar').length") == 4
    title = page.evaluate("document.getElementById('configurations').layout.title.text")
    assert title.startswith("val_f1 per configuration")
