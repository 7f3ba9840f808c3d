"""Every rule of run/recovery.py that makes a resumed sweep agree with the files on disk: reconcile (rows Ray
never saw), backfill (epochs Ray logged but Parquet lost, with a real kill -9 on local and S3 storage),
repair_checkpoints (a checkpoint Ray deleted, or left without a state.pt that loads, on local and S3 storage: the
newest whole one, or a start over), and the searcher's adoption of and agreement with what Ray restored
(real Optuna, real Parquet)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ray.tune.search import Searcher

from sweeper.run import launch
from sweeper.run.recovery import adopt_recorded, agree, newest_state, reconcile, repair_checkpoints
from sweeper.run.search.plans import sampler
from sweeper.run.search.searcher import SweepSearch
from sweeper.spec.loader import load, load_text
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import read_rows, write_rows
from sweeper.store.schema import TRIAL_SCHEMA
from sweeper.store.storage import Storage, SweepFolder
from tests.drivers import Driver, wait_until
from tests.raystate import saved_checkpoints
from tests.run.searching import TPE, folder_with, row, tpe_space
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures


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


def kill_driver(driver: Driver) -> None:
    driver.kill_session()  # no trial worker left to upload a checkpoint while the test edits storage


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


def unfinish(folder: SweepFolder) -> None:
    """Mark every trial of Ray's newest saved experiment state RUNNING, as a kill mid-trial leaves it."""
    name = newest_state(folder.list())
    assert name is not None
    saved = json.loads(folder.read_bytes(name) or b"{}")
    for entry in saved["trial_data"]:
        entry[0] = json.dumps(json.loads(entry[0]) | {"status": "RUNNING"})
    folder.write_bytes(name, json.dumps(saved).encode())


def named_checkpoint(folder: SweepFolder) -> str | None:
    """The checkpoint folder Ray's saved state names for the sweep's one trial (what a restore uses), by name."""
    from ray.tune import ExperimentAnalysis

    fs, base = folder.fs_path()
    (trial,) = ExperimentAnalysis(base, storage_filesystem=fs).trials
    return None if trial.checkpoint is None else Path(trial.checkpoint.path).name


