"""What `sweeper status` and `sweeper report` show after a writer was SIGKILLed right after writing epochs.parquet
and before trials.parquet (issue 28, item 2): every trial with as many epochs as its rows in epochs.parquet, never
the trials.parquet that lags behind it; and a resume (a new writer, or the real `sweeper resume`) writes the pair
whole again. The writer is a real process stopped there by tests/store/killpoint.py, which says so in a file the
test waits for before it kills it (an event, never a time): a scripted ResultsWriter, and a real `sweeper launch`.
These tests use nothing but the CLI and the files, so they run against any version of the writer (before
store/pair.py, each failed: status and report showed the lagging trials.parquet)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sweeper.store.files import EPOCHS_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.writer import ResultsWriter
from tests.drivers import Driver
from tests.store.torn import KillPoint, cli_epochs, disagreeing, kill_at, raw


def killed_writer(
    storage: str, env: dict[str, str] | None, after: str, tmp_path: Path, stopped: list[Driver]
) -> SweepFolder:
    """The scripted writer (tests/store/killpoint.py) of sweep `pair` on `storage`, SIGKILLed right after its flush 5
    (t2's epoch 1) wrote `after`: the sweep's folder, as the kill left it."""
    folder = Storage.parse(storage).folder("pair")
    event = tmp_path / "stopped"
    proc = KillPoint(str(event), after, "5", "--", "writer", storage, "pair", env=env)
    stopped.append(proc)
    kill_at(event, proc)
    return folder


SESSIONS = ('{"state": "running", "sessions": [{"started": 1000.0}]}',  # killed in its launch: status reads no rows
            '{"state": "running", "sessions": [{"started": 1000.0}, {"started": 1001.0}]}')  # and in a resume: rows


def test_status_and_report_show_every_trial_with_its_epoch_rows_after_a_kill_between_the_writes(
    where: tuple[str, dict[str, str] | None], tmp_path: Path, stopped: list[Driver]
) -> None:
    storage, env = where
    folder = killed_writer(storage, env, EPOCHS_FILE, tmp_path, stopped)
    trials, epochs = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
    assert trials is not None and epochs is not None
    assert disagreeing(trials.to_pylist(), epochs.to_pylist()) == {"t2": (0, 1)}  # the files as the kill left them
    rows = Counter(epochs.column("trial_id").to_pylist())

    for state in SESSIONS:
        folder.write_text(STATE_FILE, state)
        trial_epochs, per_trial = cli_epochs(storage, "pair", env)
        assert trial_epochs == epochs.num_rows == 2
        assert per_trial == {t: rows[t] for t in per_trial} and {"t1", "t2"} <= set(per_trial)

    ResultsWriter(folder)  # a resume's writer
    trials, epochs = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
    assert trials is not None and epochs is not None
    assert disagreeing(trials.to_pylist(), epochs.to_pylist()) == {}  # whole again, for those who read the files


SPACE = """
name: torn
epochs: 40
scheduler: {type: fifo}
max_concurrent: 1
parameters: {model: logreg, lr: {grid: [0.01, 0.1]}}
"""


def test_a_launch_killed_between_its_writes_shows_the_pair_agree_and_resumes_whole(
    where: tuple[str, dict[str, str] | None], tmp_path: Path, tiny_data: Path, reaped: list[Driver]
) -> None:
    """A real `sweeper launch` stopped right after the third write that grew epochs.parquet (the empty file's at the
    start counts, so at least 2 rows, more where the writer batched results) wrote epochs.parquet
    (its first trial mid-way, however many epochs a write batches: Ray's grid generator restored with a trial in its
    live set that ended after its snapshot waits for it, under max_concurrent, for Ray's 10-minute timeout), killed
    there with its Ray; status and report agree with epochs.parquet; `sweeper resume` ends the sweep with both files
    agreeing, every epoch once."""
    storage, env = where
    folder = Storage.parse(storage).folder("torn")
    space = tmp_path / "torn.yaml"
    space.write_text(SPACE)
    event = tmp_path / "stopped"
    proc = KillPoint(str(event), EPOCHS_FILE, "3", "--grown", "--", "launch", str(space), "--storage", storage,
                     "--data-dir", str(tiny_data), "--quiet", env=env)
    reaped.append(proc)
    kill_at(event, proc)
    trials, epochs = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
    assert trials is not None and epochs is not None
    torn = disagreeing(trials.to_pylist(), epochs.to_pylist())
    assert len(torn) == 1 and all(lags < rows for lags, rows in torn.values()), torn  # trials.parquet lags
    rows = Counter(epochs.column("trial_id").to_pylist())

    trial_epochs, per_trial = cli_epochs(storage, "torn", env)
    assert trial_epochs == epochs.num_rows >= 2  # the 3rd growing write: an empty file's, then at least 1, 2
    assert per_trial == {t: rows[t] for t in per_trial} and set(rows) <= set(per_trial)

    resumed = Driver("resume", "torn", "--storage", storage, "--quiet", env=env)
    reaped.append(resumed)
    code, out = resumed.wait(timeout=600)
    assert code == 0, out
    trials, epochs = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
    assert trials is not None and epochs is not None
    assert disagreeing(trials.to_pylist(), epochs.to_pylist()) == {}
    assert sorted((t["state"], t["epochs"]) for t in trials.to_pylist()) == [("TERMINATED", 40)] * 2
    keys = list(zip(epochs.column("trial_id").to_pylist(), epochs.column("epoch").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == 80
