"""End to end: a real sweep on a local Ray, then `sweeper export`, `sweeper.load_model` and `sweeper evaluate`
through the real CLI; the exported model scores what its trial recorded, on local and S3 storage: to one test image,
since the trial evaluated in its Ray worker with one torch thread and (a CNN) in channels_last, and the export is
scored here with this process's threads in the contiguous layout, and float rounding that differs between the two
can tip an example whose two best logits nearly tie."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

import sweeper
from sweeper.cli import app
from sweeper.run.training import data
from sweeper.spec.schema import DataSpec
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures

runner = CliRunner()
SPACE = """
name: exp
epochs: 2
scheduler: {type: fifo}
data: {train_subset: 300, val_subset: 200, test_subset: 200}
variants:
  - {name: plain, model: cnn, filters: 4, optimizer: adam}
  - {name: beyond, model: cnn, conv_layers: 2, filters: [4, 8], padding: same, batch_norm: true, dense: [16],
     dropout: 0.2, optimizer: adamw, lr: 0.003, lr_schedule: cosine, label_smoothing: 0.1, augment_shift: 2,
     augment_flip: true}
"""


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, real_data: Path, ray_session) -> Path:
    """A finished two-trial sweep (one trial with the study's keys, one with the keys beyond it): its storage."""
    root = tmp_path_factory.mktemp("export-sweep")
    (root / "exp.yaml").write_text(SPACE)
    result = runner.invoke(app, ["launch", str(root / "exp.yaml"), "--storage", str(root / "runs"), "--data-dir",
                                 str(real_data), "--quiet"])
    assert result.exit_code == 0, result.stdout + result.stderr
    return root / "runs"


def trials(storage: Path) -> dict[str, dict]:
    return {r["variant"]: r for r in pq.read_table(storage / "exp" / "trials.parquet").to_pylist()}


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


TEST_IMAGES = 200  # SPACE's test_subset


def within_one_image(a: float, b: float) -> bool:
    return abs(a - b) * TEST_IMAGES <= 1 + 1e-9


def evaluated(folder: Path, real_data: Path) -> float:
    code, out, err = cli("evaluate", str(folder), "--data-dir", str(real_data))
    assert code == 0, out + err
    return float(re.search(r"^test_accuracy (\S+)", out, re.M).group(1))  # type: ignore[union-attr]


def test_sweep_records_the_new_keys(sweep: Path) -> None:
    rows = trials(sweep)
    assert rows["beyond"]["param_filters"] == "[4, 8]" and rows["plain"]["param_filters"] == "4"
    assert rows["beyond"]["param_batch_norm"] is True and rows["beyond"]["param_lr_schedule"] == "cosine"
    assert all(r["state"] == "TERMINATED" and r["test_accuracy"] is not None for r in rows.values())


def test_export_best_then_load_and_evaluate_reproduce_the_recorded_test_accuracy(
    sweep: Path, tmp_path: Path, real_data: Path
) -> None:
    rows = trials(sweep)
    best = max(rows.values(), key=lambda r: r["val_accuracy"])  # the sweep's rule: val_accuracy, max
    code, out, err = cli("export", "exp", "--storage", str(sweep), "--out", str(tmp_path / "best"))
    assert code == 0, out + err
    assert f"exported trial {best['trial_id']} of sweep exp" in out
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["model.json", "model.onnx", "model.safetensors"]
    content = json.loads((tmp_path / "best" / "model.json").read_text())
    assert content["trial_id"] == best["trial_id"] and content["sweep"] == "exp"
    assert content["sweeper_version"] == sweeper.__version__
    assert content["metrics"]["test_accuracy"] == best["test_accuracy"]
    assert content["preprocessing"]["shape"] == [1, 28, 28] and len(content["preprocessing"]["class_names"]) == 10
    assert content["data"]["test_subset"] == 200
    assert within_one_image(evaluated(tmp_path / "best", real_data), best["test_accuracy"])


@pytest.mark.e2e  # a fresh `python -m sweeper evaluate`
def test_the_committed_winner_evaluates_in_a_fresh_process_to_its_recorded_score_without_warnings(
    real_data: Path,
) -> None:
    """The CLI as users run it, on the export README's Results points to (models/beyond, the full 10,000 test
    images): its recorded test accuracy on stdout and nothing on stderr. The full split is a read-only memory map,
    which torch.from_numpy warned about; the sweeps above use subsets, which are copies and never warned."""
    model = Path(__file__).resolve().parents[2] / "models" / "beyond"
    recorded = json.loads((model / "model.json").read_text())["metrics"]["test_accuracy"]
    done = subprocess.run([sys.executable, "-m", "sweeper", "evaluate", str(model), "--data-dir", str(real_data)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "/10000 images)" in done.stdout, done.stdout
    assert re.search(rf"^recorded by the trial: test_accuracy {recorded:.4f} \(the same\)$", done.stdout, re.M), (
        done.stdout)
    assert done.stderr == ""


@pytest.mark.parametrize("variant", ["plain", "beyond"])
def test_every_trial_exports_and_scores_what_it_recorded(
    sweep: Path, tmp_path: Path, real_data: Path, variant: str
) -> None:
    row = trials(sweep)[variant]
    out = tmp_path / variant
    code, _, err = cli("export", "exp", "--storage", str(sweep), "--trial", row["trial_id"], "--out", str(out))
    assert code == 0, err
    content = json.loads((out / "model.json").read_text())
    assert content["variant"] == variant
    assert within_one_image(evaluated(out, real_data), row["test_accuracy"])
    # load_model by hand: the same number, and ONNX predicts what PyTorch does on real test images.
    model = sweeper.load_model(out)
    splits = data.load(real_data, DataSpec(**content["data"]))
    x = torch.from_numpy(splits.x_test).unsqueeze(1).float().div_(255.0)
    with torch.no_grad():
        logits = model(x)
    assert within_one_image((logits.argmax(1).numpy() == splits.y_test).mean(), row["test_accuracy"])
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"image": x[:64].numpy()})
    assert np.abs(got - logits[:64].numpy()).max() < 1e-4
    assert (got.argmax(1) == logits[:64].numpy().argmax(1)).all()


def test_overwrite_replaces_an_export(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli("export", "exp", "--storage", str(sweep), "--out", str(out))[0] == 0
    first = (out / "model.json").read_text()
    code, _, err = cli("export", "exp", "--storage", str(sweep), "--out", str(out))
    assert code == 2 and "folder is not empty; pass --overwrite" in err and len(err.strip().splitlines()) == 1
    assert cli("export", "exp", "--storage", str(sweep), "--out", str(out), "--overwrite")[0] == 0
    assert (out / "model.json").read_text() == first


def one_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in out + err


def test_a_trial_without_checkpoint_or_an_unknown_trial_is_refused(sweep: Path, tmp_path: Path) -> None:
    storage = tmp_path / "runs"
    shutil.copytree(sweep, storage)
    plain_id = trials(storage)["plain"]["trial_id"]
    for checkpoint in (storage / "exp").glob(f"*_{plain_id}_*/checkpoint_*"):
        shutil.rmtree(checkpoint)
    out = tmp_path / "out"
    one_error(*cli("export", "exp", "--storage", str(storage), "--trial", plain_id, "--out", str(out)),
              f"--trial {plain_id}: trial has no checkpoint")
    one_error(*cli("export", "exp", "--storage", str(storage), "--trial", "nope_00000", "--out", str(out)),
              "--trial nope_00000: sweep 'exp' has no such trial")
    one_error(*cli("export", "nope", "--storage", str(storage), "--out", str(out)), "sweep 'nope': no such sweep")
    assert not out.exists()
    # Without --trial, the best trial that still has a checkpoint is exported.
    assert cli("export", "exp", "--storage", str(storage), "--out", str(out))[0] == 0
    assert json.loads((out / "model.json").read_text())["trial_id"] == trials(storage)["beyond"]["trial_id"]


def test_evaluate_refuses_a_folder_that_is_no_valid_export(sweep: Path, tmp_path: Path, real_data: Path) -> None:
    out = tmp_path / "out"
    assert cli("export", "exp", "--storage", str(sweep), "--out", str(out))[0] == 0
    (out / "model.safetensors").write_bytes(b"garbage")
    one_error(*cli("evaluate", str(out), "--data-dir", str(real_data)), "not a readable safetensors file")
    (out / "model.json").write_text("{")
    one_error(*cli("evaluate", str(out), "--data-dir", str(real_data)), "model.json: not a readable model card")
    one_error(*cli("evaluate", str(tmp_path), "--data-dir", str(real_data)), "not an export folder: no model.json")


def test_export_from_s3_storage_matches_the_local_export(sweep: Path, tmp_path: Path, s3: S3) -> None:
    pafs.copy_files(str(sweep), f"{s3.bucket}/runs", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3.filesystem())
    code, _, err = cli("export", "exp", "--storage", s3.uri("runs"), "--out", str(tmp_path / "s3"))
    assert code == 0, err
    assert cli("export", "exp", "--storage", str(sweep), "--out", str(tmp_path / "local"))[0] == 0
    for name in ("model.json", "model.safetensors"):
        assert (tmp_path / "s3" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


@pytest.mark.parametrize(("command", "options"), [("export", ["--out", "--trial", "--overwrite", "--storage"]),
                                                  ("evaluate", ["DIR", "--data-dir"])])
def test_export_and_evaluate_have_help(command: str, options: list[str]) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert all(option in result.stdout for option in options)
    assert command in runner.invoke(app, ["--help"]).stdout


def test_evaluate_says_how_many_examples_the_export_and_the_trial_are_apart() -> None:
    from sweeper.cli.export import agreement
    from sweeper.run.training.scoring import Score

    def said(recorded: float, now: float, n: int = 10_000) -> str:
        return agreement(Score(0.3, now, n, recorded))

    assert said(0.9281, 0.9281) == "the same"
    assert said(0.9281, 0.92810004) == "the same"  # your loop's float32 ratio: the same count of images
    assert said(0.9281, 0.9282).startswith("1 of 10000 images apart: float rounding")
    assert said(0.9281, 0.9291).startswith("10 of 10000 images apart: float rounding")  # at most 1 in 1,000
    assert said(0.9281, 0.9292) == "DIFFERENT: 11 of 10000 images apart"
    assert said(0.5, 0.51, 100).startswith("1 of 100 images apart")  # one example is always rounding's to tip
    assert said(0.5, 0.52, 100) == "DIFFERENT: 2 of 100 images apart"
