"""Two real `python -m sweeper launch` (and two `resume`) of one sweep that reach the lock at the same moment, on
local disk and on S3 (moto): exactly one takes it and the other exits 2 with one line naming the holder's pid.

The processes run the real command up to the lock (loading the space, the data, the calibration) and wait at the
barrier of tests/store/test_lock_race.py right before it; the winner is SIGKILLed once it holds the lock, so each
round is a few seconds rather than a whole sweep, and a resume's second round races to take over the lock the
first round's killed winner left. benchmarks/lock_race.py runs 20 rounds of each with winners that run to the end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from sweeper.store.lock import RACE_ENV, holder
from sweeper.store.storage import Storage
from tests.cli.duo import SPACE, sweeper
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures
from tests.store.test_lock_race import race

pytestmark = pytest.mark.e2e  # driver subprocesses (which stop before starting Ray)


@pytest.fixture(autouse=True)
def _no_race_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RACE_ENV, raising=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> tuple[Path, Path]:
    """A space file and local storage with sweep `duo` launched and run to its end (a resume of it still takes the
    lock before Ray finds nothing to do)."""
    import subprocess

    root = tmp_path_factory.mktemp("duo")
    (root / "duo.yaml").write_text(SPACE)
    env = {k: v for k, v in os.environ.items() if k != RACE_ENV}
    done = subprocess.run(sweeper("launch", str(root / "duo.yaml"), "--storage", str(root / "runs"), "--data-dir",
                                  str(tiny_data)), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "duo.yaml", root / "runs"


def launch_rounds(storage: str, space: Path, data: Path, tmp_path: Path, env: dict[str, str]) -> None:
    name = "launched"
    outcome = race([sweeper("launch", str(space), "--storage", storage, "--name", name, "--data-dir", str(data))] * 2,
                   env, tmp_path / "launch")
    assert holder(Storage.parse(storage).folder(name))["pid"] == outcome.winner.pid  # type: ignore[index]
    outcome.finish(kill=True)


def resume_rounds(storage: str, tmp_path: Path, env: dict[str, str]) -> None:
    """Round 0 from no lock; round 1 from the lock round 0's killed winner left."""
    folder = Storage.parse(storage).folder("duo")
    for i in range(2):
        assert (holder(folder) is None) == (i == 0)
        outcome = race([sweeper("resume", "duo", "--storage", storage)] * 2, env, tmp_path / f"resume-{i}")
        assert holder(folder)["pid"] == outcome.winner.pid  # type: ignore[index]
        outcome.finish(kill=True)


def test_two_launches_and_two_resumes_on_local_disk(finished: tuple[Path, Path], tiny_data: Path,
                                                     tmp_path: Path) -> None:
    space, finished_runs = finished
    runs = tmp_path / "runs"
    shutil.copytree(finished_runs / "duo", runs / "duo")  # this test's own copy: its killed winners leave a lock
    env = dict(os.environ)
    launch_rounds(str(runs), space, tiny_data, tmp_path, env)
    resume_rounds(str(runs), tmp_path, env)


def test_two_launches_and_two_resumes_on_s3(finished: tuple[Path, Path], tiny_data: Path, tmp_path: Path,
                                            s3: S3) -> None:
    space, runs = finished
    pafs.copy_files(str(runs / "duo"), f"{s3.bucket}/runs/duo", source_filesystem=pafs.LocalFileSystem(),
                    destination_filesystem=s3.filesystem())  # the finished sweep, as if launched there
    launch_rounds(s3.uri("runs"), space, tiny_data, tmp_path, s3.env)
    resume_rounds(s3.uri("runs"), tmp_path, s3.env)
