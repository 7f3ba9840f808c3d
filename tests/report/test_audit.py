"""The ASHA audit on a synthetic epochs.parquet (written by the real ResultsWriter): rank correlation per rung
against scipy and an exact permutation count done here, the noise band, and the possible late bloomers.

Rungs at epochs 1 and 3 (9 epochs, grace 1, factor 3). Five trials run to the end; F4 and F5 are replicates
(seeds 0 and 1 of one configuration), so the noise band is their std at each rung. S1 and S2 are stopped at
epoch 1, T1 and T2 at epoch 3; S1 and T1 lie within the band of the weakest promoted trial, S2 and T2 do not.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st
from rich.console import Console

from sweeper.report.analysis import audits_of
from sweeper.report.audit import DEFAULT_BAND, spearman
from sweeper.report.frame import Report, build_report
from sweeper.report.terminal import print_rich
from sweeper.store.storage import Storage
from tests.report.writing import Planned, table, write_sweep

SPEC = """\
name: rungs
metric: val_accuracy
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters:
  model: mlp
  lr: {loguniform: [1.0e-4, 1.0e-1]}
"""
# name: (lr, seed, val accuracy at epoch 1, at epoch 3, final at epoch 9 or None if stopped)
TRIALS = {
    "F1": (0.001, 0, 0.60, 0.70, 0.90), "F2": (0.002, 0, 0.58, 0.72, 0.88), "F3": (0.003, 0, 0.55, 0.65, 0.86),
    "F4": (0.004, 0, 0.52, 0.66, 0.85), "F5": (0.004, 1, 0.50, 0.60, 0.80),
    "S1": (0.005, 0, 0.497, None, None), "S2": (0.006, 0, 0.40, None, None),
    "T1": (0.007, 0, 0.56, 0.596, None), "T2": (0.008, 0, 0.57, 0.50, None),
}


def curve(e1: float, e3: float | None, final: float | None) -> list[float]:
    if e3 is None:
        return [e1]
    if final is None:
        return [e1, (e1 + e3) / 2, e3]
    return [e1, (e1 + e3) / 2, e3, *np.linspace(e3, final, 7)[1:].tolist()]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    plan = [Planned({"lr": lr, "seed": seed}, curve(e1, e3, final), end="done" if final else "asha")
            for lr, seed, e1, e3, final in TRIALS.values()]
    return write_sweep(tmp_path_factory.mktemp("runs"), "rungs", SPEC, plan)


@pytest.fixture(scope="module")
def rep(storage: Storage) -> Report:
    return build_report(["rungs"], storage)


def exact_p(x: list[float], y: list[float]) -> float:
    """Two-sided p of Spearman's rho by counting every pairing (n! of them), independent of the code under test."""
    rho = st.spearmanr(x, y).statistic
    found = [st.spearmanr(x, list(p)).statistic for p in itertools.permutations(y)]
    return float(np.mean([abs(r) >= abs(rho) - 1e-12 for r in found]))


def test_rank_correlation_per_rung(rep: Report) -> None:
    (a,) = audits_of(rep)
    assert a.rungs is not None and a.rungs["rung"].tolist() == [1, 3]
    finals = [TRIALS[f"F{i}"][4] for i in range(1, 6)]
    for row, at in zip(a.rungs.itertuples(), (2, 3), strict=True):
        x = [TRIALS[f"F{i}"][at] for i in range(1, 6)]
        assert row.n == 5
        assert row.rho == pytest.approx(st.spearmanr(x, finals).statistic)
        assert row.p == pytest.approx(exact_p(x, finals))  # 5 trials: every pairing counted
    assert a.rungs["rho"].tolist() == pytest.approx([1.0, 0.8])


def test_noise_band_and_late_bloomers(rep: Report) -> None:
    (a,) = audits_of(rep)
    assert a.rungs is not None
    band1, band3 = np.std([0.52, 0.50], ddof=1), np.std([0.66, 0.60], ddof=1)  # F4 and F5 at each rung
    assert a.rungs["band"].tolist() == pytest.approx([band1, band3])
    assert a.rungs["band_from"].tolist() == [f"median std of replicates at epoch {r} over 1 configuration"
                                             for r in (1, 3)]
    assert a.rungs["stopped"].tolist() == [2, 2] and a.rungs["promoted"].tolist() == [7, 5]
    assert a.rungs["weakest"].tolist() == pytest.approx([0.50, 0.60])
    ids = {f"rungs_{i:05d}": name for i, name in enumerate(TRIALS)}
    assert [ids[t] for t in a.bloomers["trial_id"]] == ["S1", "T1"]
    text = io.StringIO()
    print_rich(rep, Console(width=160, file=text, color_system=None))
    header, rows = table(text.getvalue(), "ASHA audit: rungs")
    assert header == ["rung epoch", "n", "Spearman ρ", "p", "stopped", "promoted", "weakest promoted", "noise band",
                      "late bloomers"]
    assert rows[0][:3] == ["1", "5", "+1.000"] and rows[0][-1] == "1" and rows[1][-1] == "1"
    assert "possible late bloomer: rungs_00005 stopped at epoch 1 with val_accuracy 0.4970; the weakest promoted " \
           "had 0.5000" in " ".join(text.getvalue().split())


def test_without_replicates_the_default_band(storage: Storage) -> None:
    rep = build_report(["rungs"], storage, where="trial_id != 'rungs_00004'")  # F5 gone: no replicates
    (a,) = audits_of(rep)
    assert a.rungs is not None
    assert a.rungs["band"].tolist() == [DEFAULT_BAND["accuracy"]] * 2
    assert a.rungs["band_from"].tolist() == ["no replicates: the default for an accuracy"] * 2
    assert a.bloomers.empty  # the weakest promoted is now F4 (0.52 and 0.66): S1 and T1 are out of the band


def test_small_samples_get_a_permutation_p() -> None:
    rho, p = spearman(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert rho == pytest.approx(1.0) and p == pytest.approx(exact_p([1, 2, 3], [1, 2, 3]))  # 1/3, not 0


def test_no_asha_no_audit_and_no_epochs_says_so(tmp_path: Path, storage: Storage) -> None:
    fifo = SPEC.replace("{type: asha, grace_period: 1, reduction_factor: 3}", "{type: fifo}")
    rep = build_report(["plain"], write_sweep(tmp_path, "plain", fifo, [Planned({"lr": 0.01}, [0.5])]))
    assert audits_of(rep) == []
    folder = storage.folder("rungs")
    (folder.path / "epochs.parquet").rename(folder.path / "epochs.moved")
    try:
        (a,) = audits_of(build_report(["rungs"], storage))
        assert a.rungs is None and "no such results file" in a.lines()[0]
    finally:
        (folder.path / "epochs.moved").rename(folder.path / "epochs.parquet")
