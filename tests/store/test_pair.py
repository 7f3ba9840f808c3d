"""trials.parquet and epochs.parquet agree for every reader, whatever the moment a writer is killed (issue 28, item
2): a real writer process SIGKILLed between two of its file writes (tests/store/killpoint.py stops it there and
says so; the test kills it on that event, never on a time), on local disk and on S3; then the pair reader sees
every trial's `epochs` equal to its epoch rows, and a resumed writer writes the pair whole again. Also: a kill
after every single write of a whole run (in process), readers racing a live writer process, and the files a user
or an older sweeper wrote. test_pair_cli.py: what `sweeper status` and `sweeper report` show after such kills."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sweeper.errors import SweeperError
from sweeper.store import pair as pair_module
from sweeper.store.files import EPOCHS_FILE, PENDING_TRIALS_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.pair import GENERATION_KEY, Pair, generation_of, read_pair
from sweeper.store.parquet import write_rows
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.writer import ResultsWriter
from tests.drivers import Driver, wait_until
from tests.store.killpoint import result, scripted_writer
from tests.store.test_pair_cli import killed_writer
from tests.store.torn import KillPoint, disagreeing, raw

FLUSHES = 18  # the scripted writer's: 3 starts, 12 results, 3 ends (tests/store/killpoint.py)


def token(folder: SweepFolder, file: str) -> str | None:
    table = raw(folder, file)
    return None if table is None else generation_of(table.schema)


def assert_agrees(pair: Pair) -> None:
    assert pair.trials is not None
    assert disagreeing(pair.trial_rows(), pair.epoch_rows()) == {}


@pytest.mark.parametrize("after", [PENDING_TRIALS_FILE, EPOCHS_FILE, TRIALS_FILE])
def test_a_writer_killed_between_its_writes_leaves_a_pair_every_reader_sees_agree(
    after: str, where: tuple[str, dict[str, str] | None], tmp_path: Path, stopped: list[Driver]
) -> None:
    storage, env = where
    folder = killed_writer(storage, env, after, tmp_path, stopped)

    tokens = {f: token(folder, f) for f in (PENDING_TRIALS_FILE, EPOCHS_FILE, TRIALS_FILE)}
    trials_on_disk, epochs_on_disk = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
    assert trials_on_disk is not None and epochs_on_disk is not None
    torn = disagreeing(trials_on_disk.to_pylist(), epochs_on_disk.to_pylist())
    if after == EPOCHS_FILE:  # the kill this is about: epochs.parquet of flush 5 written, trials.parquet of 4
        assert tokens[EPOCHS_FILE] == tokens[PENDING_TRIALS_FILE] != tokens[TRIALS_FILE]
        assert torn == {"t2": (0, 1)}  # as the files lie: what a reader of the two would have seen
    else:
        assert tokens[EPOCHS_FILE] == tokens[TRIALS_FILE] and torn == {}
    rows = 1 if after == PENDING_TRIALS_FILE else 2  # flush 4's (t1's epoch 1), or 5's (and t2's)
    assert epochs_on_disk.num_rows == rows
    expected = {"t1": 1, "t2": rows - 1, "t3": 0}

    pair = read_pair(folder)
    assert_agrees(pair)
    assert {r["trial_id"]: r["epochs"] for r in pair.trial_rows()} == expected
    assert pair.epochs_table is not None and pair.epochs_table.num_rows == rows
    assert pair.torn == (after == EPOCHS_FILE) and pair.generation == tokens[EPOCHS_FILE]

    writer = ResultsWriter(folder)  # a resume's: the pair is written whole again at once, if it was torn
    assert {t: row["epochs"] for t, row in writer.trials.items()} == expected
    again = {f: token(folder, f) for f in (PENDING_TRIALS_FILE, EPOCHS_FILE, TRIALS_FILE)}
    if after == EPOCHS_FILE:
        assert len(set(again.values())) == 1 and again[TRIALS_FILE] != tokens[TRIALS_FILE]
        trials_now, epochs_now = raw(folder, TRIALS_FILE), raw(folder, EPOCHS_FILE)
        assert trials_now is not None and epochs_now is not None
        assert disagreeing(trials_now.to_pylist(), epochs_now.to_pylist()) == {}
    else:
        assert again == tokens  # nothing to repair: nothing written


def test_a_kill_after_any_single_write_of_a_whole_run_leaves_a_pair_that_agrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scripted run in process, stopped after its k-th write of any file, for every k: what readers get is a
    whole generation, never older than the last one whose epochs.parquet was written; a new writer repairs."""

    class Killed(BaseException):
        pass

    original = SweepFolder.write_bytes
    total = 3 * FLUSHES
    for k in range(1, total + 1):
        storage = str(tmp_path / f"k{k}")
        writes: list[str] = []

        def write_bytes(self: SweepFolder, name: str, data: bytes, sync: bool = False,
                        _writes: list[str] = writes, _k: int = k) -> None:
            original(self, name, data, sync)
            _writes.append(name)
            if len(_writes) == _k:
                raise Killed

        monkeypatch.setattr(SweepFolder, "write_bytes", write_bytes)
        with pytest.raises(Killed):
            scripted_writer(storage, "s")
        monkeypatch.setattr(SweepFolder, "write_bytes", original)
        folder = Storage.parse(storage).folder("s")
        pair = read_pair(folder)
        epochs_written = writes.count(EPOCHS_FILE)
        if not epochs_written:  # killed after the very first write, the pending trials: no pair yet
            assert pair == Pair(None)
            continue
        assert_agrees(pair)
        assert pair.generation is not None and int(pair.generation.split("-")[0]) == epochs_written, (k, writes)
        assert pair.torn == (writes[-1] == EPOCHS_FILE)
        ResultsWriter(folder)
        assert token(folder, EPOCHS_FILE) == token(folder, TRIALS_FILE) is not None
        assert not read_pair(folder).torn


