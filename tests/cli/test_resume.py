"""Interrupted sweeps: kill -9 then resume, Ctrl-C then resume, locks, fingerprints, existing names.

The driver runs as a real `python -m sweeper` subprocess in its own session, so the test can SIGKILL it
and then clean up what that Ray left behind by its own process group, never by a broad kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.store.files import LOCK_FILE
from sweeper.store.lock import locked
from sweeper.store.storage import Storage
from tests.conftest import write_idx
from tests.drivers import Driver, wait_until
from tests.raystate import kill_once_named

runner = CliRunner()
SPACE = """
name: {name}
epochs: 6
scheduler: {{type: fifo}}
max_concurrent: 2
parameters: {{model: cnn, filters: 16, kernel_size: 3, optimizer: adam, seed: {{grid: [0, 1, 2, 3]}}}}
"""


@pytest.fixture(scope="module")
def medium_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 synthetic training images: epochs long enough (about a second) to interrupt mid-trial."""
    return write_idx(tmp_path_factory.mktemp("medium") / "data", n_train=3000, n_test=200)


def wait_for_epochs(folder: Path, at_least: int, driver: Driver) -> pd.DataFrame:
    """epochs.parquet once a trial reached epoch `at_least` (failing at once if the driver ended first)."""

    def reached() -> list[pd.DataFrame]:
        epochs = pd.read_parquet(folder / "epochs.parquet")
        return [epochs] if len(epochs) and epochs.epoch.max() >= at_least else []

    found: list[pd.DataFrame] = wait_until(f"a trial reached epoch {at_least} in {folder}", reached, driver)
    return found[0]


def ray_reports(folder: Path) -> list[dict]:
    """Every report Ray logged for the sweep's trials, in order, from its per-trial result.json files."""
    reports = []
    for log in sorted(folder.glob("*/result.json")):
        for line in log.read_text().splitlines():
            try:
                reports.append(json.loads(line))
            except json.JSONDecodeError:  # a line the kill cut short
                continue
    return reports


def test_kill_9_mid_sweep_then_resume_loses_nothing(
    tmp_path: Path, medium_data: Path, drivers: list[Driver]
) -> None:
    """Killed once Ray's saved state (what a resume restores) names a checkpoint of epoch 2 or later for a trial
    still running: every trial ends with its 6 epochs, each once, and a trial continued from (at least) the
    checkpoint named then; every epoch Ray logged is in Parquet, from the session that ran it. No assertion
    depends on when Ray's background snapshots land relative to the kill."""
    (tmp_path / "kill.yaml").write_text(SPACE.format(name="kill"))
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "kill"
    saved_folder = Storage.parse(str(runs)).folder("kill")
    driver = Driver("launch", str(tmp_path / "kill.yaml"), "--storage", str(runs), "--data-dir", str(medium_data))
    drivers.append(driver)

    named = kill_once_named(driver, saved_folder)

    before = pd.read_parquet(folder / "epochs.parquet")  # readable right after the kill
    trials_before = pd.read_parquet(folder / "trials.parquet")
    assert len(before) > 0 and len(trials_before) > 0
    assert set(named) <= set(trials_before[trials_before.state == "RUNNING"].trial_id), trials_before

    resumed = Driver("resume", "kill", "--storage", str(runs))
    drivers.append(resumed)
    code, out = resumed.wait()
    assert code == 0, out

    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert len(trials) == 4 and trials.trial_id.is_unique
    assert set(trials.state) == {"TERMINATED"} and (trials.epochs == 6).all()
    per_trial = epochs.groupby("trial_id").epoch.apply(list).to_dict()
    assert per_trial == {t: [1, 2, 3, 4, 5, 6] for t in trials.trial_id}  # every epoch once
    restored = trials.set_index("trial_id").restored_from
    for trial_id, epoch in named.items():  # continued from its checkpoint (a later snapshot can only be newer)
        assert restored[trial_id] >= epoch, (trial_id, restored[trial_id], epoch)
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["state"] == "finished"
    assert [s["outcome"] for s in sweep["sessions"]] == [None, "finished"]  # the killed session never ended

    # Every epoch Ray itself logged (its per-trial result.json, both sessions, reruns included) is in Parquet
    # exactly once: as the latest report of that trial and epoch, from the session that was running then.
    resumed_at = sweep["sessions"][1]["started"]
    latest = {}
    for report in ray_reports(folder):
        latest[report["trial_id"], report["epoch"]] = report  # a rerun epoch: its later report wins
    rows = {(r.trial_id, r.epoch): r for r in epochs.itertuples()}
    assert len(rows) == len(epochs)
    assert set(latest) <= set(rows), sorted(set(latest) - set(rows))
    for key, report in latest.items():
        row = rows[key]
        assert row.reported_at == report["reported_at"] and row.val_loss == report["val_loss"], (key, row, report)
        assert row.session == (1 if report["reported_at"] >= resumed_at else 0), (key, row, report)
    assert {key[0] for key in latest} == set(trials.trial_id)


