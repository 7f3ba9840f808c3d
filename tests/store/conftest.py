"""Fixtures of the tests that kill a writer between its writes: the processes they stop, and the storage (local
disk, or a bucket of the moto S3 endpoint) they run on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.drivers import Driver
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures


@pytest.fixture
def stopped() -> Iterator[list[Driver]]:
    """killpoint processes a test starts (not Ray: no e2e tier); their groups are killed when it ends."""
    started: list[Driver] = []
    yield started
    for d in started:
        d.kill_group()
        d.proc.wait(timeout=30)


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str] | None]:
    """--storage and the environment a subprocess needs for it."""
    if request.param == "local":
        return str(tmp_path / "runs"), None
    bucket: S3 = request.getfixturevalue("s3")
    return bucket.uri("runs"), bucket.env
