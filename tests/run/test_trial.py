"""What Ray runs for a trial (run/trial.py): its torch thread count follows its CPUs, on the in-process Ray of
the `ray_session` fixture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from sweeper.spec.loader import load_text
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures


def test_thread_setup_rounds_a_trials_cpus_up() -> None:
    import torch

    from sweeper.spec.cost import threads

    assert [threads(c) for c in (0.25, 0.5, 1, 1.5, 2, 3)] == [1, 1, 1, 2, 2, 3]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads(1.5))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("cpu", "threads"), [(1, 1), (1.5, 2), (2, 2)])
def test_a_real_trial_trains_with_its_cpus_rounded_up_as_torch_threads(
    cpu: float, threads: int, tmp_path: Path, real_data: Path, ray_session: Any
) -> None:
    """sweeper's trainable (ray_trainable, unchanged) runs as a Ray Tune trial holding `cpu` CPUs; afterwards
    the trial's process reports the torch thread count it trained with. 1.5 CPUs: Ray alone would give one
    OpenMP thread (it floors), sweeper's setup gives two."""
    from ray import tune

    from sweeper.run.search.plans import grid_plan
    from sweeper.run.training import data
    from sweeper.run.trial import ray_trainable

    space = load_text(
        "epochs: 1\nscheduler: {type: fifo}\ndata: {train_subset: 300, val_subset: 100, test_subset: 100}\n"
        f"resources: {{cpu: {cpu}}}\nparameters: {{model: mlp, hidden: [16]}}\n", tmp_path / "threads.yaml")
    splits = data.load(real_data, space.spec.data)

    def observed(config: dict[str, Any], **kwargs: Any) -> None:
        import os

        import torch

        ray_trainable(config, **kwargs)  # trains and reports its epoch as in any sweep
        tune.report({"torch_threads": torch.get_num_threads(), "omp": os.environ.get("OMP_NUM_THREADS")})

    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(observed, splits=splits, space=space, epochs=space.spec.epochs,
                                                 cpus=space.spec.resources.cpu), {"cpu": cpu}),
        param_space=grid_plan(space).param_space,
        tune_config=tune.TuneConfig(reuse_actors=False),
        run_config=tune.RunConfig(name="threads", storage_path=str(tmp_path / "runs"), verbose=0),
    )
    result = tuner.fit()[0]
    assert result.error is None, result.error
    history = result.metrics_dataframe
    assert history["epoch"].dropna().tolist() == [1.0]  # it really trained an epoch
    assert result.metrics["torch_threads"] == threads
    ray_default = os.environ.get("OMP_NUM_THREADS") or str(max(1, int(cpu)))  # Ray's own: the floor, if unset
    assert result.metrics["omp"] == ray_default
