"""Your own training loop through a whole sweep's life on a real local Ray: TPE + ASHA deciding on a metric of its
own (val_f1), export through its factory, and kill -9 then resume where each resumed trial continues from its
checkpoint and its random streams: its epochs after the restore are exactly those of an uninterrupted run.

The user's package is written to a temporary folder beside the search space; drivers are real `python -m sweeper`
subprocesses (tests/drivers.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from sweeper.run.training import sources
from sweeper.run.training.factories import load_space
from sweeper.run.training.loop import Tensors
from sweeper.run.training.ownloop import run_own_loop
from sweeper.run.training.usercode import roots_of
from sweeper.store.storage import Storage
from tests.drivers import Driver
from tests.raystate import kill_once_named

pytestmark = pytest.mark.e2e

LOOP = """\
import random

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def net(width: int = 16, *, input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], width), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(width, num_classes))


def f1(logits, y, k):
    pred = logits.argmax(1)
    out = []
    for c in range(k):
        tp = int(((pred == c) & (y == c)).sum()); fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        out.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(out) / k


def train(ctx, *, lr: float = 0.01, batch_size: int = 32, noise: float = 0.1):
    x, y = ctx.data.train
    k = ctx.data.num_classes
    model = ctx.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if (state := ctx.restore()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=ctx.generator)
        scale = noise * (0.5 + random.random())       # python's random stream
        total = 0.0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            jitter = torch.from_numpy(np.random.normal(size=(len(idx), x.shape[1])).astype("float32"))  # numpy's
            loss = F.cross_entropy(model(x[idx] + scale * jitter), y[idx])  # dropout: torch's
            opt.zero_grad(); loss.backward(); opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(ctx.data.val[0])
        ctx.report(epoch, train_loss=total / len(y), val_loss=F.cross_entropy(logits, ctx.data.val[1]).item(),
                   val_accuracy=(logits.argmax(1) == ctx.data.val[1]).float().mean().item(),
                   val_f1=f1(logits, ctx.data.val[1], k),
                   checkpoint={"model": model.state_dict(), "opt": opt.state_dict()})
    with torch.no_grad():
        logits = model.eval()(ctx.data.test[0])
    ctx.finish(test_f1=f1(logits, ctx.data.test[1], k),
               test_accuracy=(logits.argmax(1) == ctx.data.test[1]).float().mean().item())
"""

DATA = """\
import numpy as np

import sweeper


def blobs(rows: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 12)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    a, b = rows * 3 // 5, rows * 4 // 5
    return sweeper.Dataset(train=(x[:a], y[:a]), val=(x[a:b], y[a:b]), test=(x[b:], y[b:]))
"""

SPACE = """\
name: {name}
trainable: {pkg}.loop:train
metrics: {{val_f1: max}}
metric: val_f1
epochs: {epochs}
max_concurrent: 2
models: {{net: {pkg}.loop:net}}
data: {{source: {pkg}.data:blobs, args: {{rows: {rows}}}}}
"""
TPE = """\
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
search: {type: tpe, startup_trials: 3}
num_samples: 8
parameters:
  lr: {loguniform: [1.0e-4, 3.0e-1]}
  width: {choice: [8, 32]}
"""
GRID = """\
scheduler: {type: fifo}
parameters:
  lr: {grid: [0.01, 0.05]}
