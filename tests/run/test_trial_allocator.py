"""A trial's process keeps its freed memory (issue 27): ray_trainable sets glibc's malloc thresholds in the process
Ray runs the trial in, before the trial's data is allocated; what was set is observable there."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from sweeper.spec.loader import load_text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_real_trial_runs_with_the_allocator_settings(tmp_path: Path, real_data: Path, ray_session: Any) -> None:
    from ray import tune

    from sweeper.run.search.plans import grid_plan
    from sweeper.run.training import data
    from sweeper.run.training.loop import ALLOCATOR_SETTINGS
    from sweeper.run.trial import ray_trainable

    space = load_text(
        "epochs: 1\nscheduler: {type: fifo}\ndata: {train_subset: 300, val_subset: 100, test_subset: 100}\n"
        "resources: {cpu: 1}\nparameters: {model: cnn, filters: 4}\n", tmp_path / "allocator.yaml")
    splits = data.load(real_data, space.spec.data)

    def observed(config: dict[str, Any], **kwargs: Any) -> None:
        import os

        from sweeper.run.training.loop import allocator_settings

        ray_trainable(config, **kwargs)
        tune.report({"allocator": allocator_settings(), "pid": os.getpid()})

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(observed, splits=splits, space=space, epochs=space.spec.epochs,
                                                 cpus=space.spec.resources.cpu), {"cpu": 1}),
        param_space=grid_plan(space).param_space,
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(name="allocator", storage_path=str(tmp_path / "runs"), verbose=0),
    )
    result = tuner.fit()[0]
    assert result.error is None, result.error
    assert result.metrics_dataframe["epoch"].dropna().tolist() == [1.0]
    import os

    assert result.metrics["pid"] != os.getpid()  # Ray's trial process, not this one
    assert result.metrics["allocator"] == {name: value for name, (_, value) in ALLOCATOR_SETTINGS.items()}
