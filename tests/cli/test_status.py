"""`sweeper status` and `sweeper list` on real sweep folders: one finished sweep (launched once for the module),
copies of it in other states, and a real driver killed mid-sweep."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.store.files import EPOCHS_FILE, LOCK_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.parquet import read_rows, write_rows
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from sweeper.store.storage import Storage
from tests.conftest import write_idx

runner = CliRunner()
SPACE = """
name: mixed
epochs: 2
max_concurrent: 1
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
variants:
  - {name: good, model: logreg, optimizer: sgd, lr: 0.1}
  - {name: weak, model: logreg, optimizer: sgd, lr: 1.0e-7}
  - {name: boom, model: mlp, hidden: [64], optimizer: sgd, lr: 1.0e+6}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path, ray_session) -> Path:
    """Storage holding one finished sweep: one trial done, one stopped by ASHA, one failed."""
    root = tmp_path_factory.mktemp("status")
    (root / "mixed.yaml").write_text(SPACE)
    result = runner.invoke(app, ["launch", str(root / "mixed.yaml"), "--storage", str(root / "runs"),
                                 "--data-dir", str(tiny_data), "--quiet"])
    assert result.exit_code == 1, result.output  # one trial failed, by design
    return root / "runs"


def copy_as(runs: Path, name: str, tmp_path: Path) -> Path:
    """A copy of the finished sweep under another storage, renamed: to put it in other states."""
    storage = tmp_path / "runs"
    shutil.copytree(runs / "mixed", storage / name)
    return storage / name


def edit_state(folder: Path, **fields: object) -> None:
    data = json.loads((folder / STATE_FILE).read_text())
    data.update(fields)
    (folder / STATE_FILE).write_text(json.dumps(data))


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_status_of_a_finished_sweep(runs: Path) -> None:
    code, out, err = invoke("status", "mixed", "--storage", str(runs))
    assert code == 0, err
    assert re.search(r"sweep\s+mixed: finished, elapsed \d+:\d\d:\d\d", out)
    assert "3: 1 completed, 1 ASHA-stopped, 1 error, 0 running, 0 pending" in out
    assert re.search(r"best\s+val_accuracy [01]\.\d{4}, trial \w+ \(good\)", out)
    assert "trial-epochs  3" in out  # good ran 2, weak 1 (cut at the first rung), boom failed in its first
    assert f"folder        {runs / 'mixed'}" in out and "started" in out
    assert "resume" not in out and "running trial" not in out
    default = invoke("status", "--storage", str(runs))  # no name: the sweep started last
    assert default[0] == 0 and default[1] == out


def test_elapsed_counts_a_killed_session_until_its_last_epoch(runs: Path, tmp_path: Path) -> None:
    """A session stopped without a word (its machine or login ended) has no end time: it counts until the last epoch
    it reported, and the resumed session on top."""
    folder = copy_as(runs, "twice", tmp_path)
    t0 = 1_700_000_000.0
    killed = {"command": "launch", "started": t0, "ended": None, "outcome": None}
    resumed = {"command": "resume", "started": t0 + 7200, "ended": t0 + 7260, "outcome": "finished"}
    edit_state(folder, state="finished", sessions=[killed, resumed])
    sweep = Storage.parse(str(tmp_path / "runs")).folder("twice")
    epochs = read_rows(sweep, EPOCHS_FILE)
    for i, e in enumerate(epochs):
        e.update(session=0, reported_at=t0 + 3600 - i)  # the killed session's last report: an hour in
    write_rows(sweep, EPOCHS_FILE, epochs, EPOCH_SCHEMA)
    code, out, err = invoke("status", "twice", "--storage", str(tmp_path / "runs"))
    assert code == 0, err
    assert "twice: finished, elapsed 1:01:00" in out, out  # 1:00:00 until the last report, then 0:01:00
    assert re.search(r"\btwice\s+finished\s.*\s1:01:00\n", invoke("list", "--storage", str(tmp_path / "runs"))[1])


def test_status_reads_storage_from_the_environment(runs: Path) -> None:
    result = runner.invoke(app, ["status"], env={"SWEEPER_STORAGE": str(runs), "COLUMNS": "100"})
    assert result.exit_code == 0 and "mixed: finished" in result.stdout


def test_list_shows_every_sweep_with_counts_best_started_and_duration(runs: Path, tmp_path: Path) -> None:
    copy_as(runs, "mixed", tmp_path)
    edit_state(copy_as(runs, "older", tmp_path), state="interrupted")
    code, out, err = invoke("list", "--storage", str(tmp_path / "runs"))
    assert code == 0, err
    assert f"sweeps in {tmp_path / 'runs'} (best: val_accuracy)" in out
    assert re.search(r"\bmixed\s+finished\s+1 completed, 1 ASHA-stopped, 1 error\s+[01]\.\d{4}\s+"
                     r"\d{4}-\d\d-\d\d \d\d:\d\d\s+\d:\d\d:\d\d", out), out
    assert re.search(r"\bolder\s+interrupted\s+1 completed", out)


