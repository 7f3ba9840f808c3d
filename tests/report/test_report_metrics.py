"""`sweeper report` of a sweep of your own loop with a declared metric (`metrics: {val_f1: max}`, `metric: val_f1`;
tests/report/own_loop.py), from real Parquet files, spec.yaml and sweep.json: val_f1 and test_f1 in every table
and format, "best" and the order by val_f1, learning curves of val_f1, test_f1.png, the statistics and --group-by
on it; and a report of such a sweep beside a standard one."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.report.frame import Report, build_report
from sweeper.report.html_figures import learning_curves
from sweeper.report.plot_data import curve_points, sample
from sweeper.report.terminal import print_rich
from sweeper.store.storage import Storage
from tests.report.own_loop import BEST, NAME, TRIALS, curve, final_f1, write_own
from tests.report.test_report import assert_png
from tests.report.writing import Planned, table, write_sweep

REPO = Path(__file__).resolve().parents[2]
METRIC_HEADERS = ["val f1", "test f1", "val loss", "test loss", "train loss", "wall s"]
PLAIN = """\
name: plain
epochs: 3
parameters:
  model: mlp
  lr: {grid: [0.001, 0.01]}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_own(root)
    return root


def build(root: Path, *names: str, **kwargs: object) -> Report:
    return build_report(list(names or [NAME]), Storage.parse(str(root)), **kwargs)  # type: ignore[arg-type]


def render(rep: Report, importance: bool = False) -> str:
    out = io.StringIO()
    print_rich(rep, Console(width=240, file=out, color_system=None), importance=importance)
    return out.getvalue()


def test_the_trials_table_leads_with_the_declared_metric_and_best_goes_by_it(root: Path) -> None:
    rep = build(root)
    assert (rep.metric, rep.mode) == ("val_f1", "max")
    text = render(rep)
    assert "metric: val_f1 (max)" in text
    header, rows = table(text, "own: 12 trials")
    # no accuracy columns: the loop reported none; sweeper's keys the loop does not take are no parameters
    assert header == ["trial", "width", "lr", "seed", "ended", "epochs", "vs best", *METRIC_HEADERS]
    assert "fixed:" not in text and "optimizer" not in text
    assert rows[0][:8] == ["★00011", "64", "0.01", "2", "completed", "9", "best", "0.8180"]
    assert rows[0][8] == "0.8080"  # test_f1, four decimals as every metric
    shown = [float(r[7]) for r in rows]
    assert shown == sorted(shown, reverse=True)  # best (highest) val_f1 first
    assert "★ best val_f1: 0.8180 (own_00011)" in text
    assert rep.table.loc[rep.best, "trial_id"] == BEST


def test_sort_by_a_declared_metric_is_best_first(root: Path) -> None:
    assert build(root, sort_by="val_f1").rows["trial_id"].iloc[0] == BEST
    ascending = build(root, sort_by="-test_f1").rows["test_f1"].dropna().tolist()
    assert ascending == sorted(ascending) and len(ascending) == TRIALS - 2


def test_group_by_a_parameter_gives_the_declared_metrics_mean_and_interval(root: Path) -> None:
    rep = build(root, group_by=["width"])
    text = render(rep)
    header, rows = table(text, "own: 2 groups")
    assert header == ["width", "n", "ended", "epochs", *METRIC_HEADERS]
    done64 = [final_f1(i) for i in range(6, 12)]
    mean, std = pd.Series(done64).mean(), pd.Series(done64).std()
    assert rows[0][0] == "★64" and rows[0][4].startswith(f"{mean:.4f}±")
    assert rep.rows["val_f1_std"].iloc[0] == pytest.approx(std)
    assert rep.rows["test_f1"].iloc[0] == pytest.approx(mean - 0.01)
    assert rows[1][:3] == ["32", "6", "4 completed, 2 ASHA-stopped"]
    assert f"★ best val_f1: {mean:.4f} (width=64)" in text
    code = CliRunner().invoke(app, ["report", NAME, "--storage", str(root), "--group-by", "val_f1"])
    assert code.exit_code != 0 and "group by parameters" in code.output


def test_statistics_use_the_declared_metric_and_its_test_counterpart(root: Path) -> None:
    text = render(build(root), importance=True)
    header, rows = table(text, "Configurations (4)")
    assert header == ["lr", "width", "n", "val f1", "95% CI", "std", "vs best", "p (Holm)", "test", "test f1",
                      "test f1 95% CI"]
    assert rows[0][:4] == ["0.01", "64", "3", "0.8140"] and rows[0][6] == "best" and rows[0][9] == "0.8040"
    assert [r[6] for r in rows[1:]] == ["worse"] * 3
    assert "mean val_f1 over the replicates that ran their whole protocol" in " ".join(text.split())
    assert "parameter importance for val_f1" in text
    header, rows = table(text, "Parameter importance (PED-ANOVA)")
    assert rows[0][0] == "width" and rows[0][3] == "measurable"
    # the ASHA audit ranks by val_f1 at the rungs (1 and 3), with its band from the replicates there
    assert "Spearman's ρ between val_f1 at each rung and at the end" in " ".join(text.split())
    header, rows = table(text, "ASHA audit: own")
    assert [r[0] for r in rows] == ["1", "3"] and [r[1] for r in rows] == ["10", "10"]
    assert rows[1][6] == f"{min(curve(i)[2] for i in range(TRIALS) if i not in (1, 4)):.4f}"  # weakest promoted
    assert "possible late bloomer: own_00004 stopped at epoch 3 with val_f1 0.5340" in text