def test_readers_racing_a_live_writer_always_see_the_pair_agree(
    where: tuple[str, dict[str, str] | None], tmp_path: Path, stopped: list[Driver]
) -> None:
    """A writer process flushing every few milliseconds (epochs grow, trials' epochs follow) while this process
    reads the pair (read_pair, the report's read_sweep and its epochs, status's load): every read agrees."""
    from sweeper.report.sources import read_sweep
    from sweeper.watch.status import load

    location, env = where
    storage = Storage.parse(location)
    folder = storage.folder("live")
    folder.write_text(STATE_FILE, '{"state": "running", "sessions": [{"started": 1000.0}, {"started": 1001.0}]}')
    proc = KillPoint(str(tmp_path / "never"), EPOCHS_FILE, "0", "--", "live", location, "live", env=env)
    stopped.append(proc)

    def generation() -> int:
        tok = token(folder, TRIALS_FILE)
        return int(tok.split("-")[0]) if tok else 0

    first = wait_until("the live writer's first flushes", lambda: generation() >= 8 and generation(), proc)
    reads = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert_agrees(read_pair(folder))
        sweep = read_sweep("live", folder)
        assert disagreeing(sweep.trials.to_dict("records"), sweep.epochs().to_dict("records")) == {}
        assert len(load(storage, "live").rows) == 4  # status: one generation's trials (a torn read raises)
        reads += 1
    assert proc.proc.poll() is None, "the writer stopped"
    flushes = generation() - first
    assert reads >= 10 and flushes >= reads // 2, (reads, flushes)  # a write, most times, between two reads


def test_files_without_a_generation_are_read_as_they_are(tmp_path: Path) -> None:
    """Written by a sweeper before generations, or by hand with write_rows: no token, read as they lie."""
    folder = Storage.parse(str(tmp_path)).folder("old")
    write_rows(folder, TRIALS_FILE, [{"trial_id": "a", "state": "RUNNING", "epochs": 1}], TRIAL_SCHEMA)
    write_rows(folder, EPOCHS_FILE, [{"trial_id": "a", "epoch": e} for e in (1, 2)], EPOCH_SCHEMA)
    pair = read_pair(folder)
    assert pair.generation is None and not pair.torn
    assert [r["epochs"] for r in pair.trial_rows()] == [1] and len(pair.epoch_rows()) == 2
    assert read_pair(Storage.parse(str(tmp_path)).folder("none")) == Pair(None)


