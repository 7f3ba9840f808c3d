"""Which names a space may declare under `metrics:` (spec/metrics.py)."""

from __future__ import annotations

import pytest

from sweeper.spec.metrics import EPOCH_METRICS, METRICS, check_declared
from sweeper.store.schema import epoch_schema, trial_schema

# Columns the Parquet files hold beyond their schemas' (written by name: run/driver/recorder.py, run/recovery.py)
WRITTEN_BY_NAME = ("config_id", "code", "restore_note")
OWN_COLUMNS = sorted({*trial_schema().names, *epoch_schema().names, *WRITTEN_BY_NAME} - {*METRICS, *EPOCH_METRICS})


@pytest.mark.parametrize("name", OWN_COLUMNS)
def test_a_column_sweeper_writes_itself_cannot_be_a_declared_metric(name: str) -> None:
    """A declared metric becomes a column of both files: one named like a column sweeper writes (restore_note, the
    note of a trial a resume repaired, among them) would be overwritten by it, or overwrite it."""
    assert check_declared(name) == f"{name!r} is a column sweeper or Ray Tune writes itself; pick another name"


def test_a_name_beyond_them_can() -> None:
    assert check_declared("val_f1") is None
