"""An export folder: ONNX predicts what PyTorch does, load_model rebuilds the model without pickle, and a folder
that is no valid export is one clear error (the whole export -> evaluate path runs in tests/cli/test_export.py)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import sweeper
from sweeper.errors import SweeperError
from sweeper.run.training.card import CARD_FILE, FORMAT, ONNX_FILE, WEIGHTS_FILE
from sweeper.run.training.export import write_export
from sweeper.run.training.loading import load_model
from sweeper.run.training.models import build_model
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec

PARAMS = TrialParams(model="cnn", conv_layers=3, filters=[4, 8, 8], padding="same", dense=[16], batch_norm=True,
                     dropout=0.3, seed=1)


def trained(p: TrialParams) -> torch.nn.Module:
    """A model whose batch-norm statistics and weights have moved away from their initial values."""
    torch.manual_seed(p.seed)
    model = build_model(p)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    model.train()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    out = tmp_path_factory.mktemp("export") / "model"
    model = trained(PARAMS)
    content = {"format": FORMAT, "params": PARAMS.model_dump(mode="json"), "data": DataSpec().model_dump(),
               "metrics": {"test_accuracy": None}}
    write_export(out, model, content)
    return out, model


def test_export_writes_the_three_files(exported: tuple[Path, torch.nn.Module]) -> None:
    out, _ = exported
    assert sorted(p.name for p in out.iterdir()) == sorted([CARD_FILE, WEIGHTS_FILE, ONNX_FILE])
    assert json.loads((out / CARD_FILE).read_text())["params"]["filters"] == [4, 8, 8]


def test_onnx_predicts_what_pytorch_predicts_for_any_batch_size(exported: tuple[Path, torch.nn.Module]) -> None:
    import onnx
    import onnxruntime as ort

    out, model = exported
    graph = onnx.load(str(out / ONNX_FILE)).graph
    assert [i.name for i in graph.input] == ["image"] and [o.name for o in graph.output] == ["logits"]
    session = ort.InferenceSession(str(out / ONNX_FILE), providers=["CPUExecutionProvider"])
    for n in (1, 7, 33):
        x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            want = model(x).numpy()
        (got,) = session.run(["logits"], {"image": x.numpy()})
        assert got.shape == (n, 10)
        assert np.abs(got - want).max() < 1e-4
        assert (got.argmax(1) == want.argmax(1)).all()


def test_load_model_rebuilds_the_same_network_without_pickle(
    exported: tuple[Path, torch.nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, model = exported

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used on the loading path")

    for target, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(target, name, forbidden)
    loaded = sweeper.load_model(out)
    assert not loaded.training
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert type(loaded) is type(model) and str(loaded) == str(model)


def broken(out: Path, how: str) -> None:
    """Break a copy of an export in one way."""
    card = json.loads((out / CARD_FILE).read_text())
    if how == "no-card":
        (out / CARD_FILE).unlink()
    elif how == "card-not-json":
        (out / CARD_FILE).write_text("{not json")
    elif how == "card-wrong-format":
        (out / CARD_FILE).write_text(json.dumps(card | {"format": "keras"}))
    elif how == "card-bad-params":
        (out / CARD_FILE).write_text(json.dumps(card | {"params": card["params"] | {"optimizer": "rmsprop"}}))
    elif how == "card-other-architecture":
        (out / CARD_FILE).write_text(json.dumps(card | {"params": card["params"] | {"filters": [4, 8, 16]}}))
    elif how == "no-weights":
        (out / WEIGHTS_FILE).unlink()
    elif how == "weights-corrupt":
        (out / WEIGHTS_FILE).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    elif how == "weights-truncated":
        data = (out / WEIGHTS_FILE).read_bytes()
        (out / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no-card", "not an export folder: no model.json"),
        ("card-not-json", "model.json: not a readable model card"),
        ("card-wrong-format", "model.json: not a sweeper model card: key 'format' must be 'sweeper-model/1'"),
        ("card-bad-params", "model.json: key 'params.optimizer'"),
        ("card-other-architecture", "model.safetensors: weights do not fit the architecture"),
        ("no-weights", "not an export folder: no model.safetensors"),
        ("weights-corrupt", "model.safetensors: not a readable safetensors file"),
        ("weights-truncated", "model.safetensors: not a readable safetensors file"),
    ],
)
def test_a_folder_that_is_no_valid_export_is_one_clear_error(
    exported: tuple[Path, torch.nn.Module], tmp_path: Path, how: str, message: str
) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(exported[0], out)
    broken(out, how)
    with pytest.raises(SweeperError) as err:
        load_model(out)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_load_model_of_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match="no such folder"):
        sweeper.load_model(tmp_path / "nowhere")


def test_import_sweeper_stays_light() -> None:
    import subprocess
    import sys

    code = "import sys, sweeper; assert callable(sweeper.load_model); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
