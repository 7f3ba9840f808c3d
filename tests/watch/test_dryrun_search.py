"""`launch --dry-run` for the new search keys: random/TPE list the axes and the budget, not an expansion; a
conditional grid shows "-" where a key does not apply; repeats show each seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.conftest import REPO

runner = CliRunner()
pytestmark = pytest.mark.e2e  # every dry run calibrates its architectures: helper processes train under load


def dry_run(path: Path | str) -> str:
    result = runner.invoke(app, ["launch", str(path), "--dry-run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tpe_lists_the_axes_their_conditions_and_the_budget() -> None:
    out = dry_run(REPO / "search_spaces" / "cnn_tpe.yaml")
    assert "cnn_tpe: 32 trials, TPE (Optuna), the variants first, seed 0" in out
    assert "momentum" in out and "optimizer=sgd" in out and "loguniform(0.0001, 0.1)" in out
    assert "2conv-32f-k3-dense128" in out  # the variant is one more choice
    assert "32 trials x up to 30 epochs = 960 trial-epochs on a full run" in out
    assert "ASHA (grace_period=3, reduction_factor=3, rungs at epochs 3, 9, 27)" in out
    out = dry_run(REPO / "search_spaces" / "mlp_tpe.yaml")
    assert "mlp_tpe: 32 trials, TPE (Optuna), seed 0" in out and "momentum=0.9" in out


def test_random_with_repeats_counts_configurations_times_seeds(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("epochs: 4\nsearch: {type: random}\nnum_samples: 5\nrepeats: 3\n"
                    "parameters: {model: mlp, hidden: [8], lr: {loguniform: [0.001, 0.1]}}\n")
    out = " ".join(dry_run(path).split())  # the title wraps to the table's width
    assert "r: 15 trials (5 x 3 repeats), random draws, seed 0" in out
    assert "15 trials x up to 4 epochs = 60 trial-epochs" in out


def test_a_conditional_grid_expands_only_where_keys_apply(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("epochs: 2\nrepeats: 2\nparameters: {optimizer: {grid: [sgd, adam]}, "
                    "momentum: {grid: [0.0, 0.9], when: {optimizer: sgd}}}\n")
    out = dry_run(path)
    assert "g: 6 trials" in out and "6 trials x up to 2 epochs = 12 trial-epochs" in out
    rows = [line.split() for line in out.splitlines() if "adam" in line]
    assert len(rows) == 2 and all("-" in r for r in rows)  # no momentum for Adam, one row per seed
    assert "seed" in out
