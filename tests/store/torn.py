"""Helpers of the tests that kill a writer between its writes (test_pair.py, test_pair_cli.py): the killpoint
process, killing it on its event, the files as they lie on storage, and what the real CLI shows. They use only
what every version of sweeper has, so the CLI tests run against a writer of any version."""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.store.storage import SweepFolder
from tests.drivers import REPO, Driver, wait_until


class KillPoint(Driver):
    """`python -m tests.store.killpoint ...` in its own process group (see that module)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.store.killpoint", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True, cwd=REPO,
        )


def kill_at(event: Path, proc: Driver) -> None:
    """Wait until the process says it stopped between its writes, then SIGKILL its whole group."""
    pid = wait_until(f"the writer stopped at its kill point ({event.name})",
                     lambda: event.is_file() and int(event.read_text()), proc)
    assert pid == proc.proc.pid
    os.killpg(proc.proc.pid, signal.SIGKILL)
    assert proc.proc.wait(timeout=30) == -signal.SIGKILL


def raw(folder: SweepFolder, file: str) -> pa.Table | None:
    """A file exactly as it is on storage, read with pyarrow alone (not through sweeper's readers)."""
    data = folder.read_bytes(file)
    return None if data is None else pq.read_table(pa.BufferReader(data))


def disagreeing(trials: list[dict[str, Any]], epochs: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Trials whose `epochs` is not their number of epoch rows: id -> (epochs, rows)."""
    rows = Counter(e["trial_id"] for e in epochs)
    return {t["trial_id"]: (int(t["epochs"] or 0), rows[t["trial_id"]]) for t in trials
            if int(t["epochs"] or 0) != rows[t["trial_id"]]}


def sweeper_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "sweeper", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def cli_epochs(storage: str, name: str, env: dict[str, str] | None) -> tuple[int, dict[str, int]]:
    """What the real CLI shows: `status`'s trial-epochs (the sum of the trials' epochs), and each trial's epochs
    in `report --format csv`."""
    status = sweeper_cli("status", name, "--storage", storage, env=env)
    found = re.search(r"trial-epochs\s+(\d+)", status)
    assert found, status
    report = sweeper_cli("report", name, "--storage", storage, "--format", "csv", env=env)
    return int(found.group(1)), {r["trial_id"]: int(r["epochs"]) for r in csv.DictReader(io.StringIO(report))}
