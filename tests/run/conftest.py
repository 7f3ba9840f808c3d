"""A TPE sweep on a real local Ray, run once for every test of run/ that reads it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.run.searching import TINY, TPE, launch


@pytest.fixture(scope="session")
def tpe_sweep(tmp_path_factory: pytest.TempPathFactory, real_data: Path, ray_session: Any) -> Path:
    tmp = tmp_path_factory.mktemp("tpe")
    return launch(tmp, "tpe", TPE.replace("NUM", "6") + TINY, real_data)
