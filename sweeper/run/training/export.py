"""A trained trial as a standalone model: `sweeper export`, `sweeper.load_model`, `sweeper evaluate`.

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
Loading a /1 export reads JSON and safetensors only: no pickle anywhere on that path, and no Ray. Loading a /2
export of your own model imports and runs your factory's module (found as at launch, or in the current directory).
"""

from __future__ import annotations

import io
import json
import math
import os
import posixpath
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs as pafs
import torch
from pydantic import ValidationError
from torch import nn

from sweeper.errors import SweeperError
from sweeper.run.training import sources, usercode
from sweeper.run.training.data import FASHION_CLASSES
from sweeper.run.training.loop import CHECKPOINT_FILE, Progress, evaluate, inputs, labels, load_checkpoint
from sweeper.run.training.models import FASHION_SHAPE, build_model
from sweeper.spec.loader import load_text
from sweeper.spec.metrics import METRICS
from sweeper.spec.params import IMAGE_SIDE, TrialParams, check_feasible
from sweeper.spec.schema import DataSpec
from sweeper.spec.space import Space
from sweeper.spec.usermodels import UserModel, recorded, valid_ref
from sweeper.store import state
from sweeper.store.files import SPEC_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep
from sweeper.store.trials import Ended, best, ended_of
from sweeper.version import __version__

CARD_FILE, WEIGHTS_FILE, ONNX_FILE = "model.json", "model.safetensors", "model.onnx"
FORMAT = "sweeper-model/1"  # a built-in model trained on Fashion-MNIST
FORMAT_2 = "sweeper-model/2"  # a model of your own, or any model trained on a data source of your own
FORMATS = (FORMAT, FORMAT_2)
EXPORT_FILES = (WEIGHTS_FILE, ONNX_FILE, CARD_FILE)  # in the order an --overwrite replaces them
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
    shown = Path(run_state.get("space_file") or f"{folder.name}.yaml")
    return load_text(text, shown, recorded(run_state.get("models")))


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
    folder, _, space, found = _find(storage, name, trial_id)
    return folder, space, found


def _find(storage: Storage, name: str, trial_id: str | None) -> tuple[SweepFolder, dict[str, Any], Space, Found]:
    """`find_trial`, with the sweep's sweep.json."""
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
        return folder, run_state, space, _load_found(folder, space, row, dirs[trial_id], checkpoint)
    done = [r for r in rows if ended_of(r) in (Ended.COMPLETED, Ended.EARLY)]
    metric, mode = space.spec.metric, space.spec.mode
    while done:
        row = best(done, metric, mode)
        if row is None:
            break
        checkpoint = _checkpoint(folder, dirs[row["trial_id"]]) if row["trial_id"] in dirs else None
        if checkpoint is not None:
            return folder, run_state, space, _load_found(folder, space, row, dirs[row["trial_id"]], checkpoint)
        done.remove(row)
    raise SweeperError(f"sweep {name!r}: no trial that ran to its end has a checkpoint; name one with --trial")


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def card(folder: SweepFolder, space: Space, found: Found) -> dict[str, Any]:
    """model.json's content (format /1: a built-in model trained on Fashion-MNIST)."""
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


def _data_facts(space: Space, run_state: Mapping[str, Any], data_dir: str | None) -> DataFacts:
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


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def card_2(folder: SweepFolder, space: Space, found: Found, facts: DataFacts) -> dict[str, Any]:
    """model.json's content (format /2: a model of your own, or a model trained on a data source of your own).
    Its `onnx` entry is filled in once the ONNX export was tried (`write_export`)."""
    row, p = found.row, found.params
    user = space.models.get(p.model)
    model: dict[str, Any] = {"builtin": p.model} if user is None else {
        "name": user.name, "factory": user.ref, "sha256": user.sha256, "files": list(user.files),
        "roots": list(user.roots), "params": _jsonable(p.model_keys())}
    uint8 = facts.dtype == "uint8"
    content = {
        "format": FORMAT_2,
        "sweeper_version": __version__,
        "sweep": folder.name,
        "trial_id": row["trial_id"],
        "variant": _number(row.get("variant")),
        "model": model,
        "params": p.model_dump(mode="json"),
        "input": {"shape": list(facts.input_shape), "dtype": facts.dtype,
                  "preprocessing": "uint8 / 255 as float32, so values lie in [0, 1] (an (N, H, W) batch gains a "
                                   "channel axis)" if uint8 else "as float32"},
        "num_classes": facts.num_classes,
        "classes": list(facts.classes),
        "output": "logits (softmax gives class probabilities)",
        "metrics": {m: _number(row.get(m)) for m in METRICS}
        | {"epochs": row.get("epochs"), "state": row.get("state"), "stopped_by": _number(row.get("stopped_by"))},
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


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(dict(values), default=str))
    return out


