"""End to end: `sweeper launch` through the real CLI on a real local Ray, asserting the Parquet it writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA

runner = CliRunner()


def space(tmp_path: Path, body: str, name: str = "space") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


def launch(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["launch", *args])
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_commands_and_launch_options() -> None:
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "launch" in top.stdout and "report" in top.stdout
    sub = runner.invoke(app, ["launch", "--help"])
    for option in ("--name", "--storage", "--address", "--data-dir", "--dry-run"):
        assert option in sub.stdout


@pytest.mark.e2e  # calibrates: helper processes train under load
def test_dry_run_prints_trials_and_cost_and_writes_nothing(tmp_path: Path) -> None:
    path = space(tmp_path, """
epochs: 9
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
variants: [{name: small, model: mlp, hidden: [8]}, {name: lin, model: logreg}]
parameters: {lr: {grid: [0.1, 0.01, 0.001]}, dropout: {uniform: [0.0, 0.3]}}
""")
    code, out, _ = launch(str(path), "--dry-run", "--storage", str(tmp_path / "runs"))
    assert code == 0
    assert "6 trials" in out and "54 trial-epochs" in out and "ASHA" in out
    assert "uniform(0.0, 0.3)" in out and "small" in out and "lin" in out
    assert not (tmp_path / "runs").exists()


@pytest.mark.e2e  # calibrates the CNNs: helper processes train under load
def test_shipped_cnn_space_dry_runs() -> None:
    code, out, _ = launch("search_spaces/cnn.yaml", "--dry-run")
    assert code == 0 and "32 trials" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "cannot read search space"),
        (["BAD"], "key 'epoch': unknown key (did you mean 'epochs'?)"),
        (["OK", "--name", "../x"], "--name '../x'"),
        (["OK", "--data-dir", "/nonexistent/fmnist"], "/nonexistent/fmnist: data folder does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    ok = space(tmp_path, "epochs: 1\nparameters: {model: logreg}\n", "ok")
    bad = space(tmp_path, "epoch: 1\n", "bad")
    args = [str(ok) if a == "OK" else str(bad) if a == "BAD" else a for a in args]
    code, out, err = launch(*args, "--storage", str(tmp_path / "runs"))
    assert code == 2, (out, err)
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err + out
    assert not (tmp_path / "runs").exists()


def test_launch_runs_a_real_sweep_and_writes_parquet(tmp_path: Path, tiny_data: Path, ray_session) -> None:
    path = space(tmp_path, """
name: e2e
epochs: 2
scheduler: {type: fifo}
variants:
  - {name: lin, model: logreg, optimizer: sgd, lr: 0.1}
  - {name: mlp, model: mlp, hidden: [32], optimizer: adam}
  - {name: cnn, model: cnn, conv_layers: 2, filters: 4, kernel_size: 3, optimizer: adam, lr: 0.01}
parameters:
  batch_size: 32
  seed: {grid: [0, 1]}
""")
    code, out, err = launch(str(path), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data))
    assert code == 0, out + err
    folder = tmp_path / "runs" / "e2e"
    assert "6 trials" in out and str(folder) in out
    assert (folder / "spec.yaml").read_text() == path.read_text()
    assert list(folder.glob("experiment_state-*.json")) and (folder / "tuner.pkl").exists()
    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert set(TRIAL_SCHEMA.names) <= set(trials.columns) and list(epochs.columns) == EPOCH_SCHEMA.names
    assert len(trials) == 6 and trials.trial_id.is_unique
    assert set(trials.state) == {"TERMINATED"} and trials.stopped_by.isna().all()
    assert sorted(trials.variant) == ["cnn", "cnn", "lin", "lin", "mlp", "mlp"]
    assert trials.epochs.tolist() == [2] * 6 and len(epochs) == 12
    assert sorted(trials.param_seed) == [0, 0, 0, 1, 1, 1]
    assert set(trials.param_model) == {"logreg", "mlp", "cnn"}
    assert trials[trials.variant == "mlp"].param_lr.tolist() == [0.001, 0.001]  # Adam's Keras default
    for col in ("train_accuracy", "val_accuracy", "test_accuracy"):
        assert trials[col].between(0, 1).all()
    assert (trials.val_accuracy > 0.3).all(), trials[["variant", "val_accuracy"]]  # chance is 0.1
    assert (trials.wall_s > 0).all() and trials.node.notna().all() and trials.error.isna().all()
    assert (epochs.groupby("trial_id").epoch.apply(list) == pd.Series([[1, 2]] * 6).values).all()
    assert (epochs.time_s > 0).all()


def test_asha_stops_a_weak_trial_early(tmp_path: Path, tiny_data: Path, ray_session) -> None:
    """One trial at a time: the good trial fills the rungs first, the two that cannot learn are cut at
    the first rung."""
    path = space(tmp_path, """
name: asha
epochs: 4
max_concurrent: 1
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
parameters:
  model: mlp
  hidden: [16]
  optimizer: sgd
  lr: {grid: [0.1, 1.0e-7, 2.0e-7]}
""")
    code, out, err = launch(str(path), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data))
    assert code == 0, out + err
    trials = pd.read_parquet(tmp_path / "runs" / "asha" / "trials.parquet").sort_values("param_lr")
    weak, good = trials.iloc[:2], trials.iloc[2]
    assert good.param_lr == 0.1 and good.epochs == 4 and pd.isna(good.stopped_by)
    assert good.test_accuracy > 0.5
    assert weak.stopped_by.tolist() == ["asha", "asha"] and weak.epochs.tolist() == [1, 1]
    assert weak.test_accuracy.isna().all()
    assert "2 stopped by ASHA" in out


def test_a_failing_trial_is_recorded_and_the_others_finish(tmp_path: Path, tiny_data: Path, ray_session) -> None:
    path = space(tmp_path, """
name: faults
epochs: 2
scheduler: {type: fifo}
parameters: {model: mlp, hidden: [64], optimizer: sgd, lr: {grid: [0.05, 1.0e+6]}}
""")
    code, out, err = launch(str(path), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data))
    assert code == 1, out + err
    assert "1 of 2 trials failed" in err
    trials = pd.read_parquet(tmp_path / "runs" / "faults" / "trials.parquet").set_index("param_lr")
    assert trials.loc[0.05, "state"] == "TERMINATED" and trials.loc[0.05, "epochs"] == 2
    assert trials.loc[1e6, "state"] == "ERROR" and "train loss is nan" in trials.loc[1e6, "error"]


def test_max_failures_retries_a_failed_trial(tmp_path: Path, tiny_data: Path, ray_session) -> None:
    path = space(tmp_path, """
name: retry
epochs: 1
parameters: {model: mlp, hidden: [64], optimizer: sgd, lr: 1.0e+6}
""")
    code, out, err = launch(str(path), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data),
                            "--max-failures", "2")
    assert code == 1, out + err
    (error_file,) = (tmp_path / "runs" / "retry").glob("*/error.txt")
    assert "Failure # 3" in error_file.read_text()  # the first run and two retries
