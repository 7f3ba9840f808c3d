"""What a report shows (issue 15): what varies, best first, in every format alike.

A cnn.yaml-like sweep (two variants that fix the architecture; optimizer, dropout and momentum searched; lr
each optimizer's default) is written with the real ResultsWriter, part finished, part running, one failed, some
not started, and rendered at 80 and 120 columns, as Markdown and HTML, and as CSV.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.report.frame import Report, build_report
from sweeper.report.header_footer import pending_line
from sweeper.report.html import html_page
from sweeper.report.markdown_csv import export_frame, markdown
from sweeper.report.sections import metric_priority, row_sections
from sweeper.report.terminal import fit_columns, print_rich
from sweeper.spec.loader import load_text
from sweeper.store.files import SPEC_FILE
from sweeper.store.storage import Storage
from sweeper.store.writer import ResultsWriter
from tests.report.writing import table

SPEC = """\
name: cnnlike
metric: val_accuracy
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
num_samples: 2
variants:
  - {name: 2conv-32f-k3, model: cnn, conv_layers: 2, filters: 32, kernel_size: 3}
  - {name: 4conv-64f-k3, model: cnn, conv_layers: 4, filters: 64, kernel_size: 3, pool_every: 2}
parameters:
  batch_size: 32
  optimizer: {grid: [adam, sgd]}
  dropout: {grid: [0.2, 0.4]}
  momentum: {choice: [0.0, 0.9]}
