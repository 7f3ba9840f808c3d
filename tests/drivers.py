"""A `python -m sweeper ...` driver subprocess in its own process group, so a test can SIGKILL it and then
clean up what its Ray left behind by that group, never by a broad kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Driver:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, start_new_session=True, cwd=REPO,
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
