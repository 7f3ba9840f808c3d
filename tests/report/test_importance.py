"""Parameter importance with bootstrap intervals, and marginal effects, on a synthetic sweep with a known answer:
30 trials where val accuracy = 0.8 + 0.05 if lr is the high one, plus small noise; dropout does nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st

from sweeper.report.analysis import effects_of, importance_of
from sweeper.report.frame import Report, build_report
from sweeper.report.importance import EPSILON, distribution, importance
from sweeper.report.markdown_csv import markdown
from sweeper.store.storage import Storage
from tests.report.writing import Planned, write_sweep

SPEC = """\
name: imp
metric: val_accuracy
epochs: 2
scheduler: {type: fifo}
parameters:
  model: mlp
  lr: {choice: [0.001, 0.1]}
  dropout: {choice: [0.0, 0.2, 0.4]}
"""
N = 30


def values() -> tuple[list[float], list[float], np.ndarray]:
    rng = np.random.default_rng(7)
    lr = [(0.001, 0.1)[i % 2] for i in range(N)]
    dropout = [(0.0, 0.2, 0.4)[i % 3] for i in range(N)]  # every pair of values five times
    metric = 0.8 + 0.05 * (np.array(lr) == 0.1) + rng.normal(0, 0.003, N)
    return lr, dropout, metric


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    lr, dropout, metric = values()
    plan = [Planned({"lr": lr[i], "dropout": dropout[i], "seed": i}, [metric[i] - 0.1, metric[i]]) for i in range(N)]
    return write_sweep(tmp_path_factory.mktemp("runs"), "imp", SPEC, plan)


@pytest.fixture(scope="module")
def rep(storage: Storage) -> Report:
    return build_report(["imp"], storage)


def test_the_effective_parameter_excludes_zero_the_other_includes_it(rep: Report) -> None:
    imp = importance_of(rep)
    assert imp.rows is not None and imp.trials == imp.used == N and imp.resamples == 200
    rows = imp.rows.set_index("param")
    assert list(imp.rows["param"]) == ["lr", "dropout"]  # seed is not a parameter here
    assert rows.loc["lr", "low"] > EPSILON and rows.loc["lr", "measurable"]
    assert rows.loc["dropout", "low"] <= EPSILON and not rows.loc["dropout", "measurable"]
    assert rows.loc["lr", "low"] <= rows.loc["lr", "importance"] <= rows.loc["lr", "high"]
    assert "no measurable effect (interval reaches 0.01 or below): dropout" in imp.lines()


def test_importance_is_reproducible(rep: Report) -> None:
    again = importance(rep.trials, rep.trial_params, rep.metric, rep.mode)
    assert again.rows is not None and importance_of(rep).rows is not None
    assert again.rows.equals(importance_of(rep).rows)


def test_marginal_effects_match_scipy(rep: Report) -> None:
    lr, _, metric = values()
    effects = effects_of(rep)
    assert set(effects) == {"lr", "dropout"}
    high = effects["lr"].set_index("label").loc["0.1"]
    mine = metric[np.array(lr) == 0.1]
    low_ci, high_ci = st.t.interval(0.95, len(mine) - 1, loc=mine.mean(), scale=st.sem(mine))
    assert high["n"] == 15 and high["mean"] == pytest.approx(mine.mean())
    assert (high["ci_low"], high["ci_high"]) == pytest.approx((low_ci, high_ci))


def test_markdown_shows_the_table(rep: Report) -> None:
    md = markdown(rep)
    part = md.split("## Parameter importance (PED-ANOVA)")[1]
    assert "| parameter | importance | 95% interval | effect |" in part
    assert "| lr |" in part and "| measurable |" in part and "| dropout |" in part and "| none measurable |" in part


def test_too_few_trials_says_so(tmp_path: Path) -> None:
    lr, dropout, metric = values()
    plan = [Planned({"lr": lr[i], "dropout": dropout[i], "seed": i}, [metric[i]]) for i in range(5)]
    rep = build_report(["few"], write_sweep(tmp_path, "few", SPEC, plan))
    imp = importance_of(rep)
    assert imp.rows is None
    assert imp.lines() == ["parameter importance: needs at least 8 trials that ran their whole protocol; 5 have"]
    assert "parameter importance: needs at least 8 trials" in markdown(rep)


def test_distributions_come_from_the_values_seen() -> None:
    import pandas as pd
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    assert distribution(pd.Series([0.001, 0.1, 0.01])) == FloatDistribution(0.001, 0.1, log=True)
    assert distribution(pd.Series([8, 32, 64])) == IntDistribution(8, 64)
    assert distribution(pd.Series(["[10]", "[256, 128]", None])) == CategoricalDistribution(["[10]", "[256, 128]"])
    assert distribution(pd.Series([True, False])) == CategoricalDistribution([False, True])
    assert distribution(pd.Series([0.2, 0.2])) is None  # one value: nothing to learn
