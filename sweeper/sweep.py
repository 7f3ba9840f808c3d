"""The only place that builds schedulers, TuneConfig, RunConfig and the Tuner; launch and resume a sweep.

Local by default: Ray starts in-process with the dashboard off. `address` joins an existing cluster
(`auto`, `HOST:PORT` or `ray://HOST:10001`). The data is loaded once in the driver and reaches every
trial (on any node) through Ray's object store via `tune.with_parameters`.

A sweep folder `<storage>/<name>/` holds Ray's experiment state, spec.yaml, sweep.json (state.py), the
lock while a process runs it, and the two Parquet files.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sweeper import cluster, preflight, raylog, spaces, state
from sweeper import data as data_mod
from sweeper.errors import SweeperError
from sweeper.results import is_uri, read_text, read_trials, write_text
from sweeper.spaces import Space

SPEC_FILE = state.SPEC_FILE
Errored = Literal["resume", "restart", "leave"]


@dataclass
class Outcome:
    folder: str
    name: str
    trials: int
    errors: int
    stopped: int
    unfinished: int
    best: dict[str, Any] | None

    @property
    def interrupted(self) -> bool:
        return self.unfinished > 0


def sweep_folder(storage: str, name: str) -> str:
    if is_uri(storage):
        return f"{storage.rstrip('/')}/{name}"
    return str(Path(storage).expanduser().resolve() / name)


def _storage_path(storage: str) -> str:
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


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


def _scheduler(space: Space) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = space.spec.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="epoch", max_t=space.spec.epochs, grace_period=s.grace_period,
                         reduction_factor=s.reduction_factor)


def _init_ray(address: str | None, verbose: bool = False) -> None:
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "INFO" if verbose else "WARNING",
                              "log_to_driver": verbose}
    if address:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise SweeperError(f"--address {address}: cannot connect to Ray: {str(exc).splitlines()[0]}") from None


def _trainable(space: Space, splits: data_mod.Splits) -> Any:
    from ray import tune

    from sweeper.trainable import ray_trainable

    spec = space.spec
    return tune.with_resources(
        tune.with_parameters(ray_trainable, splits=splits, space=space, epochs=spec.epochs, cpus=spec.resources.cpu),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


def _new_tuner(space: Space, folder: str, storage: str, name: str, splits: data_mod.Splits, max_failures: int,
               echo: Callable[[str], Any] | None) -> Any:
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from sweeper.recorder import ParquetRecorder

    spec = space.spec
    return tune.Tuner(
        _trainable(space, splits),
        param_space=param_space(space),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, scheduler=_scheduler(space), num_samples=spec.num_samples,
            search_alg=BasicVariantGenerator(random_state=spec.seed, max_concurrent=spec.max_concurrent or 0),
            reuse_actors=True,  # a new trial reuses a finished trial's process: no fresh torch import per trial
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=_storage_path(storage),
            callbacks=[ParquetRecorder(folder, space, spec.scheduler.type == "asha", echo)],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )


@contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """Ray Tune stops gracefully (saving state) on SIGINT; make SIGTERM do the same."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _summarise(folder: str, name: str, space: Space) -> Outcome:
    trials = read_trials(folder)
    done = trials.state.isin(["TERMINATED", "ERROR"])
    finished = trials[trials.state == "TERMINATED"]
    best = None
    if len(finished) and finished[space.spec.metric].notna().any():
        col = finished[space.spec.metric]
        row = finished.loc[col.idxmax() if space.spec.mode == "max" else col.idxmin()]
        best = {"trial_id": row.trial_id, "variant": row.variant, space.spec.metric: float(row[space.spec.metric])}
    return Outcome(
        folder=folder, name=name, trials=len(trials), errors=int((trials.state == "ERROR").sum()),
        stopped=int((trials.stopped_by == "asha").sum()), unfinished=int((~done).sum()) + _missing(space, trials),
        best=best,
    )


def _missing(space: Space, trials: Any) -> int:
    """Trials the sweep will run that have not started yet (an interrupt can leave some unborn)."""
    return max(space.num_trials - len(trials), 0)


def _run(tuner: Any, folder: str, run_state: dict[str, Any], command: str, name: str, space: Space,
         progress: Any = None) -> Outcome:
    from sweeper.recorder import reporting_to  # feeds the live view (live.py), closes it at the end

    state.start_session(run_state, command)
    state.write_state(folder, run_state)
    outcome_word = "failed"
    try:
        with _sigterm_as_sigint(), reporting_to(progress):
            tuner.fit()
        outcome = _summarise(folder, name, space)
        outcome_word = "interrupted" if outcome.interrupted else "finished"
        return outcome
    finally:
        state.end_session(run_state, outcome_word)
        state.write_state(folder, run_state)