class CodeChangedWarning(UserWarning):
    """Your model's code differs from the code its weights were trained with (the CLI prints it as one line)."""


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise SweeperError(f"--out {out}: folder is not empty; pass --overwrite to replace an export there")


def export(storage: Storage, name: str, trial_id: str | None, out: Path, overwrite: bool,
           data_dir: str | None = None) -> dict[str, Any]:
    """Write the three files into `out`; returns model.json's content. Everything is checked (the trial, its
    checkpoint, that the weights fit the architecture) before anything is written, into a folder beside `out`
    that then takes its place. `data_dir`: what a data source of your own is given (default: the sweep's)."""
    _check_out(out, overwrite)
    folder, run_state, space, found = _find(storage, name, trial_id)
    where = folder.uri(found.checkpoint)
    user = space.models.get(found.params.model)
    if user is None and space.data_source is None:
        model = _model(found.params, found.weights, where)
        content = card(folder, space, found)
    else:
        facts = _data_facts(space, run_state, data_dir)
        model = _build_2(found.params, facts.input_shape, facts.num_classes, space.models, where)
        _fit(model, found.weights, where, _code_note(user))
        content = card_2(folder, space, found, facts)
        if user is not None and (changed := _changed(user.ref, user.sha256, user.files)) is not None:
            warnings.warn(f"{user.ref}: your code changed since the sweep trained this model ({changed}); the "
                          "export holds the weights it trained, for the code it recorded", CodeChangedWarning,
                          stacklevel=2)
    write_export(out, model.eval(), content)
    return content


def _build_2(p: TrialParams, shape: tuple[int, ...], k: int, models: Mapping[str, UserModel],
             where: str) -> nn.Module:
    """The model a /2 export holds, built for `shape` and `k` classes (your factory called, or a built-in)."""
    user = models.get(p.model)
    try:
        return build_model(p, shape, k, models)
    except SweeperError:
        raise
    except Exception as exc:  # noqa: BLE001 - your factory's error, as one line naming your file
        why = usercode.describe_error(exc, user.roots) if user is not None else str(exc).splitlines()[0]
        raise SweeperError(f"{where}: model {p.model!r} cannot be built for input {tuple(shape)} and {k} classes: "
                           f"{why}") from None


def _code_note(user: UserModel | None) -> str:
    return f"the model {user.ref} builds now" if user is not None else "the model"


def _changed(ref: str, sha256: str, files: Any) -> str | None:
    """None when `ref`'s code is the recorded version (or none was recorded), else which of its files changed."""
    if not sha256:
        return None
    now, now_files, _ = usercode.code_hash(ref)
    if now == sha256:
        return None
    then = dict(f.rsplit("@", 1) for f in files or () if isinstance(f, str) and "@" in f)
    current = dict(f.rsplit("@", 1) for f in now_files if "@" in f)
    names = sorted(p for p in set(then) | set(current) if then.get(p) != current.get(p))
    return ", ".join(names) if names else "sha256 differs"


def _fit(model: nn.Module, weights: Mapping[str, torch.Tensor], where: str, what: str = "the model") -> None:
    """Load `weights` strictly; a key or shape that does not fit is a SweeperError naming the first one."""
    want = model.state_dict()
    why = None
    for key, tensor in want.items():
        if key not in weights:
            why = f"key {key!r} of the model is not in the weights"
        elif tuple(weights[key].shape) != tuple(tensor.shape):
            why = (f"key {key!r} has shape {list(weights[key].shape)} in the weights but {list(tensor.shape)} in "
                   "the model")
        if why is not None:
            break
    if why is None:
        extra = next((k for k in weights if k not in want), None)
        if extra is not None:
            why = f"key {extra!r} of the weights is not in the model"
    if why is None:
        try:
            model.load_state_dict(dict(weights), strict=True)
        except (RuntimeError, ValueError) as exc:
            why = str(exc).splitlines()[0]
    if why is not None:
        raise SweeperError(f"{where}: weights do not fit {what}: {why}")


