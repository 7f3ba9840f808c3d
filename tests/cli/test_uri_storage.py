"""`--storage` as a URI: `file://...` is the very folder its plain path names for launch, list, status, report
and resume; on S3 (a local moto server) a sweep runs, is read back, and `launch --overwrite` leaves only the new
trials.

Sweeps run in real `python -m sweeper` driver subprocesses (each with its own local Ray); list, status and report
run in-process through typer's CliRunner (they never start Ray).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.drivers import REPO, Driver
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures

runner = CliRunner()

SPACE = """
name: {name}
epochs: {epochs}
scheduler: {{type: fifo}}
max_concurrent: 1
data: {{train_subset: {train}, val_subset: 200, test_subset: 200}}
parameters: {{model: mlp, hidden: [16], batch_size: 8, lr: {{grid: {grid}}}}}
"""


def space_file(folder: Path, name: str, grid: list[float], epochs: int = 2, train: int = 400) -> Path:
    path = folder / f"{name}-{len(grid)}.yaml"
    path.write_text(SPACE.format(name=name, epochs=epochs, train=train, grid=grid))
    return path


def wait_for_running(folder: Path, driver: Driver, timeout: float = 300) -> list[dict]:
    """trials.parquet's rows once one of them is RUNNING with an epoch reported; fails early if the driver ended
    first. It waits on trials.parquet, not epochs.parquet: each flush writes epochs.parquet first, so a kill right
    after an epoch row appears can land before its trial row is rewritten."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.proc.poll() is not None:
            raise AssertionError(f"driver ended (code {driver.proc.returncode}) before a trial in {folder} ran:\n"
                                 f"{driver.proc.stdout.read() if driver.proc.stdout else ''}")
        try:
            rows = pq.read_table(folder / "trials.parquet").to_pylist()
            if any(t["state"] == "RUNNING" and (t["epochs"] or 0) >= 1 for t in rows):
                return rows
        except (OSError, pa.ArrowException):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{folder}: no RUNNING trial with an epoch in trials.parquet after {timeout}s")


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def test_file_uri_and_plain_path_are_one_folder_for_every_command(
    tmp_path: Path, real_data: Path, drivers: list[Driver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich tables unwrapped, so paths can be asserted
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    runs = tmp_path / "runs"
    folder = runs / "uri"
    uri = f"file://{runs}"
    space = space_file(tmp_path, "uri", [0.1, 0.05, 0.02], epochs=4, train=3000)

    driver = Driver("launch", str(space), "--storage", uri, "--data-dir", str(real_data), "--quiet")
    drivers.append(driver)
    wait_for_running(folder, driver)
    driver.proc.send_signal(signal.SIGKILL)
    driver.proc.wait(timeout=30)
    driver.kill_group()

    assert json.loads((folder / "sweep.json").read_text())["state"] == "running"  # killed: the session never ended
    assert (folder / "spec.yaml").read_text() == space.read_text()
    killed_trials = pq.read_table(folder / "trials.parquet").to_pylist()
    assert killed_trials and any(t["state"] == "RUNNING" for t in killed_trials)
    spellings = (uri, f"{uri}/", str(runs), os.path.relpath(runs, cwd))
    for storage in spellings:
        listed = cli("list", "--storage", storage)
        assert f"sweeps in {storage}" in listed
        assert "uri" in listed and "interrupted (driver died)" in listed, listed
        status = cli("status", "uri", "--storage", storage)
        assert f"folder        {folder}" in status, status
        assert "interrupted (driver died)" in status
        assert f"sweeper resume uri --storage {storage}" in status
        assert cli("status", "--storage", storage) == status  # the latest sweep there is this one
        report = cli("report", "uri", "--storage", storage, "--format", "csv")
        assert {t["trial_id"] for t in killed_trials} <= {line.split(",")[1].strip('"')
                                                           for line in report.splitlines()[1:]}
        relaunch = runner.invoke(app, ["launch", str(space), "--storage", storage])
        assert relaunch.exit_code == 2 and "sweep 'uri' is unfinished" in relaunch.stderr, relaunch.output

    resumed = Driver("resume", "uri", "--storage", uri, "--quiet")
    drivers.append(resumed)
    code, out = resumed.wait(timeout=600)
    assert code == 0, out
    assert f"results in {folder}" in out

    trials = pq.read_table(folder / "trials.parquet").to_pandas()
    epochs = pq.read_table(folder / "epochs.parquet").to_pandas()
    assert len(trials) == 3 and trials.trial_id.is_unique, trials
    assert set(trials.state) == {"TERMINATED"} and (trials.epochs == 4).all()
    assert sorted(trials.param_lr) == [0.02, 0.05, 0.1]
    assert not epochs.duplicated(["trial_id", "epoch"]).any()
    assert epochs.groupby("trial_id").epoch.apply(sorted).to_dict() == {t: [1, 2, 3, 4] for t in trials.trial_id}
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["state"] == "finished" and len(sweep["sessions"]) == 2
    for storage in spellings:
        assert "finished" in cli("status", "uri", "--storage", storage)
    assert sorted(p.name for p in runs.iterdir()) == ["uri"]
    assert list(cwd.iterdir()) == [] and not (REPO / "file:").exists()  # no folder named after the scheme


def test_s3_sweep_overwritten_holds_only_the_new_trials(
    tmp_path: Path, real_data: Path, drivers: list[Driver], s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    storage = s3.uri("runs")
    first = space_file(tmp_path, "cloud", [0.1, 0.05])
    second = space_file(tmp_path, "cloud", [0.2, 0.02, 0.01])

    driver = Driver("launch", str(first), "--storage", storage, "--data-dir", str(real_data), "--quiet", env=s3.env)
    drivers.append(driver)
    code, out = driver.wait(timeout=600)
    assert code == 0, out
    assert "results in s3://" + f"{s3.bucket}/runs/cloud" in out
    old = s3.read_table("runs/cloud/trials.parquet").to_pylist()
    assert len(old) == 2 and {t["state"] for t in old} == {"TERMINATED"}
    old_ids = {t["trial_id"] for t in old}
    old_keys = s3.keys("runs/cloud/")
    assert any(k.endswith("/result.json") for k in old_keys) and any("/checkpoint_" in k for k in old_keys)

    refused = runner.invoke(app, ["launch", str(second), "--storage", storage])
    assert refused.exit_code == 2 and "sweep 'cloud' already exists" in refused.stderr, refused.output

    driver = Driver("launch", str(second), "--storage", storage, "--data-dir", str(real_data), "--overwrite",
                    "--quiet", env=s3.env)
    drivers.append(driver)
    code, out = driver.wait(timeout=600)
    assert code == 0, out

    trials = s3.read_table("runs/cloud/trials.parquet").to_pylist()
    epochs = s3.read_table("runs/cloud/epochs.parquet").to_pylist()
    new_ids = {t["trial_id"] for t in trials}
    assert len(trials) == 3 and len(new_ids) == 3 and new_ids.isdisjoint(old_ids)
    assert sorted(t["param_lr"] for t in trials) == [0.01, 0.02, 0.2]
    assert {t["state"] for t in trials} == {"TERMINATED"}
    assert sorted((e["trial_id"], e["epoch"]) for e in epochs) == sorted((t, e) for t in new_ids for e in (1, 2))
    sweep = json.loads(s3.read_bytes("runs/cloud/sweep.json"))  # the old sweep's sessions went with it
    assert sweep["state"] == "finished" and [s["command"] for s in sweep["sessions"]] == ["launch"]
    assert s3.read_bytes("runs/cloud/spec.yaml").decode() == second.read_text()
    keys = s3.keys("runs/cloud/")
    trial_dirs = {k.split("/")[2] for k in keys if k.count("/") >= 3}
    assert len(trial_dirs) == 3 and all(any(i in d for i in new_ids) for d in trial_dirs), trial_dirs
    assert not any(i in k for k in keys for i in old_ids)

    listed = cli("list", "--storage", storage)
    assert "cloud" in listed and "finished" in listed and "3 completed" in listed, listed
    status = cli("status", "cloud", "--storage", storage)
    assert f"folder        s3://{s3.bucket}/runs/cloud" in status, status
    report = cli("report", "cloud", "--storage", storage, "--format", "csv")
    assert {line.split(",")[1].strip('"') for line in report.splitlines()[1:]} == new_ids
