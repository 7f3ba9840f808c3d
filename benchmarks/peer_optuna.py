"""sweeper against Optuna at equal concurrency: the same search, two one-thread workers on each side.

    .venv/bin/python -m benchmarks.peer_optuna [--seeds 0 1 2 3 4] [--trials 12] [--epochs 9] [--threshold X] [--quick]

The space (both sides): two CNN variants (8 filters kernel 2; 32 filters kernel 3) x optimizer {adam, sgd} x
lr loguniform(1e-4, 1e-1) x dropout uniform(0, 0.5), batch 32; --trials trials of up to --epochs epochs on
2,000/2,000/1,000 train/val/test images (data seed 0); TPE (4 random start-up trials, each variant first) and
successive halving (grace 1, reduction 3). Per seed (the sampler's and the trials' seed), two sides, in turn:
  sweeper: `.venv/bin/sweeper launch SPACE.yaml --quiet`: search tpe, scheduler asha, resources cpu 1,
           max_concurrent 2: two one-thread trials at a time in Ray workers.
  optuna:  two `python benchmarks/optuna_worker.py` processes started together, sharing one study in a
           JournalStorage file: TPESampler + SuccessiveHalvingPruner, torch threads 1 each, every trial trained by
           sweeper's own train_trial. Two processes rather than n_jobs=2 threads: two threads of one interpreter
           share its GIL, which the per-batch Python of two training loops contends for; Ray runs processes too.
Both sides get the same environment (OMP/MKL/OPENBLAS_NUM_THREADS=1). The clock of each side starts just
before its (first) process starts; epochs are placed on it by their `reported_at`.
Per seed: the best val_accuracy of each side; the threshold, the lower of the two (or --threshold); the time
from the side's start to its first epoch at or above it, and the trial-epochs reported by then; the whole
command and all trial-epochs. Then medians (min-max) over the seeds and the optuna/sweeper ratios per seed.
A side that never reaches a fixed --threshold counts its whole command (marked "not reached").
--quick: 4 trials of 2 epochs on 500 images, one seed (a smoke run, not a measurement).

Full run on the 2-core machine (estimate): 5 seeds x 2 sides x about 45 s: about 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from benchmarks.common import (
    REPO,
    Measures,
    bench_env,
    data_dir,
    ratios,
    run_timed,
    run_together,
    spread,
    sweeper_cmd,
    table,
    workdir,
    write_yaml,
)

GRACE, REDUCTION, STARTUP = 1, 3, 4


def space_file(work: Path, seed: int, args: argparse.Namespace) -> Path:
    n = (500, 500, 500) if args.quick else (2000, 2000, 1000)
    return write_yaml(work / f"peer-{seed}.yaml", {
        "name": "peer", "metric": "val_accuracy", "mode": "max", "epochs": args.epochs,
        "scheduler": {"type": "asha", "grace_period": GRACE, "reduction_factor": REDUCTION},
        "search": {"type": "tpe", "startup_trials": STARTUP}, "num_samples": args.trials, "max_concurrent": 2,
        "resources": {"cpu": 1, "gpu": 0},
        "data": {"train_subset": n[0], "val_subset": n[1], "test_subset": n[2], "seed": 0}, "seed": seed,
        "variants": [
            {"name": "2conv-8f-k2", "model": "cnn", "conv_layers": 2, "filters": 8, "kernel_size": 2},
            {"name": "2conv-32f-k3", "model": "cnn", "conv_layers": 2, "filters": 32, "kernel_size": 3},
        ],
        "parameters": {"batch_size": 32, "seed": seed, "optimizer": {"choice": ["adam", "sgd"]},
                       "lr": {"loguniform": [1.0e-4, 1.0e-1]}, "dropout": {"uniform": [0.0, 0.5]}},
    })


def sweeper_side(space: Path, storage: Path) -> tuple[float, pd.DataFrame]:
    """Whole command, and the epochs with `since_start`: seconds from the process start."""
    run = run_timed([*sweeper_cmd(), "launch", str(space), "--storage", str(storage), "--quiet"], bench_env())
    epochs = pd.read_parquet(storage / "peer" / "epochs.parquet")
    return run.seconds, epochs.assign(since_start=epochs.reported_at - run.started_at)


def optuna_side(space: Path, seed: int, work: Path, trials: int) -> tuple[float, pd.DataFrame]:
    job = work / f"optuna-{seed}.json"
    job.write_text(json.dumps({
        "space": str(space), "journal": str(work / f"optuna-{seed}.log"), "study": "peer", "seed": seed,
        "startup": STARTUP, "budget": trials, "grace": GRACE, "reduction": REDUCTION, "threads": 1,
        "data_dir": data_dir()}))
    outs = [work / f"optuna-{seed}-{w}.jsonl" for w in (0, 1)]
    worker = [sys.executable, str(REPO / "benchmarks" / "optuna_worker.py"), str(job)]
    run = run_together([[*worker, str(w), str(out)] for w, out in enumerate(outs)], bench_env())
    epochs = pd.DataFrame([json.loads(line) for out in outs for line in out.read_text().splitlines()])
    return run.seconds, epochs.assign(since_start=epochs.reported_at - run.started_at)


def reached(command_s: float, epochs: pd.DataFrame, threshold: float) -> Measures:
    """Seconds to the first epoch at or above the threshold and the trial-epochs reported by then."""
    hits = epochs[epochs.val_accuracy >= threshold - 1e-12]
    at = hits.since_start.min() if len(hits) else command_s
    return {"best": epochs.val_accuracy.max(), "to_threshold_s": at,
            "epochs_to_threshold": float((epochs.since_start <= at).sum()), "command_s": command_s,
            "trial_epochs": float(len(epochs)), "reached": float(len(hits) > 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2 3 4 (0 with --quick)")
    ap.add_argument("--trials", type=int, default=None, help="the trial budget; default 12 (4 with --quick)")
    ap.add_argument("--epochs", type=int, default=None, help="max epochs per trial; default 9 (2 with --quick)")
    ap.add_argument("--threshold", type=float, default=None, help="default: the lower of the two sides' bests")
    ap.add_argument("--quick", action="store_true", help="tiny data, 4 trials, 2 epochs, one seed")
    args = ap.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2, 3, 4])
    args.trials = args.trials or (4 if args.quick else 12)
    args.epochs = args.epochs or (2 if args.quick else 9)
    work = workdir("sweeper-peer-")
    print(f"{args.trials} trials of up to {args.epochs} epochs, two one-thread workers a side, seeds {args.seeds}")
    rows: dict[str, list[Measures]] = {"sweeper": [], "optuna": []}
    for seed in args.seeds:  # interleaved: sweeper, optuna, sweeper, optuna, ...
        space = space_file(work, seed, args)
        s_wall, s_epochs = sweeper_side(space, work / f"runs-{seed}")
        o_wall, o_epochs = optuna_side(space, seed, work, args.trials)
        threshold = args.threshold or min(s_epochs.val_accuracy.max(), o_epochs.val_accuracy.max())
        for side, wall, epochs in (("sweeper", s_wall, s_epochs), ("optuna", o_wall, o_epochs)):
            m = reached(wall, epochs, threshold)
            rows[side].append(m | {"threshold": threshold})
            print(f"  seed {seed} {side:7s}: best {m['best']:.4f}; threshold {threshold:.4f} "
                  + (f"at {m['to_threshold_s']:.1f} s after {m['epochs_to_threshold']:.0f} trial-epochs"
                     if m["reached"] else "not reached")
                  + f"; command {wall:.1f} s, {len(epochs)} trial-epochs", flush=True)
    labels = {"best": ("best val_accuracy", 4), "to_threshold_s": ("seconds to threshold", 1),
              "epochs_to_threshold": ("trial-epochs to threshold", 0), "command_s": ("command seconds", 1),
              "trial_epochs": ("trial-epochs in all", 0)}
    out = []
    for key, (label, digits) in labels.items():
        s, o = [m[key] for m in rows["sweeper"]], [m[key] for m in rows["optuna"]]
        out.append([label, spread(s, digits), spread(o, digits), spread(ratios(o, s), 3)])
    print(f"\nmedian (min-max) over {len(args.seeds)} seeds")
    print(table(["", "sweeper", "optuna", "optuna/sweeper"], out))


if __name__ == "__main__":
    main()
