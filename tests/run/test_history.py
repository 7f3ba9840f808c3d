"""Each checkpoint carries the epochs of its timeline (run/history.py), and a resume files those a killed driver
never wrote (recovery.backfill): a trial never goes on after an epoch that no file records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweeper.run.history import HISTORY_FILE, History, parse
from sweeper.spec.loader import load_text
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage
from sweeper.store.writer import ResultsWriter


def test_a_real_trials_checkpoints_carry_its_epochs_and_a_resume_files_the_lost_ones(
    tmp_path: Path, real_data: Path, ray_session: Any
) -> None:
    """sweeper's trainable runs three epochs as a Ray Tune trial; each checkpoint's history.jsonl holds the
    epochs up to its own. Then epoch 3 is taken out of epochs.parquet and Ray's result.json is gone (as a driver
    killed before either reached storage leaves them): backfill puts epoch 3 back from the checkpoint, filed under
    the killed session (the launch), and the trial's row moves up to it."""
    from ray import tune

    from sweeper.run.recovery import backfill
    from sweeper.run.search.plans import grid_plan
    from sweeper.run.training import data
    from sweeper.run.trial import ray_trainable

    space = load_text("epochs: 3\nscheduler: {type: fifo}\ndata: {train_subset: 300, val_subset: 100, "
                      "test_subset: 100}\nparameters: {model: logreg}\n", tmp_path / "h.yaml")
    splits = data.load(real_data, space.spec.data)
    tuner = tune.Tuner(
        tune.with_parameters(ray_trainable, splits=splits, space=space, epochs=3, cpus=1),
        param_space=grid_plan(space).param_space,
        run_config=tune.RunConfig(name="runs", storage_path=str(tmp_path / "store" / "sw"), verbose=0),
    )
    result = tuner.fit()[0]
    assert result.error is None, result.error
    assert result.metrics is not None
    trial_id = result.metrics["trial_id"]
    trial_dir = Path(result.path)
    for k in range(3):
        carried = parse((trial_dir / f"checkpoint_{k:06d}" / HISTORY_FILE).read_bytes())
        assert [(r["trial_id"], r["epoch"]) for r in carried] == [(trial_id, e) for e in range(1, k + 2)]
    logged = {r["epoch"]: r for r in parse((trial_dir / "result.json").read_bytes())}
    assert carried[-1]["val_accuracy"] == logged[3]["val_accuracy"]  # the same report Ray logged

    storage = Storage.parse(str(tmp_path / "store"))
    folder, runs = storage.folder("sw"), storage.folder("sw/runs")
    writer = ResultsWriter(folder)
    writer.trial(trial_id, state="RUNNING")
    for epoch in (1, 2):
        writer.add_result(trial_id, logged[epoch])
    writer.flush()
    (trial_dir / "result.json").unlink()

    assert backfill(folder, runs, {"sessions": [{"started": 0}]}) == 1
    rows = {r["epoch"]: r for r in read_rows(folder, "epochs.parquet")}
    assert sorted(rows) == [1, 2, 3]
    assert rows[3]["session"] == 0 and rows[3]["val_accuracy"] == logged[3]["val_accuracy"]
    assert read_rows(folder, "trials.parquet")[0]["epochs"] == 3
    assert backfill(folder, runs, {"sessions": [{"started": 0}]}) == 0  # nothing twice


def test_a_restored_history_goes_on_from_its_checkpoint_and_keeps_the_newest(tmp_path: Path) -> None:
    history = History("t1")
    for epoch in (1, 2):
        history.add({"epoch": epoch, "val_loss": float("nan"), "lr": 0.1})
    history.write(tmp_path)
    (tmp_path / HISTORY_FILE).write_text((tmp_path / HISTORY_FILE).read_text() + '{"epoch": 3, "tri')  # cut short
    again = History("t1")
    again.restore(tmp_path)
    again.add({"epoch": 3})
    assert [json.loads(line)["epoch"] for line in again.lines] == [1, 2, 3]
    assert json.loads(again.lines[0])["val_loss"] is None  # JSON has no NaN: the row reads it as missing
    fresh = History("t2")
    fresh.restore(tmp_path / "nowhere")  # a checkpoint written before histories
    assert fresh.lines == []
