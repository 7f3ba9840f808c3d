"""End to end: `sweeper export`, `sweeper.load_model` and `sweeper evaluate` for your own models and data, through
the real CLI on real sweeps (a local Ray): a user factory's trials export as "sweeper-model/2", load back through
the factory, score exactly what they recorded, and give the same logits in ONNX; a forward the ONNX exporter cannot
take exports without model.onnx; edited code warns, a changed architecture is "weights do not fit"; a built-in model
on a data source of your own records the data's shape and classes, and evaluate runs that source again.

The user packages are written to a temporary folder beside each search space. The CLI runs in this process, where
an imported module stays imported: checks that need the edited module imported afresh run in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

import sweeper
from sweeper.cli import app
from sweeper.run.training import sources
from sweeper.run.training.data import FASHION_CLASSES
from sweeper.run.training.loop import inputs
from sweeper.spec.schema import DataSpec

pytestmark = pytest.mark.e2e

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]

NETS = """\
import numpy as np
import torch
from torch import nn


def tiny(width: int = 8, *, input_shape, num_classes):
    features = 1
    for d in input_shape:
        features *= d
    return nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU(), nn.Linear(width, num_classes))


class Fourier(nn.Module):
    # torch.fft has no ONNX export: the exporter raises
    def __init__(self, features, num_classes):
        super().__init__()
        self.head = nn.Linear(features, num_classes)

    def forward(self, x):
        return self.head(torch.fft.fft(x.flatten(1)).abs())


def fourier(*, input_shape, num_classes):
    return Fourier(int(np.prod(input_shape)), num_classes)


class Clipped(nn.Module):
    # numpy in the forward: the tracer would record a constant, so the ONNX graph would be wrong
    def __init__(self, features, num_classes):
        super().__init__()
        self.head = nn.Linear(features, num_classes)

    def forward(self, x):
        clipped = torch.from_numpy(np.clip(x.detach().cpu().numpy(), 0.1, 0.9)).to(x.device)
        return self.head(clipped.flatten(1))


def clipped(*, input_shape, num_classes):
    return Clipped(int(np.prod(input_shape)), num_classes)
"""

DATA = """\
import numpy as np

import sweeper