def _existing(folder: str) -> bool:
    if is_uri(folder):
        return read_text(f"{folder}/{state.STATE_FILE}") is not None
    return Path(folder).exists() and any(Path(folder).iterdir())


def launch(
    space: Space, storage: str, name: str | None = None, address: str | None = None, data_dir: str | None = None,
    if_exists: Literal["refuse", "resume", "overwrite"] = "refuse", max_failures: int = 0,
    echo: Callable[[str], Any] | None = print, progress: Any = None, verbose: bool = False,
) -> Outcome:
    """Run the sweep to its end (or an interrupt) in `<storage>/<name>/`. `progress`: a live.LiveView;
    `verbose`: let Ray's own output through rather than into the sweep's ray.log."""
    name = name or space.name
    folder = sweep_folder(storage, name)
    if _existing(folder) and if_exists == "resume":
        return resume(name, storage, address=address, data_dir=data_dir, space=space, echo=echo,
                      progress=progress, verbose=verbose)
    if _existing(folder) and if_exists == "refuse":
        old = state.read_state(folder)
        how = "is unfinished" if old and old.get("state") != "finished" else "already exists"
        raise SweeperError(
            f"{folder}: sweep {name!r} {how}; continue it with `sweeper resume {name} --storage {storage}`, "
            f"or pass --resume or --overwrite to launch"
        )
    preflight.check(space, storage, address)  # writable storage, resources this machine has
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    splits = data_mod.load(data_dir, space.spec.data)  # before anything is written: a bad folder starts nothing
    cluster.join(address, storage, lambda a: _init_ray(a, verbose))  # a cluster: all nodes must see storage
    with state.locked(folder, name), raylog.ray_output(folder, verbose):
        if if_exists == "overwrite" and _existing(folder) and not is_uri(folder):
            for child in Path(folder).iterdir():
                if child.name != state.LOCK_FILE:
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        _init_ray(address, verbose)
        write_text(f"{folder}/{SPEC_FILE}", space.text)
        run_state = state.new_state(space, data_dir)
        tuner = _new_tuner(space, folder, storage, name, splits, max_failures, echo)
        return _run(tuner, folder, run_state, "launch", name, space, progress)


def load_sweep(name: str, storage: str) -> tuple[str, dict[str, Any], Space]:
    """An existing sweep's folder, sweep.json and search space (from its spec.yaml)."""
    folder = sweep_folder(storage, name)
    run_state = state.read_state(folder)
    spec_text = read_text(f"{folder}/{SPEC_FILE}")
    if run_state is None or spec_text is None:
        raise SweeperError(f"{folder}: no sweep named {name!r} in {storage} (no {state.STATE_FILE} / {SPEC_FILE})")
    original = Path(run_state.get("space_file") or f"{name}.yaml")
    return folder, run_state, spaces.load_text(spec_text, original)


def resume(
    name: str, storage: str, address: str | None = None, data_dir: str | None = None, space: Space | None = None,
    errored: Errored = "leave", echo: Callable[[str], Any] | None = print, progress: Any = None,
    verbose: bool = False,
) -> Outcome:
    """Continue an interrupted sweep from Ray's experiment state; unfinished trials restart from their
    last epoch checkpoint. `space`, if given, must not change what the trials are."""
    folder, run_state, stored = load_sweep(name, storage)
    if space is not None:
        changed = state.trial_changes(run_state["fingerprint"], state.fingerprint(space))
        if changed:
            raise SweeperError(
                f"{space.path}: differs from the search space sweep {name!r} was launched with in "
                f"{', '.join(changed)}; that would change its trials: launch it under another --name, or --overwrite"
            )
    preflight.check(stored, storage, address)
    data_dir = data_dir or run_state.get("data_dir")
    splits = data_mod.load(data_dir, stored.spec.data)
    cluster.join(address, storage, lambda a: _init_ray(a, verbose))
    with state.locked(folder, name), raylog.ray_output(folder, verbose):
        if space is not None and space.text != stored.text:
            # Only keys that leave the trials alone changed (resources, max_concurrent, description): record them.
            write_text(f"{folder}/{SPEC_FILE}", space.text)
            run_state["fingerprint"] = state.fingerprint(space)
        _init_ray(address, verbose)
        from ray import tune

        tuner = tune.Tuner.restore(
            folder, trainable=_trainable(stored, splits), resume_unfinished=True,
            resume_errored=errored == "resume", restart_errored=errored == "restart",
        )
        return _run(tuner, folder, run_state, f"resume --errored {errored}", name, stored, progress)
