"""A dry run of a space with your own model and data: everything is checked and the time model calibrates your
factory at your data's shape (helper processes train it meanwhile, so this is an end-to-end test), nothing runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.cli.test_byo_resume import SPACE, write_user_code

pytestmark = pytest.mark.e2e


def test_dry_run_checks_your_code_and_times_your_model_on_your_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: the factory is timed
    write_user_code(tmp_path, "drypkg")
    (tmp_path / "dry.yaml").write_text(SPACE.format(name="udry", epochs=3, pkg="drypkg", rows=800))

    result = CliRunner().invoke(app, ["launch", str(tmp_path / "dry.yaml"), "--dry-run",
                                      "--storage", str(tmp_path / "runs")])

    assert result.exit_code == 0, (result.stdout, result.stderr)
    text = " ".join(result.stdout.split())
    assert "udry: 4 trials" in text and "width" in text and "depth" in text
    assert "expected wall time about" in text
    assert not (tmp_path / "runs").exists()
    cache = json.loads((tmp_path / "cache" / "calibration.json").read_text())
    timed = sorted(e["architecture"] for e in cache.values())
    assert timed == [f"model=mine depth={d} width={w} batch_size=32" for d in (1, 2) for w in (16, 32)]
    assert all(e["train_batch_s"] > 0 and e["eval_image_s"] > 0 for e in cache.values())
