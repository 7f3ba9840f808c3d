"""Declared metrics (`metrics: {val_f1: max}`) in the Parquet files: a column each in both files, after the standard
ones; "best" by them; kept, with their values and type, by a writer built without them (run/recovery.py's, which
reconciles and backfills on resume); and files without them read back as before."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.spec.metrics import EPOCH_METRICS, METRICS, Mode
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.trials import best
from sweeper.store.writer import ResultsWriter

DECLARED: dict[str, Mode] = {"val_f1": "max"}


def folder_of(path: Path) -> SweepFolder:
    return Storage.parse(str(path.parent)).folder(path.name)


def schema(path: Path, file: str) -> pa.Schema:
    return pq.read_schema(path / file)


def rows(path: Path, file: str) -> list[dict]:
    return pq.read_table(path / file).to_pylist()


def result(epoch: int, f1: float, **extra: object) -> dict:
    """A Ray Tune result of a user's loop: val_accuracy and train_accuracy not reported (null), val_f1 is."""
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "val_f1": f1, "time_s": 0.5,
            "time_total_s": 0.6 * epoch, "node": "n1", "reported_at": 100.0 + epoch, **extra}


def write_two_trials(path: Path) -> None:
    """t1 ends with the higher val_f1 but the lower val_loss; t2 the other way round."""
    w = ResultsWriter(folder_of(path), flush_every_s=3600, metrics=DECLARED)
    for tid, f1s in (("t1", (0.5, 0.8)), ("t2", (0.6, 0.7))):
        w.set_params(tid, None, {"width": 32 if tid == "t1" else 64})
        w.add_result(tid, result(1, f1s[0]))
        w.add_result(tid, result(2, f1s[1], finished=True, test_loss=0.4, test_f1=f1s[1] - 0.05,
                                 val_loss=0.3 if tid == "t1" else 0.2))
        w.trial(tid, state="TERMINATED")
    w.flush()


def test_declared_metrics_are_columns_of_both_files_after_the_standard_ones(tmp_path: Path) -> None:
    write_two_trials(tmp_path)
    epochs, trials = schema(tmp_path, EPOCHS_FILE), schema(tmp_path, TRIALS_FILE)
    assert epochs.names == ["trial_id", "epoch", *EPOCH_METRICS, "val_f1", "time_s", "session", "reported_at"]
    assert trials.names[: len(TRIAL_SCHEMA.names) + 2] == [
        "trial_id", "variant", "state", "epochs", "stopped_by", *METRICS, "val_f1", "test_f1", "wall_s", "node",
        "error", "restored_from"]
    assert {epochs.field("val_f1").type, trials.field("val_f1").type, trials.field("test_f1").type} == {pa.float64()}
    assert [(r["trial_id"], r["epoch"], r["val_f1"]) for r in rows(tmp_path, EPOCHS_FILE)] == [
        ("t1", 1, 0.5), ("t1", 2, 0.8), ("t2", 1, 0.6), ("t2", 2, 0.7)]
    by_id = {r["trial_id"]: r for r in rows(tmp_path, TRIALS_FILE)}
    assert (by_id["t1"]["val_f1"], by_id["t1"]["test_f1"]) == (0.8, 0.8 - 0.05)
    assert by_id["t1"]["val_accuracy"] is None and by_id["t1"]["test_accuracy"] is None  # not reported: null
    assert by_id["t1"]["param_width"] == 32 and by_id["t1"]["epochs"] == 2
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_best_goes_by_the_declared_metric(tmp_path: Path) -> None:
    write_two_trials(tmp_path)
    trials = rows(tmp_path, TRIALS_FILE)
    assert best(trials, "val_f1", "max")["trial_id"] == "t1"  # type: ignore[index]
    assert best(trials, "val_loss", "min")["trial_id"] == "t2"  # type: ignore[index]


