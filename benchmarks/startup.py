"""Start-up time of the fast commands: `sweeper --help`, `sweeper list`, `sweeper status`.

    .venv/bin/python benchmarks/startup.py [--runs 9]

Each command runs --runs times in a fresh interpreter (subprocess, timed with time.perf_counter around the
whole run) against a temp storage holding one small sweep folder. Prints the median and the spread of each,
beside a bare `python -c pass` for reference, then the median of each command over the bare interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def sweeper_cmd() -> list[str]:
    script = Path(sys.executable).with_name("sweeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sweeper"]


def fake_storage(root: Path) -> Path:
    """One finished sweep of 20 trials: sweep.json and trials.parquet, what list and status read."""
    folder = root / "runs" / "bench"
    folder.mkdir(parents=True)
    now = time.time()
    (folder / "sweep.json").write_text(json.dumps({
        "name": "bench", "state": "finished", "fingerprint": {"metric": "val_accuracy", "mode": "max", "epochs": 5,
                                                              "parameters": {"lr": {"grid": list(range(20))}}},
        "sessions": [{"started": now - 60, "ended": now, "outcome": "finished"}]}))
    pq.write_table(pa.table({"trial_id": [f"t_{i:05d}" for i in range(20)], "state": ["TERMINATED"] * 20,
                             "stopped_by": [None] * 20, "epochs": [5] * 20,
                             "val_accuracy": [0.5 + i / 100 for i in range(20)]}), folder / "trials.parquet")
    return root / "runs"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SWEEPER_STORAGE": str(fake_storage(Path(tmp))), "COLUMNS": "100"}
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "sweeper --help": [*sweeper_cmd(), "--help"],
            "sweeper list": [*sweeper_cmd(), "list"],
            "sweeper status": [*sweeper_cmd(), "status", "bench"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits every case alike
            for name, cmd in cases.items():
                times[name].append(timed(cmd, env))
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:16s} median {med:.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"
              + ("" if name.startswith("python") else f"  = {med / base:.1f}x bare python"))


if __name__ == "__main__":
    main()
