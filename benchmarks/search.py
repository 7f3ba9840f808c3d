"""Search that learns: random + ASHA and TPE + ASHA (sweeper on the local Ray) against Optuna's own loop (TPE with
the SuccessiveHalvingPruner), on the CNN family, with the same trial budget and the same data.

    .venv/bin/python -m benchmarks.search [--seeds 5] [--trials 16] [--epochs 9] [--train-subset 3000]
                                          [--val-subset 1000] [--quick]

The space: cnn.yaml's eight architectures (variants) x optimizer {adam, sgd} x dropout {0.2, 0.4} x momentum
{0, 0.9} for SGD only (a `when`): 48 configurations. Its full grid (FIFO, every configuration to `--epochs`) runs
once, for the best validation accuracy there is to find. Then each method runs `--trials` trials per seed, ASHA
(sweeper) and successive halving (Optuna) both with grace/min resource 1 and reduction factor 3 (rungs 1, 3, 9 at
9 epochs). sweeper runs one trial per core (two on this machine); Optuna runs `n_jobs=2` workers in one process,
torch on one thread each. Both TPE sides evaluate the eight variants first, with Optuna's default 10 startup draws.

Every run is a fresh process (`--side METHOD --seed S`), timed by the parent from its start to its exit (Python,
imports, Ray, data and all). Prints per method the median (min-max) over seeds of: the best validation accuracy
(each trial's last reported value), the trial-epochs used, the wall time, and the trial-epochs spent until a report
first came within 0.5 points of the full grid's best (in report order; "never" counts the runs that did not).
`--quick` checks that it works: 2 variants, 3 epochs, 500/300 images, 6 trials, 2 seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
METHODS = ("random", "tpe", "optuna")
AXES = {"optimizer": "[adam, sgd]", "dropout": "[0.2, 0.4]", "momentum": "[0.0, 0.9]"}


def space_text(args: argparse.Namespace, method: str, seed: int) -> str:
    """The benchmark's YAML for a sweeper side, or (method "grid") the full grid."""
    import yaml

    cnn = yaml.safe_load((REPO / "search_spaces" / "cnn.yaml").read_text())
    variants = cnn["variants"][: args.variants]
    grid = method == "grid"
    kind = "grid" if grid else "choice"
    params = "\n".join(f"  {k}: {{{kind}: {v}" + (", when: {optimizer: sgd}}" if k == "momentum" else "}")
                       for k, v in AXES.items())
    scheduler = "{type: fifo}" if grid else "{type: asha, grace_period: 1, reduction_factor: 3}"
    return "\n".join([
        f"name: bench-{method}-{seed}", "metric: val_accuracy", f"epochs: {args.epochs}", f"scheduler: {scheduler}",
        f"search: {{type: {method}}}", f"num_samples: {1 if grid else args.trials}", f"seed: {seed}",
        "resources: {cpu: 1}",
        f"data: {{train_subset: {args.train_subset}, val_subset: {args.val_subset}, test_subset: 500, seed: 0}}",
        "variants:", *(f"  - {json.dumps(v)}" for v in variants), "parameters:", "  batch_size: 32", params, "",
    ])


def sweeper_side(args: argparse.Namespace, method: str, seed: int, data_dir: str) -> dict[str, Any]:
    import pandas as pd

    from sweeper.run.sweep import launch
    from sweeper.spec.loader import load_text
    from sweeper.store.storage import Storage

    work = Path(tempfile.mkdtemp(prefix=f"sweeper-search-{method}-"))
    space = load_text(space_text(args, method, seed), work / "space.yaml")
    folder = launch(space, Storage.parse(str(work / "runs")), data_dir=data_dir, echo=None).folder.path
    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet").sort_values("reported_at")
    return {"best": float(trials.val_accuracy.max()), "trial_epochs": len(epochs),
            "curve": epochs.val_accuracy.tolist(), "trials": len(trials)}


