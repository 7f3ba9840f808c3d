"""Two processes that take one sweep's lock at the same moment, 20 rounds on local disk and 20 on S3 (moto): every
round exactly one holds it and the other is refused (exit 2) naming the holder's pid.

Each process waits at a barrier (lock.RACE_ENV: `ready-PID` files, then `go`) right before its first try, so both
try at once. The winner says `held-PID` and waits; odd rounds SIGKILL it, so the next round's two processes race
to take over its stale lock; even rounds release it, so the next round starts with no lock. `race` is shared with
tests/cli/test_lock_race.py and benchmarks/lock_race.py, which race real `python -m sweeper launch/resume`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sweeper.store.lock import RACE_ENV, holder
from sweeper.store.storage import Storage
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 20

WORKER = """
import sys
from sweeper.errors import SweeperError
from sweeper.store.lock import locked
from sweeper.store.storage import Storage
try:
    with locked(Storage.parse(sys.argv[1]).folder(sys.argv[2])):
        pass
except SweeperError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


@dataclass
class Outcome:
    winner: subprocess.Popen[str]
    loser: subprocess.Popen[str]
    loser_output: str  # its one `error: ...` line
    race_dir: Path

    def finish(self, kill: bool, timeout: float = 600) -> tuple[int, str]:
        """SIGKILL the winner's process group (its lock stays, stale), or let it go on past the lock to its end."""
        if kill:
            os.killpg(self.winner.pid, signal.SIGKILL)
        else:
            (self.race_dir / "release").touch()
        out, err = self.winner.communicate(timeout=timeout)
        return self.winner.returncode, out + err


def race(commands: list[list[str]], env: dict[str, str], race_dir: Path, timeout: float = 300,
         release_at_once: bool = False) -> Outcome:
    """Start both commands, open the barrier once both wait at it, and return once one holds the lock and the
    other has ended; fails if both hold it, or neither, or the other did not end with exit 2 naming the holder.
    `release_at_once`: the winner does not wait once it holds the lock (it runs on to its end)."""
    race_dir.mkdir(parents=True)
    if release_at_once:
        (race_dir / "release").touch()
    procs = [subprocess.Popen(c, env=env | {RACE_ENV: str(race_dir)}, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True) for c in commands]
    try:
        deadline = time.monotonic() + timeout
        while not all((race_dir / f"ready-{p.pid}").exists() for p in procs):
            ended = [p for p in procs if p.poll() is not None]
            if ended:
                out, err = ended[0].communicate()
                raise AssertionError(f"ended (code {ended[0].returncode}) before the barrier:\n{out}{err}")
            assert time.monotonic() < deadline, "the two processes never both reached the lock"
            time.sleep(0.01)
        (race_dir / "go").touch()
        while True:
            held = [p for p in procs if (race_dir / f"held-{p.pid}").exists()]
            ended = [p for p in procs if p.poll() is not None and p not in held]
            if len(held) > 1:
                raise AssertionError(f"both processes hold the lock: {[p.pid for p in held]}")
            if len(held) + len(ended) == 2:
                break
            assert time.monotonic() < deadline, "the race did not end"
            time.sleep(0.01)
        assert len(held) == 1, f"nobody holds the lock: {[(p.returncode, p.communicate()) for p in ended]}"
        winner, loser = held[0], ended[0]
        out, err = loser.communicate()
        lines = [line for line in err.splitlines() if line.startswith("error: ")]
        assert loser.returncode == 2, f"loser ended with {loser.returncode}:\n{out}{err}"
        assert len(lines) == 1 and f"is already running (pid {winner.pid}" in lines[0], f"{out}{err}"
        return Outcome(winner, loser, lines[0], race_dir)
    except BaseException:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
        raise


def lock_races(storage: str, tmp_path: Path, env: dict[str, str], rounds: int = ROUNDS) -> dict[str, int]:
    """`rounds` lock-level races on one sweep; counts of what each round started from and ended with."""
    counts = {"rounds": 0, "one winner, one exit 2 naming it": 0, "from no lock": 0, "from a stale lock": 0}
    folder = Storage.parse(storage).folder("raced")
    cmd = [sys.executable, "-c", WORKER, storage, "raced"]
    for i in range(rounds):
        stale = holder(folder)
        outcome = race([cmd, cmd], env, tmp_path / f"round-{i}")
        assert holder(folder)["pid"] == outcome.winner.pid  # type: ignore[index]
        counts["from a stale lock" if stale else "from no lock"] += 1
        code, output = outcome.finish(kill=i % 2 == 0)
        if i % 2:
            assert code == 0, output
            assert holder(folder) is None  # released
        counts["rounds"] += 1
        counts["one winner, one exit 2 naming it"] += 1
    return counts


def test_twenty_lock_races_on_local_disk(tmp_path: Path) -> None:
    counts = lock_races(str(tmp_path / "runs"), tmp_path, dict(os.environ))
    assert counts == {"rounds": 20, "one winner, one exit 2 naming it": 20, "from no lock": 10,
                      "from a stale lock": 10}


def test_twenty_lock_races_on_s3(tmp_path: Path, s3: S3) -> None:
    counts = lock_races(s3.uri("runs"), tmp_path, s3.env)
    assert counts == {"rounds": 20, "one winner, one exit 2 naming it": 20, "from no lock": 10,
                      "from a stale lock": 10}


@pytest.fixture(autouse=True)
def _no_race_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RACE_ENV, raising=False)