"""


def write_user_code(folder: Path, pkg: str) -> None:
    (folder / pkg).mkdir(parents=True, exist_ok=True)
    (folder / pkg / "__init__.py").write_text("")
    (folder / pkg / "loop.py").write_text(LOOP)
    (folder / pkg / "data.py").write_text(DATA)


def launch(
    tmp_path: Path, drivers: list[Driver], space_file: str, pkg: str, search: str, **space: Any
) -> tuple[Path, Path, Driver]:
    """The user's package `pkg` and a space file (SPACE filled in with `space`, then `search`) written to tmp_path,
    and a driver launching that space into tmp_path/runs: the space file, the storage and the driver."""
    write_user_code(tmp_path, pkg)
    path = tmp_path / space_file
    path.write_text(SPACE.format(pkg=pkg, **space) + search)
    runs = tmp_path / "runs"
    driver = Driver("launch", str(path), "--storage", str(runs))
    drivers.append(driver)
    return path, runs, driver


def test_a_user_loop_under_tpe_and_asha_decides_on_its_own_metric_and_exports_through_its_factory(
    tmp_path: Path, drivers: list[Driver]
) -> None:
    _, runs, driver = launch(tmp_path, drivers, "tpe.yaml", "tpeloop", TPE, name="ownloop", epochs=4, rows=1500)
    folder = runs / "ownloop"
    code, out = driver.wait(400)
    assert code == 0, out

    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert len(trials) == 8 and set(trials.state) == {"TERMINATED"}
    assert {"val_f1", "test_f1"} <= set(trials.columns) and "val_f1" in epochs.columns
    assert epochs.val_f1.between(0, 1).all() and epochs.val_f1.notna().all()
    asha = trials[trials.stopped_by == "asha"]
    completed = trials[trials.stopped_by.isna()]
    assert len(asha) >= 1 and len(completed) >= 1  # ASHA stopped some at a report, on val_f1
    assert completed.test_f1.notna().all() and asha.test_f1.isna().all()  # the final score: only for finished trials
    assert (completed.epochs == 4).all() and trials.param_lr.notna().all()
    assert set(trials.param_width) <= {8, 32} and set(trials.param_model) == {"net"}  # the factory's key, drawn
    assert trials.param_optimizer.isna().all()  # sweeper's training keys do nothing to your loop: null
    best = trials.loc[trials.val_f1.idxmax()]
    assert f"best: trial_id={best.trial_id}" in out and "val_f1" in out
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["models"]["@trainable"]["ref"] == "tpeloop.loop:train"
    assert set(sweep["models"]["@trainable"]["keys"]) == {"lr", "batch_size", "noise"}

    out_dir = tmp_path / "export"
    code, out = Driver("export", "ownloop", "--storage", str(runs), "--out", str(out_dir)).wait()
    assert code == 0, out
    card = json.loads((out_dir / "model.json").read_text())
    assert card["model"]["factory"] == "tpeloop.loop:net" and card["metrics"]["val_f1"] is not None
    assert (out_dir / "model.safetensors").is_file()


def recompute(space_file: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The trial of `config` run uninterrupted in this process, as a Ray worker runs it (one torch thread)."""
    space = load_space(space_file)
    splits = sources.load(None, space.spec.data, roots_of(space_file), str(space_file))
    results: list[dict[str, Any]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_own_loop(space, space.trial_params(config), Tensors.from_splits(splits, torch.device("cpu")),
                     space.spec.epochs, lambda result, save: results.append(result), classes=splits.classes)
    finally:
        torch.set_num_threads(threads)
    return results


def test_kill_9_then_resume_continues_each_trial_from_its_checkpoint_and_random_streams(
    tmp_path: Path, drivers: list[Driver]
) -> None:
    space, runs, driver = launch(tmp_path, drivers, "kill.yaml", "killloop", GRID, name="loopkill", epochs=5,
                                 rows=60_000)
    folder = runs / "loopkill"
    named = kill_once_named(driver, Storage.parse(str(runs)).folder("loopkill"))

    resumed = Driver("resume", "loopkill", "--storage", str(runs))
    drivers.append(resumed)
    code, out = resumed.wait(timeout=400)
    assert code == 0, out
    trials = pd.read_parquet(folder / "trials.parquet").set_index("trial_id")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert len(trials) == 2 and set(trials.state) == {"TERMINATED"} and trials.test_f1.notna().all()
    assert epochs.groupby("trial_id").epoch.apply(list).to_dict() == {t: [1, 2, 3, 4, 5] for t in trials.index}
    for trial_id, epoch in named.items():  # went on from (at least) the checkpoint Ray's state named at the kill
        assert trials.restored_from[trial_id] >= epoch, (trial_id, epoch, trials.restored_from)
    for trial_id, row in trials.iterrows():
        expected = recompute(space, {"lr": row.param_lr})
        got = epochs[epochs.trial_id == trial_id].sort_values("epoch")
        for result, (_, recorded) in zip(expected, got.iterrows(), strict=True):
            for metric in ("train_loss", "val_loss", "val_f1"):  # exactly: the same weights and random draws
                assert recorded[metric] == result[metric], (trial_id, int(recorded.epoch), metric)
        assert row.test_f1 == expected[-1]["test_f1"]
