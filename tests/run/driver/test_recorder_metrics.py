"""ParquetRecorder on a real Tune run of a space with its own loop and declared metrics (`metrics: {val_f1: max}`):
every epoch's val_f1 and the last result's test_f1 reach their columns in epochs.parquet and trials.parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweeper.run.driver.recorder import ParquetRecorder
from sweeper.spec.loader import load_text
from sweeper.spec.usermodels import TRAINABLE, recorded
from sweeper.store.storage import Storage
from sweeper.store.trials import best

SPEC = """\
name: own
trainable: mypkg.loop:train
metrics: {val_f1: max}
metric: val_f1
epochs: 3
scheduler: {type: fifo}
parameters:
  width: {grid: [32, 64]}
"""
LOOP = {TRAINABLE: {"ref": "mypkg.loop:train", "keys": {"lr": 0.001, "width": 64}, "whole": ["width"],
                    "sha256": "0" * 64, "files": [], "roots": []}}


def test_declared_metrics_reach_both_files(tmp_path: Path, ray_session: Any) -> None:
    from ray import tune

    from sweeper.run.search.plans import grid_plan

    space = load_text(SPEC, tmp_path / "own.yaml", recorded(LOOP))
    folder = Storage.parse(str(tmp_path / "runs")).folder("own")

    def trainable(config: dict[str, Any]) -> None:  # a loop reporting val_f1 (and no accuracy) as sweeper's does
        width = config["width"]
        for epoch in (1, 2, 3):
            f1 = width / 100 + epoch / 100
            last = {"finished": True, "test_f1": f1 - 0.01, "test_loss": 0.5} if epoch == 3 else {}
            tune.report({"epoch": epoch, "val_f1": f1, "val_loss": 1 / epoch, "train_loss": 1 / epoch, **last})

    plan = grid_plan(space)
    tuner = tune.Tuner(
        trainable, param_space=plan.param_space,
        tune_config=tune.TuneConfig(search_alg=plan.search_alg, num_samples=plan.num_samples),
        run_config=tune.RunConfig(name="own", storage_path=str(tmp_path / "runs"), verbose=0,
                                  callbacks=[ParquetRecorder(folder, space, echo=None)]),
    )
    assert all(r.error is None for r in tuner.fit())

    epochs = pq.read_table(folder.path / "epochs.parquet")
    trials = pq.read_table(folder.path / "trials.parquet")
    assert epochs.schema.field("val_f1").type == pa.float64()
    assert [trials.schema.field(m).type for m in ("val_f1", "test_f1")] == [pa.float64()] * 2
    rows = trials.to_pylist()
    got = sorted((r["param_width"], r["state"], r["epochs"], r["val_f1"], r["test_f1"]) for r in rows)
    assert [g[:3] for g in got] == [(32, "TERMINATED", 3), (64, "TERMINATED", 3)]
    assert [g[3:] for g in got] == [pytest.approx((0.35, 0.34)), pytest.approx((0.67, 0.66))]
    assert all(r["val_accuracy"] is None and r["test_accuracy"] is None for r in rows)
    assert sorted(r["val_f1"] for r in epochs.to_pylist()) == pytest.approx(sorted(
        w / 100 + e / 100 for w in (32, 64) for e in (1, 2, 3)))
    assert best(rows, space.spec.metric, space.spec.mode)["param_width"] == 64  # type: ignore[index]