"""
# Trial i (of the 16 the spec expands to, in its order): how it stands, its epochs, its latest val_accuracy.
# 7 is pending (its row written by an interrupt); 13-15 have no row yet. 3 failed with the highest value.
PLAN: dict[int, tuple[str, int, float]] = {
    0: ("done", 9, 0.86), 1: ("asha", 1, 0.71), 2: ("asha", 3, 0.78), 3: ("error", 2, 0.95), 4: ("done", 9, 0.89),
    5: ("running", 5, 0.91), 6: ("done", 9, 0.84), 8: ("asha", 3, 0.74), 9: ("done", 9, 0.90),
    10: ("running", 4, 0.83), 11: ("asha", 1, 0.69), 12: ("done", 9, 0.88),
}
BEST_FIRST = ["00005", "00009", "00004", "00012", "00000", "00006", "00010", "00002", "00008", "00001", "00011",
              "00003"]  # by val_accuracy; the failed trial after those that count for "best"
PENDING = "4 pending: 2conv-32f-k3 x1, 4conv-64f-k3 x3"
COLUMNS_80 = ["variant", "trial", "optimizer", "dropout", "momentum", "ended", "epochs", "val acc", "test acc"]
LOSSES = ["val loss", "test loss"]
COLUMNS_ALL = [*COLUMNS_80, *LOSSES, "train acc", "train loss", "wall s"]
runner = CliRunner()


def write_cnnlike(root: Path) -> Storage:
    storage = Storage.parse(str(root))
    folder = storage.folder("cnnlike")
    space = load_text(SPEC, Path("cnnlike.yaml"))
    writer = ResultsWriter(folder, flush_every_s=3600)
    configs = [point | {"momentum": (0.0, 0.9)[sample]} for point in space.grid_points() for sample in (0, 1)]
    for i, config in enumerate(configs[:13]):
        tid = f"c0ffe_{i:05d}"
        writer.set_params(tid, config["variant"], space.trial_params(config).recorded())
        if i not in PLAN:
            writer.trial(tid, state="PENDING")
            continue
        how, last, acc = PLAN[i]
        for epoch in range(1, last + 1):
            value = acc - 0.02 * (last - epoch)
            result = {"epoch": epoch, "val_accuracy": value, "val_loss": 1 - value, "train_accuracy": value + 0.03,
                      "train_loss": 0.9 - value, "time_s": 2.0, "time_total_s": 2.0 * epoch, "node": "n1"}
            if how == "done" and epoch == last:
                result |= {"finished": True, "test_accuracy": acc - 0.01, "test_loss": 1.01 - acc}
            writer.add_result(tid, result)
        if how == "error":
            writer.trial(tid, state="ERROR", error="RuntimeError: boom")
        elif how != "running":
            writer.trial(tid, state="TERMINATED", **({"stopped_by": "asha"} if how == "asha" else {}))
    writer.flush()
    folder.write_text(SPEC_FILE, SPEC)
    return storage


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    return write_cnnlike(tmp_path_factory.mktemp("runs"))


def render(rep: Report, width: int) -> str:
    out = io.StringIO()
    print_rich(rep, Console(width=width, file=out, color_system=None))
    return out.getvalue()



def flat(text: str) -> str:
    """The text with its lines joined: sentences the console wrapped read whole."""
    return " ".join(text.split())


def test_at_80_columns_what_varies_comes_first_best_first(storage: Storage) -> None:
    text = render(build_report(["cnnlike"], storage), 80)
    header, rows = table(text, "cnnlike: 12 trials")
    assert header == COLUMNS_80
    assert [r[1] for r in rows] == BEST_FIRST
    assert rows[0] == ["★2conv-32f-k3", "00005", "sgd", "0.2", "0.9", "running", "5", "0.9100", "-"]
    assert rows[1] == ["4conv-64f-k3", "00009", "adam", "0.2", "0.9", "completed", "9", "0.9000", "0.8900"]
    assert rows[-1][1:] == ["00003", "adam", "0.4", "0.9", "error", "2", "0.9500", "-"]
    assert [r[5] for r in rows].count("ASHA-stopped") == 4
    assert "hidden at width 80: val loss, test loss, train acc, train loss, wall s (a wider terminal, --format " \
           "markdown or csv show them)" in flat(text)
    # what the variants fix, once per variant; what follows an axis; what is fixed everywhere
    assert "2conv-32f-k3: conv_layers=2, filters=32, pool_every=1" in text.splitlines()
    assert "4conv-64f-k3: conv_layers=4, filters=64, pool_every=2" in text.splitlines()
    assert "lr follows optimizer: adam=0.001, sgd=0.01" in text.splitlines()
    fixed = flat(text).split("fixed: ")[1].split(" trial ids ")[0]
    assert "model=cnn" in fixed and "kernel_size=3" in fixed and "batch_size=32" in fixed and "filters" not in fixed
    assert "trial ids are shown without the prefix they share: c0ffe_00000 as 00000" in flat(text)
    assert PENDING in text.splitlines()
    assert "showing 12 of 16 trials, best val_accuracy first; 4 pending not shown" in text.splitlines()
    assert "★ best val_accuracy: 0.9100 (c0ffe_00005, 2conv-32f-k3)" in text.splitlines()
    assert ": 16 trials: 5 completed, 4 ASHA-stopped, 1 error, 2 running, 4 pending" in flat(text)
    assert max(len(line) for line in text.splitlines()) <= 80


def test_at_120_columns_the_losses_come_too(storage: Storage) -> None:
    text = render(build_report(["cnnlike"], storage), 120)
    header, rows = table(text, "cnnlike: 12 trials")
    assert header == COLUMNS_ALL
    assert [r[1] for r in rows] == BEST_FIRST
    assert "hidden at width" not in text
    assert max(len(line) for line in text.splitlines()) <= 120


@pytest.mark.parametrize("width", [60, 70, 80, 100, 120, 160])
def test_columns_go_from_the_end_of_the_order(storage: Storage, width: int) -> None:
    """Whatever the width, what shows is a prefix of the order (who and the metric always)."""
    rep = build_report(["cnnlike"], storage)
    (sec,) = row_sections(rep)
    assert sec.keys == ["variant", "trial_id", "optimizer", "dropout", "momentum", "end", "epochs",
                        *metric_priority("val_accuracy"), "wall_s"]
    fitted, widths, gap = fit_columns(sec, width, {rep.metric})
    kept = [k for k in sec.keys if k in fitted.keys]
    dropped = [k for k in sec.keys if k not in fitted.keys]
    shown = [k for k in kept if k not in ("variant", "val_accuracy")]
    assert fitted.keys == kept and "variant" in kept and "val_accuracy" in kept
    assert all(sec.keys.index(d) > sec.keys.index(k) for d in dropped for k in shown)
    assert sum(widths) + gap * (len(widths) - 1) <= width or len(kept) == 2
    assert max(len(line) for line in render(rep, width).splitlines()) <= width


def test_top_means_the_best_and_the_footer_says_what_was_shown(storage: Storage) -> None:
    rep = build_report(["cnnlike"], storage, top=3)
    assert rep.rows["trial_id"].str[-5:].tolist() == BEST_FIRST[:3]
    text = render(rep, 120)
    assert [r[1] for r in table(text, "cnnlike: 3 of 12 trials")[1]] == BEST_FIRST[:3]
    assert "showing the 3 best of 16 trials by val_accuracy; 4 pending not shown; --top N to change, --format csv " \
           "or --out DIR for all" in flat(text)
    # only the variants shown get their line
    assert "2conv-32f-k3: conv_layers=2, filters=32, pool_every=1" in text and "4conv-64f-k3:" in text
    assert build_report(["cnnlike"], storage, best=3).rows.index.tolist() == rep.rows.index.tolist()  # the cap


def test_sort_by_overrides_the_order(storage: Storage) -> None:
    rep = build_report(["cnnlike"], storage, sort_by="epochs")
    assert rep.rows["epochs"].tolist() == sorted(rep.rows["epochs"].tolist())
    text = render(rep, 120)
    assert "showing 12 of 16 trials, sorted by epochs; 4 pending not shown" in text.splitlines()
    rep = build_report(["cnnlike"], storage, sort_by="-epochs", top=2)
    assert rep.rows["epochs"].tolist() == [9, 9]
    assert "showing the first 2 of 16 trials, sorted by -epochs; 4 pending not shown; --top N to change" in render(
        rep, 160)


def test_markdown_and_html_show_the_same_table(storage: Storage) -> None:
    rep = build_report(["cnnlike"], storage)
    md = markdown(rep)
    lines = md.splitlines()
    header = lines.index("| " + " | ".join(COLUMNS_ALL) + " |")
    rows = [ln.strip("|").split("|") for ln in lines[header + 2:header + 14]]
    assert [r[1].strip(" *") for r in rows] == BEST_FIRST and lines[header + 14] == ""
    assert lines[header + 2].startswith("| **★ 2conv-32f-k3** | **00005** | **sgd** | **0.2** | **0.9** | **running** "
                                        "| **5** | **0.9100** | **-** |")
    assert "- 4conv-64f-k3: conv_layers=4, filters=64, pool_every=2" in lines
    assert "lr follows optimizer: adam=0.001, sgd=0.01" in lines
    assert PENDING in lines and "showing 12 of 16 trials, best val_accuracy first; 4 pending not shown" in lines
    page = html_page(rep)
    heads = re.findall(r"<th>(.*?)</th>", page.split("<table>")[1])
    assert heads == COLUMNS_ALL
    cells = re.findall(r"<tr[^>]*><td>([^<]*)</td><td>([^<]*)</td>", page.split("<table>")[1])
    assert [t for _, t in cells] == BEST_FIRST and cells[0][0] == "★ 2conv-32f-k3"
    assert f"<p>{PENDING}</p>" in page and "<li>2conv-32f-k3: conv_layers=2, filters=32, pool_every=1</li>" in page


def test_csv_holds_every_trial(storage: Storage, tmp_path: Path) -> None:
    rep = build_report(["cnnlike"], storage)
    frame = export_frame(rep)
    assert len(frame) == 13 and frame["trial_id"].str[-5:].tolist()[:12] == BEST_FIRST  # not reported yet: last
    assert frame["end"].tolist()[-1] == "pending"
    code, out, _ = invoke("cnnlike", "--format", "csv", storage=storage)
    assert code == 0 and len(pd.read_csv(io.StringIO(out))) == 13
    code, _, err = invoke("cnnlike", "--out", str(tmp_path / "out"), "--top", "2", storage=storage)
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert code == 0 and len(trials) == 13 and set(trials["end"]) >= {"pending", "running", "error"}
    assert export_frame(build_report(["cnnlike"], storage, top=2))["trial_id"].str[-5:].tolist() == BEST_FIRST[:2]


def invoke(*args: str, storage: Storage, width: int = 120) -> tuple[int, str, str]:
    result = runner.invoke(app, ["report", *args, "--storage", storage.given], env={"COLUMNS": str(width)})
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_at_80_columns(storage: Storage) -> None:
    code, out, _ = invoke("cnnlike", "--top", "8", storage=storage, width=80)
    header, rows = table(out, "cnnlike: 8 of 12 trials")
    assert code == 0 and header == COLUMNS_80 and [r[1] for r in rows] == BEST_FIRST[:8]
    assert "showing the 8 best of 16 trials by val_accuracy; 4 pending not shown; --top N to change, --format csv " \
           "or --out DIR for all" in flat(out)


def test_group_by_keeps_the_same_column_order(storage: Storage) -> None:
    rep = build_report(["cnnlike"], storage, group_by=["optimizer"])
    text = render(rep, 160)
    header, rows = table(text, "cnnlike: 2 groups")
    assert header == ["optimizer", "n", "ended", "epochs", "val acc", "test acc", "val loss", "test loss",
                      "train acc", "train loss", "wall s"]
    assert [r[0] for r in rows] == ["★sgd", "adam"]  # the mean val_accuracy of finished trials, best first
    assert rows[1][:3] == ["adam", "6", "2 completed, 4 ASHA-stopped, 1 error, 1 running"]
    assert "lr follows optimizer: adam=0.001, sgd=0.01" in text.splitlines()
    assert PENDING in text.splitlines() and "showing" not in text
    grouped = build_report(["cnnlike"], storage, group_by=["variant", "optimizer"], top=1)
    assert grouped.rows[["variant", "optimizer"]].values.tolist() == [["4conv-64f-k3", "sgd"]]
    header, _ = table(render(grouped, 160), "cnnlike: 1 of 4 groups")
    assert header[:4] == ["variant", "optimizer", "n", "ended"]
    assert "showing the 1 best of 4 groups by val_accuracy; --top N to change" in render(grouped, 160)


def test_waiting_trials_of_other_kinds_and_no_variants(tmp_path: Path) -> None:
    storage = Storage.parse(str(tmp_path))
    folder = storage.folder("plain")
    writer = ResultsWriter(folder)
    for tid, state in (("x_1", "RUNNING"), ("x_2", "INTERRUPTED"), ("x_3", "PENDING"), ("x_4", "TERMINATED")):
        writer.set_params(tid, None, {"model": "logreg", "lr": float(tid[-1]) / 10})
        writer.trial(tid, state=state)
    writer.add_result("x_4", {"epoch": 1, "val_accuracy": 0.5})
    writer.trial("x_4", state="TERMINATED")
    writer.flush()
    rep = build_report(["plain"], storage)
    assert rep.rows["trial_id"].tolist() == ["x_4"]
    assert pending_line(rep) == "1 pending, 1 running, 1 interrupted (no val_accuracy yet)"
    assert "showing 1 of 4 trials, best val_accuracy first; 1 pending, 1 running, 1 interrupted not shown" in render(
        rep, 120).splitlines()
