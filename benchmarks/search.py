"""Search that learns: random + ASHA and TPE + ASHA (sweeper on the local Ray) against Optuna's own loop (TPE with
the SuccessiveHalvingPruner), on the CNN family, with the same trial budget and the same data.

    .venv/bin/python -m benchmarks.search [--seeds 5] [--trials 16] [--epochs 9] [--train-subset 3000]
                                          [--val-subset 1000] [--grid-best X] [--quick]

The space: cnn.yaml's eight architectures (variants) x optimizer {adam, sgd} x dropout {0.2, 0.4} x momentum
{0, 0.9} for SGD only (a `when`): 48 configurations; metric val_accuracy, mode max. Its full grid (FIFO, every
configuration to `--epochs`) runs once, first, for the best validation accuracy there is to find (or --grid-best
gives it from an earlier run of the same settings). Then each method runs `--trials` trials per seed, ASHA
(sweeper) and successive halving (Optuna) both with grace/min resource 1 and reduction factor 3 (rungs 1, 3, 9 at
9 epochs). sweeper runs one one-thread trial per core (two on this machine); Optuna runs two worker processes of
one torch thread each on one JournalStorage study (benchmarks/optuna_worker.py, as peer_optuna.py: two threads
of one process would contend for its GIL). Both TPE sides evaluate the eight variants first; Optuna's TPE has its
default 10 start-up draws.

Every run is fresh processes in the same environment (benchmarks.common.bench_env: one BLAS thread, the same
SWEEPER_DATA_DIR and SWEEPER_CACHE_DIR), a sweeper side `python -m benchmarks.search --side METHOD --seed S`
(which launches the sweep in that process), timed by the parent from just before the start to the last exit
(Python, imports, Ray, data and all). The seeds are the rounds; the order of the methods alternates between
them (seed 0: random, tpe, optuna; seed 1: optuna, tpe, random; ...: common.round_order).

A run's best is the product's: the best trial by sweeper's rule (sweeper.store.trials.best_position, which the
report, `status` and `list` use): among the trials that did not fail, the best latest value of the sweep's metric
in its mode (here each trial's last val_accuracy, highest), for the grid, the sweeper sides (from trials.parquet)
and Optuna (each trial's last reported epoch) alike. The target, fixed before any method runs (from the grid's
best, measured first, or --grid-best): within TARGET_POINTS (0.5 points) of the grid's best; "until target" is
the trial-epochs reported (in report order) until the first report that reached it, a run that never did ranking
after every run that did (so the median is "never" when most runs never got there), with each seed's value.
Prints per method the median (min-max) over seeds of: the best val_accuracy, the trial-epochs used, the wall
time, until target; then each sweeper method's own ratios to Optuna (sweeper/peer): per figure, the ratio per
seed as median (min-max) over the seeds (for until target: over the seeds where both reached it, counted).
`--quick` checks that it works: 2 variants, 3 epochs, 500/300 images, 6 trials, 2 seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from typing import Any

from benchmarks.common import (
    REPO,
    bench_env,
    data_dir,
    ratios,
    round_order,
    run_timed,
    run_together,
    spread,
    table,
    workdir,
)

OPTUNA_STARTUP = 10  # Optuna's default n_startup_trials
METHODS = ("random", "tpe", "optuna")
SWEEPER_METHODS = ("random", "tpe")
PEER = "optuna"
METRIC, MODE = "val_accuracy", "max"  # the sweep's, written into its YAML; best and target follow them
TARGET_POINTS = 0.005  # the target: within half a point of the full grid's best
AXES = {"optimizer": "[adam, sgd]", "dropout": "[0.2, 0.4]", "momentum": "[0.0, 0.9]"}
NAMES = {"random": "random + ASHA (sweeper)", "tpe": "TPE + ASHA (sweeper)", "optuna": "TPE + SH (Optuna, 2 procs)"}


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
        f"name: bench-{method}-{seed}", f"metric: {METRIC}", f"mode: {MODE}", f"epochs: {args.epochs}",
        f"scheduler: {scheduler}", f"search: {{type: {method}}}", f"num_samples: {1 if grid else args.trials}",
        f"seed: {seed}", "resources: {cpu: 1}",
        f"data: {{train_subset: {args.train_subset}, val_subset: {args.val_subset}, test_subset: 500, seed: 0}}",
        "variants:", *(f"  - {json.dumps(v)}" for v in variants), "parameters:", "  batch_size: 32", params, "",
    ])


def best_of(latest: list[float], states: list[str] | None, mode: str) -> float:
    """The best trial's value by sweeper's rule (store/trials.py: failed trials left out, the best latest value of
    the metric in its mode, ties to the first); nan when no trial has one."""
    from sweeper.store.trials import best_position

    i = best_position(latest, mode, states)
    return math.nan if i is None else float(latest[i])


def sweeper_side(args: argparse.Namespace, method: str, seed: int, data_dir: str) -> dict[str, Any]:
    import pandas as pd

    from sweeper.run import launch
    from sweeper.spec.loader import load_text
    from sweeper.store.storage import Storage

    work = workdir(f"sweeper-search-{method}-")
    space = load_text(space_text(args, method, seed), work / "space.yaml")
    metric, mode = space.spec.metric, space.spec.mode
    folder = launch(space, Storage.parse(str(work / "runs")), data_dir=data_dir, echo=None).folder.path
    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet").sort_values("reported_at")
    return {"best": best_of(trials[metric].tolist(), trials.state.tolist(), mode), "trial_epochs": len(epochs),
            "curve": epochs[metric].tolist(), "trials": len(trials)}


def optuna_side(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Optuna's own loop, as peer_optuna.py runs it: two `benchmarks/optuna_worker.py` processes of one torch
    thread each, sharing one study (JournalStorage), TPE (10 start-up draws, the eight variants first) + successive
    halving, on the same space (sweeper's define-by-run function) and data; timed from just before they start to
    the last one's exit."""
    from sweeper.spec.loader import load

    work = workdir(f"sweeper-search-optuna-{seed}-")
    space = work / "space.yaml"
    space.write_text(space_text(args, "tpe", seed))
    spec = load(space).spec
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
    latest = {(r["worker"], r["trial"]): r[spec.metric] for r in lines}  # each trial's last report
    # a trial that raised would have ended its worker (run_together fails the run), so none here failed
    return {"best": best_of(list(latest.values()), None, spec.mode), "trial_epochs": len(lines),
            "curve": [r[spec.metric] for r in lines], "trials": len(latest), "wall": run.seconds}


