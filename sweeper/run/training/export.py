"""A trained trial as a standalone model: `sweeper export`, `sweeper.load_model`, `sweeper evaluate`.

An export folder holds three files:
- `model.safetensors`: the trial's weights (its last epoch checkpoint in the sweep folder);
- `model.json`: the trial's full params (what `build_model` needs), the preprocessing (uint8 pixels / 255 in
  [0, 1], shape 1x28x28, the Fashion-MNIST class names), the trial's recorded metrics, the data spec (so `evaluate`
  scores the same test subset), sweeper's version, the sweep's name and the trial id;
- `model.onnx`: the same network (TorchScript-based exporter), input "image" (N, 1, 28, 28) with a dynamic batch
  axis, output "logits" (N, 10).
Loading reads JSON and safetensors only: no pickle anywhere on that path, and no Ray.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch
from pydantic import ValidationError
from torch import nn

from sweeper.errors import SweeperError
from sweeper.run.training.loop import CHECKPOINT_FILE, Progress, evaluate, load_checkpoint
from sweeper.run.training.models import build_model
from sweeper.spec.loader import load_text
from sweeper.spec.metrics import METRICS
from sweeper.spec.params import IMAGE_SIDE, TrialParams, check_feasible
from sweeper.spec.schema import DataSpec
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import SPEC_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep
from sweeper.store.trials import Ended, best, ended_of
from sweeper.version import __version__

CARD_FILE, WEIGHTS_FILE, ONNX_FILE = "model.json", "model.safetensors", "model.onnx"
FORMAT = "sweeper-model/1"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
CHECKPOINT_PREFIX = "checkpoint_"  # Ray's checkpoint folders in a trial's folder


@dataclass(frozen=True)
class Found:
    """A trial picked for export, with where its last checkpoint lies and the model it describes."""

    row: dict[str, Any]
    params: TrialParams
    checkpoint: str  # path of state.pt, relative to the sweep folder
    weights: dict[str, torch.Tensor]


def _listing(folder: SweepFolder, sub: str) -> list[str]:
    """Names of the sub-folders of `sub` (relative to the sweep folder; "" = the folder itself)."""
    fs, path = folder.fs_path(sub)
    try:
        infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except OSError:
        return []
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def _trial_dirs(folder: SweepFolder, run_state: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    """trial id -> its Ray folder relative to the sweep folder, over the launch's and every extension's experiment
    (Ray names a trial's folder `<trainable>_<trial id>_<index>_<date>`)."""
    entries = [posixpath.join(e, entry) for e in state.experiments(run_state) for entry in _listing(folder, e)]
    dirs = {}
    for row in rows:
        mark = f"_{row['trial_id']}_"
        found = next((e for e in entries if mark in posixpath.basename(e)), None)
        if found is not None:
            dirs[row["trial_id"]] = found
    return dirs


def _checkpoint(folder: SweepFolder, trial_dir: str) -> str | None:
    points = [c for c in _listing(folder, trial_dir) if c.startswith(CHECKPOINT_PREFIX)]
    return posixpath.join(trial_dir, max(points), CHECKPOINT_FILE) if points else None


def _space(folder: SweepFolder, run_state: dict[str, Any]) -> Space:
    text = folder.read_text(SPEC_FILE)
    if text is None:
        raise SweeperError(f"{folder}: sweep {folder.name!r} has no {SPEC_FILE}, so its trials cannot be rebuilt")
    return load_text(text, Path(run_state.get("space_file") or f"{folder.name}.yaml"))


def _params(folder: SweepFolder, space: Space, trial_dir: str) -> TrialParams:
    raw = folder.read_text(posixpath.join(trial_dir, "params.json"))
    try:
        config = json.loads(raw) if raw is not None else None
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
        return space.trial_params(config)
    except (ValueError, ValidationError) as exc:
        raise SweeperError(f"{folder.uri(trial_dir)}/params.json: cannot rebuild the trial's params: "
                           f"{str(exc).splitlines()[0]}") from None


def _load_found(folder: SweepFolder, space: Space, row: dict[str, Any], trial_dir: str, checkpoint: str) -> Found:
    data = folder.read_bytes(checkpoint)
    if data is None:
        raise SweeperError(f"{folder.uri(checkpoint)}: checkpoint vanished while reading")
    try:
        saved = load_checkpoint(io.BytesIO(data))
        weights, progress = saved["model"], Progress.of(saved["progress"])
    except Exception as exc:  # noqa: BLE001 - whatever torch says about a damaged file, one line of it
        raise SweeperError(f"{folder.uri(checkpoint)}: not a readable checkpoint: {str(exc).splitlines()[0]}"
                           ) from None
    if row.get("epochs") is not None and progress.epoch != int(row["epochs"]):
        raise SweeperError(f"{folder.uri(checkpoint)}: checkpoint is at epoch {progress.epoch} but trials.parquet "
                           f"records {row['epochs']} epochs for trial {row['trial_id']}; export it once the sweep has "
                           "finished (resume an interrupted one)")
    return Found(row, _params(folder, space, trial_dir), checkpoint, weights)


def find_trial(storage: Storage, name: str, trial_id: str | None) -> tuple[SweepFolder, Space, Found]:
    """The trial to export: `trial_id`, or the best by the sweep's rule (store/trials.py) among trials that ran
    to their end (completed or early-stopped) and have a checkpoint."""
    folder, run_state = open_sweep(storage, name)
    space = _space(folder, run_state)
    rows = read_rows(folder, TRIALS_FILE)
    dirs = _trial_dirs(folder, run_state, rows)
    if trial_id is not None:
        row = next((r for r in rows if r["trial_id"] == trial_id), None)
        if row is None:
            known = ", ".join(r["trial_id"] for r in rows[:6]) + (", ..." if len(rows) > 6 else "")
            raise SweeperError(f"--trial {trial_id}: sweep {name!r} has no such trial (trials: {known or 'none'})")
        checkpoint = _checkpoint(folder, dirs[trial_id]) if trial_id in dirs else None
        if checkpoint is None:
            raise SweeperError(f"--trial {trial_id}: trial has no checkpoint in {folder} (it never reported an "
                               "epoch, or its folder was removed)")
        return folder, space, _load_found(folder, space, row, dirs[trial_id], checkpoint)
    done = [r for r in rows if ended_of(r) in (Ended.COMPLETED, Ended.EARLY)]
    metric, mode = space.spec.metric, space.spec.mode
    while done:
        row = best(done, metric, mode)
        if row is None:
            break
        checkpoint = _checkpoint(folder, dirs[row["trial_id"]]) if row["trial_id"] in dirs else None
        if checkpoint is not None:
            return folder, space, _load_found(folder, space, row, dirs[row["trial_id"]], checkpoint)
        done.remove(row)
    raise SweeperError(f"sweep {name!r}: no trial that ran to its end has a checkpoint; name one with --trial")


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def card(folder: SweepFolder, space: Space, found: Found) -> dict[str, Any]:
    """model.json's content."""
    row = found.row
    return {
        "format": FORMAT,
        "sweeper_version": __version__,
        "sweep": folder.name,
        "trial_id": row["trial_id"],
        "variant": _number(row.get("variant")),
        "params": found.params.model_dump(mode="json"),
        "preprocessing": {"shape": [1, IMAGE_SIDE, IMAGE_SIDE], "dtype": "float32",
                          "scale": "uint8 pixel / 255, so values lie in [0, 1]", "class_names": list(CLASS_NAMES),
                          "output": "logits (softmax gives class probabilities)"},
        "metrics": {m: _number(row.get(m)) for m in METRICS}
        | {"epochs": row.get("epochs"), "state": row.get("state"), "stopped_by": _number(row.get("stopped_by"))},
        "data": space.spec.data.model_dump(mode="json"),
        "checkpoint": found.checkpoint,
        "onnx": {"file": ONNX_FILE, "input": "image", "output": "logits", "batch_axis": 0},
    }


def export(storage: Storage, name: str, trial_id: str | None, out: Path, overwrite: bool) -> dict[str, Any]:
    """Write the three files into `out`; returns model.json's content. Everything is checked (the trial, its
    checkpoint, that the weights fit the architecture) before anything is written."""
    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SweeperError(f"--out {out}: folder is not empty; pass --overwrite to replace an export there")
    folder, space, found = find_trial(storage, name, trial_id)
    model = _model(found.params, found.weights, folder.uri(found.checkpoint))
    content = card(folder, space, found)
    write_export(out, model, content)
    return content


def write_export(out: Path, model: nn.Module, content: dict[str, Any]) -> None:
    """The three files of an export: the model's weights, its card (`content`) and the model as ONNX."""
    from safetensors.torch import save

    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    (out / WEIGHTS_FILE).write_bytes(save(weights, metadata={"format": FORMAT}))
    (out / CARD_FILE).write_text(json.dumps(content, indent=2) + "\n")
    export_onnx(model, out / ONNX_FILE)


def export_onnx(model: nn.Module, path: Path) -> None:
    """The model as ONNX: input "image" (N, 1, 28, 28) float32, output "logits" (N, 10), N dynamic."""
    example = torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE)
    with warnings.catch_warnings():  # the TorchScript-based exporter is a choice (the dynamo one fails here)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})


