"""Which sweeps a report reads, and each one's trials and what its spec.yaml says about them.

A report names sweeps under --storage (the same folders every command finds, store/storage.py), or results
folders given by path (a copy of a sweep's folder holding trials.parquet). With no name it reads every folder
under --storage that holds trials.parquet. trials.parquet and epochs.parquet are read together, as one pair that
agrees (store/pair.py: never a trial whose epochs differ from its epoch rows, even while a sweep writes them or
after a kill between their writes); of epochs.parquet only the columns the learning curves and the ASHA audit use,
kept as Arrow and made a pandas frame on first use (Sweep.epochs), once per sweep and report. spec.yaml gives
the metric, the metrics the space declares (report/metrics.py), the variants and what they fix, the searched axes,
the trials planned per variant (those not started yet are pending), ASHA's rungs and reference numbers; without
it the report still works, from the data alone (the metric columns trials.parquet holds included). With your own
loop, sweeper's keys it does not take (null in every trial) are no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from sweeper.errors import SweeperError, did_you_mean
from sweeper.report.metrics import STANDARD_CURVE, sweep_modes
from sweeper.spec.cost import asha_milestones
from sweeper.spec.loader import load_text
from sweeper.spec.metrics import METRICS, Mode, mode_of
from sweeper.spec.params import KEY_MODELS, PARAM_KEYS
from sweeper.spec.space import Space
from sweeper.spec.usermodels import recorded
from sweeper.store.files import EPOCHS_FILE, SPEC_FILE, TRIALS_FILE
from sweeper.store.pair import read_pair
from sweeper.store.schema import PARAM_PREFIX
from sweeper.store.state import read_state
from sweeper.store.storage import Storage, SweepFolder, is_uri
from sweeper.store.sweeps import sweep_names


@dataclass
class Sweep:
    """One sweep's results folder, its trials, and what its spec.yaml says about them."""

    name: str
    folder: SweepFolder
    trials: pd.DataFrame
    metric: str = "val_accuracy"
    mode: str = "max"
    declared: dict[str, Mode] = field(default_factory=dict)  # the space's own metrics (`metrics:`) and their modes
    modes: dict[str, Mode] = field(default_factory=lambda: {m: mode_of(m) for m in METRICS})  # its metric columns
    references: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> metric -> value
    variants: list[str] = field(default_factory=list)  # in the spec's order
    axes: list[str] = field(default_factory=list)  # the keys the spec searches (grid, choice, ...)
    planned: dict[str | None, int] = field(default_factory=dict)  # trials the spec expands to, per variant
    asha_rungs: list[int] = field(default_factory=list)  # epochs at which ASHA may stop a trial
    note: str | None = None  # why spec.yaml gave nothing
    description: str | None = None  # the search space's own `description`, shown in the header
    cpus: float | None = None  # CPUs (and GPUs) each trial holds (spec.yaml's resources), for its compute
    gpus: float = 0.0
    no_test: str | None = None  # the data source, when it gives no test split (sweep.json's data_sizes)
    own_loop: bool = False  # trials ran your own loop (`trainable:`): it may leave standard metrics out
    key_models: dict[str, set[str]] = field(default_factory=lambda: {k: set(v) for k, v in KEY_MODELS.items()})
    # epochs.parquet's rows of the same generation as `trials` (Arrow until first asked for), or why there are none
    _epochs: pd.DataFrame | pa.Table | str | None = field(default=None, init=False, repr=False, compare=False)

    def epoch_columns(self) -> list[str]:
        """trial_id, epoch, val_accuracy and the declared metrics (the learning curves) and the sweep's metric (the
        ASHA audit)."""
        return list(dict.fromkeys(["trial_id", "epoch", STANDARD_CURVE, self.metric, *self.declared]))

    def epochs(self) -> pd.DataFrame:
        """epochs.parquet's `epoch_columns`, read with the trials (read_sweep) and made a frame on first use and
        kept, so a report converts it once however many outputs draw on it; a missing or unreadable file is a
        SweeperError, each time it is asked for."""
        if self._epochs is None:
            self._epochs = f"{self.folder.uri(EPOCHS_FILE)}: not read"
        if isinstance(self._epochs, pa.Table):
            self._epochs = self._epochs.to_pandas()
        if isinstance(self._epochs, str):
            raise SweeperError(self._epochs)
        return self._epochs


def _results_folder(arg: str) -> SweepFolder | None:
    """A results folder named by path or URI (rather than a sweep name), if `arg` is one."""
    if is_uri(arg) or arg.startswith("file://"):
        parent, _, name = arg.rstrip("/").rpartition("/")
        return Storage.parse(parent).folder(name)
    path = Path(arg).expanduser()
    if path.is_dir() and (path / TRIALS_FILE).is_file():
        return Storage.parse(str(path.absolute().parent)).folder(path.absolute().name)
    return None


