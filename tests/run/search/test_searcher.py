"""The TPE searcher on its own (run/search/searcher.py): replicates share a configuration, and trials.parquet
rows become its history; real Optuna, real Parquet, no trial runs."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from ray.tune.search import Searcher

from sweeper.run.search.plans import sampler
from sweeper.run.search.searcher import SweepSearch, history
from sweeper.spec.loader import load_text
from tests.run.searching import TPE, folder_with, row, tpe_space


def test_replicates_share_a_configuration_and_tell_its_mean(tmp_path: Path) -> None:
    space = load_text(TPE.replace("NUM", "2") + "repeats: 3\n", Path("rep.yaml"))
    search = SweepSearch(space, sampler(space), space.num_trials, folder_with(tmp_path, []))
    suggested = [search.suggest(f"t{i}") for i in range(6)]
    assert search.suggest("t6") == Searcher.FINISHED
    assert [s["seed"] for s in suggested] == [0, 1, 2, 0, 1, 2]
    strip = [{k: v for k, v in s.items() if k != "seed"} for s in suggested]
    assert strip[0] == strip[1] == strip[2] and strip[3] == strip[4] == strip[5]
    for i, value in enumerate((0.5, 0.6, 0.7)):
        search.on_trial_result(f"t{i}", {"val_accuracy": value, "training_iteration": 1})
        search.on_trial_complete(f"t{i}", {"val_accuracy": value, "training_iteration": 2})
    told = [t for t in search.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 1 and told[0].value == pytest.approx(0.6)


def test_history_maps_rows_onto_this_space_and_notes_the_rest(tmp_path: Path) -> None:
    space = tpe_space()
    rows = [row(space, "a", {"variant": "lin", "optimizer": "sgd", "lr": 0.01, "momentum": 0.9}, value=0.8),
            row(space, "b", {"variant": "small", "optimizer": "adam", "lr": 0.05}, state="ERROR", value=None),
            row(space, "c", {"variant": "lin", "optimizer": "adam", "lr": 0.01}) | {"param_lr": 0.5},
            row(space, "d", {"variant": "lin", "optimizer": "adam", "lr": 0.02}) | {"variant": "huge"},
            row(space, "e", {"variant": "lin", "optimizer": "adam", "lr": 0.01}, state="RUNNING")]
    trials, notes = history(space, rows)
    assert [t.user_attrs["trial_ids"] for t in trials] == [["a"], ["b"]]
    assert trials[0].params == {"variant": "lin", "optimizer": "sgd", "lr": 0.01, "momentum": 0.9}
    assert trials[1].state == optuna.trial.TrialState.FAIL
    assert notes == ["trial c: lr=0.5 is outside loguniform(0.001, 0.1)",
                     "trial d: variant 'huge' is not in this space"]


def test_tpe_draws_a_user_models_keys_only_for_its_trials(tmp_path: Path) -> None:
    from sweeper.spec.usermodels import recorded

    widenet = {"widenet": {"ref": "p.nets:widenet", "keys": {"width": 32}, "whole": ["width"]}}
    text = ("search: {type: tpe, startup_trials: 4}\nnum_samples: 12\nmodels: {widenet: p.nets:widenet}\n"
            "parameters: {model: {choice: [mlp, widenet]}, width: {randint: [4, 64]}, hidden: {choice: [[8], [16]]}}\n")
    space = load_text(text, Path("user.yaml"), recorded(widenet))
    search = SweepSearch(space, sampler(space), space.num_trials, folder_with(tmp_path, []))
    configs = []
    for i in range(12):
        config = search.suggest(f"t{i}")
        configs.append(config)
        params = space.trial_params(config)
        search.on_trial_complete(f"t{i}", {"val_accuracy": 0.5 + 0.01 * params.recorded()["width"] / 64
                                           if params.model == "widenet" else 0.4, "training_iteration": 1})
    assert {c["model"] for c in configs} == {"mlp", "widenet"}
    for config in configs:
        assert ("width" in config) == (config["model"] == "widenet"), config  # never drawn where off
        assert ("hidden" in config) == (config["model"] == "mlp"), config
        recorded_row = space.trial_params(config).recorded()
        assert (recorded_row["width"] is None) == (config["model"] == "mlp")


def test_a_first_replicate_the_snapshot_saw_end_is_not_told_again_from_trials_parquet(tmp_path: Path) -> None:
    """The first replicate's id also names its configuration's Optuna trial. Restored from a snapshot taken after
    it ended, the searcher meets it again in trials.parquet (run/recovery.py's adopt_recorded): telling it then
    completed the configuration early, and its last replicate's end failed the trial with Optuna's "Cannot tell a
    COMPLETE trial" (seen in the chaos soak)."""
    space = load_text(TPE.replace("NUM", "1") + "repeats: 2\n", Path("rep.yaml"))
    search = SweepSearch(space, sampler(space), space.num_trials, folder_with(tmp_path, []))
    first, second = search.suggest("a"), search.suggest("b")
    search.on_trial_complete("a", {"val_accuracy": 0.5})  # before the snapshot
    search.tell_recorded(row(space, "a", first, value=0.5))  # adopt_recorded, on restore
    assert search.waiting() == {"b"}
    assert not [t for t in search.study.trials if t.state.is_finished()]  # still waits for "b"
    search.on_trial_complete("b", {"val_accuracy": 0.7})
    told = [t for t in search.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 1 and told[0].value == pytest.approx(0.6)
    assert second["seed"] != first["seed"]
