"""How trials are chosen (run/search/plans.py): grid search over conditional points and TPE that never
draws an inactive key, on a real local Ray with tiny data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ray.tune.search.optuna import OptunaSearch

from tests.run.searching import TINY, launch


def test_grid_runs_a_conditional_axis_only_where_it_applies(tmp_path: Path, real_data: Path, ray_session: Any) -> None:
    folder = launch(tmp_path, "cond", "epochs: 1\nscheduler: {type: fifo}\n" + TINY +
                    "parameters: {model: {grid: [logreg, mlp]}, hidden: {grid: [[8], [16]]}, "
                    "optimizer: {grid: [sgd, adam]}, momentum: {grid: [0.0, 0.9], when: {optimizer: sgd}}}\n",
                    real_data)
    trials = pd.read_parquet(folder / "trials.parquet")
    # logreg: 3 optimizer settings (sgd x 2 momenta + adam); mlp: 2 hidden x 3 = 6. The full product would be 16.
    assert len(trials) == 9 and set(trials.state) == {"TERMINATED"}
    assert trials.groupby("param_model").size().to_dict() == {"logreg": 3, "mlp": 6}
    assert trials[trials.param_model == "logreg"].param_hidden.isna().all()
    assert trials[trials.param_optimizer == "adam"].param_momentum.isna().all()
    assert trials[trials.param_optimizer == "sgd"].param_momentum.notna().all()
    configs = trials.drop(columns=[c for c in trials if not c.startswith("param_")]).astype(str)
    assert not configs.duplicated().any()  # every configuration once
    assert trials.config_id.is_unique


def test_tpe_never_draws_an_inactive_key(tpe_sweep: Path) -> None:
    trials = pd.read_parquet(tpe_sweep / "trials.parquet")
    assert len(trials) == 6 and trials.trial_id.is_unique and set(trials.state) == {"TERMINATED"}
    adam, sgd = trials[trials.param_optimizer == "adam"], trials[trials.param_optimizer == "sgd"]
    assert adam.param_momentum.isna().all() and sgd.param_momentum.notna().all()
    assert trials[trials.variant == "lin"].param_hidden.isna().all()
    assert trials.variant.iloc[:2].tolist() == ["lin", "small"]  # each variant is one of TPE's first points
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(tpe_sweep))
    study = searcher._ot_study.trials
    assert len(study) == 6
    for t in study:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd"), t.params
    by_lr = {round(t.params["lr"], 12): t.value for t in study}
    for row in trials.itertuples():
        assert by_lr[round(row.param_lr, 12)] == pytest.approx(row.val_accuracy)


def test_a_grid_sweeps_generator_is_a_sweep_variants_from_its_launch_so_a_resume_unpickles_one() -> None:
    """Every grid sweep runs under SweepVariants (a slot only for the trials Ray restored, run/search/variants.py):
    the Tuner's pickle names it, so a resume needs no class swap; its first home's name still finds it."""
    import pickle

    from sweeper.run.recovery import SweepVariants as first_home
    from sweeper.run.search.plans import grid_plan
    from sweeper.run.search.variants import SweepVariants
    from sweeper.spec.loader import load_text

    space = load_text("epochs: 1\nmax_concurrent: 2\nparameters: {model: logreg, lr: {grid: [0.1, 0.2]}}\n",
                      Path("s.yaml"))
    generator = grid_plan(space).search_alg
    assert type(generator) is SweepVariants and generator.max_concurrent == 2
    assert type(pickle.loads(pickle.dumps(generator))) is SweepVariants
    assert first_home is SweepVariants