def blobs(rows: int = 400, with_test: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    cut = rows * 3 // 4
    test = (x[cut:], y[cut:]) if with_test else None
    return sweeper.Dataset(train=(x[:cut], y[:cut]), test=test, classes=["low", "mid", "high"])
"""

MODELS_SPACE = """\
name: usr
epochs: 1
scheduler: {type: fifo}
data: {train_subset: 300, val_subset: 200, test_subset: 200}
models: {tiny: xpnets.nets:tiny, fourier: xpnets.nets:fourier, clipped: xpnets.nets:clipped}
variants:
  - {name: tiny, model: tiny}
  - {name: fft, model: fourier}
  - {name: numpy, model: clipped}
parameters:
  width: {grid: [4, 8]}
  optimizer: adam
"""

DATA_SPACE = """\
name: blobs
epochs: 1
scheduler: {type: fifo}
data: {source: xpdata.data:blobs, args: {rows: 400}}
parameters: {model: mlp, hidden: [16], optimizer: adam}
"""


def write_package(root: Path, name: str, module: str, text: str) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "__init__.py").write_text("")
    (root / name / f"{module}.py").write_text(text)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory, real_data: Path, ray_session: Any) -> Path:
    """Two finished sweeps in one storage: `usr` (your models on Fashion-MNIST subsets: two widths of `tiny`, and
    two models ONNX cannot take) and `blobs` (a built-in mlp on a data source of your own). Returns the folder
    holding the packages, the spaces and the storage (`runs`)."""
    root = tmp_path_factory.mktemp("export-user")
    write_package(root, "xpnets", "nets", NETS)
    write_package(root, "xpdata", "data", DATA)
    (root / "usr.yaml").write_text(MODELS_SPACE)
    (root / "blobs.yaml").write_text(DATA_SPACE)
    for space in ("usr", "blobs"):
        result = runner.invoke(app, ["launch", str(root / f"{space}.yaml"), "--storage", str(root / "runs"),
                                     "--data-dir", str(real_data), "--quiet"])
        assert result.exit_code == 0, result.stdout + result.stderr
    return root


def trials(root: Path, sweep: str) -> list[dict[str, Any]]:
    return pq.read_table(root / "runs" / sweep / "trials.parquet").to_pylist()


def trial(root: Path, variant: str, width: int | None = None) -> dict[str, Any]:
    rows = [r for r in trials(root, "usr") if r["variant"] == variant and (width is None or r["param_width"] == width)]
    assert len(rows) == 1, rows
    return rows[0]


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def export(root: Path, sweep: str, trial_id: str, out: Path, *more: str) -> tuple[int, str, str]:
    return cli("export", sweep, "--storage", str(root / "runs"), "--trial", trial_id, "--out", str(out), *more)


def exported(root: Path, sweep: str, trial_id: str, out: Path) -> dict[str, Any]:
    code, stdout, err = export(root, sweep, trial_id, out)
    assert code == 0, stdout + err
    content: dict[str, Any] = json.loads((out / "model.json").read_text())
    return content


def exported_tiny(root: Path, tmp_path: Path, width: int) -> tuple[dict[str, Any], Path, dict[str, Any]]:
    """The `tiny` trial of `width` exported to tmp_path/tiny: its trials.parquet row, that folder, its model.json."""
    row = trial(root, "tiny", width)
    out = tmp_path / "tiny"
    return row, out, exported(root, "usr", row["trial_id"], out)


def evaluated(folder: Path, real_data: Path) -> tuple[float, str]:
    code, out, err = cli("evaluate", str(folder), "--data-dir", str(real_data))
    assert code == 0, out + err
    return float(re.search(r"^test_accuracy (\S+)", out, re.M).group(1)), err  # type: ignore[union-attr]


def one_error(code: int, out: str, err: str, message: str) -> None:
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in out + err


def sweep_json(root: Path, sweep: str) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((root / "runs" / sweep / "sweep.json").read_text())
    return state


@pytest.mark.parametrize("width", [4, 8])
def test_a_user_model_exports_as_format_2_and_loads_evaluates_and_runs_in_onnx_as_it_trained(
    launched: Path, tmp_path: Path, real_data: Path, width: int
) -> None:
    row, out, content = exported_tiny(launched, tmp_path, width)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "model.safetensors"]
    recorded_model = sweep_json(launched, "usr")["models"]["tiny"]
    assert content["format"] == "sweeper-model/2"
    assert content["model"]["factory"] == "xpnets.nets:tiny" and content["model"]["params"] == {"width": width}
    assert content["model"]["sha256"] == recorded_model["sha256"] and len(content["model"]["sha256"]) == 64
    assert str(launched) in content["model"]["roots"]
    assert content["input"] == content["input"] | {"shape": [1, 28, 28], "dtype": "uint8"}
    assert content["num_classes"] == 10 and content["classes"] == list(FASHION_CLASSES)
    assert content["data"] | {"source": None, "test_subset": 200} == content["data"]
    assert content["data_fingerprint"] == sweep_json(launched, "usr")["data_fingerprint"]
    assert content["metrics"]["test_accuracy"] == row["test_accuracy"] and content["onnx"]["input"] == "input"

    accuracy, err = evaluated(out, real_data)
    assert abs(accuracy - row["test_accuracy"]) <= 1e-6 and err == ""

    model = sweeper.load_model(out)
    splits = sources.load(str(real_data), DataSpec(**content["data"]), (), "test")
    assert splits.x_test is not None and splits.y_test is not None
    x = inputs(splits.x_test)
    with torch.no_grad():
        logits = model(x)
    assert abs((logits.argmax(1).numpy() == splits.y_test).mean() - row["test_accuracy"]) <= 1e-6
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x[:64].numpy()})
    assert np.abs(got - logits[:64].numpy()).max() < 1e-4


@pytest.mark.parametrize(("variant", "why"), [("fft", "fft"), ("numpy", "NumPy")])
def test_a_model_onnx_cannot_take_exports_without_model_onnx_and_says_why_in_one_line(
    launched: Path, tmp_path: Path, real_data: Path, variant: str, why: str
) -> None:
    row = trial(launched, variant)
    out = tmp_path / variant
    code, stdout, err = export(launched, "usr", row["trial_id"], out)
    assert code == 0, stdout + err
    notes = [line for line in stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "no model.onnx" in notes[0] and why in notes[0], stdout
    assert "Torch IR" not in stdout + err and "Traceback" not in stdout + err
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]
    skipped = json.loads((out / "model.json").read_text())["onnx"]["skipped"]
    assert why in skipped and "\n" not in skipped
    accuracy, _ = evaluated(out, real_data)
    assert abs(accuracy - row["test_accuracy"]) <= 1e-6


def test_overwrite_without_onnx_removes_the_previous_model_onnx(launched: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    exported(launched, "usr", trial(launched, "tiny", 4)["trial_id"], out)
    (out / "README.txt").write_text("mine")
    one_error(*export(launched, "usr", trial(launched, "fft")["trial_id"], out), "folder is not empty")
    code, stdout, err = export(launched, "usr", trial(launched, "fft")["trial_id"], out, "--overwrite")
    assert code == 0, stdout + err
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "model.json", "model.safetensors"]
    assert json.loads((out / "model.json").read_text())["model"]["factory"] == "xpnets.nets:fourier"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    (tmp_path / "a-file").write_text("")
    one_error(*export(launched, "usr", trial(launched, "fft")["trial_id"], tmp_path / "a-file"), "is a file")


@pytest.fixture
def nets_file(launched: Path) -> Iterator[Path]:
    """xpnets/nets.py, restored after the test edits it."""
    path = launched / "xpnets" / "nets.py"
    text = path.read_text()
    yield path
    path.write_text(text)


LOAD = """\
import json, sys, warnings
import sweeper
from sweeper.errors import SweeperError
from sweeper.run.training.loading import CodeChangedWarning
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        sweeper.load_model(sys.argv[1])
        error = None
    except SweeperError as exc:
        error = str(exc)
print(json.dumps({"error": error, "warnings": [str(w.message) for w in caught
                                               if issubclass(w.category, CodeChangedWarning)]}))
"""


def fresh(*args: str) -> subprocess.CompletedProcess[str]:
    """A fresh Python (the edited module imported anew), writing no bytecode next to the user's files."""
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


def load_fresh(folder: Path) -> dict[str, Any]:
    done = fresh("-c", LOAD, str(folder))
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_editing_your_module_after_export_warns_in_one_line(
    launched: Path, tmp_path: Path, real_data: Path, nets_file: Path
) -> None:
    row, out, _ = exported_tiny(launched, tmp_path, 8)
    assert load_fresh(out) == {"error": None, "warnings": []}
    nets_file.write_text(nets_file.read_text() + "\n# tuned later\n")
    result = load_fresh(out)
    assert result["error"] is None and len(result["warnings"]) == 1
    assert "xpnets.nets:tiny: your code changed since the export (xpnets/nets.py)" in result["warnings"][0]
    accuracy, err = evaluated(out, real_data)  # in this process: the module as imported, the files as they are now
    assert abs(accuracy - row["test_accuracy"]) <= 1e-6
    assert len(err.strip().splitlines()) == 1 and err.startswith("warning: xpnets.nets:tiny: your code changed")


def test_a_changed_architecture_is_weights_do_not_fit_naming_the_key_and_nothing_is_exported(
    launched: Path, tmp_path: Path, real_data: Path, nets_file: Path
) -> None:
    row, out, _ = exported_tiny(launched, tmp_path, 4)
    # the trial's width is recorded (4); the factory now builds a wider hidden layer from it
    before = "nn.Linear(features, width), nn.ReLU(), nn.Linear(width,"
    nets_file.write_text(nets_file.read_text().replace(before, before.replace("width", "2 * width")))
    result = load_fresh(out)
    assert result["error"] is not None and result["warnings"] == []
    assert "model.safetensors: weights do not fit the model xpnets.nets:tiny builds now" in result["error"]
    assert "key '1.weight' has shape [4, 784] in the weights but [8, 784] in the model" in result["error"]
    assert "\n" not in result["error"]
    done = fresh("-m", "sweeper", "evaluate", str(out), "--data-dir", str(real_data))
    one_error(done.returncode, done.stdout, done.stderr, "weights do not fit")
    again = tmp_path / "again"
    done = fresh("-m", "sweeper", "export", "usr", "--storage", str(launched / "runs"), "--trial", row["trial_id"],
                 "--out", str(again))
    one_error(done.returncode, done.stdout, done.stderr, "weights do not fit the model xpnets.nets:tiny builds now")
    assert not again.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["tiny"]


def test_evaluate_refuses_data_other_than_the_model_trained_on(
    launched: Path, tmp_path: Path, real_data: Path
) -> None:
    _, out, content = exported_tiny(launched, tmp_path, 8)
    (out / "model.json").write_text(json.dumps(content | {"data": content["data"] | {"test_subset": 100}}))
    one_error(*cli("evaluate", str(out), "--data-dir", str(real_data)),
              "the data Fashion-MNIST gives now differs from the data the model was trained on")


def test_a_builtin_model_on_your_data_records_its_input_and_classes_and_evaluates_on_it(
    launched: Path, tmp_path: Path, real_data: Path
) -> None:
    (row,) = trials(launched, "blobs")
    out = tmp_path / "blobs"
    content = exported(launched, "blobs", row["trial_id"], out)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx", "model.safetensors"]
    assert content["format"] == "sweeper-model/2" and content["model"] == {"builtin": "mlp"}
    assert content["input"]["shape"] == [12] and content["input"]["dtype"] == "float32"
    assert content["num_classes"] == 3 and content["classes"] == ["low", "mid", "high"]
    assert content["data"]["source"] == "xpdata.data:blobs" and content["data"]["args"] == {"rows": 400}
    assert str(launched) in content["data_roots"]
    assert content["data_fingerprint"] == sweep_json(launched, "blobs")["data_fingerprint"]
    accuracy, _ = evaluated(out, real_data)
    assert abs(accuracy - row["test_accuracy"]) <= 1e-6

    model = sweeper.load_model(out)
    x = torch.randn(9, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})
    assert got.shape == (9, 3) and np.abs(got - logits.numpy()).max() < 1e-4

    card = out / "model.json"
    card.write_text(json.dumps(content | {"data": content["data"] | {"args": {"rows": 300}}}))
    one_error(*cli("evaluate", str(out)), "the data xpdata.data:blobs gives now differs from the data the model")
    card.write_text(json.dumps(content | {"data": content["data"] | {"args": {"rows": 400, "with_test": False}}}))
    one_error(*cli("evaluate", str(out)), "the data source xpdata.data:blobs gives no test split")

