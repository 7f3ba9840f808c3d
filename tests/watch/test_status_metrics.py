"""`sweeper status`, `sweeper list` and the live panel of a sweep of your own loop with a declared metric
(`metric: val_f1`, higher is better; tests/report/own_loop.py): each names val_f1 and its best trial by it, from
spec.yaml, or from sweep.json's fingerprint when spec.yaml is gone."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.store.files import SPEC_FILE, STATE_FILE
from sweeper.store.storage import Storage
from sweeper.watch.live import panel, summary_line
from sweeper.watch.status import list_table, load
from tests.report.own_loop import BEST, NAME, write_own


def test_status_list_and_panel_go_by_the_declared_metric(tmp_path: Path) -> None:
    storage = write_own(tmp_path)
    t = load(storage, NAME, eta=False)
    assert (t.metric, t.mode) == ("val_f1", "max")
    best = t.best()
    assert best is not None and best["trial_id"] == BEST
    assert "best val_f1=0.8180" in summary_line(t, now=0.0)
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(panel(t, now=0.0))
    assert "val_f1 0.8180" in out.getvalue()
    title, table, warnings = list_table(storage)
    assert title.endswith("(best: val_f1)") and warnings == []
    assert list(table.columns[3].cells) == ["0.8180"]
    result = CliRunner().invoke(app, ["status", NAME, "--storage", str(tmp_path)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "val_f1" in result.stdout and "0.8180" in result.stdout


def test_without_spec_yaml_the_fingerprint_gives_a_declared_metrics_mode(tmp_path: Path) -> None:
    """A declared metric that is better lower (an error rate): its mode comes from sweep.json, not its name."""
    storage = write_own(tmp_path)
    folder = Storage.parse(str(tmp_path)).folder(NAME)
    state = json.loads(folder.read_text(STATE_FILE) or "{}")
    state["fingerprint"] = {"metric": "val_f1", "mode": "min", "metrics": {"val_f1": "min"}}
    folder.write_text(STATE_FILE, json.dumps(state))
    (folder.path / SPEC_FILE).unlink()
    t = load(storage, NAME, eta=False)
    assert (t.metric, t.mode) == ("val_f1", "min")
    best = t.best()
    assert best is not None and best["trial_id"] == "own_00001"  # the lowest val_f1: stopped at epoch 1
    del state["fingerprint"]["mode"]
    folder.write_text(STATE_FILE, json.dumps(state))
    assert load(storage, NAME, eta=False).mode == "min"  # from the declared metrics alone