def test_learning_curves_draw_the_declared_metric(root: Path) -> None:
    rep = build(root)
    points = curve_points(rep, sample(rep, 1000))
    assert points is not None
    pos, x, y = points
    epochs = pq.read_table(root / NAME / "epochs.parquet").to_pandas()
    assert sorted(y.tolist()) == pytest.approx(sorted(epochs["val_f1"].tolist()))
    assert len(y) == sum(len(curve(i)) for i in range(TRIALS))
    fig = learning_curves(rep)
    assert fig.layout.yaxis.title.text == "val f1" and "val f1 per epoch" in fig.layout.title.text


def test_the_real_cli_writes_markdown_csv_png_and_html_of_the_declared_metric(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "sweeper", "report", NAME, "--storage", str(root), "--format",
                           "html", "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    md = (out / "report.md").read_text()
    assert "| trial | width | lr | seed | ended | epochs | vs best | val f1 | test f1 | val loss |" in md
    best = "| **★ 00011** | **64** | **0.01** | **2** | **completed** | **9** | **best** | **0.8180** | **0.8080** |"
    assert best in md
    assert "| lr | width | n | val f1 | 95% CI | std | vs best | p (Holm) | test | test f1 | test f1 95% CI |" in md
    assert "![val f1 per epoch, one line a trial](learning_curves.png)" in md
    assert "](test_f1.png)" in md and "test_accuracy.png" not in md and "## Parameter importance" in md
    csv = pd.read_csv(out / "trials.csv")
    columns = list(csv.columns)
    assert columns.index("test_accuracy") < columns.index("val_f1") < columns.index("test_f1") < \
        columns.index("wall_s")
    trials = pq.read_table(root / NAME / "trials.parquet").to_pandas().set_index("trial_id")
    by_id = csv.set_index("trial_id")
    assert by_id["val_f1"].to_dict() == pytest.approx(trials["val_f1"].to_dict())
    assert by_id.loc[BEST, "test_f1"] == pytest.approx(trials.loc[BEST, "test_f1"])
    assert csv["trial_id"].iloc[0] == BEST and "param_optimizer" not in columns and "optimizer" not in columns
    for name in ("learning_curves.png", "test_f1.png", "effects.png"):
        assert_png(out / name)
    assert not (out / "test_accuracy.png").exists()
    page = (out / "report.html").read_text()
    assert page == done.stdout and "<th>val f1</th><th>test f1</th>" in page
    assert "Learning curves: val f1 per epoch" in page and "Parameters against val_f1" in page


def test_a_copied_results_folder_without_spec_keeps_the_declared_columns(root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("trials.parquet", "epochs.parquet"):
        shutil.copy(root / NAME / name, copy / name)
    rep = build_report([str(copy)], Storage.parse(str(tmp_path)))
    assert rep.metric == "val_accuracy" and {"val_f1", "test_f1"} <= set(rep.metrics)  # the data alone
    csv = CliRunner().invoke(app, ["report", str(copy), "--format", "csv"]).stdout
    assert "val_f1" in csv.splitlines()[0] and "test_f1" in csv.splitlines()[0]


def test_an_own_loop_sweep_beside_a_standard_one(root: Path, tmp_path: Path) -> None:
    write_sweep(root, "plain", PLAIN, [Planned({"lr": lr}, [0.6, 0.7, 0.8]) for lr in (0.001, 0.01)])
    rep = build(root, NAME, "plain")
    assert rep.metric == "val_f1" and "optimise different metrics" in " ".join(rep.notes)
    assert rep.metrics[:6] == ("train_loss", "val_loss", "test_loss", "train_accuracy", "val_accuracy",
                               "test_accuracy") and {"val_f1", "test_f1"} <= set(rep.metrics)
    result = CliRunner().invoke(app, ["report", NAME, "plain", "--storage", str(root), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    points = curve_points(rep, sample(rep, 1000))
    assert points is not None and set(rep.trials["sweep"].to_numpy()[points[0]]) == {NAME}  # plain has no val_f1
    assert_png(tmp_path / "learning_curves.png")
    assert_png(tmp_path / "test_f1.png")