def test_sigint_stops_cleanly_prints_resume_command_then_resume_finishes(
    tmp_path: Path, medium_data: Path, drivers: list[Driver]
) -> None:
    (tmp_path / "int.yaml").write_text(SPACE.format(name="int"))
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "int"
    driver = Driver("launch", str(tmp_path / "int.yaml"), "--storage", str(runs), "--data-dir", str(medium_data))
    drivers.append(driver)
    wait_for_epochs(folder, 1, driver)
    driver.proc.send_signal(signal.SIGINT)
    code, out = driver.wait()
    assert code == 130, out
    assert f"Resume with: sweeper resume int --storage {runs}" in out
    assert json.loads((folder / "sweep.json").read_text())["state"] == "interrupted"
    assert not (folder / LOCK_FILE).exists()
    assert "INTERRUPTED" in set(pd.read_parquet(folder / "trials.parquet").state)

    resumed = Driver("resume", "int", "--storage", str(runs))
    drivers.append(resumed)
    code, out = resumed.wait()
    assert code == 0, out
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 4 and set(trials.state) == {"TERMINATED"}


def test_second_launch_of_a_running_sweep_is_refused(
    tmp_path: Path, medium_data: Path, drivers: list[Driver]
) -> None:
    path = tmp_path / "busy.yaml"
    path.write_text(SPACE.format(name="busy"))
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "busy"
    driver = Driver("launch", str(path), "--storage", str(runs), "--data-dir", str(medium_data))
    drivers.append(driver)
    wait_for_epochs(folder, 1, driver)
    for args in (["launch", str(path), "--resume"], ["resume", "busy"]):
        result = runner.invoke(app, [*args, "--storage", str(runs), "--data-dir", str(medium_data)])
        assert result.exit_code == 2, result.output
        assert f"sweep 'busy' is already running (pid {driver.proc.pid}" in result.stderr
    result = runner.invoke(app, ["launch", str(path), "--storage", str(runs)])
    assert result.exit_code == 2 and "is unfinished; continue it with `sweeper resume busy" in result.stderr


