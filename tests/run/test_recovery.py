"""Recovery, with real failures: a killed driver's unwritten epochs backfilled from Ray's result.json on resume
(local and S3 storage), SIGTERM as a clean stop, a trial whose worker process is killed retried from its last
epoch checkpoint (--max-failures), and a trial's torch thread count following its CPUs.

Sweeps run in real `python -m sweeper` driver subprocesses (each with its own local Ray, so the test can kill
it); the thread-count trial runs on the in-process Ray of the `ray_session` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweeper.spec.loader import load_text
from tests.drivers import Driver
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures

DEADLINE_S = 300  # for any one event (a row appearing) on a machine shared with other test runs


def session_pids(sid: int) -> list[int]:
    """Processes in the session a driver started: its Ray (gcs, raylet, and the workers, which have process
    groups of their own), so a test can find a trial's worker, and clean up by pid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
            pids.append(int(entry))
    return pids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@pytest.fixture
def reaped(drivers: list[Driver]) -> Iterator[list[Driver]]:
    """`drivers`, and at the end every process left in their sessions is killed by pid."""
    yield drivers
    for d in drivers:
        for pid in session_pids(d.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait_until(what: str, ready: Callable[[], Any], driver: Driver, timeout: float = DEADLINE_S) -> Any:
    """Poll `ready()` until it returns something truthy; fail early if the driver ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.proc.poll() is not None:
            out = driver.proc.stdout.read() if driver.proc.stdout else ""
            raise AssertionError(f"driver ended (code {driver.proc.returncode}) before {what}:\n{out}")
        try:
            value = ready()
        except (OSError, ValueError, pa.ArrowException):  # a file not (completely) written yet
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def kill_driver(driver: Driver) -> None:
    driver.proc.send_signal(signal.SIGKILL)
    driver.proc.wait(timeout=30)
    driver.kill_group()


@dataclass
class Sweep:
    """A sweep's folder on local or S3 storage, read and written with pyarrow/boto3 directly (not sweeper)."""

    storage: str  # what --storage gets
    name: str
    env: dict[str, str] | None
    local_root: Path | None = None
    bucket: S3 | None = None
    prefix: str = ""  # the sweep folder's key prefix in the bucket

    def read(self, file: str) -> bytes | None:
        if self.local_root is not None:
            path = self.local_root / self.name / file
            return path.read_bytes() if path.is_file() else None
        assert self.bucket is not None
        try:
            return self.bucket.read_bytes(f"{self.prefix}{file}")
        except self.bucket.client().exceptions.NoSuchKey:
            return None

    def table(self, file: str) -> pa.Table | None:
        data = self.read(file)
        return None if data is None else pq.read_table(pa.BufferReader(data))

    def rows(self, file: str) -> list[dict[str, Any]]:
        table = self.table(file)
        return [] if table is None else table.to_pylist()

    def replace(self, file: str, table: pa.Table) -> None:
        """Rewrite a Parquet file atomically: a temporary file renamed over it, or one object put."""
        if self.local_root is not None:
            path = self.local_root / self.name / file
            tmp = path.with_name(f".{path.name}.test-tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        else:
            assert self.bucket is not None
            self.bucket.write_table(f"{self.prefix}{file}", table)

    def ray_trial_states(self) -> dict[str, str]:
        """Trial states in Ray's own experiment state, as synced to storage (what a resume restores)."""
        if self.local_root is not None:
            names = [p.name for p in (self.local_root / self.name).glob("experiment_state-*.json")]
        else:
            assert self.bucket is not None
            names = [k.removeprefix(self.prefix) for k in self.bucket.keys(f"{self.prefix}experiment_state-")]
        if not names:
            return {}
        data = json.loads(self.read(max(names)) or b"{}")  # Ray restores from the latest one
        trials = [json.loads(entry[0]) for entry in data.get("trial_data", [])]
        return {t["trial_id"]: t["status"] for t in trials}

    def ray_epochs(self) -> dict[str, list[int]]:
        """Epochs per trial in Ray's own per-trial result.json files, as they are in storage now."""
        if self.local_root is not None:
            files = [p.relative_to(self.local_root / self.name).as_posix()
                     for p in (self.local_root / self.name).glob("*/result.json")]
        else:
            assert self.bucket is not None
            files = [k.removeprefix(self.prefix) for k in self.bucket.keys(self.prefix)
                     if k.endswith("/result.json") and k.removeprefix(self.prefix).count("/") == 1]
        found: dict[str, list[int]] = {}
        for file in files:
            for line in (self.read(file) or b"").decode().splitlines():
                try:
                    result = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written
                if "epoch" in result:
                    found.setdefault(result["trial_id"], []).append(int(result["epoch"]))
        return found


BACKFILL = """
name: {name}
epochs: 10
scheduler: {{type: fifo}}
max_concurrent: 1
data: {{train_subset: 6000, val_subset: 200, test_subset: 200}}
parameters: {{model: mlp, hidden: [16], batch_size: 8, max_epochs: {{grid: [2, 10]}}}}
"""


@pytest.fixture(params=["local", "s3"])
def backfill_sweep(request: pytest.FixtureRequest, tmp_path: Path) -> Sweep:
    if request.param == "local":
        return Sweep(str(tmp_path / "runs"), "fill", None, local_root=tmp_path / "runs")
    bucket: S3 = request.getfixturevalue("s3")
    return Sweep(bucket.uri("runs"), "fill", bucket.env, bucket=bucket, prefix="runs/fill/")


def test_resume_backfills_epochs_ray_logged_but_parquet_lost(
    backfill_sweep: Sweep, tmp_path: Path, real_data: Path, reaped: list[Driver]
) -> None:
    sweep = backfill_sweep
    space = tmp_path / "fill.yaml"
    space.write_text(BACKFILL.format(name=sweep.name))
    driver = Driver("launch", str(space), "--storage", sweep.storage, "--data-dir", str(real_data), "--quiet",
                    env=sweep.env)
    reaped.append(driver)

    def short_trial_done() -> str | None:
        """The 2-epoch trial's id once it ended, as Parquet, Ray's result.json and Ray's experiment state in
        storage all say (so a resume will not run it again), and the 10-epoch trial (started after it:
        max_concurrent 1) reported an epoch."""
        trials = {t["param_max_epochs"]: t for t in sweep.rows("trials.parquet")}
        if trials.get(2, {}).get("state") != "TERMINATED" or 10 not in trials:
            return None
        short, long = trials[2]["trial_id"], trials[10]["trial_id"]
        logged = 2 in sweep.ray_epochs().get(short, [])
        ended = sweep.ray_trial_states().get(short) == "TERMINATED"
        reported = any(e["trial_id"] == long for e in sweep.rows("epochs.parquet"))
        return short if logged and ended and reported else None

    short = wait_until("the short trial ended (Parquet, result.json, Ray's state) and the long one reported",
                       short_trial_done, driver)
    kill_driver(driver)

    trials = {t["trial_id"]: t for t in sweep.rows("trials.parquet")}
    assert len(trials) == 2 and any(t["state"] == "RUNNING" for t in trials.values()), trials  # killed mid-sweep
    epochs = sweep.table("epochs.parquet")
    assert epochs is not None
    written = set(zip(epochs["trial_id"].to_pylist(), epochs["epoch"].to_pylist(), strict=True))
    logged = sweep.ray_epochs()
    lost = {(t, max(e)) for t, e in logged.items() if (t, max(e)) in written}  # each trial's last logged epoch
    assert (short, 2) in lost, (logged, written)
    keep = [(t, e) not in lost for t, e in zip(epochs["trial_id"].to_pylist(), epochs["epoch"].to_pylist(),
                                                strict=True)]
    sweep.replace("epochs.parquet", epochs.filter(pa.array(keep)))  # as if the driver died before writing them
    assert not lost & {(r["trial_id"], r["epoch"]) for r in sweep.rows("epochs.parquet")}

    resumed = Driver("resume", sweep.name, "--storage", sweep.storage, "--quiet", env=sweep.env)
    reaped.append(resumed)
    code, out = resumed.wait(timeout=600)
    assert code == 0, out

    trials = {t["trial_id"]: t for t in sweep.rows("trials.parquet")}
    after = sweep.rows("epochs.parquet")
    assert sorted(t["epochs"] for t in trials.values()) == [2, 10]
    assert {t["state"] for t in trials.values()} == {"TERMINATED"}
    keys = [(r["trial_id"], r["epoch"]) for r in after]
    assert len(keys) == len(set(keys)), "an epoch appears twice"
    for trial_id, t in trials.items():
        assert sorted(e for tid, e in keys if tid == trial_id) == list(range(1, t["epochs"] + 1)), trial_id
    assert lost <= set(keys)  # every lost epoch is back
    session = {(r["trial_id"], r["epoch"]): r["session"] for r in after}
    rerun = {t for (t, _), s in session.items() if s == 1}
    assert short not in rerun and session[(short, 2)] == 0  # backfilled, with the launch's session number
    for (trial_id, epoch), s in session.items():
        # A trial the resume continued re-ran only the epochs after its checkpoint; everything before that, a
        # lost epoch included, keeps the launch's session (0).
        restored = trials[trial_id]["restored_from"] or 0
        assert s == (1 if trial_id in rerun and epoch > restored else 0), (trial_id, epoch, s, restored)
    assert [s["outcome"] for s in json.loads(sweep.read("sweep.json") or b"{}")["sessions"]] == [None, "finished"]


INTERRUPT = """
name: term
epochs: 4
scheduler: {type: fifo}
max_concurrent: 1
data: {train_subset: 3000, val_subset: 200, test_subset: 200}
parameters: {model: mlp, hidden: [16], batch_size: 8, lr: {grid: [0.1, 0.05, 0.02]}}
"""


def test_sigterm_stops_the_sweep_cleanly_with_code_130(tmp_path: Path, real_data: Path, reaped: list[Driver]) -> None:
    space = tmp_path / "term.yaml"
    space.write_text(INTERRUPT)
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "term"
    driver = Driver("launch", str(space), "--storage", str(runs), "--data-dir", str(real_data), "--quiet")
    reaped.append(driver)
    wait_until("the first epoch is in Parquet", lambda: pq.read_table(folder / "epochs.parquet").num_rows, driver)
    driver.proc.send_signal(signal.SIGTERM)
    code, out = driver.wait(timeout=300)

    assert code == 130, out
    assert f"Resume with: sweeper resume term --storage {runs}" in out
    assert "Traceback" not in out
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["state"] == "interrupted" and sweep["sessions"][-1]["outcome"] == "interrupted"
    assert not (folder / ".lock").exists()
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    assert epochs and {e["trial_id"] for e in epochs} <= {t["trial_id"] for t in trials}
    assert "INTERRUPTED" in {t["state"] for t in trials}
    assert not any(t["state"] == "RUNNING" for t in trials)
    assert len({(e["trial_id"], e["epoch"]) for e in epochs}) == len(epochs)


RETRY = """
name: retry
epochs: 5
scheduler: {type: fifo}
data: {train_subset: 12000, val_subset: 200, test_subset: 200}
parameters: {model: mlp, hidden: [16], batch_size: 8}
"""


def test_max_failures_retries_a_killed_trial_from_its_last_checkpoint(
    tmp_path: Path, real_data: Path, reaped: list[Driver]
) -> None:
    """The trial's worker process (the Ray actor running it) is SIGKILLed during epoch 3: a real failure, the
    kind a node's OOM killer causes. With --max-failures 1 Ray retries the trial from its epoch-2 checkpoint."""
    space = tmp_path / "retry.yaml"
    space.write_text(RETRY)
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "retry"
    driver = Driver("launch", str(space), "--storage", str(runs), "--data-dir", str(real_data), "--max-failures",
                    "1", "--quiet")
    reaped.append(driver)

    def worker_after_epoch_2() -> int | None:
        if 2 not in pq.read_table(folder / "epochs.parquet")["epoch"].to_pylist():
            return None
        if list(folder.glob("ray_trainable_*/checkpoint_000000")):
            return None  # epoch 2's checkpoint is registered once Ray has deleted epoch 1's (num_to_keep=1)
        workers = [p for p in session_pids(driver.proc.pid) if cmdline(p).startswith("ray::ImplicitFunc")]
        assert len(workers) <= 1, workers  # one trial, one worker
        return workers[0] if workers else None

    worker = wait_until("epoch 2 reported, and the trial's worker found", worker_after_epoch_2, driver)
    os.kill(worker, signal.SIGKILL)
    at_kill = pq.read_table(folder / "epochs.parquet")["epoch"].to_pylist()
    assert max(at_kill) == 2, f"the kill came after epoch 3 was reported: {at_kill}"

    code, out = driver.wait(timeout=600)
    assert code == 0, out  # the retry finished the trial: nothing failed in the end
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    assert len(trials) == 1, trials
    trial = trials[0]
    assert trial["state"] == "TERMINATED" and trial["epochs"] == 5 and trial["error"] is None, trial
    assert trial["restored_from"] == 2  # continued from the epoch-2 checkpoint, not from scratch
    assert sorted(e["epoch"] for e in epochs) == [1, 2, 3, 4, 5]  # every epoch once
    assert {e["session"] for e in epochs} == {0}  # all in the launch's session: a retry is no resume
    assert json.loads((folder / "sweep.json").read_text())["state"] == "finished"


# -- torch threads ------------------------------------------------------------------------------------------------

def test_thread_setup_rounds_a_trials_cpus_up() -> None:
    import torch

    from sweeper.run.trainable import _trial_threads

    assert [_trial_threads(c) for c in (0.25, 0.5, 1, 1.5, 2, 3)] == [1, 1, 1, 2, 2, 3]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(_trial_threads(1.5))
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

    from sweeper.run import data
    from sweeper.run.remote import ray_trainable
    from sweeper.run.tuner import param_space

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
        param_space=param_space(space),
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
