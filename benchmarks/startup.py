"""Start-up time of the fast commands: `sweeper --help`, `sweeper list`, `sweeper status`.

    .venv/bin/python -m benchmarks.startup [--runs 9] [--quick]

Each command runs --runs times as a fresh process (timed from its start to its exit) against a temp storage
holding one small sweep folder, in interleaved rounds (the order alternating) beside a bare `python -c pass` for
reference, all in the
same environment. Prints the median (min-max) of each, then each command's median over the bare interpreter's.
--quick: 2 rounds. Full run (estimate): 9 rounds of about 3 s: under a minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import Measures, bench_env, interleave, run_timed, spread, sweeper_cmd


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


def timed(cmd: list[str], env: dict[str, str], i: int) -> Measures:
    return {"command_s": run_timed(cmd, env).seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="rounds; default 9 (2 with --quick)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = bench_env(SWEEPER_STORAGE=str(fake_storage(Path(tmp))), COLUMNS="100")
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "sweeper --help": [*sweeper_cmd(), "--help"],
            "sweeper list": [*sweeper_cmd(), "list"],
            "sweeper status": [*sweeper_cmd(), "status", "bench"],
        }
        sides = {name: partial(timed, cmd, env) for name, cmd in cases.items()}
        results = interleave(sides, args.runs or (2 if args.quick else 9), echo=lambda line: None)
    times = {name: [m["command_s"] for m in runs] for name, runs in results.items()}
    base = statistics.median(times["python -c pass"])
    for name, values in times.items():
        print(f"{name:16s} {spread(values, 3)} s, n={len(values)}"
              + ("" if name.startswith("python") else f"  = {statistics.median(values) / base:.1f}x bare python"))


if __name__ == "__main__":
    main()