def child(args: argparse.Namespace) -> None:
    out = sweeper_side(args, args.side, args.seed, data_dir())
    print("RESULT " + json.dumps(out), flush=True)


def run_side(args: argparse.Namespace, method: str, seed: int) -> dict[str, Any]:
    """One run in fresh processes (bench_env: one BLAS thread), timed from the start to the exit."""
    if method == PEER:
        return optuna_side(args, seed)
    cmd = [sys.executable, "-m", "benchmarks.search", "--side", method, "--seed", str(seed), *args.passthrough]
    run = run_timed(cmd, bench_env())
    lines = [ln for ln in run.output.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"{method} seed {seed} printed no result:\n{run.output[-4000:]}")
    return json.loads(lines[-1].removeprefix("RESULT ")) | {"wall": run.seconds}


def until(curve: list[float], target: float) -> float:
    """Trial-epochs reported until the first report that reached `target` in the metric's mode (inf: never)."""
    hit = (lambda v: v >= target) if MODE == "max" else (lambda v: v <= target)
    return next((float(i + 1) for i, v in enumerate(curve) if hit(v)), math.inf)


def ranked(values: list[float]) -> str:
    """The median with "never" (inf) ranked after every run that reached the target, and each seed's value."""
    mid = statistics.median(sorted(values))
    return (f"{'never' if math.isinf(mid) else f'{mid:.0f}'} "
            f"(seeds: {', '.join('never' if math.isinf(n) else f'{n:.0f}' for n in values)})")


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
              f"trial-epochs, best {METRIC} {grid['best']:.4f}, {grid['wall']:.0f}s", flush=True)
    target = args.grid_best - TARGET_POINTS if MODE == "max" else args.grid_best + TARGET_POINTS
    print(f"target, fixed before any method runs: {METRIC} {target:.4f} (the grid's best {args.grid_best:.4f}, "
          f"less {100 * TARGET_POINTS:.1f} points)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in METHODS}
    for seed in range(args.seeds):
        for method in round_order(METHODS, seed):  # seed 0: random, tpe, optuna; seed 1: optuna, tpe, random; ...
            runs[method].append(result := run_side(args, method, seed))
            hit = until(result["curve"], target)
            print(f"{method} seed {seed}: best {result['best']:.4f}, {result['trial_epochs']} trial-epochs, "
                  f"{result['wall']:.0f}s, target after {'never' if math.isinf(hit) else f'{hit:.0f}'}", flush=True)
    figures = {m: {"best": [r["best"] for r in rs], "trial_epochs": [float(r["trial_epochs"]) for r in rs],
                   "wall": [r["wall"] for r in rs], "until": [until(r["curve"], target) for r in rs]}
               for m, rs in runs.items()}
    print(f"\n{args.trials} trials per run, {args.seeds} seeds, {args.train_subset}/{args.val_subset} images, "
          f"up to {args.epochs} epochs; target: {METRIC} {target:.4f}, within {100 * TARGET_POINTS:.1f} points of "
          f"the grid's best ({args.grid_best:.4f}); best: sweeper's rule (each trial's last {METRIC}, {MODE})")
    print(table(["method", f"best {METRIC}", "trial-epochs", "wall (s)", "trial-epochs until target"],
                [[NAMES[m], spread(f["best"], 4), spread(f["trial_epochs"], 0), spread(f["wall"], 0),
                  ranked(f["until"])] for m, f in figures.items()]))
    peer = figures[PEER]
    rows = []
    for m in SWEEPER_METHODS:
        ours = figures[m]
        both = [math.isfinite(a) and math.isfinite(b) for a, b in zip(ours["until"], peer["until"], strict=True)]
        until_ours = [a for a, ok in zip(ours["until"], both, strict=True) if ok]
        until_peer = [b for b, ok in zip(peer["until"], both, strict=True) if ok]
        rows.append([f"{m}/{PEER}", spread(ratios(ours["best"], peer["best"]), 3),
                     spread(ratios(ours["trial_epochs"], peer["trial_epochs"]), 3),
                     spread(ratios(ours["wall"], peer["wall"]), 3),
                     f"{spread(ratios(until_ours, until_peer), 3)} over the {len(until_ours)} seeds both reached"])
    print(f"\nsweeper/peer per seed, median (min-max) over {args.seeds} seeds (below 1: sweeper lower; for best "
          f"{METRIC} higher is better, for the others lower is)")
    print(table(["ratio", f"best {METRIC}", "trial-epochs", "wall", "trial-epochs until target"], rows))


if __name__ == "__main__":
    main()
