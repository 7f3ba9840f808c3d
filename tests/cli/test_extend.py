"""`sweeper extend` and `launch --warm-start` through the real CLI on a real local Ray with tiny data: only the
trials a grown space adds run, into the same Parquet files, and report/status/list see one sweep."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ray.tune.search.optuna import OptunaSearch
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.store.storage import Storage
from sweeper.watch.status import load as status

runner = CliRunner()
GRID = """
name: grow
epochs: 2
scheduler: {type: fifo}
data: {train_subset: 300, val_subset: 200, test_subset: 200}
parameters: {model: logreg, lr: {grid: [0.1, 0.05]}}
"""
TPE = """
name: learn
epochs: 2
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
search: {type: tpe, startup_trials: 2}
num_samples: 3
seed: 1
data: {train_subset: 300, val_subset: 200, test_subset: 200}
variants: [{name: lin, model: logreg}, {name: small, model: mlp, hidden: [16]}]
parameters:
  optimizer: {choice: [sgd, adam]}
  lr: {loguniform: [1.0e-3, 1.0e-1]}
"""


def cli(*args: str) -> Any:
    return runner.invoke(app, [*args])


def write(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
            for p in sorted(root.rglob("*"))}


def study_of(folder: Path) -> list[Any]:
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(folder))
    return searcher._ot_study.trials


def test_extend_runs_only_new_trials_and_refuses_changes(tmp_path: Path, real_data: Path, ray_session: Any) -> None:
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "grow"
    common = ["--storage", str(runs), "--data-dir", str(real_data), "-q"]
    assert cli("launch", write(tmp_path, "grow.yaml", GRID), *common).exit_code == 0
    before = pd.read_parquet(folder / "trials.parquet")
    epochs_before = pd.read_parquet(folder / "epochs.parquet")
    assert len(before) == 2

    seeds = write(tmp_path, "seeds.yaml", GRID + "repeats: 2\n")  # more seeds: seed 1 of each configuration
    result = cli("extend", "grow", "--space", seeds, *common)
    assert result.exit_code == 0, result.output
    assert "extend grow: 2 new trials" in result.stdout
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 4 and trials.trial_id.is_unique
    kept = trials.set_index("trial_id").loc[before.trial_id]
    pd.testing.assert_frame_equal(kept.reset_index()[before.columns], before)  # the trials that ran, untouched
    new = trials[~trials.trial_id.isin(before.trial_id)]
    assert sorted(new.param_seed) == [1, 1] and sorted(new.param_lr) == [0.05, 0.1]
    assert trials.groupby("config_id").size().tolist() == [2, 2]  # replicates share their configuration's id
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert epochs[epochs.trial_id.isin(before.trial_id)].reset_index(drop=True).equals(epochs_before)
    assert set(epochs[epochs.trial_id.isin(new.trial_id)].session) == {1}
    sweep = json.loads((folder / "sweep.json").read_text())
    assert [s["command"] for s in sweep["sessions"]] == ["launch", "extend extend-1"]
    assert sweep["experiments"] == ["", "extend-1"] and sweep["state"] == "finished"
    assert (folder / "spec.yaml").read_text() == (tmp_path / "seeds.yaml").read_text()
    tracker = status(Storage.parse(str(runs)), "grow")
    assert tracker.total == 4 and tracker.state == "finished"

    wider = write(tmp_path, "wider.yaml", GRID.replace("[0.1, 0.05]", "[0.1, 0.05, 0.01]") + "repeats: 2\n")
    result = cli("extend", "grow", "--space", wider, *common)
    assert result.exit_code == 0, result.output
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 6 and sorted(trials[trials.param_lr == 0.01].param_seed) == [0, 1]
    listing = cli("list", "--storage", str(runs))
    assert listing.exit_code == 0 and "6 completed" in listing.stdout, listing.stdout
    assert cli("resume", "grow", "--storage", str(runs)).exit_code == 0  # the last extension: nothing left
    assert len(pd.read_parquet(folder / "trials.parquet")) == 6

    snapshot = tree(folder)
    for text, message in [
        (GRID.replace("epochs: 2", "epochs: 3") + "repeats: 2\n", "would change the trials it ran in epochs"),
        (GRID.replace("model: logreg", "model: mlp") + "repeats: 2\n", "in parameters.model"),
        ((tmp_path / "wider.yaml").read_text(), "adds no trial to sweep 'grow': all 6 planned trials have run"),
        (GRID + "repeats: 2\n", "would change the trials it ran in parameters.lr.grid"),
    ]:
        result = cli("extend", "grow", "--space", write(tmp_path, "bad.yaml", text), *common)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
        assert tree(folder) == snapshot  # nothing written


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory, real_data: Path, ray_session: Any) -> Path:
    tmp = tmp_path_factory.mktemp("learn")
    common = ["--storage", str(tmp / "runs"), "--data-dir", str(real_data), "-q"]
    assert cli("launch", write(tmp, "learn.yaml", TPE), *common).exit_code == 0
    result = cli("extend", "learn", "--space", write(tmp, "more.yaml", TPE.replace("num_samples: 3", "num_samples: 5")),
                 *common)
    assert result.exit_code == 0, result.output
    return tmp / "runs"


def test_a_tpe_extension_learns_from_the_trials_that_ran(learned: Path) -> None:
    folder = learned / "learn"
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 5 and trials.trial_id.is_unique and set(trials.state) == {"TERMINATED"}
    assert len(study_of(folder)) == 3  # the launch's own searcher, beside the extension's
    extension = study_of(folder / "extend-1")
    history = [t for t in extension if t.user_attrs.get("trial_ids")]
    assert len(history) == 3 and len(extension) == 5  # 3 trials it started from, 2 it suggested
    recorded = dict(zip(trials.trial_id, trials.val_accuracy, strict=True))
    for t in history:
        assert t.value == pytest.approx(recorded[t.user_attrs["trial_ids"][0]])


def test_warm_start_seeds_tpe_with_another_sweeps_trials(learned: Path, tmp_path: Path, real_data: Path) -> None:
    other = TPE.replace("name: learn", "name: warm").replace("num_samples: 3", "num_samples: 2") \
        .replace("[1.0e-3, 1.0e-1]", "[1.0e-3, 5.0e-2]")  # a narrower lr range: some trials fall outside
    result = cli("launch", write(tmp_path, "warm.yaml", other), "--warm-start", "learn", "--storage", str(learned),
                 "--data-dir", str(real_data), "-q")
    assert result.exit_code == 0, result.output
    learn = pd.read_parquet(learned / "learn" / "trials.parquet")
    outside = int((learn.param_lr > 5.0e-2).sum())
    assert f"warm start: TPE starts from {5 - outside} configurations of 'learn'" in result.stdout
    if outside:
        assert f"{outside} skipped (trial " in result.stdout and "is outside loguniform(0.001, 0.05)" in result.stdout
    study = study_of(learned / "warm")
    assert len([t for t in study if t.user_attrs.get("trial_ids")]) == 5 - outside and len(study) == 7 - outside
    assert len(pd.read_parquet(learned / "warm" / "trials.parquet")) == 2


def test_extend_and_warm_start_have_help() -> None:
    top = cli("--help")
    assert top.exit_code == 0 and "extend" in top.stdout
    result = runner.invoke(app, ["extend", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--space", "--storage", "--address", "--data-dir", "--max-failures", "--quiet", "--verbose"):
        assert option in result.stdout, option
    assert "--warm-start" in runner.invoke(app, ["launch", "--help"], env={"COLUMNS": "200"}).stdout


def test_extending_an_interrupted_sweep_starts_its_unfinished_trials_over(
    tmp_path: Path, real_data: Path, ray_session: Any
) -> None:
    from sweeper.store.files import TRIALS_FILE
    from sweeper.store.parquet import read_rows, write_rows
    from sweeper.store.schema import TRIAL_SCHEMA

    runs, folder = tmp_path / "runs", tmp_path / "runs" / "grow"
    common = ["--storage", str(runs), "--data-dir", str(real_data), "-q"]
    assert cli("launch", write(tmp_path, "grow.yaml", GRID), *common).exit_code == 0
    sweep = Storage.parse(str(runs)).folder("grow")
    rows = read_rows(sweep, TRIALS_FILE)
    cut = rows[0]["trial_id"]
    rows[0] |= {"state": "INTERRUPTED", "epochs": 1}  # as a driver killed mid-trial leaves it
    write_rows(sweep, TRIALS_FILE, rows, TRIAL_SCHEMA)
    result = cli("extend", "grow", "--space", write(tmp_path, "seeds.yaml", GRID + "repeats: 2\n"), *common)
    assert result.exit_code == 0, result.output
    assert "extend grow: 3 new trials" in result.stdout and "1 unfinished trials start over" in result.stdout
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 4 and cut not in set(trials.trial_id) and set(trials.state) == {"TERMINATED"}
    assert sorted(zip(trials.param_lr, trials.param_seed, strict=True)) == [(0.05, 0), (0.05, 1), (0.1, 0), (0.1, 1)]
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert cut not in set(epochs.trial_id) and set(epochs.trial_id) == set(trials.trial_id)
