"""A random-kill soak: a TPE + ASHA sweep with repeats whose whole process tree (the driver, its Ray, the trials'
workers) is SIGKILLed at random moments, `--kills` times, each time resumed; then resumed to its end.

    .venv/bin/python -m benchmarks.chaos [--seeds 0 1 2] [--kills 10]

Per seed it checks what a user counts on after any crash: the sweep ends with exactly its budget of trials, all
ended; no epoch row twice and none missing (every trial's epochs are 1..its last, contiguous); every epoch row on
disk before a kill is still there after it, with the same values. It prints the kills survived (a kill that lands
after the sweep has ended is not counted) and every broken rule. Kill moments are drawn (seeded) from 1 to 25 s
after the driver starts, so they fall in Ray's start, in trials, in trial starts and ends, and in writes.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.common import bench_env, sweeper_cmd, write_yaml

REPO = Path(__file__).resolve().parents[1]
BUDGET = 12  # num_samples x repeats
METRICS = ("train_loss", "val_loss", "val_accuracy")


def space(name: str) -> dict[str, Any]:
    return {
        "name": name, "epochs": 4, "metric": "val_accuracy",
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "search": {"type": "tpe", "startup_trials": 3}, "num_samples": 6, "repeats": 2, "max_concurrent": 2,
        "data": {"train_subset": 3000, "val_subset": 600, "test_subset": 600},
        "parameters": {"model": "mlp", "hidden": [32], "batch_size": 64,
                       "optimizer": {"choice": ["sgd", "adam"]}, "lr": {"loguniform": [1.0e-3, 1.0e-1]}},
    }


def session_pids(sid: int) -> list[int]:
    """Every process of the session the driver started (Ray's processes included, whatever their group)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                out.append(int(entry))
    return out


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def epoch_rows(folder: Path) -> dict[tuple[str, int], tuple[float, ...]]:
    file = folder / "epochs.parquet"
    if not file.is_file():
        return {}
    rows = pq.read_table(file).to_pylist()
    return {(r["trial_id"], int(r["epoch"])): tuple(r[m] for m in METRICS) for r in rows}


def same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
               for x, y in zip(a, b, strict=True))


def soak(seed: int, kills: int, root: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    name = f"chaos{seed}"
    root.mkdir(parents=True, exist_ok=True)
    spec = root / f"{name}.yaml"
    write_yaml(spec, space(name))
    runs, folder = root / "runs", root / "runs" / name
    env = bench_env(threads=1)
    broken: list[str] = []
    survived, started = 0, time.perf_counter()
    launch = [*sweeper_cmd(), "launch", str(spec), "--storage", str(runs), "-q"]
    resume = [*sweeper_cmd(), "resume", name, "--storage", str(runs), "-q"]
    for _ in range(kills):
        # killed before the launch wrote sweep.json: there is nothing to resume, so the user launches again
        command = resume if (folder / "sweep.json").is_file() else launch
        log = tempfile.TemporaryFile()
        proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(1.0, 25.0))
        except subprocess.TimeoutExpired:
            before = epoch_rows(folder)
            kill_tree(proc)
            survived += 1
            after = epoch_rows(folder)
            lost = [k for k, v in before.items() if k not in after or not same(v, after[k])]
            broken += [f"kill {survived}: epoch row {k} changed or vanished" for k in lost]
            continue
        log.seek(0)
        if proc.returncode != 0:
            broken.append(f"{command[1 if command[0].endswith('sweeper') else 3]} ended with exit "
                          f"{proc.returncode}: {log.read().decode()[-600:]}")
        break  # the sweep ended before the kill came
    final = subprocess.run(resume if (folder / "sweep.json").is_file() else launch, env=env, cwd=REPO,
                           capture_output=True, text=True)
    if final.returncode != 0:
        broken.append(f"the last run ended with exit {final.returncode}: {(final.stdout + final.stderr)[-600:]}")
    if not (folder / "trials.parquet").is_file():
        return {"seed": seed, "kills": survived, "trials": 0, "epoch_rows": 0, "broken": broken + ["no trials"],
                "seconds": time.perf_counter() - started}
    trials = pq.read_table(folder / "trials.parquet").to_pylist()
    epochs = pq.read_table(folder / "epochs.parquet").to_pylist()
    if len(trials) != BUDGET or len({t["trial_id"] for t in trials}) != BUDGET:
        broken.append(f"{len(trials)} trials, not the budget of {BUDGET}")
    broken += [f"trial {t['trial_id']} failed: {str(t.get('error'))[-400:]}" for t in trials if t["state"] == "ERROR"]
    unended = [t["trial_id"] for t in trials if t["state"] not in ("TERMINATED", "ERROR")]
    broken += [f"trial {t} did not end" for t in unended]
    keys = [(e["trial_id"], int(e["epoch"])) for e in epochs]
    if len(keys) != len(set(keys)):
        broken.append("an epoch row appears twice")
    for t in trials:
        got = sorted(e for tid, e in keys if tid == t["trial_id"])
        if got != list(range(1, (t["epochs"] or 0) + 1)):
            broken.append(f"trial {t['trial_id']}: epochs {got}, its row says {t['epochs']}")
    return {"seed": seed, "kills": survived, "trials": len(trials), "epoch_rows": len(keys), "broken": broken,
            "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="keep the sweeps in this folder (default: a temporary one)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="sweeper-chaos-") as tmp:
        for seed in args.seeds:
            result = soak(seed, args.kills, (args.keep or Path(tmp)) / f"s{seed}")
            results.append(result)
            print(f"seed {seed}: {result['kills']} kills survived, {result['trials']} trials, "
                  f"{result['epoch_rows']} epoch rows, {len(result['broken'])} broken rules, "
                  f"{result['seconds']:.0f} s", flush=True)
            for line in result["broken"]:
                print(f"  BROKEN: {line}", flush=True)
    total = sum(r["kills"] for r in results)
    bad = sum(len(r["broken"]) for r in results)
    print(f"chaos: {total} kills over {len(results)} seeds, {bad} broken rules")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