def test_an_unreadable_epochs_file_leaves_the_trials_readable(tmp_path: Path) -> None:
    folder = Storage.parse(str(tmp_path)).folder("s")
    w = ResultsWriter(folder, flush_every_s=0)
    w.add_result("a", result(1, 0))
    folder.write_bytes(EPOCHS_FILE, b"PAR1 not really")
    pair = read_pair(folder)
    assert [r["trial_id"] for r in pair.trial_rows()] == ["a"]
    with pytest.raises(SweeperError, match="epochs.parquet: not a readable Parquet file"):
        pair.epochs()
    with pytest.raises(SweeperError, match="epochs.parquet: not a readable Parquet file"):
        ResultsWriter(folder)


def test_files_that_disagree_and_do_not_change_are_read_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copied by hand from two different moments, no pending copy matching: no writer will make them agree, so
    readers stop waiting (after SETTLE_S) and read them, marked torn; a writer writes them again whole."""
    monkeypatch.setattr(pair_module, "SETTLE_S", 0.2)
    folder = Storage.parse(str(tmp_path)).folder("s")
    w = ResultsWriter(folder, flush_every_s=0)
    w.add_result("a", result(1, 0))
    older = folder.read_bytes(TRIALS_FILE)
    w.add_result("a", result(2, 0))
    assert older is not None
    folder.write_bytes(TRIALS_FILE, older)
    folder.write_bytes(PENDING_TRIALS_FILE, older)
    started = time.monotonic()
    pair = read_pair(folder)
    assert pair.torn and 0.2 <= time.monotonic() - started < 5
    assert [r["epochs"] for r in pair.trial_rows()] == [1] and len(pair.epoch_rows()) == 2
    ResultsWriter(folder)
    assert not read_pair(folder).torn


def test_each_flush_is_one_generation_of_both_files_with_the_columns_unchanged(tmp_path: Path) -> None:
    folder = Storage.parse(str(tmp_path)).folder("s")
    w = ResultsWriter(folder, flush_every_s=0)
    w.add_result("a", result(1, 0))
    tokens = {f: token(folder, f) for f in (PENDING_TRIALS_FILE, EPOCHS_FILE, TRIALS_FILE)}
    assert len(set(tokens.values())) == 1 and str(tokens[TRIALS_FILE]).startswith("1-")
    w.add_result("a", result(2, 0))
    assert str(token(folder, TRIALS_FILE)).startswith("2-")
    epochs = pq.read_table(folder.path / EPOCHS_FILE)
    assert epochs.schema.names == EPOCH_SCHEMA.names and GENERATION_KEY.encode() in epochs.schema.metadata
    assert pq.read_table(folder.path / TRIALS_FILE).schema.names[: len(TRIAL_SCHEMA.names)] == TRIAL_SCHEMA.names
    assert ResultsWriter(folder).generation == token(folder, TRIALS_FILE)  # a new writer goes on counting


def test_a_trial_that_goes_back_to_an_earlier_epoch_loses_the_rows_of_the_timeline_it_left(tmp_path: Path) -> None:
    """Resumed from an earlier checkpoint (or started over): its epochs agree with its rows after every flush."""
    folder = Storage.parse(str(tmp_path)).folder("s")
    w = ResultsWriter(folder, flush_every_s=0)
    for epoch in (1, 2, 3, 4):
        w.add_result("a", result(epoch, 0))
    w.add_result("a", result(3, 0))  # went on from epoch 2's checkpoint
    assert sorted(e for _, e in w.epochs) == [1, 2, 3] and w.trials["a"]["epochs"] == 3
    w.add_result("a", result(1, 0))  # started over
    w.flush()
    assert_agrees(read_pair(folder))
    assert [r["epoch"] for r in read_pair(folder).epoch_rows()] == [1]
