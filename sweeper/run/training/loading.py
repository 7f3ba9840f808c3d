"""An export loaded back as a PyTorch model (`load_model`, behind `sweeper.load_model`): the card read, the model
built (a built-in from its params; your own by importing and calling your factory), and the weights fitted to it
strictly, each key and shape checked; and whether your model's code changed since (CodeChangedWarning).

Loading a /1 export reads JSON and safetensors only: no pickle anywhere on that path, and no Ray. Loading a /2
export of your own model imports and runs your factory's module (found as at launch, or in the current directory).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from sweeper.errors import SweeperError
from sweeper.run.training import usercode
from sweeper.run.training.card import CARD_FILE, FORMAT, WEIGHTS_FILE, read_card, roots_then_cwd
from sweeper.run.training.models import build_model
from sweeper.spec.params import TrialParams, check_feasible


class CodeChangedWarning(UserWarning):
    """Your model's code differs from the code its weights were trained with (the CLI prints it as one line)."""


def code_changed(ref: str, sha256: str, files: Any) -> str | None:
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


def fit(model: nn.Module, weights: Mapping[str, torch.Tensor], where: str, what: str = "the model") -> None:
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


def fitted_builtin(params: TrialParams, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    """A /1 model: the built-in family of `params` at Fashion-MNIST's shape, `weights` loaded, in eval mode."""
    try:
        check_feasible(params)
        model = build_model(params)
        model.load_state_dict(weights)
    except (ValueError, RuntimeError) as exc:
        raise SweeperError(f"{source}: weights do not fit the architecture of the trial's params: "
                           f"{str(exc).splitlines()[0]}") from None
    return model.eval()


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
        return fitted_builtin(params, _read_weights(path), str(weights_file))
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
        fit(model, weights, str(weights_file), f"the {params.model} of the card's params")
        return model.eval()
    ref = spec["factory"]
    roots = roots_then_cwd(spec.get("roots", []))
    weights = _read_weights(folder)
    fn = usercode.resolve(ref, roots, f"{file}: key 'model.factory'")
    try:
        model = fn(**spec["params"], input_shape=shape, num_classes=k)
    except Exception as exc:  # noqa: BLE001 - your factory's error, as one line naming your file
        raise SweeperError(f"{file}: {ref} failed to build the model: {usercode.describe_error(exc, roots)}"
                           ) from None
    if not isinstance(model, nn.Module):
        raise SweeperError(f"{file}: {ref} returned a {type(model).__name__}, not a torch.nn.Module")
    changed = code_changed(ref, str(spec.get("sha256") or ""), spec.get("files"))
    what = f"the model {ref} builds now" + (f" (its code changed since the export: {changed})" if changed else "")
    fit(model, weights, str(weights_file), what)
    if changed is not None:
        warnings.warn(f"{ref}: your code changed since the export ({changed}); the model may not compute what it "
                      "did when it was trained", CodeChangedWarning, stacklevel=3)
    return model.to("cpu").eval()
