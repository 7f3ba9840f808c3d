"""Your own model against the built-in one: the study's 4th CNN written as a user factory (benchmarks/fourth_cnn.py)
beside the built-in `cnn` with the same keys, each launched as a one-trial sweep in a fresh `sweeper launch`.

    .venv/bin/python -m benchmarks.user_model [--epochs 2] [--repeats 5]

Both sides: the genuine Fashion-MNIST (48,000 train, 12,000 validation images), one trial with one CPU (one torch
thread), the same optimizer and seed, FIFO, the same environment. A warm-up launch of each side first fills the
calibration cache, so the timed launches measure what a user's second launch of each would wait for. Rounds
alternate the order (A B, B A, ...). Per side and round:
- epoch_s: the trial's last epoch as epochs.parquet records it (the first epoch warms caches up);
- outside_s: the whole command (process start to exit) less the trial's epochs: imports, checks, data, Ray,
  and for the user model reading the factory and building it at the data's shape on the meta device.
Thresholds, fixed before either side ran: factory/builtin epoch_s median ratio at most 1.05; outside_s median of
the factory side at most 2 s above the built-in's.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from benchmarks.common import Measures, bench_env, compare, run_timed, spread, sweeper_cmd, workdir, write_yaml

REPO = Path(__file__).resolve().parents[1]
FOURTH_CNN = {"conv_layers": 2, "filters": 32, "kernel_size": 3, "dropout": 0.2}  # search_spaces/cnn.yaml's 4th CNN
EPOCH_RATIO_MAX = 1.05
OUTSIDE_EXTRA_MAX_S = 2.0


def space(side: str, epochs: int) -> dict:
    params = {"optimizer": "adam", "batch_size": 32, "seed": 0}
    if side == "builtin":
        params |= {"model": "cnn", **FOURTH_CNN}
    else:
        params |= {"model": "fourth", "dropout": FOURTH_CNN["dropout"]}
    out = {"name": f"bench-{side}", "epochs": epochs, "scheduler": {"type": "fifo"}, "parameters": params}
    if side == "factory":
        out["models"] = {"fourth": "benchmarks.fourth_cnn:build"}
    return out


def launch(side: str, folder: Path, epochs: int, round_: int) -> Measures:
    spec = write_yaml(folder / f"{side}.yaml", space(side, epochs))
    storage = folder / "runs"
    shutil.rmtree(storage / f"bench-{side}", ignore_errors=True)
    run = run_timed([*sweeper_cmd(), "launch", str(spec), "--storage", str(storage), "-q"], bench_env(1))
    epochs_rows = pd.read_parquet(storage / f"bench-{side}" / "epochs.parquet").sort_values("epoch")
    return {"command_s": run.seconds, "epoch_s": float(epochs_rows.time_s.iloc[-1]),
            "outside_s": run.seconds - float(epochs_rows.time_s.sum())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    folder = workdir("sweeper-bench-user-")
    for side in ("builtin", "factory"):  # warm-up: calibration cached, files staged
        launch(side, folder, 1, -1)
    results: dict[str, list[Measures]] = {"builtin": [], "factory": []}
    for i in range(args.repeats):  # alternate which side goes first
        for name in ("builtin", "factory") if i % 2 == 0 else ("factory", "builtin"):
            measures = launch(name, folder, args.epochs, i)
            results[name].append(measures)
            print(f"  round {i + 1}/{args.repeats} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in measures.items()),
                  flush=True)
    print(compare(results, "factory", "builtin",
                  {"command_s": "whole launch", "epoch_s": "epoch (last)", "outside_s": "launch less its epochs"}))
    ratio = [f["epoch_s"] / b["epoch_s"] for f, b in zip(results["factory"], results["builtin"], strict=True)]
    extra = [f["outside_s"] - b["outside_s"] for f, b in zip(results["factory"], results["builtin"], strict=True)]
    ratio_ok = sorted(ratio)[len(ratio) // 2] <= EPOCH_RATIO_MAX
    extra_ok = sorted(extra)[len(extra) // 2] <= OUTSIDE_EXTRA_MAX_S
    print(f"epoch factory/builtin per round: {spread(ratio, 3)} (threshold {EPOCH_RATIO_MAX}): "
          f"{'met' if ratio_ok else 'NOT met'}")
    print(f"launch outside epochs, factory - builtin per round: {spread(extra)} s (threshold {OUTSIDE_EXTRA_MAX_S} s): "
          f"{'met' if extra_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
