"""The model card, an export's model.json: the export folder's file names, the card's content built from a trial,
and a card read back and checked for the keys loading and evaluating need.

An export folder holds three files:
- `model.safetensors`: the trial's weights (its last epoch checkpoint in the sweep folder);
- `model.json`: the model card. A built-in model trained on Fashion-MNIST has format "sweeper-model/1": the
  trial's full params (what `build_model` needs), the preprocessing (uint8 pixels / 255 in [0, 1], shape 1x28x28,
  the Fashion-MNIST class names), the trial's recorded metrics, the data spec (so `evaluate` scores the same test
  subset), sweeper's version, the sweep's name and the trial id. A model of your own (`models:`), or any model
  trained on a data source of your own (`data.source`), has format "sweeper-model/2": besides the above, `model`
  (your factory's `module:function`, its code's sha256, the folders it was imported from, and the keys it is called
  with; a built-in family's name otherwise), `input` (shape and dtype of one example), `num_classes`, `classes`,
  and the sweep's `data_fingerprint`, which `evaluate` checks the data it loads again against;
- `model.onnx`: the same network (TorchScript-based exporter) with a dynamic batch axis, output "logits" (N, K);
  input "image" (N, 1, 28, 28) for /1, "input" (N, *shape) for /2. For /2 it is best effort: a forward the
  exporter cannot trace faithfully leaves it out, and model.json's `onnx` says why (`{"skipped": reason}`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.errors import SweeperError
from sweeper.run.training import sources, usercode
from sweeper.run.training.data import FASHION_CLASSES
from sweeper.run.training.models import FASHION_SHAPE
from sweeper.run.training.pick import Found
from sweeper.spec.metrics import METRICS
from sweeper.spec.space import Space
from sweeper.spec.usermodels import valid_ref
from sweeper.store.storage import SweepFolder
from sweeper.version import __version__

CARD_FILE, WEIGHTS_FILE, ONNX_FILE = "model.json", "model.safetensors", "model.onnx"
FORMAT = "sweeper-model/1"  # a built-in model trained on Fashion-MNIST
FORMAT_2 = "sweeper-model/2"  # a model of your own, or any model trained on a data source of your own
FORMAT_RAW = "sweeper-raw/1"  # your own loop's checkpoint as it wrote it: no model sweeper can rebuild
FORMATS = (FORMAT, FORMAT_2)
RAW_FILE = "state.pt"  # a raw export's checkpoint
EXPORT_FILES = (WEIGHTS_FILE, ONNX_FILE, CARD_FILE)  # in the order an --overwrite replaces them


@dataclass(frozen=True)
class DataFacts:
    """What a /2 card records of the data a trial trained on: one example's shape and dtype, the classes, where a
    data source of your own is imported from, and the sweep's data fingerprint."""

    input_shape: tuple[int, ...]
    dtype: str  # "uint8" (images 0..255, scaled to [0, 1]) or "float32"
    classes: tuple[str, ...]
    roots: tuple[str, ...]  # sys.path folders for data.source (none for Fashion-MNIST)
    fingerprint: str | None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def data_facts(space: Space, run_state: Mapping[str, Any], data_dir: str | None) -> DataFacts:
    """Fashion-MNIST's are known; a data source of your own is run again (its data must be the sweep's)."""
    recorded_fp = run_state.get("data_fingerprint")
    recorded_fp = recorded_fp if isinstance(recorded_fp, str) and recorded_fp else None
    spec = space.spec.data
    if spec.source is None:
        return DataFacts(FASHION_SHAPE, "uint8", FASHION_CLASSES, (), recorded_fp)
    roots = _unique([*usercode.roots_of(space.path), *(r for m in space.models.values() for r in m.roots)])
    splits = sources.load(data_dir or run_state.get("data_dir") or None, spec, roots, str(space.path))
    now = sources.fingerprint(splits)
    if recorded_fp is not None and now != recorded_fp:
        raise SweeperError(f"{spec.source}: gives other data now than sweep {space.name!r} trained on (fingerprint "
                           f"{recorded_fp[:12]} then, {now[:12]} now), so the export could not record the model's "
                           "input or be evaluated; restore the data to export")
    classes = splits.classes or tuple(str(i) for i in range(splits.num_classes))
    dtype = "uint8" if splits.x_train.dtype == np.uint8 else "float32"
    return DataFacts(splits.input_shape, dtype, classes, roots, recorded_fp or now)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def roots_then_cwd(recorded: Iterable[str]) -> tuple[str, ...]:
    """Where a card's code (your factory, your data source) is imported from: the folders it recorded, then the
    current directory."""
    return _unique([*recorded, str(Path.cwd())])


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _head(format_: str, folder: SweepFolder, found: Found) -> dict[str, Any]:
    """The keys every card starts with: its format, sweeper's version, the sweep and the trial."""
    row = found.row
    return {"format": format_, "sweeper_version": __version__, "sweep": folder.name, "trial_id": row["trial_id"],
            "variant": _number(row.get("variant"))}


def _metrics(row: Mapping[str, Any], names: Iterable[str] = METRICS) -> dict[str, Any]:
    """The trial's recorded metrics (`names`: the sweep's), with its epochs and how it ended."""
    return {m: _number(row.get(m)) for m in names} | {"epochs": row.get("epochs"), "state": row.get("state"),
                                                      "stopped_by": _number(row.get("stopped_by"))}


