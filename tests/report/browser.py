"""The HTML report page as the HTML tests make it (the real `sweeper report --format html --out DIR`) and open it in
a real headless browser (Debian's chromium, driven by Playwright): every request the page makes and every console
or page error are recorded. Without chromium the opener fails (CI installs it: .ci/run), it never skips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from typer.testing import CliRunner, Result

from sweeper.cli import app

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

Loaded = tuple[Any, list[str], list[str]]  # the page, the URLs it requested, the errors it logged


def html_report(names: list[str], storage: Path, out: Path) -> Result:
    """`sweeper report NAMES --storage STORAGE --format html --out OUT` through the CLI, which must succeed: its
    result (the page is OUT/report.html)."""
    result = CliRunner().invoke(app, ["report", *names, "--storage", str(storage), "--format", "html", "--out",
                                      str(out)])
    assert result.exit_code == 0, result.output
    return result


@contextmanager
def open_page(path: Path, ready_js: str, width: int = 1400, height: int = 1000) -> Iterator[Loaded]:
    """The file `path` loaded in chromium at `width`x`height`, once the JS expression `ready_js` is truthy."""
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install -y chromium (CI does: .ci/run)"
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function(ready_js)
        yield page, requests, errors
        browser.close()
