"""A resume with nothing for Ray to restore: the driver was killed before Ray's first snapshot of the experiment
(Ray takes one about every 10 s), or while Ray wrote its only one. Ray's restore then fails, says so only in its
own log, and starts the experiment over with the searcher it began with, which ended the sweep early (the chaos
soak, benchmarks/chaos.py, met it: exit 130 with trials pending). sweeper keeps the trials that ended and runs the
rest of the budget as a new experiment in the sweep's folder.

The state is built deterministically: a finished sweep whose Ray state is then removed (or emptied) and whose
trials.parquet is cut back to what a killed driver leaves (two trials ended, one running, one never recorded).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.store.files import TRIALS_FILE

runner = CliRunner()
LRS = [0.1, 0.05, 0.02, 0.01]
SPACE = ("name: nostate\nepochs: 2\nscheduler: {type: fifo}\nmax_concurrent: 1\n"
         "parameters: {model: logreg, lr: {grid: [0.1, 0.05, 0.02, 0.01]}}\n")


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_a_resume_with_no_ray_state_keeps_the_ended_trials_and_runs_the_rest(
    state: str, tmp_path: Path, tiny_data: Path, ray_session: object
) -> None:
    space, runs = tmp_path / "nostate.yaml", tmp_path / "runs"
    space.write_text(SPACE)
    result = runner.invoke(app, ["launch", str(space), "--storage", str(runs), "--data-dir", str(tiny_data), "-q"])
    assert result.exit_code == 0, result.output
    folder = runs / "nostate"
    for file in folder.glob("experiment_state-*.json"):
        if state == "missing":
            file.unlink()
        else:
            file.write_bytes(b"")  # the kill's, mid-write
    table = pq.read_table(folder / TRIALS_FILE)
    rows = sorted(table.to_pylist(), key=lambda r: r["param_lr"], reverse=True)
    kept, running = rows[:2], rows[2]
    running_cut = {**running, "state": "RUNNING", "epochs": 1, "test_loss": None, "test_accuracy": None}
    pq.write_table(pa.Table.from_pylist([*kept, running_cut], schema=table.schema), folder / TRIALS_FILE)
    epochs = pq.read_table(folder / "epochs.parquet")
    pq.write_table(epochs.filter(pa.array([e["trial_id"] != rows[3]["trial_id"] and (
        e["trial_id"] != running["trial_id"] or e["epoch"] == 1) for e in epochs.to_pylist()])),
        folder / "epochs.parquet")

    result = runner.invoke(app, ["resume", "nostate", "--storage", str(runs), "--data-dir", str(tiny_data)])
    assert result.exit_code == 0, result.output
    assert "Ray saved no whole experiment state" in result.output
    after = pq.read_table(folder / TRIALS_FILE).to_pylist()
    assert len(after) == 4 and {r["state"] for r in after} == {"TERMINATED"}, after
    assert sorted(r["param_lr"] for r in after) == sorted(LRS)  # the budget exactly: the rest of the grid
    by_id = {r["trial_id"]: r for r in after}
    for row in kept:  # the trials that ended: kept as they were
        assert by_id[row["trial_id"]]["val_accuracy"] == row["val_accuracy"]
    assert running["trial_id"] not in by_id  # the unfinished one started over, under a new id
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    keys = [(e["trial_id"], e["epoch"]) for e in epochs]
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == set(by_id)
    for trial_id, row in by_id.items():
        assert sorted(e for t, e in keys if t == trial_id) == list(range(1, row["epochs"] + 1))