def _resolve_one(arg: str, storage: Storage) -> SweepFolder:
    given = _results_folder(arg)
    if given is not None:
        return given
    folder = storage.folder(arg)
    if folder.has(TRIALS_FILE):
        return folder
    if Path(arg).expanduser().is_dir():
        raise SweeperError(f"{arg}: this folder holds no {TRIALS_FILE}, so it is not a sweep's results folder "
                           f"(or its sweep has not written any results yet)")
    known = _names(storage)
    if arg in known:
        raise SweeperError(f"sweep {arg!r}: {folder} holds no {TRIALS_FILE} yet (no trial has reported)")
    hint = did_you_mean(arg, known) or (f"; sweeps there: {', '.join(known[:8])}" if known else "")
    raise SweeperError(f"sweep {arg!r}: no results: not a folder holding {TRIALS_FILE}, nor a sweep under "
                       f"--storage {storage}{hint}")


def _names(storage: Storage) -> list[str]:
    """Sweeps under storage (folders holding sweep.json) and copied results folders (holding trials.parquet)."""
    try:
        sweeps = set(sweep_names(storage))
        return [n for n in storage.subfolders() if n in sweeps or storage.folder(n).has(TRIALS_FILE)]
    except SweeperError:
        return []


def resolve_sweeps(args: list[str], storage: Storage) -> list[tuple[str, SweepFolder]]:
    """(name, folder) per argument; no argument means every folder under storage that has results."""
    if not args:
        found = [storage.folder(n) for n in _names(storage)]
        found = [f for f in found if f.has(TRIALS_FILE)]
        if not found:
            raise SweeperError(f"--storage {storage}: no sweep results there; name a sweep or a results folder")
        return [(f.name, f) for f in found]
    folders = [_resolve_one(a, storage) for a in args]
    names = [f.name for f in folders]
    return [(a if names.count(f.name) > 1 else f.name, f) for a, f in zip(args, folders, strict=True)]


def _attach_spec(sweep: Sweep) -> Space | None:
    """Metric, mode, variant order, ASHA rungs and references from spec.yaml (its space, or None); the report works
    without it."""
    where = sweep.folder.uri(SPEC_FILE)
    try:
        text = sweep.folder.read_text(SPEC_FILE)
        if text is None:
            sweep.note = f"{sweep.name}: no {SPEC_FILE} in {sweep.folder}, so no reference numbers"
            return None
        run_state = read_state(sweep.folder) or {}
        space = load_text(text, Path(where), recorded(run_state.get("models")))
    except SweeperError as exc:
        sweep.note = f"{sweep.name}: {SPEC_FILE} unusable, so no reference numbers ({exc})"
        return None
    spec = space.spec
    sweep.own_loop = space.trainable is not None
    sweep.description = " ".join(spec.description.split()) if spec.description else None
    sweep.metric, sweep.mode = spec.metric, spec.mode or "max"
    sweep.declared = dict(spec.metrics)
    sweep.key_models = space.key_models
    sizes = run_state.get("data_sizes") or {}
    sweep.no_test = space.data_source if sizes.get("test", 1) == 0 else None
    sweep.references = {k: {m: v for m, v in ref.items() if v is not None} for k, ref in space.references.items()}
    sweep.variants = list(space.variants)
    sweep.axes = [a.key for a in space.axes]
    sweep.planned = space.planned_per_variant() or {}
    sweep.cpus, sweep.gpus = spec.resources.cpu, spec.resources.gpu
    if spec.scheduler.type == "asha":
        sweep.asha_rungs = [m for m in asha_milestones(spec.epochs, spec.scheduler.grace_period,
                                                       spec.scheduler.reduction_factor) if m < spec.epochs]
    return space


def _without_unused(trials: pd.DataFrame, space: Space) -> pd.DataFrame:
    """With your own loop (`trainable:`), sweeper's own keys that the loop does not take and no trial has a value
    of are no parameters of the sweep: their (null) columns are left out of the report."""
    if space.trainable is None:
        return trials
    mine = set(space.trainable.keys)
    unused = [c for c in trials.columns if c.startswith(PARAM_PREFIX) and c.removeprefix(PARAM_PREFIX) in PARAM_KEYS
              and c.removeprefix(PARAM_PREFIX) not in mine and trials[c].isna().all()]
    return trials.drop(columns=unused) if unused else trials


def read_sweep(name: str, folder: SweepFolder) -> Sweep:
    """One sweep: spec.yaml first (it names the metric columns of epochs.parquet the report uses), then the pair."""
    sweep = Sweep(name=name, folder=folder, trials=pd.DataFrame())
    space = _attach_spec(sweep)
    pair = read_pair(folder, epoch_columns=sweep.epoch_columns())
    if pair.trials is None:
        raise SweeperError(f"{folder.uri(TRIALS_FILE)}: no such results file")
    sweep.trials = pair.trials.to_pandas()
    if space is not None:
        sweep.trials = _without_unused(sweep.trials, space)
    sweep._epochs = pair.epochs_error or pair.epochs_table
    if sweep._epochs is None:
        sweep._epochs = f"{folder.uri(EPOCHS_FILE)}: no such results file"
    sweep.modes = sweep_modes(sweep.declared, sweep.trials, sweep.own_loop)
    return sweep
