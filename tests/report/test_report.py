"""`sweeper report`: tables, references, groups, formats, files and plots, from real Parquet files (no Ray)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.report.frame import Report, build_report
from sweeper.report.markdown_csv import markdown
from sweeper.report.terminal import print_rich
from sweeper.spec.loader import REFERENCE_METRICS, load
from sweeper.spec.params import TrialParams
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.writer import ResultsWriter
from tests.report.writing import table

REPO = Path(__file__).resolve().parents[2]
SLIDES = REPO / "search_spaces" / "slides.yaml"
OOM = "RuntimeError: CUDA error: out of memory"
ASHA_SPEC = """\
name: asha
description: >
  Kernel size against filters,
  under ASHA.
metric: val_loss
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters:
  model: cnn
  filters: {grid: [8, 16]}
  kernel_size: {grid: [3, 5]}
  seed: {grid: [0, 1]}
"""
runner = CliRunner()


def folder_of(path: Path) -> SweepFolder:
    """A results folder given by path, as the sweep folder `<parent>/<name>`."""
    return Storage.parse(str(path.parent)).folder(path.name)


def build(args: list[str], storage: str, **kwargs: object) -> Report:
    return build_report(args, Storage.parse(storage), **kwargs)  # type: ignore[arg-type]


def epoch_result(e: int, last: int, final: dict[str, float], finished: bool, **extra: object) -> dict:
    """Metrics that move towards `final` and reach it at epoch `last`."""
    left = (1 - e / last) ** 2
    out = {"epoch": e, "time_s": 2.0, "time_total_s": 2.0 * e, "node": "n1", "finished": finished, **extra}
    for m in ("train", "val"):
        out[f"{m}_accuracy"] = final[f"{m}_accuracy"] - (final[f"{m}_accuracy"] - 0.5) * left
        out[f"{m}_loss"] = final[f"{m}_loss"] + 1.5 * left
    if finished:
        out |= {"test_loss": final["test_loss"], "test_accuracy": final["test_accuracy"]}
    return out


def make_slides(folder: Path, spec: bool = True) -> Path:
    """The ten study variants x seeds 0 and 1 near the study's numbers; 4th MLP stops early; one trial fails."""
    space = load(SLIDES)
    folder.mkdir(parents=True)
    if spec:  # without slides.yaml's description, whose findings name variants the tests look for in rows
        text = re.sub(r"(?m)^description: >\n(?:  .*\n)+", "", SLIDES.read_text())
        text = re.sub(r"(?m)^    repeats: \d+", "    repeats: 2", text)  # the seeds 0 and 1 written below
        (folder / "spec.yaml").write_text(text)
    w = ResultsWriter(folder_of(folder), flush_every_s=3600)
    for i, (variant, ref) in enumerate((v, space.references[v]) for v in space.variants for _ in (0, 1)):
        seed, tid = i % 2, f"slide_{i:05d}"
        params = space.trial_params({"variant": variant})
        w.set_params(tid, variant, params.model_dump() | {"lr": params.learning_rate, "seed": seed})
        shift = 0.002 if seed else -0.002
        final = {m: ref.get(m, ref["val_loss"]) + shift for m in REFERENCE_METRICS}
        last = 37 if variant == "4th MLP" else params.max_epochs
        failed = variant == "5th CNN" and seed == 1
        for e in range(1, (3 if failed else last) + 1):
            w.add_result(tid, epoch_result(e, last, final, e == last, early_stopped=variant == "4th MLP"))
        w.trial(tid, state="ERROR", error=OOM) if failed else w.trial(tid, state="TERMINATED")
    w.flush()
    return folder


