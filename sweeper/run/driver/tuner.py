"""Where Ray Tune's objects are built: the scheduler, the trainable with its data, and a new Tuner with the param
space and search algorithm run/search plans (run/recovery.py restores one from a sweep's folder).

The data is loaded once in the driver and reaches every trial (on any node) through Ray's object store via
`tune.with_parameters`; the trial itself runs run/trial.py's `ray_trainable`.
"""

from __future__ import annotations

from typing import Any

from sweeper.run.driver.recorder import ParquetRecorder
from sweeper.run.search.plans import SearchPlan
from sweeper.run.training.data import Splits
from sweeper.spec.space import Space
from sweeper.store.storage import SweepFolder


def scheduler(space: Space) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = space.spec.scheduler
    if s.type == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(time_attr="epoch", max_t=space.spec.epochs, grace_period=s.grace_period,
                         reduction_factor=s.reduction_factor)


def trainable(space: Space, splits: Splits) -> Any:
    from ray import tune

    from sweeper.run.trial import ray_trainable

    spec = space.spec
    return tune.with_resources(
        tune.with_parameters(ray_trainable, splits=splits, space=space, epochs=spec.epochs, cpus=spec.resources.cpu),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


def new_tuner(space: Space, folder: SweepFolder, splits: Splits, max_failures: int, recorder: ParquetRecorder,
              chosen: SearchPlan) -> Any:
    """A Tuner for a new Ray experiment in `folder` (the sweep's, or an extension's inside it); `chosen`: how
    trials are chosen (run/search's plans; a searcher under run/recovery.py's SweepGenerator)."""
    from ray import tune

    from sweeper.run.driver.loggers import file_loggers

    spec = space.spec
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
            callbacks=[recorder, *file_loggers()],  # loggers.py: Ray adds no TensorBoard logger
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),  # see recovery.repair_checkpoints
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )
