"""Search that learns: random + ASHA and TPE + ASHA (sweeper on the local Ray) against Optuna's own loop (TPE with
the SuccessiveHalvingPruner), on the CNN family, with the same trial budget and the same data.

    .venv/bin/python -m benchmarks.search [--seeds 5] [--trials 16] [--epochs 9] [--train-subset 3000]
                                          [--val-subset 1000] [--quick]

The space: cnn.yaml's eight architectures (variants) x optimizer {adam, sgd} x dropout {0.2, 0.4} x momentum
{0, 0.9} for SGD only (a `when`): 48 configurations. Its full grid (FIFO, every configuration to `--epochs`) runs
once, for the best validation accuracy there is to find. Then each method runs `--trials` trials per seed, ASHA
(sweeper) and successive halving (Optuna) both with grace/min resource 1 and reduction factor 3 (rungs 1, 3, 9 at
9 epochs). sweeper runs one one-thread trial per core (two on this machine); Optuna runs two worker processes of
one torch thread each on one JournalStorage study (benchmarks/optuna_worker.py, as peer_optuna.py: two threads
of one process would contend for its GIL). Both TPE sides evaluate the eight variants first; Optuna's TPE has its
default 10 start-up draws.

Every run is fresh processes in the same environment (benchmarks.common.bench_env: one BLAS thread), a sweeper
side `python -m benchmarks.search --side METHOD --seed S`, timed by the parent from just before the start to the
last exit (Python, imports, Ray, data and all). Seeds interleave the methods (random, tpe, optuna, random, ...).
Prints per method the median (min-max) over seeds of: the best validation accuracy
(each trial's last reported value), the trial-epochs used, the wall time, and the trial-epochs spent until a report
first came within 0.5 points of the full grid's best (in report order), a run that never did counting as worse than
any that did (so the median is "never" when most runs never got there), with each seed's value listed.
`--quick` checks that it works: 2 variants, 3 epochs, 500/300 images, 6 trials, 2 seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, bench_env, data_dir, run_timed, run_together

OPTUNA_STARTUP = 10  # Optuna's default n_startup_trials
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

    from sweeper.run import launch
    from sweeper.spec.loader import load_text
    from sweeper.store.storage import Storage

    work = Path(tempfile.mkdtemp(prefix=f"sweeper-search-{method}-"))
    space = load_text(space_text(args, method, seed), work / "space.yaml")
    folder = launch(space, Storage.parse(str(work / "runs")), data_dir=data_dir, echo=None).folder.path
    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet").sort_values("reported_at")
    return {"best": float(trials.val_accuracy.max()), "trial_epochs": len(epochs),
            "curve": epochs.val_accuracy.tolist(), "trials": len(trials)}


def optuna_side(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Optuna's own loop, as peer_optuna.py runs it: two `benchmarks/optuna_worker.py` processes of one torch
    thread each, sharing one study (JournalStorage), TPE (10 start-up draws, the eight variants first) + successive
    halving, on the same space (sweeper's define-by-run function) and data; timed from just before they start to
    the last one's exit."""
    work = Path(tempfile.mkdtemp(prefix=f"sweeper-search-optuna-{seed}-"))
    space = work / "space.yaml"
    space.write_text(space_text(args, "tpe", seed))
    job = work / "job.json"
    job.write_text(json.dumps({
        "space": str(space), "journal": str(work / "journal.log"), "study": "search", "seed": seed,
        "startup": OPTUNA_STARTUP, "budget": args.trials, "grace": 1, "reduction": 3, "threads": 1,
        "data_dir": data_dir()}))
    outs = [work / f"worker-{w}.jsonl" for w in (0, 1)]
    worker = [sys.executable, str(REPO / "benchmarks" / "optuna_worker.py"), str(job)]
    run = run_together([[*worker, str(w), str(out)] for w, out in enumerate(outs)], bench_env())
    lines = sorted((json.loads(ln) for out in outs for ln in out.read_text().splitlines()),
                   key=lambda r: r["reported_at"])
    last = {(r["worker"], r["trial"]): r["val_accuracy"] for r in lines}  # each trial's last report
    return {"best": max(last.values()), "trial_epochs": len(lines), "curve": [r["val_accuracy"] for r in lines],
            "trials": len(last), "wall": run.seconds}


def child(args: argparse.Namespace) -> None:
    out = sweeper_side(args, args.side, args.seed, data_dir())
    print("RESULT " + json.dumps(out), flush=True)


def run_side(args: argparse.Namespace, method: str, seed: int) -> dict[str, Any]:
    """One run in fresh processes (bench_env: one BLAS thread), timed from the start to the exit."""
    if method == "optuna":
        return optuna_side(args, seed)
    cmd = [sys.executable, "-m", "benchmarks.search", "--side", method, "--seed", str(seed), *args.passthrough]
    run = run_timed(cmd, bench_env())
    lines = [ln for ln in run.output.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"{method} seed {seed} printed no result:\n{run.output[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT ")) | {"wall": run.seconds}


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
    ap.add_argument("--grid-best", type=float, default=None,
                    help="the full grid's best val_accuracy from an earlier run of the same settings (skips the grid)")
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
    if args.grid_best is None:
        grid = run_side(args, "grid", 0)
        args.grid_best = grid["best"]
        print(f"full grid: {grid['trials']} configurations x {args.epochs} epochs = {grid['trial_epochs']} "
              f"trial-epochs, best val_accuracy {grid['best']:.4f}, {grid['wall']:.0f}s", flush=True)
    grid = {"best": args.grid_best}
    target = grid["best"] - 0.005
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        for method in METHODS:
            runs[method].append(result := run_side(args, method, seed))
            print(f"{method} seed {seed}: best {result['best']:.4f}, {result['trial_epochs']} trial-epochs, "
                  f"{result['wall']:.0f}s, target after {until(result['curve'], target) or 'never'}", flush=True)
    print(f"\n{args.trials} trials per run, {args.seeds} seeds, {args.train_subset}/{args.val_subset} images, "
          f"up to {args.epochs} epochs; target: within 0.5 points of the grid's best ({grid['best']:.4f})")
    print(f"{'method':<28} {'best val_accuracy':<26} {'trial-epochs':<18} {'wall (s)':<18} until target")
    names = {"random": "random + ASHA (sweeper)", "tpe": "TPE + ASHA (sweeper)", "optuna": "TPE + SH (Optuna, 2 procs)"}
    for method, results in runs.items():
        hits = [until(r["curve"], target) for r in results]
        ranked = sorted(math.inf if n is None else n for n in hits)
        mid = statistics.median(ranked)
        hit = (f"{'never' if math.isinf(mid) else f'{mid:.0f}'} "
               f"(seeds: {', '.join('never' if n is None else str(n) for n in hits)})")
        print(f"{names[method]:<28} {spread([r['best'] for r in results], '.4f'):<26} "
              f"{spread([float(r['trial_epochs']) for r in results], '.0f'):<18} "
              f"{spread([r['wall'] for r in results], '.0f'):<18} {hit}")


if __name__ == "__main__":
    main()