def test_stale_lock_is_taken_over_and_a_live_one_refused(tmp_path: Path) -> None:
    sweep = Storage.parse(str(tmp_path)).folder("s")
    folder = tmp_path / "s"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    with locked(sweep):
        assert json.loads((folder / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(SweeperError, match=f"already running \\(pid {os.getpid()}"):
            with locked(sweep):
                pass
    assert not (folder / LOCK_FILE).exists()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path, ray_session) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("done")
    path = root / "done.yaml"
    path.write_text("epochs: 2\nscheduler: {type: fifo}\nparameters: {model: logreg, lr: {grid: [0.1, 0.05]}}\n")
    result = runner.invoke(app, ["launch", str(path), "--storage", str(root / "runs"), "--data-dir", str(tiny_data)])
    assert result.exit_code == 0, result.output
    return path, root / "runs"


def test_resume_with_a_changed_space_names_the_changed_keys(finished_sweep: tuple[Path, Path]) -> None:
    path, runs = finished_sweep
    changed = path.with_name("changed.yaml")
    changed.write_text(path.read_text().replace("epochs: 2", "epochs: 3").replace("0.05", "0.01")
                       + "resources: {cpu: 2}\n")
    result = runner.invoke(app, ["resume", "done", "--storage", str(runs), "--space", str(changed)])
    assert result.exit_code == 2
    assert "differs from the search space sweep 'done' was launched with in epochs, parameters.lr.grid" in result.stderr
    assert "resources" not in result.stderr  # resources do not change what a trial computes
    result = runner.invoke(app, ["launch", str(changed), "--name", "done", "--storage", str(runs), "--resume"])
    assert result.exit_code == 2 and "epochs, parameters.lr.grid" in result.stderr


def test_resume_records_a_new_description_and_resources(finished_sweep: tuple[Path, Path]) -> None:
    path, runs = finished_sweep
    noted = path.with_name("noted.yaml")
    noted.write_text(path.read_text() + "description: what we found\nresources: {cpu: 1}\n")
    result = runner.invoke(app, ["resume", "done", "--storage", str(runs), "--space", str(noted)])
    assert result.exit_code == 0, result.output
    assert (runs / "done" / "spec.yaml").read_text() == noted.read_text()
    assert json.loads((runs / "done" / "sweep.json").read_text())["fingerprint"]["description"] == "what we found"


def test_launch_on_an_existing_name_refuses_unless_overwrite(
    finished_sweep: tuple[Path, Path], tiny_data: Path
) -> None:
    path, runs = finished_sweep
    result = runner.invoke(app, ["launch", str(path), "--storage", str(runs)])
    assert result.exit_code == 2 and "sweep 'done' already exists" in result.stderr
    before = pd.read_parquet(runs / "done" / "trials.parquet")
    result = runner.invoke(app, ["launch", str(path), "--storage", str(runs), "--resume"])
    assert result.exit_code == 0, result.output  # finished: nothing left to run
    assert pd.read_parquet(runs / "done" / "trials.parquet").trial_id.tolist() == before.trial_id.tolist()
    result = runner.invoke(app, ["launch", str(path), "--storage", str(runs), "--overwrite",
                                 "--data-dir", str(tiny_data)])
    assert result.exit_code == 0, result.output
    after = pd.read_parquet(runs / "done" / "trials.parquet")
    assert len(after) == 2 and set(after.trial_id).isdisjoint(before.trial_id)


def test_a_launch_killed_before_its_first_trial_is_launched_again_not_refused(
    finished_sweep: tuple[Path, Path], tiny_data: Path
) -> None:
    """A launch killed before it wrote sweep.json (in Ray's start: the folder holds spec.yaml and ray.log) has
    nothing to resume: `resume` says there is no such sweep, so `launch` must not send the user there."""
    path, runs = finished_sweep
    killed = runs / "early"
    killed.mkdir()
    (killed / "spec.yaml").write_text(path.read_text())
    (killed / "ray.log").write_text("(Ray's start, cut short)\n")
    result = runner.invoke(app, ["resume", "early", "--storage", str(runs)])
    assert result.exit_code == 2 and "no such sweep" in result.stderr
    result = runner.invoke(app, ["launch", str(path), "--name", "early", "--storage", str(runs), "--data-dir",
                                 str(tiny_data)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(killed / "trials.parquet")) == 2 and (killed / "sweep.json").is_file()
    log = killed / "ray.log"  # the killed launch's is gone (this one's, if Ray said anything)
    assert not log.exists() or "(Ray's start, cut short)" not in log.read_text()


def test_resume_of_an_unknown_sweep_is_a_user_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["resume", "nope", "--storage", str(tmp_path)])
    assert result.exit_code == 2 and "sweep 'nope': no such sweep under --storage" in result.stderr
