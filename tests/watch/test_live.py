"""The live view: its tracker, its frame in a fixed-width console, plain (--quiet) lines, and real sweeps that
feed it through the recorder; Ray's own output kept in the sweep's ray.log."""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import time
from pathlib import Path

import pytest
import ray  # noqa: F401 - imported before any test captures stderr: Ray's log handlers keep that stream
from rich.console import Console
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.run.driver.raylog import ray_output
from sweeper.spec.cost import cost
from sweeper.spec.loader import load
from sweeper.spec.space import Space
from sweeper.store.files import LOG_FILE
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.trials import Ended
from sweeper.watch.live import LiveView, panel
from sweeper.watch.tracker import Tracker, duration

runner = CliRunner()
SPACE = """
name: lv
epochs: 4
scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
variants: [{name: lin, model: logreg}, {name: mlp, model: mlp, hidden: [8]}]
parameters: {lr: {grid: [0.1, 0.01]}}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def screen_lines(raw: str) -> list[str]:
    """What a terminal shows line by line: cursor movements end a line too."""
    return re.split(r"\n|\x1b\[[0-9;?]*[A-Za-z]", raw)


@pytest.fixture
def space(tmp_path: Path) -> Space:
    path = tmp_path / "lv.yaml"
    path.write_text(SPACE)
    return load(path)


@pytest.fixture
def folder(tmp_path: Path) -> SweepFolder:
    return Storage.parse(str(tmp_path / "runs")).folder("lv")


def row(trial_id: str, state: str = "RUNNING", epochs: int = 1, acc: float | None = 0.5, **extra: object) -> dict:
    return {"trial_id": trial_id, "variant": "lin", "state": state, "epochs": epochs, "val_accuracy": acc,
            "param_lr": 0.1, "param_max_epochs": None, "stopped_by": None, **extra}


def fixed(width: int = 80, terminal: bool = False) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(width=width, file=buf, force_terminal=terminal, color_system=None, legacy_windows=False), buf


def test_tracker_counts_by_how_trials_ended() -> None:
    t = Tracker(name="x", total=9)
    for r in (row("a"), row("b", "TERMINATED"), row("c", "TERMINATED", stopped_by="asha"),
              row("d", "TERMINATED", stopped_by="early_stopping"), row("e", "ERROR"), row("f", "PENDING"),
              row("g", "INTERRUPTED"), row("h", "TERMINATED", stopped_by=float("nan"))):
        t.update(r)
    assert t.counts() == {Ended.COMPLETED: 2, Ended.ASHA: 1, Ended.EARLY: 1, Ended.STOPPED: 0, Ended.ERROR: 1,
                          Ended.RUNNING: 1, Ended.INTERRUPTED: 1, Ended.PENDING: 2}


def test_tracker_counts_pending_trials_not_yet_created_and_picks_the_best() -> None:
    t = Tracker(name="x", total=6)
    for r in (row("a", acc=0.7), row("b", "TERMINATED", 4, 0.9), row("c", "ERROR", 1, 0.99),
              row("d", "TERMINATED", 1, float("nan"), stopped_by="asha")):
        t.update(r)
    assert t.counts() == {Ended.COMPLETED: 1, Ended.ASHA: 1, Ended.EARLY: 0, Ended.STOPPED: 0, Ended.ERROR: 1,
                          Ended.RUNNING: 1, Ended.INTERRUPTED: 0, Ended.PENDING: 2}
    assert t.best()["trial_id"] == "b"  # the failed trial's number does not count, nor NaN
    t.mode, t.metric = "min", "val_accuracy"
    assert t.best()["trial_id"] == "a"
    assert t.epochs_done() == 7


def test_time_left_from_the_sessions_rate_and_the_cost_model(space: Space) -> None:
    now = time.time()
    c = cost(space)
    t = Tracker(name="lv", total=4, epochs=4, cost=c, started=now - 10)
    t.update(row("a", epochs=2), result=True)
    t.update(row("b", "TERMINATED", 4), result=True)
    assert t.left(now) is not None
    t.reported = 5  # 5 epochs in 10 s: 0.5 per second
    expected = (c.model.expected(4, 2) + 2 * c.mean_trial) / 0.5
    assert t.left(now) == pytest.approx(expected)
    assert Tracker(name="lv", total=4, cost=c).left() is None  # nothing reported yet: unknown
    done = Tracker(name="lv", total=1, cost=c)
    done.update(row("a", "TERMINATED", 4))
    assert done.left() == 0


def test_duration_format() -> None:
    assert [duration(s) for s in (0, 59.6, 3725, 90061)] == ["0:00:00", "0:01:00", "1:02:05", "1d 1:01:01"]


def test_frame_fits_a_fixed_width_console_and_shows_running_trials() -> None:
    t = Tracker(name="wide-sweep-name", total=40, epochs=30, varied=("lr", "optimizer"), started=1000.0)
    for i in range(14):
        t.update(row(f"abcde_{i:05d}", epochs=i % 30, acc=0.5 + i / 100, param_optimizer="adam",
                     variant="a-rather-long-variant-name-that-must-be-cut"), result=True)
    t.update(row("abcde_00099", "TERMINATED", 30, 0.93))
    console, buf = fixed(80)
    console.print(panel(t, now=1075.0, max_rows=10))
    text = buf.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "sweep         wide-sweep-name: running, elapsed 0:01:15, time left: estimating" in text
    assert "40: 1 completed, 0 error, 14 running, 25 pending" in text
    assert "best          val_accuracy 0.9300, trial abcde_00099" in text
    assert "abcde_00000" in text and "... and 4 more running" in text and "0/30" in text
    assert "time left: estimating" in text  # no cost model given


def test_quiet_view_prints_plain_lines(space: Space, folder: SweepFolder) -> None:
    console, buf = fixed(80, terminal=True)
    view = LiveView(console, quiet=True, every_s=0)
    assert not view.live
    view.start(space, folder, [])
    view.trial_started(row("a", epochs=0, acc=None))
    view.trial_result(row("a", epochs=1, acc=0.8))
    view.trial_ended(row("a", "TERMINATED", 1, 0.8, stopped_by="asha"), "trial a lin: stopped")
    view.experiment_ended([row("a", "TERMINATED", 1, 0.8, stopped_by="asha")])
    view.close()
    lines = buf.getvalue().splitlines()
    expected = cost(space).expected
    assert lines[0] == f"sweep lv: 4 trials, at most 16 trial-epochs, about {expected:.0f} expected under ASHA"
    assert lines[1] == "Ctrl-C stops it, state saved; `sweeper resume lv` goes on"  # (no time model given)
    assert lines[2].startswith("progress: lv: 0/4 trials ended; 1 running, 3 pending; elapsed ")
    assert "[1/4] trial a lin: stopped" in lines
    assert lines[-1].startswith("progress: lv: 1/4 trials ended; 1 ASHA-stopped, 3 pending; "
                                "best val_accuracy=0.8000 (trial a (lin)); elapsed ")
    assert "\x1b" not in buf.getvalue()  # no redraws, no colour


def test_live_view_redraws_on_a_terminal_and_leaves_its_last_frame(space: Space, folder: SweepFolder) -> None:
    console, buf = fixed(80, terminal=True)
    view = LiveView(console)
    assert view.live
    view.start(space, folder, [row("old", "TERMINATED", 4, 0.6)])  # a resumed sweep's earlier trial
    for epoch in (1, 2):
        view.trial_result(row("new", epochs=epoch, acc=0.7 + epoch / 100, variant="mlp"))
        view.refresh()  # what the panel's own timer does twice a second
    view.trial_ended(row("new", "TERMINATED", 4, 0.75, variant="mlp"), "trial new mlp: done")
    view.experiment_ended([row("old", "TERMINATED", 4, 0.6), row("new", "TERMINATED", 4, 0.75, variant="mlp")])
    view.close()
    raw = buf.getvalue()
    assert "\x1b[" in raw  # cursor movement: the frame was redrawn in place
    text = ANSI.sub("", raw)
    assert "[2/4] trial new mlp: done" in text
    assert "running trial" in text and "2/4" in text  # the running table while 'new' ran
    final = text[text.rindex("sweep         lv: "):]
    assert "lv: interrupted, elapsed" in final  # 2 of 4 trials never ran
    assert "4: 2 completed, 0 error, 0 running, 2 pending" in final
    assert all(len(line) <= 80 for line in screen_lines(raw))


def test_a_sweep_that_raised_shows_as_failed(space: Space, folder: SweepFolder) -> None:
    console, buf = fixed(80)
    view = LiveView(console, live=True)  # the panel, on a console that is not a terminal: last frame only
    view.start(space, folder, [])
    view.trial_result(row("a", epochs=1, acc=0.8))
    view.close()  # no experiment_ended: Ray never finished
    text = buf.getvalue()
    assert "lv: failed, elapsed" in text and "1 running, 3 pending" in text and "\x1b" not in text


def test_ray_output_goes_to_the_log_file_and_comes_back(folder: SweepFolder, capfd: pytest.CaptureFixture) -> None:
    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    streams = [getattr(h, "stream", None) for h in logging.getLogger("ray").handlers]
    with ray_output(folder, verbose=False) as log:
        logging.getLogger("ray.tune").warning("tune says hello")
        print("a stray warning", file=sys.stderr)
        print("sweeper's own line")
        assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0"
    assert os.environ.get("RAY_AIR_NEW_OUTPUT") == before
    out, err = capfd.readouterr()
    assert "sweeper's own line" in out and "hello" not in out + err and "stray" not in err
    text = (folder.path / LOG_FILE).read_text()
    assert log == folder.path / LOG_FILE and "tune says hello" in text and "a stray warning" in text
    handlers = logging.getLogger("ray").handlers
    assert [getattr(h, "stream", None) for h in handlers] == streams  # Ray's handlers write where they did
    quiet = folder.storage.folder("v")
    with ray_output(quiet, verbose=True) as log:
        assert [getattr(h, "stream", None) for h in handlers] == streams  # verbose: left alone
        logging.getLogger("ray.tune").warning("verbose")
    assert log is None and not quiet.path.exists()


def test_real_sweep_feeds_the_live_view(tmp_path: Path, tiny_data: Path, ray_session, space: Space) -> None:
    from sweeper.run import launch

    console, buf = fixed(80, terminal=True)
    view = LiveView(console)
    outcome = launch(space, Storage.parse(str(tmp_path / "runs")), data_dir=str(tiny_data), progress=view, echo=None)
    assert outcome.trials == 4
    text = ANSI.sub("", buf.getvalue())
    assert sum(f"[{i}/4] trial " in text for i in range(1, 5)) == 4
    final = text[text.rindex("sweep         lv: "):]
    assert "lv: finished, elapsed" in final and "4: " in final and "0 running, 0 pending" in final
    assert "best          val_accuracy" in final
    assert all(len(line) <= 80 for line in screen_lines(buf.getvalue()))
    assert view.tracker is not None and view.tracker.state == "finished"


def test_cli_launch_quiet_prints_plain_progress_and_no_ray_noise(tmp_path: Path, tiny_data: Path,
                                                                  ray_session) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("epochs: 2\nscheduler: {type: fifo}\nparameters: {model: logreg, lr: {grid: [0.1, 0.05]}}\n")
    args = ["launch", str(path), "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data)]
    result = runner.invoke(app, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "sweep q: 2 trials, at most 4 trial-epochs"
    assert re.fullmatch(r"expected to take about \d+:\d\d:\d\d more on this machine", lines[1]), lines
    assert lines[2] == "Ctrl-C stops it, state saved; `sweeper resume q` goes on"
    assert [line[:6] for line in lines if line.startswith("[")] == ["[1/2] ", "[2/2] "]
    assert any(line.startswith("progress: q: 2/2 trials ended; 2 completed; best val_accuracy=") for line in lines)
    assert lines[-2].startswith("sweep q: 2 trials, 0 stopped by ASHA, 0 failed, 0 unfinished")
    assert "View detailed results" not in result.output and "Configuration for experiment" not in result.output

    verbose = runner.invoke(app, [*args, "--name", "qv", "--quiet", "--verbose"])
    assert verbose.exit_code == 0, verbose.output
    assert "View detailed results here" in verbose.stdout  # Ray's own reporter, let through
    startup = [line for line in verbose.stdout.splitlines() if line.startswith("start-up: ")]
    assert len(startup) == 2, verbose.stdout
    assert re.fullmatch(r"start-up: [\d.]+ s until Ray Tune starts \(python, imports and the space file [\d.]+ s, "
                        r"checks [\d.]+ s, data [\d.]+ s, calibration [\d.]+ s, Ray start [\d.]+ s, imports left "
                        r"after Ray's start [\d.]+ s, Tuner [\d.]+ s\)", startup[0])
    assert re.fullmatch(r"start-up: first epoch reported [\d.]+ s after the process started \(trial start [\d.]+ s: "
                        r"Ray's worker process, torch import, data to the trial; epoch 1 [\d.]+ s\)", startup[1])
    assert not any(line.startswith("start-up: ") for line in lines)  # only with --verbose
