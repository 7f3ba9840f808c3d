"""TPE spaces, trials.parquet rows and sweeps that the search and recovery tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec.loader import load_text
from sweeper.spec.space import Space
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import write_rows
from sweeper.store.schema import TRIAL_SCHEMA, param_columns
from sweeper.store.storage import Storage, SweepFolder

runner = CliRunner()


TINY = "data: {train_subset: 300, val_subset: 200, test_subset: 200}\n"


TPE = """
epochs: 2
scheduler: {type: fifo}
search: {type: tpe, startup_trials: 3}
num_samples: NUM
seed: 3
variants: [{name: lin, model: logreg}, {name: small, model: mlp, hidden: [16]}]
parameters:
  optimizer: {choice: [sgd, adam]}
  lr: {loguniform: [1.0e-3, 1.0e-1]}
  momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}
"""


def tpe_space(num: int = 6, name: str = "tpe") -> Space:
    return load_text(TPE.replace("NUM", str(num)) + TINY, Path(f"{name}.yaml"))


def launch(tmp: Path, name: str, text: str, data: Path) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(text)
    result = runner.invoke(app, ["launch", str(path), "--storage", str(tmp / "runs"), "--data-dir", str(data), "-q"])
    assert result.exit_code == 0, result.output
    return tmp / "runs" / name


def row(space: Space, trial_id: str, config: dict[str, Any], state: str = "TERMINATED", value: float | None = 0.5,
        **extra: Any) -> dict[str, Any]:
    params = space.trial_params(config)
    return {"trial_id": trial_id, "variant": config.get("variant"), "state": state, "epochs": 2,
            "val_accuracy": value, "config_id": params.config_id(), **param_columns(params.recorded()), **extra}


def folder_with(tmp_path: Path, rows: list[dict[str, Any]]) -> SweepFolder:
    folder = Storage.parse(str(tmp_path)).folder("s")
    write_rows(folder, TRIALS_FILE, rows, TRIAL_SCHEMA)
    return folder