def make_asha(folder: Path) -> Path:
    """An interrupted ASHA sweep: completed, ASHA-stopped and one still RUNNING trial; no variants."""
    folder.mkdir(parents=True)
    (folder / "spec.yaml").write_text(ASHA_SPEC)
    w = ResultsWriter(folder_of(folder), flush_every_s=3600)
    plan = [(9, "done"), (1, "asha"), (3, "asha"), (9, "done"), (1, "asha"), (4, "running"), (9, "done"),
            (3, "asha")]
    for i, (last, how) in enumerate(plan):
        tid = f"asha_{i:05d}"
        params = TrialParams(model="cnn", filters=(8, 16)[i // 4], kernel_size=(3, 5)[i // 2 % 2], seed=i % 2)
        w.set_params(tid, None, params.model_dump() | {"lr": params.learning_rate})
        final = {"train_accuracy": 0.9, "val_accuracy": 0.85 + i / 100, "train_loss": 0.3, "val_loss": 0.5 - i / 100,
                 "test_loss": 0.5, "test_accuracy": 0.85}
        for e in range(1, last + 1):
            w.add_result(tid, epoch_result(e, 9, final, how == "done" and e == last))
        if how != "running":
            w.trial(tid, state="TERMINATED", **({"stopped_by": "asha"} if how == "asha" else {}))
    w.flush()
    return folder


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_slides(root / "slides")
    make_asha(root / "asha")
    return root


def render(*args: str, storage: Path, width: int = 220, all_metrics: bool = False, **kwargs: object) -> str:
    rep = build(list(args), str(storage), **kwargs)  # type: ignore[arg-type]
    out = io.StringIO()
    print_rich(rep, Console(width=width, file=out, color_system=None), all_metrics=all_metrics)
    return out.getvalue()


def line_with(text: str, needle: str) -> str:
    lines = [ln for ln in text.splitlines() if needle in ln]
    assert lines, f"{needle!r} not in:\n{text}"
    return lines[0]



def cli(*args: str, storage: Path | None = None, width: int = 220) -> tuple[int, str, str]:
    extra = ["--storage", str(storage)] if storage else []
    result = runner.invoke(app, ["report", *args, *extra], env={"COLUMNS": str(width)})
    return result.exit_code, result.stdout, result.stderr


def test_table_splits_families_shows_varied_columns_fixed_line_ends_and_best(storage: Path) -> None:
    text = render("slides", storage=storage)
    for title in ("logreg: 2 trials", "mlp: 8 trials", "cnn: 10 trials"):
        assert title in text
    fixed = line_with(text, "fixed: ")
    assert "batch_size=32" in fixed and "seed=" not in fixed  # seeds vary, so they are a column
    assert "fixed in mlp trials: optimizer=sgd, lr=0.01, max_epochs=100" in text
    mlp_header, mlp_rows = table(text, "mlp: 8 trials")
    # who, what varies (seeds), how it ended, the metric first: what each variant fixes is in a line of its own
    # seeds are replicates of each variant's configuration: "vs best" says how each compares with the best
    assert mlp_header == ["variant", "trial", "seed", "ended", "epochs", "vs best", "val acc", "test acc", "val loss",
                          "test loss", "train acc", "train loss", "wall s"]
    assert "1st MLP: hidden=[10], dropout=0, early_stopping_patience=0" in text
    assert "4th MLP: hidden=[256, 128], dropout=0, early_stopping_patience=1" in text
    assert "4th CNN: conv_layers=2, filters=32, kernel_size=3, pool_every=1, optimizer=adam, lr=0.001, " \
           "max_epochs=27" in text
    assert "filters" not in text[text.index("mlp: 8 trials"):text.index("fixed in cnn trials")]
    assert "trial ids are shown without the prefix they share: slide_00000 as 00000" in text
    assert ["4th MLP", "00008", "0", "early-stopped", "37"] in [r[:5] for r in mlp_rows]
    assert [r[1] for r in mlp_rows] == ["00005", "00007", "00004", "00006", "00009", "00008", "00003",
                                        "00002"]  # val_accuracy, best first
    cnn_header, cnn_rows = table(text, "cnn: 10 trials")
    assert cnn_header == mlp_header and cnn_rows[0][:4] == ["★4th CNN", "00017", "1", "completed"]  # the best
    assert [r[1] for r in cnn_rows] == ["00017", "00018", "00016", "00015", "00014", "00011", "00010", "00013",
                                        "00012", "00019"]  # the failed trial after those that count for best
    assert cnn_rows[-1][:5] == ["5th CNN", "00019", "1", "error", "3"]
    assert f"slide_00019 (5th CNN): {OOM}" in text  # the message, below the tables
    assert line_with(text, "★ best val_accuracy").startswith("★ best val_accuracy: 0.9175 (slide_00017, 4th CNN)")
    assert "showing" not in text and "pending" not in text  # every trial shown
    assert text.index("logreg: 2 trials") < text.index("mlp: 8 trials") < text.index("cnn: 10 trials")


def test_reference_table_shows_reference_reproduction_interval_and_verdict(storage: Path) -> None:
    text = render("slides", storage=storage)
    header, rows = table(text, "Reference: test acc")
    assert header == ["variant", "n", "epochs", "test acc ref", "test acc ours", "95% CI", "Δ", "ref vs CI", "vs best"]
    by = {r[0]: r for r in rows}
    # n=2 seeds at ref -0.002 / +0.002: the mean reproduces the reference, inside a wide interval (t with 1 df)
    half = 12.7062 * 0.002
    assert by["4th CNN"][:5] == ["4th CNN", "2", "27", "0.9183", "0.9183"]
    assert by["4th CNN"][5:] == [f"[{0.9183 - half:.4f}, {0.9183 + half:.4f}]", "+0.0000", "inside", "best"]
    assert by["5th CNN"] == ["5th CNN", "1", "16", "0.9176", "0.9156", "-", "-0.0020", "untested", "untested"]
    assert "test acc: of 10 variants, the study's number lies inside our 95% interval for 9" in " ".join(text.split())
    assert "Reference, the other metrics" not in text
    header, rows = table(render("slides", storage=storage, all_metrics=True), "Reference, the other metrics")
    assert header == ["variant", "metric", "n", "ref", "ours", "95% CI", "Δ", "ref vs CI"]
    at = [r[:2] for r in rows].index(["3rd MLP", "val acc"])
    assert rows[at][:5] == ["3rd MLP", "val acc", "2", "0.8900", "0.8900"]
    assert "train loss" not in [r[1] for r in rows if r[0] == "3rd MLP"]  # the study reported none


def test_group_by_variant_gives_mean_interval_and_n(storage: Path) -> None:
    text = render("slides", storage=storage, group_by=["variant"], width=300)
    assert "grouped by variant" in text and "mlp: 4 groups" in text and "logreg: 1 group " in text
    header, rows = table(text, "cnn: 5 groups")
    assert header == ["variant", "n", "ended", "epochs", "vs best", "val acc", "test acc", "val loss", "test loss",
                      "train acc", "train loss", "wall s"]
    assert [r[0] for r in rows] == ["★5th CNN", "4th CNN", "3rd CNN", "1st CNN", "2nd CNN"]  # the metric, best first
    # mean ± half the 95% t interval: 2 seeds 0.004 apart, so 12.706 * 0.002
    assert rows[2][:3] == ["3rd CNN", "2", "2 completed"] and rows[2][5] == "0.9093±0.0254"
    assert rows[0][:3] == ["★5th CNN", "1", "1 completed, 1 error"] and rows[0][5] == "0.9168"  # the finished one
    assert [r[4] for r in rows] == ["untested", "best", "worse", "worse", "worse"]
    assert "★ best val_accuracy: 0.9168 (variant=5th CNN)" in text
    assert "3rd CNN: conv_layers=2, filters=32, kernel_size=2, pool_every=1, optimizer=adam" in text


def test_group_by_a_parameter_and_sort_top(storage: Path) -> None:
    rep = build(["asha"], str(storage), group_by=["param_filters"], sort_by="filters")
    assert rep.rows["filters"].tolist() == [8, 16] and rep.rows["n"].tolist() == [4, 3]  # one still running
    assert rep.rows["end"].tolist() == ["2 completed, 2 ASHA-stopped", "1 completed, 2 ASHA-stopped, 1 running"]
    rep = build(["slides"], str(storage), sort_by="-test_accuracy", top=3)
    assert rep.rows["test_accuracy"].tolist() == sorted(rep.rows["test_accuracy"])  # '-' reverses best-first
    rep = build(["slides"], str(storage), sort_by="val_accuracy", top=2)
    assert rep.rows["trial_id"].tolist() == ["slide_00017", "slide_00018"] and len(rep.table) == 20


def test_terminal_cap_keeps_the_best_rows_and_narrow_terminals_hide_columns_from_the_end(storage: Path) -> None:
    rep = build(["slides"], str(storage), best=3)
    assert rep.rows["trial_id"].tolist() == ["slide_00017", "slide_00018", "slide_00016"]  # the 3 best, best first
    text = render("slides", storage=storage, best=3, width=70)
    assert "showing the 3 best of 20 trials by val_accuracy; --top N to change, --format csv or --out DIR for " \
           "all" in " ".join(text.split())
    assert "hidden at width 70: test loss, train acc, train loss, wall s (a wider terminal, --format markdown or " \
           "csv show them)" in " ".join(text.split())
    header, rows = table(text, "cnn: 3 of 10 trials")
    assert header == ["variant", "trial", "seed", "ended", "epochs", "vs best", "val acc", "test acc",
                      "val loss"]  # headers wrap before a column goes
    assert rows[0] == ["★4th CNN", "00017", "1", "completed", "27", "best", "0.9175", "0.9203", "0.2920"]
    assert [r[1] for r in rows] == ["00017", "00018", "00016"]
    assert "4th CNN: conv_layers=2" in text and "5th CNN: conv_layers=4" in text and "3rd CNN:" not in text
    assert max(len(line) for line in text.splitlines()) <= 70


def test_asha_sweep_running_and_min_metric(storage: Path) -> None:
    text = render("asha", storage=storage)
    assert "asha: 8 trials" in text and "metric: val_loss (min)" in text
    assert "1 trial not finished (sweep running or interrupted)" in text
    header, rows = table(text, "asha: 8 trials")
    assert header == ["trial", "filters", "kernel size", "seed", "ended", "epochs", "val loss", "test loss",
                      "val acc", "test acc", "train loss", "train acc", "wall s"]
    assert [r[0] for r in rows] == ["★00006", "00003", "00000", "00005", "00007", "00002", "00004", "00001"]
    assert rows[3][4] == "running"  # by its latest val_loss, lowest first
    assert text.count("ASHA-stopped") >= 4 and "variant" not in header
    assert "★ best val_loss: 0.4400 (asha_00006)" in text  # the lowest val_loss among those with one
    assert "fixed: model=cnn" in text and "hidden" not in text  # an MLP-only key, not shown for CNNs


def test_several_sweeps_get_a_sweep_column(storage: Path) -> None:
    text = render("slides", str(storage / "asha"), storage=storage)
    header, rows = table(text, "cnn: 18 trials")
    assert header[:3] == ["sweep", "variant", "trial"] and line_with(text, "asha_00000").split()[0] == "asha"
    assert rows[0][:3] == ["★slides", "4th CNN", "slide_00017"]  # ids differ: shown whole
    assert "optimise different metrics" in text


def test_where_filters_with_or_without_param_prefix(storage: Path) -> None:
    a = build(["slides"], str(storage), where="param_filters == 32 and model == 'cnn'")
    b = build(["slides"], str(storage), where="filters == 32 and model == 'cnn'")
    assert a.trials["trial_id"].tolist() == b.trials["trial_id"].tolist() and len(a.trials) == 4
    assert build(["slides"], str(storage), where="end == 'error'").trials["trial_id"].tolist() == ["slide_00019"]
    text = render("slides", storage=storage, where="variant == 'nope'")
    assert "no trials match --where variant == 'nope'" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--where", "filtres > 8"], "--where 'filtres > 8': unknown column 'filtres' (did you mean 'filters'?)"),
    (["--where", "filters >"], "--where 'filters >': not a valid pandas condition"),
    (["--where", "filters + 1"], "must be a true/false condition"),
    (["--sort-by", "val_acc"], "--sort-by 'val_acc': no such column (did you mean 'val_accuracy'?)"),
    (["--group-by", "val_loss"], "--group-by 'val_loss': group by parameters"),
    (["--group-by", "kernel"], "--group-by 'kernel': no such column (did you mean 'kernel_size'?)"),
])
def test_bad_options_are_one_line_errors(storage: Path, args: list[str], message: str) -> None:
    code, _, err = cli("slides", *args, storage=storage)
    assert code == 2 and message in err and "Traceback" not in err


