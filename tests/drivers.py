"""A `python -m sweeper ...` driver subprocess in its own process group, so a test can SIGKILL it and then
clean up what its Ray left behind by that group, never by a broad kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]


class Driver:
    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, start_new_session=True, cwd=cwd,
        )

    def wait(self, timeout: float = 240) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            out, _ = self.proc.communicate()
            raise AssertionError(f"driver did not finish in {timeout}s:\n{out}") from None
        return self.proc.returncode, out

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def kill_session(self, timeout: float = 30) -> None:
        """SIGKILL the driver and every process of its session (Ray's workers have process groups of their own),
        and return once none is left alive: as a machine's crash leaves it, so that no trial worker still
        uploads a checkpoint while the test reads or edits storage."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=timeout)
        deadline = time.monotonic() + timeout
        while live := [pid for pid in session_pids(self.proc.pid) if not zombie(pid)]:
            if time.monotonic() > deadline:
                raise AssertionError(f"session {self.proc.pid} still has live processes: {live}")
            for pid in live:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


DEADLINE_S = 300  # for any one event (a row appearing) on a machine shared with other test runs


def session_pids(sid: int) -> list[int]:
    """Processes in the session a driver started: its Ray (gcs, raylet, and the workers, which have process
    groups of their own), so a test can find a trial's worker, and clean up by pid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
            pids.append(int(entry))
    return pids


def zombie(pid: int) -> bool:
    """Ended but not yet reaped by its parent (or gone already)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def wait_until(what: str, ready: Callable[[], Any], driver: Driver, timeout: float = DEADLINE_S) -> Any:
    """Poll `ready()` until it returns something truthy; fail early if the driver ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.proc.poll() is not None:
            out = driver.proc.stdout.read() if driver.proc.stdout else ""
            raise AssertionError(f"driver ended (code {driver.proc.returncode}) before {what}:\n{out}")
        try:
            value = ready()
        except (OSError, ValueError, pa.ArrowException):  # a file not (completely) written yet
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")
