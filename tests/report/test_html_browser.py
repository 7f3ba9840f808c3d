"""`report --format html --out DIR` in a real headless browser: Debian's chromium driven by Playwright.

The page must load offline: no console error and no request but the file itself; its trial table has one row
per trial and sorts when a header is clicked; the parallel-coordinates plot holds one line per trial; learning
curves one line per trial; the configurations' intervals are error bars. Without chromium this test fails (CI
installs it: .ci/run), it never skips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.browser import Loaded, html_report, open_page
from tests.report.writing import Planned, write_sweep

SPEC = """\
name: page
metric: val_accuracy
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters:
  model: cnn
  filters: {grid: [8, 32]}
  optimizer: {grid: [sgd, adam]}
  seed: {grid: [0, 1, 2]}
"""
TRIALS = 12


def plan() -> list[Planned]:
    out = []
    for i in range(TRIALS):
        filters, optimizer, seed = (8, 32)[i // 6], ("sgd", "adam")[i // 3 % 2], i % 3
        final = 0.85 + 0.03 * (filters == 32) + 0.01 * (optimizer == "adam") + 0.002 * seed
        stopped = i == 1  # one ASHA-stopped replicate
        epochs = 1 if stopped else 9
        curve = [final - 0.3 + 0.3 * e / 9 for e in range(1, epochs + 1)]
        out.append(Planned({"filters": filters, "optimizer": optimizer, "seed": seed}, curve,
                           end="asha" if stopped else "done"))
    return out


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_sweep(root, "page", SPEC, plan())
    out = root / "html"
    result = html_report(["page"], root, out)
    assert result.stdout == (out / "report.html").read_text()  # stdout and the file are the same page
    return out / "report.html"


@pytest.fixture(scope="module")
def loaded(page_file: Path) -> Iterator[Loaded]:
    drawn = "document.getElementById('parcoords') && document.getElementById('parcoords').data"
    with open_page(page_file, drawn) as opened:
        yield opened


def test_loads_offline_without_errors(loaded: Loaded, page_file: Path) -> None:
    page, requests, errors = loaded
    assert errors == []
    assert requests == [page_file.as_uri()]  # plotly and every figure's data are in the file
    assert page.evaluate("typeof Plotly") == "object"


def test_the_trial_table_has_a_row_per_trial_and_sorts(loaded: Loaded) -> None:
    page, _, _ = loaded
    rows = "Array.from(document.querySelectorAll('section.trials table tbody tr'))"
    assert page.evaluate(f"{rows}.length") == TRIALS
    heads = page.evaluate("Array.from(document.querySelectorAll('section.trials th')).map(th => th.textContent)")
    col = heads.index("val acc")
    values = f"{rows}.map(r => parseFloat(r.cells[{col}].textContent.replace(/^\\u2605 /, '')))"
    first = page.evaluate(values)
    assert first == sorted(first, reverse=True)  # best first
    page.click(f"section.trials th:nth-child({col + 1})")
    assert page.evaluate(values) == sorted(first)
    page.click(f"section.trials th:nth-child({col + 1})")
    assert page.evaluate(values) == sorted(first, reverse=True)
    assert "vs best" in heads  # replicates: the tie mark is a column


def test_parallel_coordinates_draw_one_line_per_trial(loaded: Loaded) -> None:
    page, _, _ = loaded
    dims = page.evaluate("document.getElementById('parcoords').data[0].dimensions"
                         ".map(d => [d.label, d.values.length])")
    assert [label for label, _ in dims] == ["filters", "optimizer", "lr", "val_accuracy"]  # lr follows optimizer
    assert {n for _, n in dims} == {TRIALS}
    assert page.evaluate("document.querySelectorAll('#parcoords canvas').length") > 0  # drawn (WebGL)
    assert page.evaluate("document.querySelectorAll('#parcoords .axis-title').length") == len(dims)


def test_learning_curves_and_intervals(loaded: Loaded) -> None:
    page, _, _ = loaded
    lines = page.evaluate("document.getElementById('curves').data.map(t => t.x.filter(x => x === null).length)")
    assert sum(lines) == TRIALS  # one line (ended by a gap) per trial
    bars = page.evaluate("document.getElementById('configurations').data.map(t => t.error_x.array.length)")
    assert sum(bars) == 4  # four configurations, each with its 95% interval
    assert page.evaluate("document.querySelectorAll('#configurations .errorbar').length") == 4
    assert page.evaluate("document.getElementById('effects').data.length") > 0