def test_missing_results_are_exit_2(storage: Path, tmp_path: Path) -> None:
    code, _, err = cli("slide", storage=storage)
    assert code == 2 and "sweep 'slide': no results" in err and "did you mean 'slides'" in err
    code, _, err = cli(str(tmp_path), storage=storage)
    assert code == 2 and "holds no trials.parquet" in err
    code, _, err = cli(storage=tmp_path)
    assert code == 2 and "no sweep results there" in err
    (tmp_path / "empty").mkdir()
    ResultsWriter(folder_of(tmp_path / "empty")).flush()  # a sweep that has not recorded a trial yet
    code, _, err = cli("empty", storage=tmp_path)
    assert code == 2 and "no trials recorded yet" in err


def test_no_argument_reports_every_sweep_under_storage_env(storage: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPER_STORAGE", str(storage))
    result = runner.invoke(app, ["report"], env={"COLUMNS": "220", "SWEEPER_STORAGE": str(storage)})
    assert result.exit_code == 0 and "sweep asha (" in result.stdout and "sweep slides (" in result.stdout


def test_missing_or_broken_spec_still_reports(tmp_path: Path) -> None:
    make_slides(tmp_path / "nospec", spec=False)
    text = render("nospec", storage=tmp_path)
    assert "no spec.yaml" in text and "Reference:" not in text and "★4th CNN  00017" in text
    (tmp_path / "nospec" / "spec.yaml").write_text("metric: [oops\n")
    assert "spec.yaml unusable, so no reference numbers" in render("nospec", storage=tmp_path)


def test_markdown_format(storage: Path) -> None:
    code, out, _ = cli("slides", "--format", "markdown", storage=storage)
    assert code == 0 and out.startswith("# Sweep report: slides")
    assert "## cnn: 10 trials" in out and "## Reference: test acc" in out and "## Errors" in out
    header = line_with(out, "| variant | trial | seed | ended | epochs | vs best | val acc | test acc | val loss |")
    assert header.endswith("| test loss | train acc | train loss | wall s |")
    assert line_with(out, "|---").startswith("|---|---|---:|---|---:|---|---:|")
    assert "- 4th MLP: hidden=[256, 128], dropout=0, early_stopping_patience=1" in out
    best = line_with(out, "00017")
    assert best.startswith("| **★ 4th CNN** | **00017** | **1** | **completed** | **27** | **best** |")
    assert "| variant | n | epochs | test acc ref | test acc ours | 95% CI | Δ | ref vs CI | vs best |" in out
    other = out.split("## Reference, the other metrics")[1]  # Markdown shows every metric with a reference
    assert "| variant | metric | n | ref | ours | 95% CI | Δ | ref vs CI |" in other
    assert "| 3rd MLP | val loss | 2 | 0.2970 | 0.2970 |" in other and "| 3rd MLP | train loss |" not in other
    assert "## Configurations (10)" in out and "## Parameter importance (PED-ANOVA)" in out
    assert f"- slide_00019 (5th CNN): {OOM}" in out


def test_csv_and_html_formats(storage: Path) -> None:
    code, out, _ = cli("slides", "--format", "csv", "--where", "model == 'cnn'", storage=storage)
    df = pd.read_csv(io.StringIO(out))
    assert code == 0 and len(df) == 10 and {"ref_test_accuracy", "delta_val_loss", "filters", "error"} <= set(df)
    row = df.set_index("trial_id").loc["slide_00016"]
    assert row.ref_test_accuracy == pytest.approx(0.9183) and row.delta_test_accuracy == pytest.approx(-0.002)
    code, out, _ = cli("slides", "--format", "csv", "--group-by", "variant", storage=storage)
    groups = pd.read_csv(io.StringIO(out))
    assert len(groups) == 10 and {"n", "val_accuracy", "val_accuracy_std"} <= set(groups)
    code, out, _ = cli("slides", "--format", "html", storage=storage)
    # three families, configurations, reference (test acc, the study's differences, the others), importance
    assert code == 0 and out.startswith("<!doctype html>") and out.count("<table>") == 8
    assert '<tr class="best"><td>★ 4th CNN</td><td>00017</td>' in out
    assert "<li>4th CNN: conv_layers=2, filters=32, kernel_size=3, pool_every=1, optimizer=adam, lr=0.001" in out


def assert_png(path: Path, size: tuple[int, int] | None = None) -> None:
    from matplotlib.image import imread
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        width, height = img.size
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width) and pixels.std() > 0.01  # decoded, and not a blank canvas
    if size:
        assert (width, height) == size


