"""The only place that builds schedulers, TuneConfig, RunConfig and the Tuner; launch runs a sweep.

Local by default: Ray starts in-process with the dashboard off. `address` joins an existing cluster
(`auto`, `HOST:PORT` or `ray://HOST:10001`). The data is loaded once in the driver and reaches every
trial (on any node) through Ray's object store via `tune.with_parameters`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper import data as data_mod
from sweeper.errors import SweeperError
from sweeper.results import ResultsWriter
from sweeper.spaces import Space

SPEC_FILE = "spec.yaml"


@dataclass
class Outcome:
    folder: str
    trials: int
    errors: int
    stopped: int
    best: dict[str, Any] | None


def sweep_folder(storage: str, name: str) -> str:
    if "://" in storage:
        return f"{storage.rstrip('/')}/{name}"
    return str(Path(storage).expanduser().resolve() / name)


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


def _line(trial: Any, row: dict[str, Any], metric: str) -> str:
    value = row.get(metric)
    shown = f"{metric}={value:.4f}" if isinstance(value, float) else f"{metric}=-"
    how = row.get("stopped_by") or row.get("error") or "completed"
    return f"trial {trial.trial_id} {row.get('variant') or ''} {row['state']} after {row.get('epochs', 0)} epochs, " \
        f"{shown} ({how})".replace("  ", " ")


def _error_message(trial: Any) -> str:
    """The last line of the trial's error (e.g. "FloatingPointError: train loss is nan at epoch 1")."""
    path = trial.error_file  # written locally before callbacks run; storage gets it later
    text = Path(path).read_text() if path and Path(path).is_file() else str(trial.get_error() or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "trial failed"


def _callback(space: Space, writer: ResultsWriter, asha: bool, echo: Any) -> Any:
    from ray import tune

    class ParquetCallback(tune.Callback):
        """Feeds every reported epoch and every trial's end into the Parquet writer."""

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            params = space.trial_params(trial.config)
            dumped = params.model_dump() | {"lr": params.learning_rate}
            writer.set_params(trial.trial_id, trial.config.get("variant"), dumped)
            writer.trial(trial.trial_id, state="RUNNING")

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            writer.add_result(trial.trial_id, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            row = writer.trial(trial.trial_id, state="TERMINATED")
            finished = bool((trial.last_result or {}).get("finished"))
            if not finished and asha:
                writer.trial(trial.trial_id, stopped_by="asha")
            elif not finished:
                writer.trial(trial.trial_id, stopped_by="stopped")
            del row
            writer.flush()
            echo(_line(trial, writer.trials[trial.trial_id], space.spec.metric))

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            message = _error_message(trial)
            writer.trial(trial.trial_id, state="ERROR", error=message[:2000])
            writer.flush()
            echo(_line(trial, writer.trials[trial.trial_id], space.spec.metric))

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            for trial in trials:
                row = writer.trials.get(trial.trial_id)
                if row is None or row["state"] in ("RUNNING", "PENDING"):
                    writer.trial(trial.trial_id, state=str(trial.status))
            writer.flush()

    return ParquetCallback()


def _init_ray(address: str | None, num_cpus: int | None = None) -> None:
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": True,
                              "logging_level": "WARNING", "log_to_driver": False}
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = num_cpus
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise SweeperError(f"--address {address}: cannot connect to Ray: {str(exc).splitlines()[0]}") from None


def _write_spec(folder: str, space: Space) -> None:
    if "://" in folder:
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(f"{folder}/{SPEC_FILE}")
        with fs.open_output_stream(path) as out:
            out.write(space.text.encode())
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(folder) / f".{SPEC_FILE}.tmp"
    tmp.write_text(space.text)
    os.replace(tmp, Path(folder) / SPEC_FILE)


def launch(
    space: Space, storage: str, name: str | None = None, address: str | None = None,
    data_dir: str | None = None, verbose: int = 0, echo: Any = print,
) -> Outcome:
    """Run the sweep to the end; Ray's experiment state, spec.yaml and the two Parquet files land in
    `<storage>/<name>/`."""
    name = name or space.name
    splits = data_mod.load(data_dir, space.spec.data)  # before Ray: a bad data folder starts nothing
    folder = sweep_folder(storage, name)
    _init_ray(address)
    from ray import tune

    spec = space.spec
    _write_spec(folder, space)
    writer = ResultsWriter(folder)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trainable(), splits=splits, space=space, epochs=spec.epochs, cpus=spec.resources.cpu
        ),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )
    from ray.tune.search import BasicVariantGenerator

    tuner = tune.Tuner(
        trainable,
        param_space=param_space(space),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, scheduler=_scheduler(space), num_samples=spec.num_samples,
            search_alg=BasicVariantGenerator(random_state=spec.seed, max_concurrent=spec.max_concurrent or 0),
        ),
        run_config=tune.RunConfig(
            name=name, storage_path=storage if "://" in storage else str(Path(storage).expanduser().resolve()),
            callbacks=[_callback(space, writer, spec.scheduler.type == "asha", echo)],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=verbose,
        ),
    )
    grid = tuner.fit()
    writer.flush()
    errors = sum(1 for r in grid if r.error is not None)
    stopped = sum(1 for row in writer.trials.values() if row.get("stopped_by") == "asha")
    best = None
    try:
        best_result = grid.get_best_result(metric=spec.metric, mode=spec.mode, scope="last")
        best = {"config": best_result.config, **{k: best_result.metrics.get(k) for k in (spec.metric,)}}
    except RuntimeError:
        pass
    return Outcome(folder=folder, trials=len(grid), errors=errors, stopped=stopped, best=best)


def _trainable() -> Any:
    from sweeper.trainable import ray_trainable

    return ray_trainable
