"""A TPE sweep killed with SIGKILL, then resumed: the same trial budget, every trial that ended kept once, and the
searcher's history (the Optuna study Ray saved in the sweep folder) holding the trials from before the kill.

Ray uploads its experiment state and the searcher's state as separate files, in the background, so a kill can
leave the searcher's newer: it handed out a trial Ray's experiment state never held. CI met that once (the resume
ended a trial short, exit 130); the test now makes it happen every time, with the searcher's own code, before
resuming.

The driver is a real `python -m sweeper` subprocess in its own process group (tests/drivers.py).
"""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import optuna
from ray import cloudpickle
from ray.tune.search.optuna import OptunaSearch

from sweeper.run.recovery import whole_state
from sweeper.run.search.plans import sampler
from sweeper.run.search.searcher import SweepSearch
from sweeper.spec.loader import load
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from tests.drivers import Driver, wait_until

SPACE = """
name: tpekill
epochs: 3
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
search: {type: tpe, startup_trials: 3}
num_samples: 6
max_concurrent: 2
seed: 7
data: {train_subset: 300, val_subset: 200, test_subset: 200}
variants:
  - {name: lin, model: logreg}
  - {name: small, model: mlp, hidden: [16]}
parameters:
  optimizer: {choice: [sgd, adam]}
  lr: {loguniform: [1.0e-3, 1.0e-1]}
  momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}
"""
ENDED = {"TERMINATED", "ERROR"}


def snapshot_after_ended(folder: SweepFolder, at_least: int, driver: Driver) -> None:
    """Wait until `at_least` trials ended in trials.parquet and Ray has saved a whole snapshot of the experiment,
    the searcher and the generator (the searcher's and generator's files are replaced atomically; the experiment
    state may be caught mid-write, which the resume sets aside): what hand_out_a_trial_ray_never_saved edits."""

    def ready() -> bool:
        ended = sum(r["state"] in ENDED for r in read_rows(folder, TRIALS_FILE))
        root = folder.path
        return (ended >= at_least and whole_state(folder) and any(root.glob("searcher-state-*.pkl"))
                and any(root.glob("search_gen_state-*.json")))

    wait_until(f"{at_least} trials ended and Ray saved the searcher", ready, driver)


def hand_out_a_trial_ray_never_saved(folder: SweepFolder, space: Path, trial_id: str) -> None:
    """The searcher's and the generator's saved state as a later snapshot would hold them, one trial further:
    the searcher hands `trial_id` out, the generator counts it and the concurrency limiter holds a slot for it."""
    root = folder.path
    searcher_file = max(root.glob("searcher-state-*.pkl"))
    loaded = load(space)
    searcher = SweepSearch(loaded, sampler(loaded), 6, folder)
    searcher.restore(str(searcher_file))
    assert isinstance(searcher.suggest(trial_id), dict)
    searcher.save(str(searcher_file))
    generator_file = max(root.glob("search_gen_state-*.json"))
    saved = cloudpickle.loads(generator_file.read_bytes())
    saved["counter"] += 1
    saved["name:SweepLimiter"]["live_trials"].add(trial_id)
    saved["name:SweepLimiter"]["num_unfinished_live_trials"] += 1
    generator_file.write_bytes(cloudpickle.dumps(saved))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def test_tpe_sweep_killed_then_resumed_keeps_its_trials_and_its_history(
    tmp_path: Path, real_data: Path, drivers: list[Driver]
) -> None:
    path = tmp_path / "tpekill.yaml"
    path.write_text(SPACE)
    runs = tmp_path / "runs"
    folder = Storage.parse(str(runs)).folder("tpekill")
    driver = Driver("launch", str(path), "--storage", str(runs), "--data-dir", str(real_data), "-q")
    drivers.append(driver)
    snapshot_after_ended(folder, 2, driver)
    driver.proc.send_signal(signal.SIGKILL)
    driver.proc.wait(timeout=30)
    driver.kill_group()

    before = {r["trial_id"]: r for r in read_rows(folder, TRIALS_FILE)}
    done = {i: r for i, r in before.items() if r["state"] in ENDED}
    assert len(done) >= 2
    epochs_before = {(e["trial_id"], e["epoch"]): e for e in read_rows(folder, EPOCHS_FILE) if e["trial_id"] in done}
    hand_out_a_trial_ray_never_saved(folder, path, "deadbeef")

    resumed = Driver("resume", "tpekill", "--storage", str(runs), "-q")
    drivers.append(resumed)
    code, out = resumed.wait(timeout=600)
    # CI met a resume that ended after one trial with exit 130 once more (not reproduced since, in 1,600 simulated
    # snapshot mixes and many real runs): Ray's own log says whether a stop signal reached the driver
    log = folder.path / "ray.log"
    assert code == 0, out + "\n--- ray.log (tail) ---\n" + ("\n".join(log.read_text().splitlines()[-60:])
                                                          if log.is_file() else "(none)")

    trials = read_rows(folder, TRIALS_FILE)
    ids = [r["trial_id"] for r in trials]
    assert len(trials) == 6 and len(set(ids)) == 6, trials  # the budget exactly, no trial twice
    assert {r["state"] for r in trials} == {"TERMINATED"}
    after = {r["trial_id"]: r for r in trials}
    for trial_id, row in done.items():  # every trial that ended before the kill: its row as it was
        assert all(same(row[k], after[trial_id].get(k)) for k in row), (row, after[trial_id])
    epochs = read_rows(folder, EPOCHS_FILE)
    keys = [(e["trial_id"], e["epoch"]) for e in epochs]
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == set(ids)  # no epoch twice, none orphaned
    by_key = {(e["trial_id"], e["epoch"]): e for e in epochs}
    for key, row in epochs_before.items():
        assert all(same(row[k], by_key[key].get(k)) for k in row), (row, by_key[key])
    for row in trials:
        assert (row["param_momentum"] is None) == (row["param_optimizer"] == "adam"), row

    # The searcher Ray saved with the sweep's last snapshot: its Optuna study holds the trials from before the kill.
    searcher = OptunaSearch()
    searcher.restore_from_dir(str(folder.path))
    study = [t for t in searcher._ot_study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    for row in done.values():
        wanted = {"variant": row["variant"], "optimizer": row["param_optimizer"], "lr": row["param_lr"]}
        if row["param_optimizer"] == "sgd":
            wanted["momentum"] = row["param_momentum"]
        matches = [t for t in study if t.params == wanted]
        assert len(matches) == 1 and matches[0].value == row["val_accuracy"], (row, [t.params for t in study])
    assert len(study) == 6
    lost = [t for t in searcher._ot_study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(lost) == 1 and "deadbeef" not in ids  # the trial Ray never saved: given back, never run
    sessions = json.loads((folder.path / "sweep.json").read_text())["sessions"]
    assert [s["command"].split()[0] for s in sessions] == ["launch", "resume"]