def test_the_test_counterpart_waits_for_the_last_result(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path), metrics=DECLARED)
    w.add_result("t1", result(1, 0.5, test_f1=0.9))  # not finished: a test score is not taken yet
    w.flush()
    (row,) = rows(tmp_path, TRIALS_FILE)
    assert (row["val_f1"], row["test_f1"]) == (0.5, None)


def test_a_writer_without_the_space_keeps_the_declared_columns(tmp_path: Path) -> None:
    """run/recovery.py's writer: ResultsWriter(folder), to drop lost trials, then to backfill epochs."""
    write_two_trials(tmp_path)
    plain = ResultsWriter(folder_of(tmp_path))
    assert plain.epoch_metrics == (*EPOCH_METRICS, "val_f1")
    plain.drop({"t2"})
    plain.flush()
    again = ResultsWriter(folder_of(tmp_path), session=1)
    again.add_result("t3", result(1, 0.55))  # a resumed sweep's first result, before the space is at hand
    for line in (json.dumps({**result(3, 0.85), "trial_id": "t1"}), '{"epoch": 4, "trial_id": "t1", "val_f'):
        try:
            parsed = json.loads(line)  # as recovery.py reads Ray's result.json
        except json.JSONDecodeError:
            continue
        again.backfill(parsed["trial_id"], parsed)
    again.flush()
    assert schema(tmp_path, EPOCHS_FILE).field("val_f1").type == pa.float64()
    assert schema(tmp_path, TRIALS_FILE).names.index("test_f1") < schema(tmp_path, TRIALS_FILE).names.index("wall_s")
    epochs = [(r["trial_id"], r["epoch"], r["val_f1"], r["session"]) for r in rows(tmp_path, EPOCHS_FILE)]
    assert epochs == [("t1", 1, 0.5, 0), ("t1", 2, 0.8, 0), ("t1", 3, 0.85, 0), ("t3", 1, 0.55, 1)]
    by_id = {r["trial_id"]: r for r in rows(tmp_path, TRIALS_FILE)}
    assert set(by_id) == {"t1", "t3"}
    # t1's row moves up to the backfilled epoch 3 (its epochs agree with its rows); its test metric is kept
    assert (by_id["t1"]["epochs"], by_id["t1"]["val_f1"], by_id["t1"]["test_f1"]) == (3, 0.85, 0.75)
    assert by_id["t3"]["val_f1"] == 0.55


def test_declared_columns_with_no_value_yet_keep_their_type(tmp_path: Path) -> None:
    ResultsWriter(folder_of(tmp_path), metrics=DECLARED).flush()
    plain = ResultsWriter(folder_of(tmp_path))
    plain.trial("t1", state="RUNNING", config_id="abc", code=None)  # text columns beside them stay text
    plain.flush()
    trials = schema(tmp_path, TRIALS_FILE)
    assert trials.field("test_f1").type == pa.float64() and trials.field("config_id").type == pa.string()
    assert "config_id" not in ResultsWriter(folder_of(tmp_path)).trial_metrics


def test_files_without_declared_metrics_read_back_as_before(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path))
    w.set_params("t1", None, {"lr": 0.01})  # a float parameter is not a metric
    w.add_result("t1", {**result(1, 0.5), "val_accuracy": 0.7, "finished": True, "test_accuracy": 0.69})
    w.flush()
    again = ResultsWriter(folder_of(tmp_path))
    assert (again.epoch_metrics, again.trial_metrics) == (EPOCH_METRICS, METRICS)
    again.flush()
    assert schema(tmp_path, EPOCHS_FILE).names == EPOCH_SCHEMA.names  # val_f1 in a result is no column
    assert schema(tmp_path, TRIALS_FILE).names[: len(TRIAL_SCHEMA.names)] == TRIAL_SCHEMA.names
    (row,) = rows(tmp_path, TRIALS_FILE)
    assert (row["val_accuracy"], row["test_accuracy"], row["param_lr"]) == (0.7, 0.69, 0.01)
