"""`sweeper export`: a sweep's trial written as a standalone model, model.safetensors + model.json + model.onnx
(the files and the card's formats: `card`). The trial is picked (`pick`), its model rebuilt and its weights
checked to fit it, all before anything is written; the files are then written into a folder beside `--out` that
takes its place, so a failure leaves `--out` as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from sweeper.errors import SweeperError
from sweeper.run.training import usercode
from sweeper.run.training.card import (
    CARD_FILE,
    EXPORT_FILES,
    FORMAT,
    FORMAT_2,
    ONNX_FILE,
    RAW_FILE,
    WEIGHTS_FILE,
    card,
    card_2,
    card_raw,
    data_facts,
)
from sweeper.run.training.loading import CodeChangedWarning, code_changed, fit, fitted_builtin
from sweeper.run.training.models import build_model
from sweeper.run.training.onnxfile import export_onnx, export_onnx_2
from sweeper.run.training.pick import Found, find_trial_and_state
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space
from sweeper.spec.usermodels import UserModel
from sweeper.store.storage import Storage


def _check_out(out: Path, overwrite: bool) -> None:
    """`--out` must be a folder, or not be there yet; one with files in it only with --overwrite."""
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
    folder, run_state, space, found = find_trial_and_state(storage, name, trial_id)
    where = folder.uri(found.checkpoint)
    user = space.models.get(found.params.model)
    if space.trainable is not None and (why := _not_rebuildable(space, found)) is not None:
        content = card_raw(folder, space, found, why)
        write_raw(out, found.raw, content)
        return content
    if found.weights is None:  # only your loop's checkpoint may lack weights (handled above)
        raise SweeperError(f"{where}: the checkpoint holds no model weights")
    if user is None and space.data_source is None:
        model = fitted_builtin(found.params, found.weights, where)
        content = card(folder, space, found)
    else:
        facts = data_facts(space, run_state, data_dir)
        model = _build_2(found.params, facts.input_shape, facts.num_classes, space.models, where)
        fit(model, found.weights, where, _code_note(user))
        content = card_2(folder, space, found, facts)
        if user is not None and (changed := code_changed(user.ref, user.sha256, user.files)) is not None:
            warnings.warn(f"{user.ref}: your code changed since the sweep trained this model ({changed}); the "
                          "export holds the weights it trained, for the code it recorded", CodeChangedWarning,
                          stacklevel=2)
    write_export(out, model.eval(), content)
    return content


def _not_rebuildable(space: Space, found: Found) -> str | None:
    """Why your loop's trial cannot be exported as a model (None: it can, through its factory)."""
    if found.params.model not in space.models:
        return ("the space names no model factory (`models:`): sweeper cannot rebuild the network your loop built; "
                "build it with ctx.build_model() from a factory under `models:` to export it as a model")
    if found.weights is None:
        return ("the checkpoint holds no 'model' state dict: report checkpoint={'model': model.state_dict(), ...} "
                "to export it as a model")
    return None


@contextmanager
def _staged(out: Path) -> Iterator[Path]:
    """An empty folder beside `out` (checked to be a folder, or not there yet) to write an export into before it
    takes `out`'s place; removed afterwards, whatever is left in it."""
    _check_out(out, overwrite=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.export-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_raw(out: Path, raw: bytes, content: dict[str, Any]) -> None:
    """A raw export: the checkpoint and its card, written into a folder beside `out` that then takes its place."""
    with _staged(out) as tmp:
        (tmp / RAW_FILE).write_bytes(raw)
        (tmp / CARD_FILE).write_text(json.dumps(content, indent=2) + "\n")
        if out.is_dir():
            for name in (*EXPORT_FILES, RAW_FILE):
                (out / name).unlink(missing_ok=True)
            for name in (RAW_FILE, CARD_FILE):
                os.replace(tmp / name, out / name)
        else:
            os.replace(tmp, out)


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


def write_export(out: Path, model: nn.Module, content: dict[str, Any]) -> None:
    """The three files of an export: the model's weights, its card (`content`) and the model as ONNX (for /2 best
    effort: a failure leaves model.onnx out and says why in the card's `onnx`). Written into a folder beside `out`
    first, so a failure leaves `out` as it was."""
    from safetensors.torch import save

    with _staged(out) as tmp:
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
