"""Where Ray Tune's objects are built: the scheduler, the trainable with its data, and the Tuner (a new one, or one
restored from a sweep's folder), with the param space and search algorithm search.py plans. Ray starts here too.

Ray starts (in-process, dashboard off, or joining a cluster) in run/startup.py. `address` joins an existing cluster
(`auto`, `HOST:PORT` or `ray://HOST:10001`). The data is loaded once in the driver and reaches every
trial (on any node) through Ray's object store via `tune.with_parameters`.
"""

from __future__ import annotations

import posixpath
from typing import Any

from sweeper.errors import SweeperError
from sweeper.run.data import Splits
from sweeper.run.generator import generator
from sweeper.run.recorder import ParquetRecorder
from sweeper.run.search import SearchPlan
from sweeper.run.search import plan as search_plan
from sweeper.run.searcher import searcher_of
from sweeper.spec.space import Space
from sweeper.store.storage import SweepFolder


def param_space(space: Space) -> dict[str, Any]:
    """Ray Tune's param_space for a validated search space."""
    from ray import tune

    out: dict[str, Any] = dict(space.literals)
    if space.variants:
        out["variant"] = tune.grid_search(list(space.variants))
    for axis in space.axes:
        values = axis.values
        if axis.kind == "grid":
            out[axis.key] = tune.grid_search(values)
        elif axis.kind == "choice":
            out[axis.key] = tune.choice(values)
        elif axis.kind == "uniform":
            out[axis.key] = tune.uniform(*values)
        elif axis.kind == "loguniform":
            out[axis.key] = tune.loguniform(*values)
        else:
            out[axis.key] = tune.randint(values[0], values[1] + 1)  # YAML bounds are inclusive
    return out


def scheduler(space: Space) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = space.spec.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="epoch", max_t=space.spec.epochs, grace_period=s.grace_period,
                         reduction_factor=s.reduction_factor)


def trainable(space: Space, splits: Splits) -> Any:
    from ray import tune

    from sweeper.run.remote import ray_trainable

    spec = space.spec
    return tune.with_resources(
        tune.with_parameters(ray_trainable, splits=splits, space=space, epochs=spec.epochs, cpus=spec.resources.cpu),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


def new_tuner(space: Space, folder: SweepFolder, splits: Splits, max_failures: int, recorder: ParquetRecorder,
              plan: SearchPlan | None = None) -> Any:
    """A Tuner for a new Ray experiment in `folder` (the sweep's, or an extension's inside it); `plan`: how trials
    are chosen (default: search.plan, the whole space)."""
    from ray import tune

    spec = space.spec
    chosen = plan or search_plan(space, folder)
    return tune.Tuner(
        trainable(space, splits),
        param_space=chosen.param_space,
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, scheduler=scheduler(space), num_samples=chosen.num_samples,
            search_alg=chosen.search_alg,
            reuse_actors=True,  # a new trial reuses a finished trial's process: no fresh torch import per trial
        ),
        run_config=tune.RunConfig(
            name=folder.name, storage_path=folder.storage.location,
            callbacks=[recorder],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # see repair_checkpoints
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )


CHECKPOINT_PREFIX = "checkpoint_"  # Ray's checkpoint folders in a trial's folder: checkpoint_000000, ...


def repair_checkpoints(folder: SweepFolder) -> list[str]:
    """Put back the checkpoint that Ray's saved experiment state names, where a killed driver left it deleted.

    Ray keeps one checkpoint per trial (num_to_keep=1): it deletes the previous one the moment the next is
    registered, and writes the experiment state that names the new one only afterwards (at the end of that
    step, uploaded in the background). A driver killed in between leaves a state naming a deleted checkpoint,
    and resuming would fail that trial ("Could not recover from checkpoint as it does not exist on storage
    anymore"). The checkpoint Ray registered next is still there, complete (a trial's checkpoint is registered
    only once uploaded): it is copied under the missing name, so the trial goes on from that later epoch (the
    checkpoint holds its own epoch count). Returns the checkpoints put back, as `trial folder/checkpoint`."""
    import pyarrow.fs as pafs
    from ray.tune import ExperimentAnalysis

    fs, base = folder.fs_path()
    try:
        trials = ExperimentAnalysis(base, storage_filesystem=fs).trials
    except Exception:  # noqa: BLE001 - no readable experiment state: Tuner.restore says so in its own words
        return []
    repaired = []
    for trial in trials:
        checkpoint = trial.checkpoint
        if checkpoint is None or fs.get_file_info(checkpoint.path).type == pafs.FileType.Directory:
            continue
        trial_dir, missing = posixpath.split(checkpoint.path.rstrip("/"))
        if not missing.startswith(CHECKPOINT_PREFIX):
            continue
        later = sorted(e.base_name for e in fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
                       if e.type == pafs.FileType.Directory and e.base_name.startswith(CHECKPOINT_PREFIX)
                       and e.base_name > missing)
        if later:  # the one registered next (any later ones were never registered: maybe cut short)
            fs.create_dir(checkpoint.path, recursive=True)  # local filesystems copy into existing folders only
            pafs.copy_files(posixpath.join(trial_dir, later[0]), checkpoint.path, source_filesystem=fs,
                            destination_filesystem=fs)
            repaired.append(f"{posixpath.basename(trial_dir)}/{missing}")
    return repaired


def restore_tuner(folder: SweepFolder, space: Space, splits: Splits, errored: str, recorder: ParquetRecorder) -> Any:
    """The Tuner of an interrupted sweep, from Ray's experiment state in its folder, recording into `recorder`.

    Ray brings the run config back from its pickle, callbacks included; the recorder found there is replaced
    by this process's, which knows where to report progress."""
    from ray import tune

    repair_checkpoints(folder)
    tuner = tune.Tuner.restore(
        folder.location, trainable=trainable(space, splits), resume_unfinished=True,
        resume_errored=errored == "resume", restart_errored=errored == "restart",
    )
    internal = tuner._local_tuner  # Ray has no public way to re-specify callbacks on restore
    if internal is None:  # pragma: no cover - only with Ray Client, which restores on the server
        raise SweeperError("resuming a sweep through Ray Client (ray://) is not supported; use --address HOST:PORT")
    run_config = internal.get_run_config()
    run_config.callbacks = [c for c in run_config.callbacks or [] if not isinstance(c, ParquetRecorder)] + [recorder]
    searcher = searcher_of(internal._tune_config.search_alg)
    if searcher is not None:  # it reads trials.parquet where this process finds it (see SweepSearch.restore)
        searcher.folder = recorder.folder
        # a sweep launched before SweepGenerator: Ray would wrap its searcher in a plain SearchGenerator
        internal._tune_config.search_alg = generator(internal._tune_config.search_alg)  # type: ignore[arg-type]
    return tuner
