"""A sweep of a user's own training loop with a declared metric, for the report's and the watch views' tests:
`trainable: mypkg.loop:train`, `metrics: {val_f1: max}`, `metric: val_f1`, under ASHA, written by the real
ResultsWriter with the sweep.json `models` entry launch records for the loop (tests/report/writing.py).

Twelve trials: width 32/64 x lr 0.001/0.01 x seeds 0-2 (four configurations of three replicates). val_f1 ends at
0.70 + 0.08 (width 64) + 0.03 (lr 0.01) + 0.004 x seed; test_f1 is 0.01 below it. own_00001 is stopped by ASHA at
epoch 1, own_00004 at epoch 3. The best trial is own_00011 (width 64, lr 0.01, seed 2: val_f1 0.818).
"""

from __future__ import annotations

from pathlib import Path

from sweeper.store.storage import Storage
from tests.report.writing import Planned, loop_models, write_sweep

NAME = "own"
SPEC = """\
name: own
description: F1 of my own loop, under ASHA.
trainable: mypkg.loop:train
metrics: {val_f1: max}
metric: val_f1
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters:
  width: {grid: [32, 64]}
  lr: {grid: [0.001, 0.01]}
  seed: {grid: [0, 1, 2]}
"""
MODELS = loop_models("mypkg.loop:train", {"lr": 0.001, "width": 64})
TRIALS = 12
STOPPED = {1: 1, 4: 3}  # trial -> the rung ASHA stopped it at
BEST = "own_00011"


def keys(i: int) -> dict[str, float | int]:
    return {"width": (32, 64)[i // 6], "lr": (0.001, 0.01)[i // 3 % 2], "seed": i % 3}


def final_f1(i: int) -> float:
    k = keys(i)
    return 0.70 + 0.08 * (k["width"] == 64) + 0.03 * (k["lr"] == 0.01) + 0.004 * int(k["seed"])


def curve(i: int) -> list[float]:
    """val_f1 per epoch: rising by 0.3 over nine epochs to its final value (cut at the rung ASHA stopped it)."""
    final = final_f1(i)
    return [final - 0.3 + 0.3 * e / 9 for e in range(1, STOPPED.get(i, 9) + 1)]


def plan() -> list[Planned]:
    return [Planned(keys(i), curve(i), end="asha" if i in STOPPED else "done") for i in range(TRIALS)]


def write_own(root: Path) -> Storage:
    return write_sweep(root, NAME, SPEC, plan(), MODELS)