def optuna_side(args: argparse.Namespace, seed: int, data_dir: str) -> dict[str, Any]:
    """Optuna's own loop: the same space (sweeper's define-by-run function), TPE + successive halving, two
    workers (n_jobs=2) of one torch thread each."""
    import optuna
    import torch

    from sweeper.run import data
    from sweeper.run.searcher import SpaceSampler
    from sweeper.run.trainable import Tensors, train_trial
    from sweeper.spec.loader import load_text

    torch.set_num_threads(1)
    space = load_text(space_text(args, "tpe", seed), Path("optuna.yaml"))
    tensors = Tensors.from_splits(data.load(data_dir, space.spec.data), torch.device("cpu"))
    draw, curve, last, lock = SpaceSampler(space), [], {}, threading.Lock()

    def objective(trial: optuna.Trial) -> float:
        params = space.trial_params(draw(trial))

        def report(metrics: dict[str, Any], save: Any) -> None:
            with lock:
                curve.append(metrics["val_accuracy"])
                last[trial.number] = metrics["val_accuracy"]
            trial.report(metrics["val_accuracy"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        return float(train_trial(params, tensors, space.spec.epochs, report)["val_accuracy"])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    for variant in space.variants:
        study.enqueue_trial({"variant": variant})
    study.optimize(objective, n_trials=args.trials, n_jobs=2)
    return {"best": max(last.values()), "trial_epochs": len(curve), "curve": curve, "trials": len(study.trials)}


def child(args: argparse.Namespace) -> None:
    data_dir = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")
    method, seed = args.side, args.seed
    out = optuna_side(args, seed, data_dir) if method == "optuna" else sweeper_side(args, method, seed, data_dir)
    print("RESULT " + json.dumps(out), flush=True)


def run_side(args: argparse.Namespace, method: str, seed: int) -> dict[str, Any]:
    """One run in a fresh process, timed from its start to its exit."""
    cmd = [sys.executable, "-m", "benchmarks.search", "--side", method, "--seed", str(seed), *args.passthrough]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{method} seed {seed} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                         f"{proc.stderr[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT ")) | {"wall": wall}


def until(curve: list[float], target: float) -> int | None:
    """Trial-epochs reported until the first report at or above `target` (None: never)."""
    return next((i + 1 for i, v in enumerate(curve) if v >= target), None)


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--train-subset", type=int, default=3000)
    ap.add_argument("--val-subset", type=int, default=1000)
    ap.add_argument("--variants", type=int, default=8, help="how many of cnn.yaml's architectures")
    ap.add_argument("--quick", action="store_true", help="a check that it works, not a measurement")
    ap.add_argument("--side", choices=("grid", *METHODS), help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.trials, args.epochs, args.train_subset, args.val_subset, args.variants = 2, 6, 3, 500, 300, 2
    if args.side:
        child(args)
        return
    args.passthrough = [f"--trials={args.trials}", f"--epochs={args.epochs}", f"--train-subset={args.train_subset}",
                        f"--val-subset={args.val_subset}", f"--variants={args.variants}"]
    grid = run_side(args, "grid", 0)
    target = grid["best"] - 0.005
    print(f"full grid: {grid['trials']} configurations x {args.epochs} epochs = {grid['trial_epochs']} trial-epochs, "
          f"best val_accuracy {grid['best']:.4f}, {grid['wall']:.0f}s", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        for method in METHODS:
            runs[method].append(result := run_side(args, method, seed))
            print(f"{method} seed {seed}: best {result['best']:.4f}, {result['trial_epochs']} trial-epochs, "
                  f"{result['wall']:.0f}s", flush=True)
    print(f"\n{args.trials} trials per run, {args.seeds} seeds, {args.train_subset}/{args.val_subset} images, "
          f"up to {args.epochs} epochs; target: within 0.5 points of the grid's best ({grid['best']:.4f})")
    print(f"{'method':<28} {'best val_accuracy':<26} {'trial-epochs':<18} {'wall (s)':<18} until target")
    names = {"random": "random + ASHA (sweeper)", "tpe": "TPE + ASHA (sweeper)", "optuna": "TPE + SH (Optuna, 2 jobs)"}
    for method, results in runs.items():
        reached = [n for r in results if (n := until(r["curve"], target)) is not None]
        never = len(results) - len(reached)
        hit = (spread([float(n) for n in reached], ".0f") if reached else "-") + (f", never {never}x" if never else "")
        print(f"{names[method]:<28} {spread([r['best'] for r in results], '.4f'):<26} "
              f"{spread([float(r['trial_epochs']) for r in results], '.0f'):<18} "
              f"{spread([r['wall'] for r in results], '.0f'):<18} {hit}")


if __name__ == "__main__":
    main()
