"""Help, usage errors, shell completion, and what the fast commands import (never torch or ray)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.conftest import REPO

runner = CliRunner()

OPTIONS = {
    "launch": ["--name", "--storage", "--address", "--data-dir", "--dry-run", "--resume", "--overwrite",
               "--max-failures", "--quiet", "--verbose"],
    "resume": ["--storage", "--address", "--data-dir", "--space", "--errored", "--quiet", "--verbose"],
    "report": ["--storage", "--format", "--out"],
    "status": ["--storage", "NAME"],
    "list": ["--storage"],
}


def test_top_level_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in OPTIONS:
        assert command in result.stdout
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


@pytest.mark.parametrize("command", list(OPTIONS))
def test_every_command_has_help_with_its_options(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in OPTIONS[command]:
        assert option in result.stdout, (command, option)


def test_no_arguments_prints_the_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage:" in result.stdout and "launch" in result.stdout
    assert result.exit_code == 2  # click's convention for a missing command


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lauch"], "No such command 'lauch'. Did you mean 'launch'?"),
        (["list", "--sotrage", "x"], "No such option: --sotrage"),
        (["status", "a", "b"], "Got unexpected extra argument(s) (b)"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args, prog_name="sweeper")
    assert result.exit_code == 2
    assert f"(see: sweeper {args[0]} --help)" in result.stderr or "(see: sweeper --help)" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr


def run_sweeper(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeper", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_shell_completion_script_and_sweep_names(tmp_path: Path) -> None:
    script = run_sweeper("--show-completion", "bash")
    assert script.returncode == 0 and "_SWEEPER_COMPLETE" in script.stdout
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.json").write_text("{}")
    (tmp_path / "not-a-sweep").mkdir()
    names = run_sweeper(env={"_SWEEPER_COMPLETE": "complete_bash", "COMP_WORDS": "sweeper status a",
                             "COMP_CWORD": "2", "SWEEPER_STORAGE": str(tmp_path)})
    assert names.stdout.split() == ["alpha"]
    names = run_sweeper(env={"_SWEEPER_COMPLETE": "complete_bash", "COMP_CWORD": "4",
                             "COMP_WORDS": f"sweeper resume --storage {tmp_path} "})
    assert names.stdout.split() == ["alpha", "beta"]
    commands = run_sweeper(env={"_SWEEPER_COMPLETE": "complete_bash", "COMP_WORDS": "sweeper l", "COMP_CWORD": "1"})
    assert commands.stdout.split() == ["launch", "list"]


PROBE = """
import json, sys
from sweeper.cli import app
try:
    app(sys.argv[1:], prog_name="sweeper")
except SystemExit as exc:
    code = exc.code
heavy = [m for m in ("torch", "ray", "pandas", "torchvision", "matplotlib") if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], []),
        (["list"], []),
        (["status", "done"], []),
        pytest.param(["launch", "SPACE", "--dry-run"], [], marks=pytest.mark.e2e),  # run twice: the first calibrates
    ],
    ids=["help", "list", "status", "dry-run"],
)
def test_fast_commands_never_import_torch_ray_or_pandas(tmp_path: Path, args: list[str], allowed: list[str]) -> None:
    folder = tmp_path / "runs" / "done"
    folder.mkdir(parents=True)
    (folder / "sweep.json").write_text(json.dumps({"state": "finished", "sessions": []}))
    pq.write_table(pa.table({"trial_id": ["t_00000"], "state": ["TERMINATED"], "stopped_by": [None], "epochs": [3],
                             "val_accuracy": [0.9]}), folder / "trials.parquet")
    (tmp_path / "space.yaml").write_text("epochs: 3\nparameters: {lr: {grid: [0.1, 0.01]}}\n")
    args = [str(tmp_path / "space.yaml") if a == "SPACE" else a for a in args]
    env = {**os.environ, "SWEEPER_STORAGE": str(tmp_path / "runs"), "COLUMNS": "120",
           "SWEEPER_CACHE_DIR": str(tmp_path / "cache")}
    if "--dry-run" in args:  # a cold cache times each architecture with torch once; later dry runs read the cache
        first = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO,
                               timeout=300, env=env)
        cold = json.loads(first.stdout.strip().splitlines()[-1])
        assert cold["code"] in (0, None) and cold["heavy"] == ["torch"], first.stdout + first.stderr
        assert "expected wall time" in first.stdout
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO, timeout=120,
                         env=env)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), out.stdout + out.stderr
    assert report["heavy"] == allowed


@pytest.mark.e2e  # two real launches, each a fresh process with its own in-process Ray
def test_a_launch_imports_torch_in_the_driver_only_to_calibrate(tmp_path: Path, real_data: Path) -> None:
    """The driver of a sweep of built-in models never imports torch (nor torchvision) once the calibration cache
    holds its architecture: trials import it in their own processes. The first launch on a cold cache times the
    architecture with torch in the driver, as the dry run does. (Ray's automatic TensorBoard logger imported it
    at every launch: run/driver/loggers.py.)"""
    (tmp_path / "space.yaml").write_text("epochs: 1\nscheduler: {type: fifo}\ndata: {train_subset: 300, val_subset: "
                                         "100, test_subset: 100}\nparameters: {model: mlp, hidden: [8]}\n")
    env = {**os.environ, "SWEEPER_STORAGE": str(tmp_path / "runs"), "SWEEPER_CACHE_DIR": str(tmp_path / "cache")}
    heavy = []
    for name in ("cold", "warm"):
        args = ["launch", str(tmp_path / "space.yaml"), "--name", name, "--data-dir", str(real_data), "--quiet"]
        out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=REPO,
                             timeout=300, env=env)
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["code"] in (0, None), out.stdout + out.stderr
        heavy.append(report["heavy"])
    assert "torch" in heavy[0]  # the cold calibration
    assert "torch" not in heavy[1] and "torchvision" not in heavy[1], heavy