def card(folder: SweepFolder, space: Space, found: Found) -> dict[str, Any]:
    """model.json's content (format /1: a built-in model trained on Fashion-MNIST)."""
    return _head(FORMAT, folder, found) | {
        "params": found.params.model_dump(mode="json"),
        "preprocessing": {"shape": list(FASHION_SHAPE), "dtype": "float32",
                          "scale": "uint8 pixel / 255, so values lie in [0, 1]", "class_names": list(FASHION_CLASSES),
                          "output": "logits (softmax gives class probabilities)"},
        "metrics": _metrics(found.row),
        "data": space.spec.data.model_dump(mode="json"),
        "checkpoint": found.checkpoint,
        "onnx": {"file": ONNX_FILE, "input": "image", "output": "logits", "batch_axis": 0},
    }


def card_2(folder: SweepFolder, space: Space, found: Found, facts: DataFacts) -> dict[str, Any]:
    """model.json's content (format /2: a model of your own, or a model trained on a data source of your own).
    Its `onnx` entry is filled in once the ONNX export was tried (`write_export`)."""
    row, p = found.row, found.params
    user = space.models.get(p.model)
    model: dict[str, Any] = {"builtin": p.model} if user is None else {
        "name": user.name, "factory": user.ref, "sha256": user.sha256, "files": list(user.files),
        "roots": list(user.roots), "params": _jsonable(p.model_keys())}
    uint8 = facts.dtype == "uint8"
    content = _head(FORMAT_2, folder, found) | {
        "model": model,
        "params": p.model_dump(mode="json"),
        "input": {"shape": list(facts.input_shape), "dtype": facts.dtype,
                  "preprocessing": "uint8 / 255 as float32, so values lie in [0, 1] (an (N, H, W) batch gains a "
                                   "channel axis)" if uint8 else "as float32"},
        "num_classes": facts.num_classes,
        "classes": list(facts.classes),
        "output": "logits (softmax gives class probabilities)",
        "metrics": _metrics(row, space.spec.trial_metrics),
        "data": space.spec.data.model_dump(mode="json"),
        "data_fingerprint": facts.fingerprint,
        "checkpoint": found.checkpoint,
        "onnx": {"file": ONNX_FILE, "input": "input", "output": "logits", "batch_axis": 0},
    }
    if facts.roots:
        content["data_roots"] = list(facts.roots)
    if isinstance(row.get("code"), str):
        content["code_version"] = row["code"]
    return content


def card_raw(folder: SweepFolder, space: Space, found: Found, why: str) -> dict[str, Any]:
    """model.json's content for a raw export: your loop's checkpoint copied as it wrote it (`why`: why no model
    could be rebuilt from it)."""
    own = space.trainable
    assert own is not None
    row = found.row
    return _head(FORMAT_RAW, folder, found) | {
        "trainable": {"ref": own.ref, "sha256": own.sha256, "files": list(own.files)},
        "params": _jsonable(found.params.recorded()),
        "metrics": _metrics(row, space.spec.trial_metrics),
        "data": space.spec.data.model_dump(mode="json"),
        "checkpoint": found.checkpoint,
        "raw": {"file": RAW_FILE, "why": why,
                "load": f"torch.load('{RAW_FILE}', weights_only=True) gives {{'user': your checkpoint dict, "
                        "'sweeper': {'epoch', 'rng', 'metrics'}}"},
    } | ({"code_version": row["code"]} if isinstance(row.get("code"), str) else {})


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(dict(values), default=str))
    return out


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
    if isinstance(content, dict) and content.get("format") == FORMAT_RAW:
        why = (content.get("raw") or {}).get("why") if isinstance(content.get("raw"), dict) else None
        raise SweeperError(f"{file}: a raw export of your own loop's checkpoint ({RAW_FILE}), not a model sweeper can "
                           f"rebuild: {why or 'no model factory'}; load {RAW_FILE} with torch.load(weights_only=True)")
    if not isinstance(content, dict) or content.get("format") not in FORMATS:
        raise SweeperError(f"{file}: not a sweeper model card: key 'format' must be {FORMAT!r} or {FORMAT_2!r}")
    for key in ("params", "data"):
        if not isinstance(content.get(key), dict):
            raise SweeperError(f"{file}: key {key!r}: must be a mapping, but got {content.get(key)!r}")
    if content["format"] == FORMAT_2:
        _check_card_2(file, content)
    return content


def _check_card_2(file: Path, content: dict[str, Any]) -> None:
    """The keys a /2 card needs, each a one-line error naming the key."""
    def bad(key: str, rule: str) -> SweeperError:
        got: Any = content
        for part in key.split("."):
            got = got.get(part) if isinstance(got, dict) else None
        return SweeperError(f"{file}: key {key!r}: must be {rule}, but got {got!r}")

    model, given = content.get("model"), content.get("input")
    if not isinstance(model, dict):
        raise bad("model", "a mapping")
    if "factory" in model:
        if not isinstance(model["factory"], str) or not valid_ref(model["factory"]):
            raise bad("model.factory", "module.path:function")
        if not isinstance(model.get("params"), dict):
            raise bad("model.params", "a mapping")
        if not isinstance(model.get("roots", []), list) or not all(isinstance(r, str) for r in model.get("roots", [])):
            raise bad("model.roots", "a list of folders")
    elif not isinstance(model.get("builtin"), str):
        raise bad("model", "a mapping with `factory` (your own model) or `builtin`")
    if not isinstance(given, dict):
        raise bad("input", "a mapping")
    shape = given.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise bad("input.shape", "a list of positive whole numbers")
    if given.get("dtype") not in ("uint8", "float32"):
        raise bad("input.dtype", "'uint8' or 'float32'")
    k = content.get("num_classes")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise bad("num_classes", "a positive whole number")
    if not isinstance(content.get("data_roots", []), list):
        raise bad("data_roots", "a list of folders")
