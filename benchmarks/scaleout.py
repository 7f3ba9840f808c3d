"""The cost of spreading over nodes: one sweep on one node with 2 CPUs against two nodes with 1 CPU each.

    .venv/bin/python -m benchmarks.scaleout [--trials 8] [--epochs 2] [--train-subset 12000] [--repeats 3] [--quick]

The sweep: --trials trials of a 16-filter CNN (seeds 0..trials-1, adam) of --epochs epochs on --train-subset
images, resources cpu 1, max_concurrent 2: two one-thread trials at a time on both sides. Each run gets a fresh
real Ray cluster started the way the tests start theirs (sweeper.testing.cluster.LocalCluster: `ray start --head`,
then `ray start --address` for another node, each in its own process group and temp dir), started before the
clock; the environment of nodes and driver is the same on both sides (OMP/MKL/OPENBLAS_NUM_THREADS=1):
  one node:  a head with 2 CPUs;
  two nodes: a head with 1 CPU and one more node with 1 CPU (the data and the trials cross to it).
Timed: `.venv/bin/sweeper launch SPACE.yaml --address HEAD --storage TMP --quiet` as a fresh process, from its
start to its exit (results on disk). Rounds interleave one node, two nodes, the order alternating: 3 rounds (these
runs take over a
minute). Prints median (min-max) of each, where the trials ran, and the two-node / one-node ratio per round.
--quick: 4 trials of 1 epoch on 500 images, 1 round (a smoke run, not a measurement).

Full run on the 2-core machine (estimate): 3 rounds x 2 sides x (about 15 s of cluster start + 80 s of sweep):
about 10 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.common import Measures, bench_env, interleave, ratios, run_timed, spread, sweeper_cmd, table, write_yaml
from sweeper.testing.cluster import LocalCluster

THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def space_file(work: Path, args: argparse.Namespace) -> Path:
    return write_yaml(work / "scaleout.yaml", {
        "name": "scaleout", "epochs": args.epochs, "scheduler": {"type": "fifo"}, "max_concurrent": 2,
        "resources": {"cpu": 1, "gpu": 0}, "data": {"train_subset": args.train_subset, "seed": 0},
        "parameters": {"model": "cnn", "filters": 16, "optimizer": "adam", "seed": {"grid": list(range(args.trials))}},
    })


def sweep_on(cpus: list[int], work: Path, space: Path, nodes_seen: dict[str, list[int]]) -> Measures:
    """A fresh cluster of nodes with these CPU counts; the launch on it, timed."""
    root = Path(tempfile.mkdtemp(prefix="c", dir=work))
    try:
        with LocalCluster(root) as cluster:
            cluster.start_head(num_cpus=cpus[0], extra_env=THREADS)
            for n in cpus[1:]:
                cluster.add_node(num_cpus=n, extra_env=THREADS)
            storage = root / "runs"
            run = run_timed([*sweeper_cmd(), "launch", str(space), "--address", cluster.address,
                             "--storage", str(storage), "--quiet"], bench_env() | cluster.env() | THREADS)
        trials = pd.read_parquet(storage / "scaleout" / "trials.parquet")
        nodes_seen.setdefault(f"{len(cpus)}", []).append(trials.node.nunique())
        return {"command_s": run.seconds, "trial_s": trials.wall_s.mean()}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=None, help="default 8 (4 with --quick)")
    ap.add_argument("--epochs", type=int, default=None, help="default 2 (1 with --quick)")
    ap.add_argument("--train-subset", type=int, default=None, help="default 12,000 (500 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds; default 3 (1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a tiny sweep, one round")
    args = ap.parse_args()
    args.trials = args.trials or (4 if args.quick else 8)
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.train_subset = args.train_subset or (500 if args.quick else 12000)
    work = Path(tempfile.mkdtemp(prefix="sweeper-scaleout-"))
    space = space_file(work, args)
    print(f"{args.trials} trials x {args.epochs} epochs of a 16-filter CNN on {args.train_subset} images, "
          "2 trials at a time", flush=True)
    seen: dict[str, list[int]] = {}
    try:
        results = interleave({
            "one node x 2 CPUs": lambda i: sweep_on([2], work, space, seen),
            "two nodes x 1 CPU": lambda i: sweep_on([1, 1], work, space, seen),
        }, args.repeats or (1 if args.quick else 3), echo=lambda line: print(line, flush=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, two = ([m["command_s"] for m in results[k]] for k in results)
    mean_trial = {k: spread([m["trial_s"] for m in v]) for k, v in results.items()}
    print(table(["launch, seconds", "median (min-max)", "mean trial wall_s", "nodes used"],
                [[k, spread([m["command_s"] for m in v]), mean_trial[k], str(seen[str(i + 1)])]
                 for i, (k, v) in enumerate(results.items())]))
    print(f"two nodes / one node, per round: {spread(ratios(two, one), 3)}")


if __name__ == "__main__":
    main()
