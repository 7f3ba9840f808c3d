"""Dry-run cost: per-trial budgets (max_epochs), the full run, ASHA's expectation, and the printed table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec.cost import CostModel, asha_milestones, cost
from sweeper.spec.loader import load as load_space
from sweeper.spec.space import Space
from tests.conftest import REPO

runner = CliRunner()


def load(tmp_path: Path, text: str) -> Space:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_space(path)


@pytest.mark.e2e  # calibrates the space's architectures: helper processes train under load
def test_slides_full_run_is_the_sum_of_each_variants_max_epochs_times_its_repeats() -> None:
    c = cost(load_space(REPO / "search_spaces" / "slides.yaml"))
    assert c.budgets == (10,) * 5 + (100,) * 20 + (30,) * 3 + (26,) * 3 + (22,) * 3 + (27,) * 3 + (16,) * 2
    assert c.full == 2397 and c.expected == 2397 and not c.asha  # FIFO: every trial runs its budget
    result = runner.invoke(app, ["launch", str(REPO / "search_spaces" / "slides.yaml"), "--dry-run"],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "39 trials x 10 to 100 epochs each (their max_epochs) = 2397 trial-epochs on a full run" in result.stdout
    assert "FIFO: every trial runs its whole budget" in result.stdout
    assert "1st MLP" in result.stdout and "epochs" in result.stdout


@pytest.mark.parametrize(
    ("max_t", "grace", "rf", "rungs"),
    [(27, 1, 3, (1, 3, 9, 27)), (30, 3, 3, (3, 9, 27)), (4, 1, 2, (1, 2, 4)), (10, 1, 2.5, (1, 3, 7))],
)
def test_milestones_are_ray_ashas(max_t: int, grace: int, rf: float, rungs: tuple[int, ...]) -> None:
    from ray.tune.schedulers import ASHAScheduler

    assert asha_milestones(max_t, grace, rf) == rungs
    ray_rungs = ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=grace, reduction_factor=rf,
                              metric="m", mode="max")._brackets[0]._rungs
    assert sorted({int(-(-m // 1)) for m, _ in ray_rungs}) == list(rungs)


def test_uniform_budgets_under_asha(tmp_path: Path) -> None:
    space = load(tmp_path, """
epochs: 27
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters: {model: logreg, lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}}
""")
    c = cost(space)
    assert c.budgets == (27,) * 9 and c.model.milestones == (1, 3, 9, 27)
    # rungs 1, 3, 9 (27 is the end): each trial runs 1 epoch, 2 more if it passes rung 1, 6 more if also 3, ...
    p = c.model.passing
    each = 1 + 2 * p[0] + 6 * p[0] * p[1] + 18 * p[0] * p[1] * p[2]
    assert (c.full, c.expected, c.mean_trial) == (243, pytest.approx(9 * each), pytest.approx(each))


def test_asha_expectation_honours_each_trials_max_epochs(tmp_path: Path) -> None:
    c = cost(load(tmp_path, """
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
variants: [{name: short, model: logreg, max_epochs: 2}, {name: long, model: logreg}]
"""))
    assert c.budgets == (2, 9) and c.full == 11
    # rungs at 1, 3 (9 is the end); short: 1 + 1 more if it passes rung 1; long: 1 + 2 x that + 6 if it passes 3 too
    first, second = c.model.passing[:2]
    assert c.expected == pytest.approx((1 + first) + (1 + 2 * first + 6 * first * second))


def test_a_searched_max_epochs_counts_at_its_largest(tmp_path: Path) -> None:
    c = cost(load(tmp_path, "epochs: 20\nscheduler: {type: fifo}\nparameters: {max_epochs: {choice: [5, 12]}}\n"))
    assert c.budgets == (12,)


def test_expected_from_an_epoch_is_conditional_on_reaching_it() -> None:
    model = CostModel(milestones=(1, 3, 9), passing=(1 / 3, 1 / 3, 1 / 3))
    assert model.expected(9) == pytest.approx(1 + 2 / 3 + 6 / 9)
    assert model.expected(9, start=3) == pytest.approx(6)  # past the last rung: runs to the end
    assert model.expected(9, start=2) == pytest.approx(1 + 6 / 3)
    assert model.expected(9, start=9) == 0
    assert CostModel().expected(10, start=4) == 6  # FIFO


@pytest.mark.e2e  # calibrates the space's architectures: helper processes train under load
def test_dry_run_lists_trials_with_their_budgets_and_asha_rungs(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text("""
epochs: 30
scheduler: {type: asha, grace_period: 3, reduction_factor: 3}
variants: [{name: quick, model: logreg, max_epochs: 10}, {name: full, model: mlp, hidden: [8]}]
parameters: {lr: {grid: [0.1, 0.01]}, dropout: {uniform: [0.0, 0.3]}}
""")
    result = runner.invoke(app, ["launch", str(path), "--dry-run", "--storage", str(tmp_path / "runs")],
                           env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "mixed: 4 trials" in out and "uniform(0.0, 0.3)" in out
    assert "4 trials x 10 to 30 epochs each (their max_epochs) = 80 trial-epochs on a full run" in out
    assert "ASHA (grace_period=3, reduction_factor=3, rungs at epochs 3, 9, 27): about" in out
    rows = [line for line in out.splitlines() if "│ quick" in line or "│ full" in line]
    assert len(rows) == 4 and all(" 10 " in r for r in rows if "quick" in r)
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e  # calibrates the space's architectures: helper processes train under load
def test_dry_run_prints_the_expected_wall_time(tmp_path: Path) -> None:
    path = tmp_path / "wall.yaml"
    path.write_text("name: wall\nepochs: 3\nresources: {cpu: 1}\ndata: {train_subset: 1000, val_subset: 200}\n"
                    "parameters:\n  model: logreg\n  lr: {grid: [0.1, 0.01]}\n")
    result = runner.invoke(app, ["launch", str(path), "--dry-run"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.stdout.splitlines() if "expected wall time" in ln)
    assert re.search(r"expected wall time about \d+:\d\d:\d\d on this machine \(\d trials? at once", line), line
