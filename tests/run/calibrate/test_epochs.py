"""Calibration (run/calibrate): positive seconds per epoch that grow with the architecture, measured with the
sweep's other trials at once as load (load.py's helpers), cached per architecture and trials at once so a second
call measures nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeper.run.calibrate import epochs as calibrate
from sweeper.run.calibrate import load as loadgen
from sweeper.run.calibrate.load import Workload
from sweeper.spec.cost import architecture, trial_architectures
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams
from sweeper.spec.usermodels import UserModel

SPACE = """
name: cal
epochs: 2
resources: {cpu: 1}
data: {train_subset: 2000, val_subset: 500}
parameters:
  model: cnn
  lr: {grid: [0.1, 0.01]}
variants:
  - {name: small, conv_layers: 4, filters: 8, pool_every: 2, kernel_size: 3}
  - {name: big, conv_layers: 4, filters: 64, pool_every: 2, kernel_size: 3}
"""


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.e2e  # real training in helper processes
def test_seconds_per_epoch_are_positive_architecture_dependent_and_cached(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(SPACE)
    space = load(path)
    archs = trial_architectures(space)
    assert len(archs) == 4 and len(set(archs)) == 2
    monkeypatch.setattr(calibrate, "machine_load", lambda: 1.2)  # a busy machine (per CPU)
    seconds = calibrate.seconds_per_epoch(space)
    assert set(seconds) == set(archs) and all(s > 0 for s in seconds.values())
    small = architecture(TrialParams(conv_layers=4, filters=8, pool_every=2).model_dump())
    big = architecture(TrialParams(conv_layers=4, filters=64, pool_every=2).model_dump())
    assert seconds[big] > seconds[small]
    assert (cache / calibrate.CACHE_FILE).is_file()

    def no_measuring(*_: object) -> dict[str, float]:
        raise AssertionError("measured again despite the cache")

    monkeypatch.setattr(calibrate, "measure", no_measuring)
    assert calibrate.seconds_per_epoch(space) == seconds  # cached: nothing measured
    monkeypatch.setattr(calibrate, "machine_load", lambda: 0.8)  # a little quieter: still good enough
    timing = calibrate.timing(space)
    assert timing["seconds_per_epoch"] == seconds and 1 <= timing["slots"] <= 4

    retaken: list[object] = []
    monkeypatch.setattr(calibrate, "measure", lambda *a: retaken.append(a) or {"train_batch_s": 1.0,
                                                                                "eval_image_s": 0.0})
    monkeypatch.setattr(calibrate, "machine_load", lambda: 0.6)  # quieter by at least BUSIER: taken again
    assert set(calibrate.seconds_per_epoch(space).values()) == {63.0}  # 2,000 images in batches of 32
    assert len(retaken) == 2
    entries = json.loads((cache / calibrate.CACHE_FILE).read_text())
    assert sorted(e["load"] for e in entries.values()) == [0.6, 0.6]
    monkeypatch.setattr(calibrate, "machine_load", lambda: 0.0)  # taken below saturation: kept, however quiet now
    assert set(calibrate.seconds_per_epoch(space).values()) == {63.0} and len(retaken) == 2


def test_params_of_an_architecture_round_trips() -> None:
    for p in (TrialParams(model="mlp", hidden=[256, 128]), TrialParams(model="logreg", batch_size=64),
              TrialParams(conv_layers=3, filters=[8, 16, 32], dense=[128], padding="same", batch_norm=True)):
        arch = architecture(p.model_dump())
        assert architecture(Workload().params(arch).model_dump()) == arch


def test_params_of_a_user_models_architecture_puts_its_keys_in_user() -> None:
    mine = UserModel("mine", "pkg.nets:build", {"width": 8, "act": "relu"}, frozenset({"width"}))
    p = Workload(models={"mine": mine}).params("model=mine act=gelu width=16 batch_size=64")
    assert (p.model, p.batch_size, p.user) == ("mine", 64, {"act": "gelu", "width": 16})
    assert architecture(p.recorded()) == "model=mine act=gelu width=16 batch_size=64"


def test_an_epoch_extrapolates_batches_and_evaluated_images() -> None:
    entry = {"train_batch_s": 0.01, "eval_image_s": 1e-5}
    assert calibrate.epoch_seconds(entry, 32, 48_000, 12_000) == pytest.approx(1500 * 0.01 + 12_000 * 1e-5)


def alive(pid: int) -> bool:
    """Is the process running (not gone, not a zombie waiting for its parent to reap it)?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.e2e  # real training in helper processes
def test_calibration_measures_with_the_other_trials_at_once_as_load(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []
    real_enter = loadgen.Load.__enter__

    def enter(self: loadgen.Load) -> loadgen.Load:
        out = real_enter(self)
        started.extend(h.pid for h in self.helpers)
        return out

    monkeypatch.setattr(loadgen.Load, "__enter__", enter)
    monkeypatch.setattr(calibrate.os, "cpu_count", lambda: 2)  # 2 trials at once (cpu: 1 each, 4 trials)
    path = tmp_path / "cal.yaml"
    path.write_text(SPACE)
    space = load(path)
    seconds = calibrate.seconds_per_epoch(space)
    assert len(started) == 1  # one helper: the other trial at once
    entries = json.loads((cache / calibrate.CACHE_FILE).read_text())
    assert {e["at_once"] for e in entries.values()} == {2} and len(entries) == len(seconds) == 2
    assert not any(alive(pid) for pid in started)
    monkeypatch.setattr(calibrate.os, "cpu_count", lambda: 1)  # one at a time: measured anew, without helpers
    calibrate.seconds_per_epoch(space)
    assert len(started) == 1 and len(json.loads((cache / calibrate.CACHE_FILE).read_text())) == 4


@pytest.mark.e2e  # real training in helper processes
def test_a_helper_trains_each_architecture_and_dies_with_its_parent(tmp_path: Path) -> None:
    arch = architecture(TrialParams(model="mlp", hidden=[16]).model_dump())
    parent = subprocess.run(  # a parent killed without cleaning up: no __exit__, no closing of pipes by hand
        [sys.executable, "-c", "import os, sys\nfrom sweeper.run.calibrate.load import Load\n"
         f"load = Load(1, 1).__enter__()\nload.train({arch!r})\nload.train({arch!r})\n"
         "print(load.helpers[0].pid, load.helpers[0].poll(), flush=True)\nos._exit(0)"],
        capture_output=True, text=True, timeout=120)
    pid, code = parent.stdout.split()
    assert code == "None"  # the helper was training, alive, after two switches
    helper = int(pid)
    deadline = time.monotonic() + 30
    while alive(helper):
        assert time.monotonic() < deadline, "the helper outlived its parent"
        time.sleep(0.1)