def write_export(out: Path, model: nn.Module, content: dict[str, Any]) -> None:
    """The three files of an export: the model's weights, its card (`content`) and the model as ONNX (for /2 best
    effort: a failure leaves model.onnx out and says why in the card's `onnx`). Written into a folder beside `out`
    first, so a failure leaves `out` as it was."""
    from safetensors.torch import save

    if out.exists() and not out.is_dir():
        raise SweeperError(f"--out {out}: is a file, not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if content.get("format") == FORMAT_2:
            shape = tuple(int(d) for d in content["input"]["shape"])
            skipped = export_onnx_2(model, shape, tmp / ONNX_FILE)
            if skipped is not None:
                content["onnx"] = {"skipped": skipped}
        else:
            export_onnx(model, tmp / ONNX_FILE)
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        (tmp / WEIGHTS_FILE).write_bytes(save(weights, metadata={"format": str(content.get("format", FORMAT))}))
        (tmp / CARD_FILE).write_text(json.dumps(content, indent=2) + "\n")
        _place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _place(tmp: Path, out: Path) -> None:
    """Put a written export in `out`: renamed there when `out` is missing or empty; otherwise (--overwrite) each of
    its files replaces the one in `out` (other files there stay; a model.onnx this export lacks goes)."""
    if out.is_dir() and any(out.iterdir()):
        for name in EXPORT_FILES:
            if (tmp / name).exists():
                os.replace(tmp / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)
        return
    if out.is_dir():
        out.rmdir()
    os.replace(tmp, out)


def export_onnx(model: nn.Module, path: Path) -> None:
    """The model as ONNX: input "image" (N, 1, 28, 28) float32, output "logits" (N, 10), N dynamic."""
    example = torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE)
    with warnings.catch_warnings():  # the TorchScript-based exporter is a choice (the dynamo one fails here)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})


def export_onnx_2(model: nn.Module, shape: tuple[int, ...], path: Path) -> str | None:
    """A /2 export's model as ONNX: input "input" (N, *shape) float32, output "logits" (N, K), N dynamic. Best
    effort: returns why it was left out (one line), or None. An exporter error, and a forward the tracer says it
    could not record faithfully (Python numbers or numpy taken from a tensor, data-dependent control flow: the
    ONNX graph would compute something else), leave it out."""
    example = torch.zeros(2, *shape)
    try:
        with warnings.catch_warnings(record=True) as caught, _quiet_fds():
            warnings.simplefilter("always")
            torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, input_names=["input"],
                              output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    except Exception as exc:  # noqa: BLE001 - whatever the exporter refuses, one line of it
        path.unlink(missing_ok=True)
        return _one_line(exc)
    finally:
        _onnx_log_off()
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)
              and "safely ignore" not in str(w.message)]
    if tracer:
        path.unlink(missing_ok=True)
        first = str(tracer[0].message).splitlines()[0].split(". ")[0].rstrip(".")
        return f"the tracer could not record the forward faithfully: {first}"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _onnx_log_off() -> None:
    """torch's legacy exporter turns its C++ log on and leaves it on (setup_onnx_logging tests the function, not its
    result): off again, so a later failed export prints no graph."""
    off = getattr(torch._C, "_jit_set_onnx_log_enabled", None)
    if off is not None:
        off(False)