def _model(params: TrialParams, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    try:
        check_feasible(params)
        model = build_model(params)
        model.load_state_dict(weights)
    except (ValueError, RuntimeError) as exc:
        raise SweeperError(f"{source}: weights do not fit the architecture of the trial's params: "
                           f"{str(exc).splitlines()[0]}") from None
    return model.eval()


def read_card(path: str | Path) -> dict[str, Any]:
    """An export folder's model.json, checked for the keys loading and evaluating need."""
    folder = Path(path)
    file = folder / CARD_FILE
    if not folder.is_dir():
        raise SweeperError(f"{folder}: not an export folder (no such folder)")
    try:
        content = json.loads(file.read_text())
    except FileNotFoundError:
        raise SweeperError(f"{folder}: not an export folder: no {CARD_FILE} (write one with sweeper export)"
                           ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweeperError(f"{file}: not a readable model card: {exc}") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise SweeperError(f"{file}: not a sweeper model card: key 'format' must be {FORMAT!r}")
    for key in ("params", "data"):
        if not isinstance(content.get(key), dict):
            raise SweeperError(f"{file}: key {key!r}: must be a mapping, but got {content.get(key)!r}")
    return content


def load_model(path: str | Path) -> nn.Module:
    """The exported PyTorch model (eval mode, on the CPU), from model.json + model.safetensors; no pickle, no
    Ray. A folder that is no valid export is a SweeperError naming the file and what is wrong."""
    content = read_card(path)
    file = Path(path) / CARD_FILE
    try:
        params = TrialParams.model_validate(content["params"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("params", *err["loc"]))
        raise SweeperError(f"{file}: key {where!r}: {err['msg'].removeprefix('Value error, ')}") from None
    weights_file = Path(path) / WEIGHTS_FILE
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(str(weights_file))
    except FileNotFoundError:
        raise SweeperError(f"{Path(path)}: not an export folder: no {WEIGHTS_FILE}") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SweeperError(f"{weights_file}: not a readable safetensors file: {str(exc).splitlines()[0]}") from None
    return _model(params, weights, str(weights_file))


@dataclass(frozen=True)
class Score:
    test_loss: float
    test_accuracy: float
    images: int
    recorded: float | None  # the trial's own test accuracy, from model.json


def evaluate_export(path: str | Path, data_dir: str | None) -> Score:
    """Score an export on the test split its model.json names (the same test subset as the sweep's)."""
    from sweeper.run.training import data as data_mod

    content = read_card(path)
    model = load_model(path)
    try:
        spec = DataSpec.model_validate(content["data"])
    except ValidationError as exc:
        raise SweeperError(f"{Path(path) / CARD_FILE}: key 'data': {exc.errors()[0]['msg']}") from None
    splits = data_mod.load(data_dir, spec)
    # torch.tensor copies: the splits are read-only memory maps, which torch.from_numpy warns about
    x = torch.tensor(splits.x_test).unsqueeze(1).float().div_(255.0)
    y = torch.tensor(splits.y_test).long()
    loss, accuracy = evaluate(model, x, y)
    recorded = (content.get("metrics") or {}).get("test_accuracy")
    return Score(loss, accuracy, len(y), recorded if isinstance(recorded, int | float) else None)
