"""Shared fixtures: a tiny synthetic Fashion-MNIST folder, the real one, an isolated cache, the one in-process Ray;
and the test tiers: a test is end-to-end (marker `e2e`, left out by `scripts/test --fast`) when it needs a Ray
(the shared `ray_session`, or a driver subprocess of its own) or says so with `@pytest.mark.e2e`."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.drivers import session_pids

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SWEEPER_CACHE_DIR", tempfile.mkdtemp(prefix="sweeper-test-cache-"))


def write_idx(folder: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Four IDX .gz files of learnable 28x28 images: class k lights up rows 2k..2k+3, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 8, 4:24] = 220
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only folder of 600 train + 200 test synthetic images in the official file format."""
    folder = write_idx(tmp_path_factory.mktemp("tiny") / "fashion-mnist")
    for f in folder.iterdir():
        f.chmod(0o444)
    folder.chmod(0o555)
    return folder


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The shared, genuine Fashion-MNIST. Missing data fails the test; it never skips."""
    folder = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")
    path = Path(folder)
    assert (path / "train-images-idx3-ubyte.gz").is_file(), f"Fashion-MNIST not found in {path}"
    return path


E2E_FIXTURES = {"ray_session", "drivers"}  # a Ray in this process, or driver subprocesses (each starts its own)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark end-to-end every test that uses (directly or through its fixtures) a Ray or a driver subprocess."""
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the in-process CLI tests (launch reuses an initialised Ray)."""
    import ray

    from sweeper.run.driver.startup import REUSE_WAIT_S, REUSE_WAIT_VAR

    os.environ.setdefault(REUSE_WAIT_VAR, REUSE_WAIT_S)  # as init_ray sets it for the Ray a sweep starts
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def drivers():
    """Driver subprocesses a test starts; their process groups are killed when it ends."""
    from .drivers import Driver

    started: list[Driver] = []
    yield started
    for d in started:
        d.kill_group()
        d.proc.wait(timeout=30)


@pytest.fixture
def reaped(drivers: list[Any]) -> Iterator[list[Any]]:
    """`drivers`, and at the end every process left in their sessions is killed by pid."""
    yield drivers
    for d in drivers:
        for pid in session_pids(d.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
