"""Calibration (run/calibrate.py): positive seconds per epoch that grow with the architecture, cached per
architecture so a second call measures nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.run import calibrate
from sweeper.spec.cost import architecture, trial_architectures
from sweeper.spec.loader import load
from sweeper.spec.params import TrialParams

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


def test_seconds_per_epoch_are_positive_architecture_dependent_and_cached(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(SPACE)
    space = load(path)
    archs = trial_architectures(space)
    assert len(archs) == 4 and len(set(archs)) == 2
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
    timing = calibrate.timing(space)
    assert timing["seconds_per_epoch"] == seconds and 1 <= timing["slots"] <= 4


def test_params_of_an_architecture_round_trips() -> None:
    for p in (TrialParams(model="mlp", hidden=[256, 128]), TrialParams(model="logreg", batch_size=64),
              TrialParams(conv_layers=3, filters=[8, 16, 32], dense=[128], padding="same", batch_norm=True)):
        arch = architecture(p.model_dump())
        assert architecture(calibrate.params_of(arch).model_dump()) == arch


def test_an_epoch_extrapolates_batches_and_evaluated_images() -> None:
    entry = {"train_batch_s": 0.01, "eval_image_s": 1e-5}
    assert calibrate.epoch_seconds(entry, 32, 48_000, 12_000) == pytest.approx(1500 * 0.01 + 12_000 * 1e-5)
