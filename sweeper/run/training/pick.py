"""The trial an export holds: the one named, or the sweep's best that ran to its end and has a checkpoint; its
last epoch checkpoint read (weights, at the epoch trials.parquet records) and its params rebuilt from the sweep's
space."""

from __future__ import annotations

import io
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
import torch
from pydantic import ValidationError

from sweeper.errors import SweeperError
from sweeper.run.training.loop import CHECKPOINT_FILE, Progress, load_checkpoint
from sweeper.spec.loader import load_text
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space
from sweeper.spec.usermodels import recorded
from sweeper.store import state
from sweeper.store.files import SPEC_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep
from sweeper.store.trials import Ended, best, ended_of

CHECKPOINT_PREFIX = "checkpoint_"  # Ray's checkpoint folders in a trial's folder


@dataclass(frozen=True)
class Found:
    """A trial picked for export, with where its last checkpoint lies and the model it describes."""

    row: dict[str, Any]
    params: TrialParams
    checkpoint: str  # path of state.pt, relative to the sweep folder
    weights: dict[str, torch.Tensor] | None  # None: your loop's checkpoint holds no "model" state dict
    raw: bytes = b""  # your own loop's state.pt as written (a raw export copies it)


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


def _checkpoint(folder: SweepFolder, dirs: dict[str, str], trial_id: str) -> str | None:
    """The trial's last checkpoint (state.pt relative to the sweep folder), or None when it has none."""
    trial_dir = dirs.get(trial_id)
    if trial_dir is None:
        return None
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
        if space.trainable is not None:  # your own loop's: {"user": your dict, "sweeper": its envelope}
            own = saved["user"].get("model") if isinstance(saved["user"], dict) else None
            weights = own if isinstance(own, dict) and own else None
            progress = Progress(int(saved["sweeper"]["epoch"]))
        else:
            weights, progress = saved["model"], Progress.of(saved["progress"])
    except Exception as exc:  # noqa: BLE001 - whatever torch says about a damaged file, one line of it
        raise SweeperError(f"{folder.uri(checkpoint)}: not a readable checkpoint: {str(exc).splitlines()[0]}"
                           ) from None
    if row.get("epochs") is not None and progress.epoch != int(row["epochs"]):
        raise SweeperError(f"{folder.uri(checkpoint)}: checkpoint is at epoch {progress.epoch} but trials.parquet "
                           f"records {row['epochs']} epochs for trial {row['trial_id']}; export it once the sweep has "
                           "finished (resume an interrupted one)")
    return Found(row, _params(folder, space, trial_dir), checkpoint, weights,
                 data if space.trainable is not None else b"")


def find_trial(storage: Storage, name: str, trial_id: str | None) -> tuple[SweepFolder, Space, Found]:
    """The trial to export: `trial_id`, or the best by the sweep's rule (store/trials.py) among trials that ran
    to their end (completed or early-stopped) and have a checkpoint."""
    folder, _, space, found = find_trial_and_state(storage, name, trial_id)
    return folder, space, found


def find_trial_and_state(storage: Storage, name: str, trial_id: str | None,
                         ) -> tuple[SweepFolder, dict[str, Any], Space, Found]:
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
        checkpoint = _checkpoint(folder, dirs, trial_id)
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
        checkpoint = _checkpoint(folder, dirs, row["trial_id"])
        if checkpoint is not None:
            return folder, run_state, space, _load_found(folder, space, row, dirs[row["trial_id"]], checkpoint)
        done.remove(row)
    raise SweeperError(f"sweep {name!r}: no trial that ran to its end has a checkpoint; name one with --trial")
