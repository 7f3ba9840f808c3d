"""How trials are chosen (run/search.py): grid search over conditional points and TPE that never draws an inactive
key, on a real local Ray with tiny data; and the TPE searcher's budget, replicates, history and adoption of
trials a stale snapshot missed, with real Optuna and real Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.run.extend import reconcile
from sweeper.run.search import sampler
from sweeper.run.searcher import SweepSearch, history
from sweeper.spec.loader import load_text
from sweeper.spec.space import Space
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import read_rows, write_rows
from sweeper.store.schema import TRIAL_SCHEMA, param_columns
from sweeper.store.storage import Storage, SweepFolder

runner = CliRunner()
TINY = "data: {train_subset: 300, val_subset: 200, test_subset: 200}\n"
TPE = """
epochs: 2
scheduler: {type: fifo}
search: {type: tpe, startup_trials: 3}
num_samples: NUM
seed: 3
variants: [{name: lin, model: logreg}, {name: small, model: mlp, hidden: [16]}]
parameters:
  optimizer: {choice: [sgd, adam]}
  lr: {loguniform: [1.0e-3, 1.0e-1]}
  momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}
"""


def tpe_space(num: int = 6, name: str = "tpe") -> Space:
    return load_text(TPE.replace("NUM", str(num)) + TINY, Path(f"{name}.yaml"))


def launch(tmp: Path, name: str, text: str, data: Path) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["launch", str(path), "--storage", str(tmp / "runs"), "--data-dir", str(data), "-q"])
    assert result.exit_code == 0, result.output
    return tmp / "runs" / name


@pytest.fixture(scope="module")
def tpe_sweep(tmp_path_factory: pytest.TempPathFactory, real_data: Path, ray_session: Any) -> Path:
    tmp = tmp_path_factory.mktemp("tpe")
    return launch(tmp, "tpe", TPE.replace("NUM", "6") + TINY, real_data)


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


def test_reconcile_drops_unfinished_rows_ray_never_saw(tpe_sweep: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "runs" / "tpe"
    shutil.copytree(tpe_sweep, copy)
    folder = Storage.parse(str(tmp_path / "runs")).folder("tpe")
    rows = read_rows(folder, TRIALS_FILE)
    ghost = {"trial_id": "deadbeef", "state": "RUNNING", "epochs": 1, "variant": "lin"}
    write_rows(folder, TRIALS_FILE, [*rows, ghost], TRIAL_SCHEMA)
    (copy / "ray_trainable_deadbeef_7_x").mkdir()
    (copy / "ray_trainable_deadbeef_7_x" / "result.json").write_text(json.dumps({"trial_id": "deadbeef"}))
    assert reconcile(folder, folder) == ([], ["deadbeef"])
    after = pd.read_parquet(copy / "trials.parquet")
    assert "deadbeef" not in set(after.trial_id) and len(after) == 6
    assert not (copy / "ray_trainable_deadbeef_7_x").exists()


# -- the searcher on its own (real Optuna, real Parquet; no trial runs) ----------------------------------------


def row(space: Space, trial_id: str, config: dict[str, Any], state: str = "TERMINATED", value: float | None = 0.5,
        **extra: Any) -> dict[str, Any]:
    params = space.trial_params(config)
    return {"trial_id": trial_id, "variant": config.get("variant"), "state": state, "epochs": 2,
            "val_accuracy": value, "config_id": params.config_id(), **param_columns(params.recorded()), **extra}


def folder_with(tmp_path: Path, rows: list[dict[str, Any]]) -> SweepFolder:
    folder = Storage.parse(str(tmp_path)).folder("s")
    write_rows(folder, TRIALS_FILE, rows, TRIAL_SCHEMA)
    return folder


def test_restore_adopts_ended_trials_the_snapshot_missed(tmp_path: Path) -> None:
    space = tpe_space(4)
    folder = folder_with(tmp_path, [])
    first = SweepSearch(space, sampler(space), 4, folder)
    configs = {i: first.suggest(i) for i in ("t1", "t2")}
    first.on_trial_complete("t1", {"val_accuracy": 0.6, "training_iteration": 2})
    first.save_to_dir(str(tmp_path), "snap")  # what Ray saved before the kill
    lost = first.suggest("t3")  # suggested, run and recorded after the snapshot
    folder_with(tmp_path, [row(space, "t1", configs["t1"], value=0.6), row(space, "t2", configs["t2"], "RUNNING"),
                           row(space, "t3", lost, value=0.7)])

    restored = SweepSearch(space, sampler(space), 4, Storage.parse(str(tmp_path)).folder("s"))  # as in tuner.pkl
    restored.restore_from_dir(str(tmp_path))
    adopted = [t for t in restored.study.trials if t.user_attrs.get("trial_ids") == ["t3"]]
    assert len(adopted) == 1 and adopted[0].value == 0.7
    assert adopted[0].params == lost
    assert restored.spent == 3 and restored.suggest("t3") is None  # a recorded id is never handed out again
    fourth = restored.suggest("t4")
    assert isinstance(fourth, dict) and fourth["lr"] != lost["lr"]  # not the lost trial's draw over again
    assert restored.suggest("t5") == Searcher.FINISHED  # t1, t2, t3, t4: the budget
    restored.on_trial_complete("t2", {"val_accuracy": 0.4, "training_iteration": 2})
    values = sorted(t.value for t in restored.study.trials if t.value is not None)
    assert values == [0.4, 0.6, 0.7]


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


def test_restore_gives_back_a_trial_ray_lost_and_learns_one_it_never_handed_out(tmp_path: Path) -> None:
    """Ray's experiment state and the searcher's state are separate uploads: a kill between them leaves t3 handed
    out by the searcher but unknown to Ray (lost: its budget comes back, Optuna marks it FAIL), and t9 restored by
    Ray but never handed out by this searcher (counted, and learnt when it ends)."""
    space = tpe_space(4)
    folder = folder_with(tmp_path, [])
    first = SweepSearch(space, sampler(space), 4, folder)
    configs = {i: first.suggest(i) for i in ("t1", "t2", "t3")}
    first.save_to_dir(str(tmp_path), "snap")
    folder_with(tmp_path, [row(space, "t1", configs["t1"], value=0.6), row(space, "t2", configs["t2"], "RUNNING")])
    stray = {"variant": "lin", "optimizer": "adam", "lr": 0.01}

    restored = SweepSearch(space, sampler(space), 4, Storage.parse(str(tmp_path)).folder("s"))
    restored.restore_from_dir(str(tmp_path))
    restored.agree_with({"t2": configs["t2"], "t9": stray})
    assert restored.spent == 3  # t1, t2, t9
    failed = [t for t in restored.study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [t.params for t in failed] == [configs["t3"]]
    assert isinstance(restored.suggest("t4"), dict)
    assert restored.suggest("t5") == Searcher.FINISHED  # t1, t2, t9, t4: the budget
    restored.on_trial_complete("t9", {"val_accuracy": 0.8, "training_iteration": 2})
    restored.on_trial_complete("t2", {"val_accuracy": 0.4, "training_iteration": 2})
    done = {t.value: t.params for t in restored.study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert done == {0.6: configs["t1"], 0.4: configs["t2"], 0.8: stray}


def test_a_stray_that_ended_after_the_snapshot_is_learnt_on_the_next_restore(tmp_path: Path) -> None:
    """t9, restored by Ray but never handed out by the searcher, is running at the next snapshot; it ends (in
    trials.parquet) before a second kill. The next restore learns it from its row, once, without a new spend."""
    space = tpe_space(4)
    first = SweepSearch(space, sampler(space), 4, folder_with(tmp_path, []))
    t1 = first.suggest("t1")
    first.save_to_dir(str(tmp_path), "a")
    stray = {"variant": "lin", "optimizer": "adam", "lr": 0.01}
    second = SweepSearch(space, sampler(space), 4, Storage.parse(str(tmp_path)).folder("s"))
    second.restore_from_dir(str(tmp_path))
    second.agree_with({"t1": t1, "t9": stray})
    second.save_to_dir(str(tmp_path), "b")  # the newer snapshot, with t9 still running
    folder_with(tmp_path, [row(space, "t1", t1, "RUNNING"), row(space, "t9", stray, value=0.8)])

    third = SweepSearch(space, sampler(space), 4, Storage.parse(str(tmp_path)).folder("s"))
    third.restore_from_dir(str(tmp_path))
    third.agree_with({"t1": t1})
    assert third.spent == 2 and not third.strays  # t1, t9
    learnt = [t for t in third.study.trials if t.user_attrs.get("trial_ids") == ["t9"]]
    assert len(learnt) == 1 and learnt[0].value == 0.8 and learnt[0].params == stray


def test_restore_gives_a_lost_replicates_seed_back_to_its_configuration(tmp_path: Path) -> None:
    """The configuration's first replicate t0 (the one Optuna's trial is filed under) was lost; t1 ended and t2 is
    restored. Seed 0 is handed out again for the same configuration, and Optuna is told the three seeds' mean."""
    space = load_text(TPE.replace("NUM", "2") + "repeats: 3\n", Path("rep.yaml"))
    first = SweepSearch(space, sampler(space), space.num_trials, folder_with(tmp_path, []))
    configs = {f"t{i}": first.suggest(f"t{i}") for i in range(3)}
    first.save_to_dir(str(tmp_path), "snap")
    folder_with(tmp_path, [row(space, "t1", configs["t1"], value=0.5), row(space, "t2", configs["t2"], "RUNNING")])

    restored = SweepSearch(space, sampler(space), space.num_trials, Storage.parse(str(tmp_path)).folder("s"))
    restored.restore_from_dir(str(tmp_path))
    restored.agree_with({"t2": configs["t2"]})
    assert restored.spent == 2
    again = restored.suggest("t3")
    assert again == configs["t0"] and again["seed"] == 0
    restored.on_trial_complete("t2", {"val_accuracy": 0.7, "training_iteration": 2})
    restored.on_trial_complete("t3", {"val_accuracy": 0.6, "training_iteration": 2})
    told = [t for t in restored.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 1 and told[0].value == pytest.approx(0.6)
    assert told[0].params == {k: v for k, v in configs["t0"].items() if k != "seed"}


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


def test_extend_counts_a_key_that_had_no_column_yet_at_its_default() -> None:
    """A sweep recorded before sweeper had `label_smoothing` ran it at 0.0: extending it with seeds plans only the
    new seeds, and a non-default value of the new key is a new trial."""
    from sweeper.run.extend import missing_grid_trials

    text = "epochs: 1\nrepeats: 2\nparameters: {model: mlp, hidden: [8], lr: {grid: [0.1, 0.2]}}\n"
    grown = load_text(text.replace("repeats: 2", "repeats: 3"), Path("s.yaml"))
    old = load_text(text, Path("s.yaml"))
    rows = [{f"param_{k}": v for k, v in old.trial_params(t).recorded().items() if k != "label_smoothing"}
            for t in old.grid_trials()]
    assert [(t["lr"], t["seed"]) for t in missing_grid_trials(grown, rows)] == [(0.1, 2), (0.2, 2)]
    smoothed = load_text(text.replace("model: mlp", "model: mlp, label_smoothing: 0.1"), Path("s.yaml"))
    assert len(missing_grid_trials(smoothed, rows)) == 4
