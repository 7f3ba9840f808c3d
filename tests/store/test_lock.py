"""store/lock.py: one driver per sweep on local disk and on S3 (moto), whatever the interleaving.

The bugs these pin (each failed before the lock was rebuilt): a local lock caught between its create and its write
was read as `{}`, taken for stale and deleted; two takers of one stale lock could each delete the other's fresh lock
and both run; a sweep on S3 was not locked at all. Then the rules for taking over: only a holder provably gone on
this machine (a dead pid, a reused pid, a reboot), never another host's lock; a refusal is one line naming the
holder; the holder's heartbeat, its release of its own lock only, and stores that cannot lock refused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeper.errors import SweeperError
from sweeper.store import lock
from sweeper.store.files import LOCK_FILE
from sweeper.store.lock import holder, identity, locked
from sweeper.store.storage import Storage, SweepFolder
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures


@pytest.fixture(autouse=True)
def _no_race_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lock.RACE_ENV, raising=False)


@pytest.fixture(params=["local", "s3"])
def sweep(request: pytest.FixtureRequest, tmp_path: Path) -> SweepFolder:
    if request.param == "local":
        return Storage.parse(str(tmp_path / "runs")).folder("s")
    s3: S3 = request.getfixturevalue("s3")
    return Storage.parse(s3.uri("runs")).folder("s")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_lock(**changes: Any) -> dict[str, Any]:
    """A lock as a process of this machine that has since died left it."""
    return identity() | {"pid": dead_pid(), "pid_start": 1} | changes


def put_lock(sweep: SweepFolder, content: dict[str, Any] | bytes) -> None:
    sweep.write_bytes(LOCK_FILE, content if isinstance(content, bytes) else json.dumps(content).encode())


def two_at_once(sweep: SweepFolder) -> list[Any]:
    """Two threads take the lock at once; each holds it until both have tried. Their outcomes: "held" or the
    SweeperError that refused it."""
    results: list[Any] = []
    both_tried = threading.Event()

    def take() -> None:
        try:
            with locked(sweep):
                results.append("held")
                if len(results) == 2:
                    both_tried.set()
                both_tried.wait(15)
        except SweeperError as exc:
            results.append(exc)
            if len(results) == 2:
                both_tried.set()

    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def assert_one_held(results: list[Any]) -> None:
    assert sorted(map(str, results)).count("held") == 1, results
    refused = next(r for r in results if r != "held")
    assert isinstance(refused, SweeperError) and f"is already running (pid {os.getpid()}" in str(refused)


# -- the three bugs -------------------------------------------------------------------------------------------


def test_a_local_lock_being_written_is_not_taken_for_stale(tmp_path: Path) -> None:
    """A lock file that exists but is still empty (its writer between create and write, as before) names no
    process: it is not provably stale, so it is refused and left in place, never deleted and taken."""
    sweep = Storage.parse(str(tmp_path)).folder("s")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / LOCK_FILE).write_bytes(b"")
    with pytest.raises(SweeperError, match="has a lock that names no process"):
        with locked(sweep):
            pass
    assert (tmp_path / "s" / LOCK_FILE).exists()


def test_a_local_lock_is_never_seen_half_written(tmp_path: Path) -> None:
    """While one thread takes and releases the lock 300 times, a reader sees either no lock or a whole one."""
    sweep = Storage.parse(str(tmp_path)).folder("s")
    (tmp_path / "s").mkdir()
    done = threading.Event()
    seen: list[Any] = []

    def read() -> None:
        while not done.is_set():
            seen.append(holder(sweep))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(300):
            with locked(sweep):
                reads = len(seen)
                while len(seen) < reads + 2 and reader.is_alive():  # the reader sees the held lock too
                    time.sleep(0)
    finally:
        done.set()
        reader.join()
    whole = [h for h in seen if h is not None]
    assert whole and all(h.get("pid") == os.getpid() for h in whole), [h for h in whole if not h.get("pid")][:3]


@pytest.fixture
def judged_together(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], None]]:
    """Make two takers judge the same stale lock before either acts: the first two checks of the dead pid meet at a
    barrier; then one goes on at once and the other only once a new lock names a live process (or after 2 s), so
    it acts last on what it judged (the interleaving where two takers used to delete each other's fresh lock)."""
    real = lock.pid_alive
    barrier = threading.Barrier(2, timeout=5)
    calls: list[int] = []
    state: dict[str, Any] = {}

    def pid_alive(pid: int) -> bool:
        if pid != state.get("dead") or len(calls) >= 2:
            return real(pid)
        calls.append(pid)
        try:
            second = barrier.wait() == 1
        except threading.BrokenBarrierError:
            return False
        if second:
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                now = holder(state["sweep"])
                if now and now.get("pid") == os.getpid():
                    break
                time.sleep(0.005)
        return False

    monkeypatch.setattr(lock, "pid_alive", pid_alive)

    def arm(dead: int, sweep: SweepFolder | None = None) -> None:
        state["dead"], state["sweep"] = dead, sweep

    yield arm  # type: ignore[misc]


def test_two_takers_of_one_stale_lock_one_wins(sweep: SweepFolder, judged_together: Any) -> None:
    stale = stale_lock()
    put_lock(sweep, stale)
    judged_together(stale["pid"], sweep)
    assert_one_held(two_at_once(sweep))
    assert holder(sweep) is None


def test_two_drivers_at_once_one_wins(sweep: SweepFolder) -> None:
    assert_one_held(two_at_once(sweep))


def test_a_sweep_on_s3_is_locked(s3: S3) -> None:
    sweep = Storage.parse(s3.uri("runs")).folder("s")
    with locked(sweep):
        assert json.loads(s3.read_bytes("runs/s/.lock"))["pid"] == os.getpid()
        with pytest.raises(SweeperError, match=f"sweep 's' is already running \\(pid {os.getpid()}, lock last"):
            with locked(sweep):
                pass
        assert json.loads(s3.read_bytes("runs/s/.lock"))["pid"] == os.getpid()  # the refused one left it
    assert s3.keys("runs/s/") == []


def test_a_temporary_lock_file_removed_before_its_link_is_written_again(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A launch clears its new sweep's folder (all but `.lock`) under the lock: a loser's temporary file is not in
    that folder, and one removed anyway before its link is written again rather than failing the loser (exit 2 is
    for "already running", not "No such file or directory")."""
    sweep = Storage.parse(str(tmp_path / "runs")).folder("s")
    real, removed = os.link, []

    def link(src: Any, dst: Any, **kwargs: Any) -> None:
        if not removed:
            assert Path(src).parent != sweep.path  # beside the sweep's folder, not in it
            os.unlink(src)
            removed.append(src)
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, "link", link)
    with locked(sweep):
        assert holder(sweep)["pid"] == os.getpid()  # type: ignore[index]
        assert os.listdir(sweep.path) == [LOCK_FILE]
    assert removed and os.listdir(tmp_path / "runs") == ["s"]


# -- taking over: only a holder provably gone -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["dead pid", "reused pid", "rebooted", "older sweeper's lock"])
def test_a_stale_lock_is_taken_over(sweep: SweepFolder, how: str) -> None:
    content = {
        "dead pid": stale_lock(),
        "reused pid": identity() | {"pid_start": 1},  # this pid, but a process that started at another time
        "rebooted": stale_lock(boot="an-earlier-boot"),
        "older sweeper's lock": {"pid": dead_pid(), "host": socket.gethostname()},
    }[how]
    put_lock(sweep, content)
    with locked(sweep):
        assert holder(sweep)["token"] != content.get("token")  # type: ignore[index]
    assert holder(sweep) is None


@pytest.mark.parametrize("how", ["another host", "another machine of this name", "another boot, no machine id",
                                 "another pid namespace", "live"])
def test_a_lock_not_provably_stale_is_refused_and_kept(sweep: SweepFolder, how: str) -> None:
    content = {
        "another host": stale_lock(host="node-7"),
        "another machine of this name": stale_lock(machine="0" * 32),
        "another boot, no machine id": stale_lock(boot="an-earlier-boot", machine=""),
        "another pid namespace": stale_lock(pidns=1),
        "live": identity(),
    }[how]
    put_lock(sweep, content)
    with pytest.raises(SweeperError) as refused:
        with locked(sweep):
            pass
    message = str(refused.value)
    assert f"sweep 's' is already running (pid {content['pid']}" in message and "\n" not in message
    if how == "another host":
        assert f"(pid {content['pid']} on node-7" in message
        assert f"if it no longer runs there, delete {sweep.uri(LOCK_FILE)}" in message
    assert holder(sweep) == content


def test_release_leaves_a_lock_that_is_no_longer_its_own(sweep: SweepFolder) -> None:
    """Someone deleted the lock and another process took it while we ran: our release must not delete theirs."""
    other = identity() | {"pid": 1, "host": "node-7"}
    with locked(sweep):
        if sweep.local:
            (sweep.path / LOCK_FILE).unlink()
        else:
            fs, path = sweep.fs_path(LOCK_FILE)
            fs.delete_file(path)
        put_lock(sweep, other)
    assert holder(sweep) == other


def test_the_holder_on_s3_refreshes_its_lock(s3: S3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    sweep = Storage.parse(s3.uri("runs")).folder("s")
    with locked(sweep):
        first = json.loads(s3.read_bytes("runs/s/.lock"))["heartbeat"]
        deadline = time.monotonic() + 10
        while json.loads(s3.read_bytes("runs/s/.lock"))["heartbeat"] == first:
            assert time.monotonic() < deadline, "the lock was never refreshed"
            time.sleep(0.02)
    assert s3.keys("runs/s/") == []  # released at its refreshed version


class IgnoringStore:
    """An object store that accepts every write, conditional or not."""

    where = "s3://lax/runs/s/.lock"

    def __init__(self) -> None:
        self.data: bytes | None = None

    def create(self, data: bytes) -> str | None:
        self.data = data
        return '"1"'

    def replace(self, data: bytes, version: str) -> str | None:
        self.data = data
        return '"1"'

    def read(self) -> lock._Seen | None:
        return lock._Seen(self.data, '"1"', 0.0) if self.data is not None else None

    def delete(self, version: str) -> None:
        self.data = None


def test_a_store_that_ignores_conditional_writes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    store = IgnoringStore()
    monkeypatch.setattr(lock, "_object_store", lambda sweep: store)
    with pytest.raises(SweeperError, match="ignores conditional writes \\(only-if-absent, only-if-unchanged\\)"):
        with locked(Storage.parse("s3://lax/runs").folder("s")):
            pass
    assert store.data is None


@pytest.mark.parametrize("uri", ["gs://bucket/runs", "hdfs://namenode/runs"])
def test_storage_that_cannot_be_locked_is_refused(uri: str) -> None:
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        pass
    else:
        if uri.startswith("gs://"):
            pytest.skip("google-cloud-storage is installed: gs:// is locked with it")
    with pytest.raises(SweeperError, match="google-cloud-storage|cannot lock a sweep on hdfs:// storage"):
        with locked(Storage.parse(uri).folder("s")):
            pass