@contextmanager
def _quiet_fds() -> Iterator[None]:
    """stdout and stderr (the file descriptors: the exporter's C++ log writes there, e.g. a whole graph when it
    fails) to /dev/null for a while."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved: list[tuple[int, int]] = []
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            except OSError:
                pass
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)


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


def _read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    weights_file = Path(path) / WEIGHTS_FILE
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights: dict[str, torch.Tensor] = load_file(str(weights_file))
    except FileNotFoundError:
        raise SweeperError(f"{Path(path)}: not an export folder: no {WEIGHTS_FILE}") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise SweeperError(f"{weights_file}: not a readable safetensors file: {str(exc).splitlines()[0]}") from None
    return weights


def _trial_params(file: Path, raw: Any) -> TrialParams:
    try:
        return TrialParams.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in ("params", *err["loc"]))
        raise SweeperError(f"{file}: key {where!r}: {err['msg'].removeprefix('Value error, ')}") from None


def load_model(path: str | Path) -> nn.Module:
    """The exported PyTorch model (eval mode, on the CPU), from model.json + model.safetensors. A folder that is no
    valid export, or weights that do not fit the model, is a SweeperError naming the file and what is wrong.

    A built-in model (format /1, or /2 with `model.builtin`) is rebuilt from JSON and safetensors only: no pickle,
    no Ray, no code of yours. Loading an export of YOUR OWN model (format /2 with `model.factory`) imports and runs
    your factory's module (from the folders it was found in at launch, then the current directory): only load
    exports you trust. When that module's code differs from the code recorded at export, a CodeChangedWarning
    (one line) says which files changed."""
    content = read_card(path)
    file = Path(path) / CARD_FILE
    if content["format"] == FORMAT:
        params = _trial_params(file, content["params"])
        weights_file = Path(path) / WEIGHTS_FILE
        return _model(params, _read_weights(path), str(weights_file))
    return _load_2(Path(path), content)


def _load_2(folder: Path, content: dict[str, Any]) -> nn.Module:
    file, weights_file = folder / CARD_FILE, folder / WEIGHTS_FILE
    shape, k = tuple(content["input"]["shape"]), int(content["num_classes"])
    spec = content["model"]
    if "factory" not in spec:
        params = _trial_params(file, content["params"])
        weights = _read_weights(folder)
        try:
            model = build_model(params, shape, k)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise SweeperError(f"{file}: model {params.model!r} cannot be built for input {shape} and {k} classes: "
                               f"{str(exc).splitlines()[0]}") from None
        _fit(model, weights, str(weights_file), f"the {params.model} of the card's params")
        return model.eval()
    ref = spec["factory"]
    roots = _unique([*spec.get("roots", []), str(Path.cwd())])
    weights = _read_weights(folder)
    fn = usercode.resolve(ref, roots, f"{file}: key 'model.factory'")
    try:
        model = fn(**spec["params"], input_shape=shape, num_classes=k)
    except Exception as exc:  # noqa: BLE001 - your factory's error, as one line naming your file
        raise SweeperError(f"{file}: {ref} failed to build the model: {usercode.describe_error(exc, roots)}"
                           ) from None
    if not isinstance(model, nn.Module):
        raise SweeperError(f"{file}: {ref} returned a {type(model).__name__}, not a torch.nn.Module")
    changed = _changed(ref, str(spec.get("sha256") or ""), spec.get("files"))
    what = f"the model {ref} builds now" + (f" (its code changed since the export: {changed})" if changed else "")
    _fit(model, weights, str(weights_file), what)
    if changed is not None:
        warnings.warn(f"{ref}: your code changed since the export ({changed}); the model may not compute what it "
                      "did when it was trained", CodeChangedWarning, stacklevel=3)
    return model.to("cpu").eval()


@dataclass(frozen=True)
class Score:
    test_loss: float
    test_accuracy: float
    images: int
    recorded: float | None  # the trial's own test accuracy, from model.json


def evaluate_export(path: str | Path, data_dir: str | None) -> Score:
    """Score an export on the test split its model.json names (the same test subset as the sweep's). A /2 export's
    data is loaded again as the card's data spec says (your data source run again) and must be the data the sweep
    trained on (its fingerprint)."""
    content = read_card(path)
    model = load_model(path)
    file = Path(path) / CARD_FILE
    try:
        spec = DataSpec.model_validate(content["data"])
    except ValidationError as exc:
        raise SweeperError(f"{file}: key 'data': {exc.errors()[0]['msg']}") from None
    recorded = (content.get("metrics") or {}).get("test_accuracy")
    recorded = recorded if isinstance(recorded, int | float) and not isinstance(recorded, bool) else None
    if content["format"] == FORMAT:
        from sweeper.run.training import data as data_mod

        splits = data_mod.load(data_dir, spec)
        # torch.tensor copies: the splits are read-only memory maps, which torch.from_numpy warns about
        x = torch.tensor(splits.x_test).unsqueeze(1).float().div_(255.0)
        y = torch.tensor(splits.y_test).long()
        loss, accuracy = evaluate(model, x, y)
        return Score(loss, accuracy, len(y), recorded)
    roots = _unique([*content.get("data_roots", []), str(Path.cwd())])
    splits = sources.load(data_dir, spec, roots, str(file))
    shown = spec.source or "Fashion-MNIST"
    if splits.x_test is None or splits.y_test is None:
        raise SweeperError(f"{file}: the data source {shown} gives no test split, so there is nothing to score the "
                           "model on")
    then = content.get("data_fingerprint")
    if isinstance(then, str) and then:
        now = sources.fingerprint(splits)
        if now != then:
            raise SweeperError(f"{file}: the data {shown} gives now differs from the data the model was trained on "
                               f"(fingerprint {then[:12]} then, {now[:12]} now); restore it (or --data-dir) to "
                               "score the model")
    shape = tuple(content["input"]["shape"])
    if splits.input_shape != shape:
        raise SweeperError(f"{file}: the data {shown} gives examples of shape {splits.input_shape}, but the model "
                           f"takes {shape}")
    x, y = inputs(splits.x_test), labels(splits.y_test)
    loss, accuracy = evaluate(model, x, y)
    return Score(loss, accuracy, len(y), recorded)