def test_a_checkpoint_the_saved_state_names_is_replaced_by_the_newest_whole_one(
    tmp_path: Path, tiny_data: Path, ray_session
) -> None:
    """Ray deletes a trial's previous checkpoint as soon as it registers the next, and only then writes the
    experiment state naming the new one: a kill in between leaves a state naming a deleted checkpoint, or on an
    object store (a folder deleted file by file) one without its state.pt; a cut write leaves a state.pt that does
    not load. The newest whole checkpoint takes its place: the next registered one, else an earlier one; with none
    whole the trial starts over."""
    (tmp_path / "ck.yaml").write_text("epochs: 2\nscheduler: {type: fifo}\nparameters: {model: logreg}\n")
    storage = Storage.parse(str(tmp_path / "runs"))
    outcome = launch(load(tmp_path / "ck.yaml"), storage, data_dir=str(tiny_data), echo=None)
    assert outcome.trials == 1 and outcome.errors == 0
    folder = storage.folder("ck")
    (trial_dir,) = [p for p in folder.path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000001"]  # the one it names
    named = trial_dir / "checkpoint_000001"
    weights = (named / "state.pt").read_bytes()
    (trial_dir / "checkpoint_000001" / "state.pt").unlink()
    assert repair_checkpoints(folder) == []  # an ended trial: Ray will not restore it, nothing to do
    (named / "state.pt").write_bytes(weights)
    unfinish(folder)
    assert repair_checkpoints(folder) == []  # whole: nothing to do

    named.rename(trial_dir / "checkpoint_000002")  # registered next; the named one deleted ...
    shutil.copytree(trial_dir / "checkpoint_000002", trial_dir / "checkpoint_000003")
    (trial_dir / "checkpoint_000003" / "state.pt").write_bytes(weights[:1000])  # ... and one never registered
    (repair,) = repair_checkpoints(folder)
    assert str(repair) == f"{trial_dir.name}/checkpoint_000001" and repair.flaw == "was deleted"
    assert repair.used == "checkpoint_000002" and repair.note == (
        "went on from checkpoint_000002: its checkpoint checkpoint_000001 was deleted")
    assert (named / "state.pt").read_bytes() == weights  # from the next registered one, not the cut one
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == [
        "checkpoint_000001", "checkpoint_000002", "checkpoint_000003"]
    assert repair_checkpoints(folder) == []

    shutil.rmtree(trial_dir / "checkpoint_000002")  # the named folder's state.pt gone (a delete cut short), the
    (named / "state.pt").unlink()  # later one cut short; an earlier one whole
    (trial_dir / "checkpoint_000000").mkdir()
    (trial_dir / "checkpoint_000000" / "state.pt").write_bytes(weights)
    (repair,) = repair_checkpoints(folder)
    assert (repair.named, repair.flaw, repair.used) == ("checkpoint_000001", "has no state.pt", "checkpoint_000000")
    assert (named / "state.pt").read_bytes() == weights and named_checkpoint(folder) == "checkpoint_000001"

    shutil.rmtree(trial_dir / "checkpoint_000000")  # none whole: the trial starts over
    (named / "state.pt").write_bytes(weights[: len(weights) // 2])
    (repair,) = repair_checkpoints(folder)
    assert repair.flaw == "has a state.pt that does not load (cut short or damaged)" and repair.used is None
    assert repair.note.startswith("started over: its checkpoint checkpoint_000001 has a state.pt that does not")
    assert named_checkpoint(folder) is None and not named.exists()  # taken out of Ray's saved state
    assert repair_checkpoints(folder) == []


TORN = """
name: torn
epochs: 60
scheduler: {type: fifo}
max_concurrent: 2
parameters: {model: logreg, lr: {grid: [0.01, 0.1]}}
"""


def only_the_named_checkpoint(fs: Any, named: str) -> int:
    """Leave the trial's folder holding only the checkpoint Ray's saved state names, whole: if Ray had deleted it
    already (it registered the next: the saved state lags), or had begun to (on S3 a folder goes file by file: its
    history.jsonl can outlive its state.pt), the next one put back under its name. Returns the epoch
    its state.pt holds (checkpoint_00000k of a trial never restored is epoch k+1)."""
    import pyarrow.fs as pafs

    trial_dir, name = named.rstrip("/").rsplit("/", 1)
    others = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(trial_dir))
                    if i.base_name.startswith("checkpoint_") and i.base_name != name)
    source = name
    if fs.get_file_info(f"{named}/state.pt").type != pafs.FileType.File:  # deleted, or (S3) its deletion cut short
        source = next(o for o in others if o > name)
        fs.create_dir(named)
        pafs.copy_files(f"{trial_dir}/{source}", named, source_filesystem=fs, destination_filesystem=fs)
    for other in others:
        fs.delete_dir(f"{trial_dir}/{other}")
    return int(source[-6:]) + 1


@pytest.mark.parametrize("where", ["local", "s3"])
def test_resume_goes_on_from_the_newest_whole_checkpoint_when_the_named_one_is_torn(
    where: str, tmp_path: Path, tiny_data: Path, reaped: list[Driver], request: pytest.FixtureRequest
) -> None:
    """Issue 28, item 3, reproduced: a real sweep is killed once Ray's saved state (in storage) names a checkpoint
    of each of its two trials; then trial A's named folder loses its state.pt (as a delete cut short on S3 left it
    in CI) beside a whole later checkpoint (the one Ray registered next), and trial B's state.pt is cut short with
    no other checkpoint. `sweeper resume` (the real CLI) ends both trials whole: A goes on from the later
    checkpoint, B starts over, and each row says so (restore_note, restored_from)."""
    import pyarrow.fs as pafs

    bucket: S3 | None = request.getfixturevalue("s3") if where == "s3" else None
    storage = bucket.uri("runs") if bucket is not None else str(tmp_path / "runs")
    env = bucket.env if bucket is not None else None
    folder = Storage.parse(storage).folder("torn")
    (tmp_path / "torn.yaml").write_text(TORN)
    driver = Driver("launch", str(tmp_path / "torn.yaml"), "--storage", storage, "--data-dir", str(tiny_data),
                    "--quiet", env=env)
    reaped.append(driver)

    def both_named() -> bool:
        """Both trials unfinished in the saved state, each naming a checkpoint of epoch 3 or later."""
        saved = saved_checkpoints(folder)
        return len(saved) == 2 and all(status != "TERMINATED" and path is not None and int(path[-6:]) >= 2
                                       for status, path in saved.values())

    wait_until("Ray's saved state names a checkpoint of each trial", both_named, driver)
    kill_driver(driver)
    saved = saved_checkpoints(folder)
    assert all(status != "TERMINATED" and path for status, path in saved.values()), saved
    (a, (_, a_path)), (b, (_, b_path)) = sorted(saved.items())
    assert a_path is not None and b_path is not None
    fs, _ = folder.fs_path()

    a_dir, a_named = a_path.rstrip("/").rsplit("/", 1)
    a_epoch = only_the_named_checkpoint(fs, a_path)
    later = f"checkpoint_{int(a_named[-6:]) + 1:06d}"
    fs.create_dir(f"{a_dir}/{later}")
    pafs.copy_files(a_path, f"{a_dir}/{later}", source_filesystem=fs, destination_filesystem=fs)
    fs.delete_file(f"{a_path}/state.pt")  # A: the named folder without its state.pt, a whole later one

    b_named = b_path.rstrip("/").rsplit("/", 1)[1]
    only_the_named_checkpoint(fs, b_path)
    with fs.open_input_stream(f"{b_path}/state.pt") as fh:
        weights = fh.read()
    with fs.open_output_stream(f"{b_path}/state.pt") as out:
        out.write(weights[: len(weights) // 2])  # B: a state.pt cut short, and no other checkpoint

    resumed = Driver("resume", "torn", "--storage", storage, env=env)
    reaped.append(resumed)
    code, out = resumed.wait(timeout=600)
    assert code == 0, out
    trials = {r["trial_id"]: r for r in read_rows(folder, TRIALS_FILE)}
    assert {(t["state"], t["epochs"]) for t in trials.values()} == {("TERMINATED", 60)}, trials
    assert trials[a]["restore_note"] == f"went on from {later}: its checkpoint {a_named} has no state.pt"
    assert trials[a]["restored_from"] == a_epoch
    assert trials[b]["restore_note"] == (f"started over: its checkpoint {b_named} has a state.pt that does not "
                                         "load (cut short or damaged) and no other checkpoint was whole")
    assert trials[b]["restored_from"] == 0
    assert f"trial {a}: went on from {later}" in out and f"trial {b}: started over" in out
    epochs = read_rows(folder, "epochs.parquet")
    for trial_id in (a, b):
        mine = sorted((r["epoch"], r["session"]) for r in epochs if r["trial_id"] == trial_id)
        assert [e for e, _ in mine] == list(range(1, 61)), trial_id  # every epoch once
        first_rerun = 1 if trial_id == b else trials[a]["restored_from"] + 1
        assert all(s == (1 if e >= first_rerun else 0) for e, s in mine), (trial_id, mine)


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
    adopt_recorded(restored)  # as run/recovery.py's SweepGenerator does once Ray restored it
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
    adopt_recorded(restored)  # as run/recovery.py's SweepGenerator does once Ray restored it
    agree(restored, {"t2": configs["t2"], "t9": stray})
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
    adopt_recorded(second)  # as run/recovery.py's SweepGenerator does once Ray restored it
    agree(second, {"t1": t1, "t9": stray})
    second.save_to_dir(str(tmp_path), "b")  # the newer snapshot, with t9 still running
    folder_with(tmp_path, [row(space, "t1", t1, "RUNNING"), row(space, "t9", stray, value=0.8)])

    third = SweepSearch(space, sampler(space), 4, Storage.parse(str(tmp_path)).folder("s"))
    third.restore_from_dir(str(tmp_path))
    adopt_recorded(third)  # as run/recovery.py's SweepGenerator does once Ray restored it
    agree(third, {"t1": t1})
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
    adopt_recorded(restored)  # as run/recovery.py's SweepGenerator does once Ray restored it
    agree(restored, {"t2": configs["t2"]})
    assert restored.spent == 2
    again = restored.suggest("t3")
    assert again == configs["t0"] and again["seed"] == 0
    restored.on_trial_complete("t2", {"val_accuracy": 0.7, "training_iteration": 2})
    restored.on_trial_complete("t3", {"val_accuracy": 0.6, "training_iteration": 2})
    told = [t for t in restored.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(told) == 1 and told[0].value == pytest.approx(0.6)
    assert told[0].params == {k: v for k, v in configs["t0"].items() if k != "seed"}


@pytest.mark.parametrize("where", ["local", "s3"])
def test_an_experiment_state_a_kill_left_empty_is_set_aside_for_the_newest_whole_one(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Ray writes experiment_state-*.json in place: a kill can leave the newest empty or cut. Ray would fail to
    parse it, log that, and start the experiment over; the resume sets it aside and Ray restores the one before."""
    from sweeper.errors import SweeperError
    from sweeper.run.recovery import TORN, newest_state, set_aside_torn

    location = str(tmp_path / "runs") if where == "local" else request.getfixturevalue("s3").uri("runs")
    runs = Storage.parse(location).folder("torn")
    runs.write_bytes("experiment_state-2026-12-01_10-00-00.json", json.dumps({"trial_data": []}).encode())
    runs.write_bytes("experiment_state-2026-12-02_10-00-00.json", b"")  # the kill's
    assert set_aside_torn(runs) == ["experiment_state-2026-12-02_10-00-00.json"]
    assert newest_state(runs.list()) == "experiment_state-2026-12-01_10-00-00.json"
    assert runs.read_bytes(f"experiment_state-2026-12-02_10-00-00.json{TORN}") == b""  # kept, renamed
    assert set_aside_torn(runs) == []  # a whole one: nothing to do

    runs.write_bytes("experiment_state-2026-12-01_10-00-00.json", b'{"trial_data": [["{\\"trial_id')  # cut short
    with pytest.raises(SweeperError, match="empty or cut short .* no earlier one is whole"):
        set_aside_torn(runs)


def test_a_grid_generator_restored_holds_slots_only_for_the_trials_ray_restored(tmp_path: Path) -> None:
    """Grid search with max_concurrent: Ray's BasicVariantGenerator saved `_live_trials` with a trial that ended
    after that snapshot (trials.parquet has it TERMINATED, and reconcile marked it so in Ray's state). Restored as
    it was, it held that trial's slot forever and the resumed sweep waited out Ray's 600 s timeout."""
    from ray.tune.search import BasicVariantGenerator

    from sweeper.run.recovery import SweepVariants

    saved = BasicVariantGenerator(max_concurrent=2)
    saved._live_trials = {"ended_after_snapshot", "still_running"}
    saved.save_to_dir(str(tmp_path), "2026-12-07_10-00-00")
    trials = [{"trial_id": "ended_after_snapshot", "status": "TERMINATED", "config": {}},
              {"trial_id": "still_running", "status": "RUNNING", "config": {}}]
    state = {"trial_data": [[json.dumps(t), "{}"] for t in trials]}
    (tmp_path / "experiment_state-2026-12-07_10-00-00.json").write_text(json.dumps(state))

    plain = BasicVariantGenerator(max_concurrent=2)
    plain.restore_from_dir(str(tmp_path))
    assert plain._live_trials == {"ended_after_snapshot", "still_running"}  # Ray's own: a slot lost for good
    restored = BasicVariantGenerator(max_concurrent=2)
    restored.__class__ = SweepVariants  # as restore_tuner turns the generator Ray unpickles
    restored.restore_from_dir(str(tmp_path))
    assert restored._live_trials == {"still_running"}