def test_list_fits_80_columns(runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_as(runs, "mixed", tmp_path)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["list", "--storage", "runs"], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "sweeps in runs (best: val_accuracy)" in result.stdout
    # the row, its trials cell folded onto a second line where 80 columns cannot hold it
    row = r"\bmixed\s+finished\s+1 completed, 1(?: ASHA-stopped, 1 error\s|\s.*\n\s+ASHA-stopped, 1 error\s)"
    assert re.search(row, result.stdout), result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_list_of_an_empty_storage(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "not-a-sweep").mkdir()
    assert invoke("list", "--storage", str(tmp_path / "runs"))[:2] == (0, f"no sweeps in {tmp_path / 'runs'}\n")


def test_list_marks_an_unreadable_sweep_and_shows_the_rest(runs: Path, tmp_path: Path) -> None:
    copy_as(runs, "mixed", tmp_path)
    (copy_as(runs, "broken", tmp_path) / "trials.parquet").write_bytes(b"PAR1 garbage")
    code, out, err = invoke("list", "--storage", str(tmp_path / "runs"))
    assert code == 0
    assert re.search(r"\bbroken\s+unreadable", out) and re.search(r"\bmixed\s+finished", out)
    assert err.startswith("warning: ") and "broken/trials.parquet: not a readable Parquet file" in err
    assert len(err.strip().splitlines()) == 1


def test_a_running_sweep_whose_driver_died_shows_as_interrupted(runs: Path, tmp_path: Path) -> None:
    folder = copy_as(runs, "dead", tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    edit_state(folder, state="running")
    (folder / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename}))
    code, out, _ = invoke("status", "dead", "--storage", str(tmp_path / "runs"))
    assert code == 0 and "dead: interrupted (driver died)" in out
    assert f"sweeper resume dead --storage {tmp_path / 'runs'}" in out
    (folder / LOCK_FILE).unlink()  # a driver killed before it took the lock, or the lock deleted
    assert "dead: interrupted (driver died)" in invoke("status", "dead", "--storage", str(tmp_path / "runs"))[1]
    assert re.search(r"\bdead\s+interrupted\s+\(driver\s+died\)", invoke("list", "--storage",
                                                                         str(tmp_path / "runs"))[1])


def test_a_running_sweep_shows_its_running_trials_and_time_left(runs: Path, tmp_path: Path) -> None:
    folder = copy_as(runs, "live", tmp_path)
    sweep_json = json.loads((folder / STATE_FILE).read_text())
    session = {"command": "resume", "pid": os.getpid(), "host": os.uname().nodename,
               "started": time.time() - 30, "ended": None, "outcome": None}
    edit_state(folder, state="running", sessions=[*sweep_json["sessions"], session])
    (folder / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename}))
    sweep = Storage.parse(str(tmp_path / "runs")).folder("live")
    trials = read_rows(sweep, TRIALS_FILE)
    good = {t["trial_id"] for t in trials if t["variant"] == "good"}
    for t in trials:
        if t["trial_id"] in good:
            t.update(state="RUNNING", epochs=1)
    write_rows(sweep, TRIALS_FILE, trials, TRIAL_SCHEMA)
    epochs = read_rows(sweep, EPOCHS_FILE)
    for e in epochs:
        if e["trial_id"] in good:
            e["session"] = 1  # reported in the current session
    write_rows(sweep, EPOCHS_FILE, epochs, EPOCH_SCHEMA)
    code, out, err = invoke("status", "live", "--storage", str(tmp_path / "runs"))
    assert code == 0, err
    assert re.search(r"live: running, elapsed \d+:\d\d:\d\d, about \d+:\d\d:\d\d left", out), out
    assert "3: 0 completed, 1 ASHA-stopped, 1 error, 1 running, 0 pending" in out
    assert re.search(r"running trial\s+variant\s+epoch\s+val_accuracy", out)
    assert re.search(r"\w+_\d+\s+good\s+1/2\s+[01]\.\d{4}", out)
    assert f"driver        pid {os.getpid()}" in out
    (folder / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    assert "live: running (on elsewhere)" in invoke("status", "live", "--storage", str(tmp_path / "runs"))[1]


@pytest.fixture(scope="module")
def slow_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_idx(tmp_path_factory.mktemp("slow") / "data", n_train=3000, n_test=100)


@pytest.mark.e2e  # a driver subprocess and its Ray
def test_status_of_a_real_running_sweep_then_of_its_killed_driver(tmp_path: Path, slow_data: Path) -> None:
    (tmp_path / "busy.yaml").write_text("""
epochs: 40
scheduler: {type: fifo}
max_concurrent: 1
parameters: {model: cnn, filters: 16, optimizer: adam, seed: {grid: [0, 1]}}
""")
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "sweeper", "launch", str(tmp_path / "busy.yaml"), "--storage",
                             str(runs), "--data-dir", str(slow_data)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline, out = time.monotonic() + 180, ""
        while time.monotonic() < deadline and "running trial" not in out:
            time.sleep(0.5)
            out = invoke("status", "busy", "--storage", str(runs))[1]
        assert "busy: running, elapsed" in out and re.search(r"\w+_00000\s+0\s+\d+/40", out), out
        assert f"pid {proc.pid}" in out
        listed = invoke("list", "--storage", str(runs))[1]
        assert re.search(r"\bbusy\s+running\s+\d running", listed), listed
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # Ray's helpers, started in the driver's session
        except ProcessLookupError:
            pass
        stdout, stderr = proc.communicate(timeout=30)
    code, out, _ = invoke("status", "busy", "--storage", str(runs))
    assert code == 0 and "busy: interrupted (driver died)" in out and "sweeper resume busy" in out
    # the trial it was running is interrupted, the other never started: both run on resume
    assert "running trial" not in out and "2: 0 completed, 0 error, 0 running, 1 interrupted, 1 pending" in out
    ray_lines = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(INFO|WARNING|ERROR)", re.M)
    assert not ray_lines.search(stdout + stderr), stdout + stderr  # Ray's log lines went to ray.log
    assert "View detailed results" not in stdout and stdout.startswith("sweep busy: 2 trials")
    log = runs / "busy" / "ray.log"
    assert not log.exists() or ray_lines.search(log.read_text()) or log.read_text() == ""
