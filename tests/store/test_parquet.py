"""Parquet rows (store/parquet.py, store/schema.py): a round trip keeps the schema's types and extra columns, a
column subset may name columns a file lacks, and `param_<key>` is null where a key does not apply."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweeper.errors import SweeperError
from sweeper.spec.params import TrialParams
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.parquet import read_frame, read_rows, write_rows
from sweeper.store.schema import EPOCH_SCHEMA, PARAM_PREFIX, TRIAL_SCHEMA, param_columns, param_value
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.writer import ResultsWriter


@pytest.fixture
def folder(tmp_path: Path) -> SweepFolder:
    return Storage.parse(str(tmp_path)).folder("sweep")


def test_rows_round_trip_with_the_schemas_types_then_extra_columns(folder: SweepFolder) -> None:
    rows = [
        {"trial_id": "a", "state": "TERMINATED", "epochs": 3, "val_accuracy": 0.9, "param_filters": 32,
         "param_hidden": None},
        {"trial_id": "b", "state": "RUNNING", "epochs": 1, "val_accuracy": None, "param_filters": None,
         "param_hidden": "[256, 128]"},
    ]
    write_rows(folder, TRIALS_FILE, rows, TRIAL_SCHEMA)
    schema = pq.read_schema(folder.path / TRIALS_FILE)
    assert schema.names == [*TRIAL_SCHEMA.names, "param_filters", "param_hidden"]
    assert [schema.field(n).type for n in TRIAL_SCHEMA.names] == TRIAL_SCHEMA.types  # even for all-null columns
    assert (schema.field("param_filters").type, schema.field("param_hidden").type) == (pa.int64(), pa.string())
    back = read_rows(folder, TRIALS_FILE)
    assert back == [{n: r.get(n) for n in schema.names} for r in rows]  # absent keys read back as None
    assert not list(folder.path.glob(".*tmp*"))  # atomic: the temporary file was renamed


def test_read_rows_columns_and_missing_files(folder: SweepFolder) -> None:
    assert read_rows(folder, EPOCHS_FILE) == []  # not written yet
    with pytest.raises(SweeperError, match="no such results file"):
        read_frame(folder, EPOCHS_FILE)
    write_rows(folder, EPOCHS_FILE, [{"trial_id": "a", "epoch": 1, "session": 0}], EPOCH_SCHEMA)
    assert read_rows(folder, EPOCHS_FILE, ["session", "nope"]) == [{"session": 0}]  # a column it lacks is skipped
    frame = read_frame(folder, EPOCHS_FILE, ["trial_id", "epoch"])
    assert list(frame.columns) == ["trial_id", "epoch"] and frame.epoch.tolist() == [1]
    write_rows(folder, TRIALS_FILE, [], TRIAL_SCHEMA)  # no rows yet: still a file with every column
    assert read_rows(folder, TRIALS_FILE) == [] and list(read_frame(folder, TRIALS_FILE).columns) == TRIAL_SCHEMA.names


def test_an_unreadable_file_is_one_line_naming_it(folder: SweepFolder) -> None:
    folder.write_bytes(TRIALS_FILE, b"PAR1 not really")
    with pytest.raises(SweeperError) as exc:
        read_rows(folder, TRIALS_FILE)
    assert str(exc.value).startswith(f"{folder.uri(TRIALS_FILE)}: not a readable Parquet file") and \
        "\n" not in str(exc.value)


def test_param_cells() -> None:
    assert param_value([256, 128]) == "[256, 128]" and param_value((8,)) == "[8]" and param_value(0.1) == 0.1
    assert param_columns({"hidden": [8], "filters": None}) == {"param_hidden": "[8]", "param_filters": None}


@pytest.mark.parametrize(("params", "absent", "kept"), [
    (TrialParams(model="mlp", hidden=[256, 128], dropout=0.2),
     {"conv_layers", "filters", "kernel_size", "padding", "pooling", "pool_every", "dense"},
     {"hidden": "[256, 128]", "dropout": 0.2, "lr": 0.01}),
    (TrialParams(model="cnn", filters=64, kernel_size=3, optimizer="adam"),
     {"hidden"}, {"filters": 64, "kernel_size": 3, "conv_layers": 2, "dense": "[]", "lr": 0.001}),
    (TrialParams(model="logreg"), {"hidden", "filters", "kernel_size", "conv_layers", "dropout"},
     {"lr": 0.01, "batch_size": 32}),
])
def test_param_columns_are_null_where_a_key_does_not_apply(folder: SweepFolder, params: TrialParams,
                                                           absent: set[str], kept: dict[str, object]) -> None:
    recorded = params.recorded()
    assert {k for k, v in recorded.items() if v is None} >= absent
    w = ResultsWriter(folder)
    w.set_params("t", "v", recorded)
    w.flush()
    (row,) = read_rows(folder, TRIALS_FILE)
    assert set(row) == {*TRIAL_SCHEMA.names, *(PARAM_PREFIX + k for k in recorded)}  # every key has a column
    assert all(row[PARAM_PREFIX + k] is None for k in absent)
    assert {k: row[PARAM_PREFIX + k] for k in kept} == kept
    frame = read_frame(folder, TRIALS_FILE)
    assert all(frame[PARAM_PREFIX + k].isna().all() for k in absent)


def test_families_side_by_side_keep_null_where_a_key_does_not_apply(folder: SweepFolder) -> None:
    w = ResultsWriter(folder)
    w.set_params("mlp", "an MLP", TrialParams(model="mlp", hidden=[8]).recorded())
    w.set_params("cnn", "a CNN", TrialParams(model="cnn", filters=16).recorded())
    w.flush()
    mlp, cnn = read_rows(folder, TRIALS_FILE)
    assert (mlp["param_hidden"], mlp["param_filters"], mlp["param_kernel_size"]) == ("[8]", None, None)
    assert (cnn["param_hidden"], cnn["param_filters"], cnn["param_kernel_size"]) == (None, 16, 3)
    frame = read_frame(folder, TRIALS_FILE).set_index("trial_id")
    assert math.isnan(frame.loc["mlp", "param_filters"]) and frame.loc["cnn", "param_filters"] == 16