def test_out_writes_markdown_csv_and_plots(storage: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, stdout, err = cli("slides", "asha", "--out", str(out), storage=storage)
    assert code == 0 and "sweep slides" in stdout and "wrote " in err
    md = (out / "report.md").read_text()
    assert "![val accuracy per epoch, one line a trial](learning_curves.png)" in md
    assert "| sweep | variant | trial |" in md
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 28 and set(trials["sweep"]) == {"slides", "asha"}
    assert_png(out / "learning_curves.png", (1000, 600))
    assert_png(out / "test_accuracy.png", (1000, 600))
    assert_png(out / "effects.png")


def test_out_html_and_a_sweep_without_finished_trials(storage: Path, tmp_path: Path) -> None:
    code, _, err = cli("asha", "--where", "end != 'completed'", "--format", "html", "--out", str(tmp_path),
                       storage=storage)
    page = (tmp_path / "report.html").read_text()
    assert code == 0 and "<img" not in page and 'id="curves"' in page  # self-contained: figures, not images
    assert "test_accuracy.png not drawn" in err and not (tmp_path / "test_accuracy.png").exists()
    assert_png(tmp_path / "learning_curves.png", (1000, 600))


def test_each_sweeps_epochs_are_read_once_per_report(storage: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The ASHA audit, the PNG learning curves and the HTML page's (printed and written) share one read: each
    sweep's trials.parquet and epochs.parquet are read once, together (store/pair.py), and its epochs made a frame
    once."""
    import sweeper.report.sources as sources

    reads: list[str] = []
    frames: list[str] = []
    read_pair, epochs = sources.read_pair, sources.Sweep.epochs

    def counted(folder: SweepFolder, *args: Any, **kwargs: Any) -> Any:
        reads.append(folder.name)
        return read_pair(folder, *args, **kwargs)

    def converted(sweep: sources.Sweep) -> pd.DataFrame:
        if not isinstance(sweep._epochs, pd.DataFrame):
            frames.append(sweep.name)
        return epochs(sweep)

    monkeypatch.setattr(sources, "read_pair", counted)
    monkeypatch.setattr(sources.Sweep, "epochs", converted)
    code, stdout, _ = cli("slides", "asha", "--format", "html", "--out", str(tmp_path), storage=storage)
    assert code == 0 and 'id="curves"' in stdout and "ASHA audit: asha" in stdout
    assert sorted(reads) == ["asha", "slides"] and sorted(frames) == ["asha", "slides"]


def test_help_lists_options_and_does_not_import_pandas() -> None:
    result = runner.invoke(app, ["report", "--help"], env={"COLUMNS": "200"})
    for option in ("--storage", "--format", "--out", "--sort-by", "--top", "--where", "--group-by"):
        assert option in result.stdout
    # pyarrow too comes in now: the CLI resolves --storage (store/storage.py, pyarrow.fs) at its edge
    code = "import sys, sweeper.cli.report; print(sorted({'pandas', 'matplotlib'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_the_spaces_description_heads_the_report(storage: Path) -> None:
    out = render("asha", storage=storage)
    assert "asha: Kernel size against filters, under ASHA." in out
    assert "asha: Kernel size against filters, under ASHA." in markdown(build(["asha"], str(storage)))


def test_a_relative_storage_stays_relative_in_the_report(storage: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A report kept in a repository names its sweeps' folders as the user gave --storage, not this machine's
    absolute paths."""
    monkeypatch.chdir(storage.parent)
    out = tmp_path / "report"
    code, stdout, _ = cli("slides", "--out", str(out), storage=Path(storage.name))
    assert code == 0 and f"sweep slides ({storage.name}/slides): " in stdout
    assert str(storage.parent) not in (out / "report.md").read_text()
