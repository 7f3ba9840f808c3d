"""Parquet writer/readers: contract columns, atomic rewrites, reload without duplicates, bad files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sweeper.errors import SweeperError
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.parquet import read_frame
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.writer import ResultsWriter


def folder_of(path: Path) -> SweepFolder:
    """`path` as a sweep folder: its parent the storage."""
    return Storage.parse(str(path.parent)).folder(path.name)


def read_trials(path: Path) -> pd.DataFrame:
    return read_frame(folder_of(path), TRIALS_FILE)


def read_epochs(path: Path) -> pd.DataFrame:
    return read_frame(folder_of(path), EPOCHS_FILE)


def result(epoch: int, **extra: object) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5, "val_loss": 1.1 / epoch,
            "val_accuracy": 0.4 + epoch / 100, "time_s": 0.5, "time_total_s": 0.6 * epoch, "node": "n1", **extra}


def test_writer_produces_the_contract_columns(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path), flush_every_s=3600)
    w.set_params("t1", "4th CNN", {"filters": 32, "hidden": [256, 128], "lr": 0.001})
    for e in (1, 2):
        w.add_result("t1", result(e))
    w.add_result("t1", result(3, finished=True, early_stopped=True, test_loss=0.3, test_accuracy=0.9))
    w.trial("t1", state="TERMINATED")
    w.flush()
    trials, epochs = read_trials(tmp_path), read_epochs(tmp_path)
    assert list(epochs.columns) == EPOCH_SCHEMA.names
    assert TRIAL_SCHEMA.names == list(trials.columns[: len(TRIAL_SCHEMA.names)])
    row = trials.iloc[0]
    assert (row.variant, row.state, row.epochs, row.stopped_by) == ("4th CNN", "TERMINATED", 3, "early_stopping")
    assert (row.param_filters, row.param_hidden, row.test_accuracy) == (32, "[256, 128]", 0.9)
    assert epochs.epoch.tolist() == [1, 2, 3] and epochs.time_s.tolist() == [0.5] * 3
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_empty_writer_still_writes_readable_files(tmp_path: Path) -> None:
    ResultsWriter(folder_of(tmp_path)).flush()
    assert len(read_trials(tmp_path)) == 0 and list(read_epochs(tmp_path).columns) == EPOCH_SCHEMA.names


def test_flushes_are_throttled_but_a_flush_writes_everything(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path), flush_every_s=3600)
    w.add_result("t1", result(1))  # first result flushes at once
    w.add_result("t1", result(2))  # throttled
    assert len(read_epochs(tmp_path)) == 1
    w.flush()
    assert len(read_epochs(tmp_path)) == 2


def test_a_new_writer_continues_the_files_without_duplicates(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path))
    w.add_result("t1", result(1))
    w.add_result("t1", result(2))
    w.flush()
    again = ResultsWriter(folder_of(tmp_path))  # e.g. after a resume
    again.add_result("t1", result(2))  # the epoch re-run after the last checkpoint
    again.add_result("t1", result(3))
    again.add_result("t2", result(1))
    again.flush()
    epochs = read_epochs(tmp_path)
    assert list(zip(epochs.trial_id, epochs.epoch, strict=True)) == [("t1", 1), ("t1", 2), ("t1", 3), ("t2", 1)]
    assert sorted(read_trials(tmp_path).trial_id) == ["t1", "t2"]


def test_missing_and_corrupt_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match="no such results file"):
        read_trials(tmp_path)
    (tmp_path / "epochs.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SweeperError, match="not a readable Parquet file") as exc:
        read_epochs(tmp_path)
    assert "\n" not in str(exc.value)


def test_pandas_reads_the_files_directly(tmp_path: Path) -> None:
    w = ResultsWriter(folder_of(tmp_path))
    w.add_result("t1", result(1))
    w.flush()
    assert pd.read_parquet(tmp_path / "epochs.parquet").val_accuracy.iloc[0] == pytest.approx(0.41)
