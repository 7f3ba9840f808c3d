"""Scale-out: the same 8-trial sweep on a one-node and on a two-node Ray cluster (one CPU per node).

    .venv/bin/python benchmarks/scaleout.py [--trials 8] [--epochs 2] [--train-subset 12000] [--model cnn] [--keep]

Each cluster is real and started the way the tests start theirs (sweeper.cluster.LocalCluster: `ray start
--head`, then `ray start --address` for the second node, each with `--num-cpus 1` and its own temp dir);
the sweep runs through `sweeper launch --address`. Wall time is the driver's, launch to exit (cluster start-up
excluded). Prints both wall times, where the trials ran, and the speedup (one node / two nodes) last. On a
machine with fewer than two free cores the two nodes share them, and the ratio shows that.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sweeper.testing.cluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]


def space_text(trials: int, epochs: int, subset: int, model: str) -> str:
    return (
        f"name: scaleout\nepochs: {epochs}\nscheduler: {{type: fifo}}\nresources: {{cpu: 1, gpu: 0}}\n"
        f"data: {{train_subset: {subset}, seed: 0}}\n"
        f"parameters: {{model: {model},{' filters: 16,' if model == 'cnn' else ''} optimizer: adam, "
        f"seed: {{grid: {list(range(trials))}}}}}\n"
    )


def sweep_on(nodes: int, work: Path, space: Path, data_dir: str) -> tuple[float, pd.DataFrame]:
    with LocalCluster(work / f"cluster{nodes}") as cluster:
        cluster.start_head(num_cpus=1)
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1, drop_env=("SWEEPER_DATA_DIR",))
        runs = work / f"runs{nodes}"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "sweeper", "launch", str(space), "--address", cluster.address,
             "--storage", str(runs), "--data-dir", data_dir],
            env=cluster.env(), cwd=REPO, capture_output=True, text=True, start_new_session=True,
        )
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"sweep on {nodes} node(s) failed ({done.returncode}):\n{done.stdout[-3000:]}"
                             f"{done.stderr[-3000:]}")
        return wall, pd.read_parquet(runs / "scaleout" / "trials.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--train-subset", type=int, default=12000)
    ap.add_argument("--model", default="cnn", choices=["logreg", "mlp", "cnn"])
    ap.add_argument("--keep", action="store_true", help="keep the clusters' logs and the sweeps' results")
    args = ap.parse_args()
    data_dir = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")

    work = Path(tempfile.mkdtemp(prefix="sweeper-scaleout-"))
    space = work / "scaleout.yaml"
    space.write_text(space_text(args.trials, args.epochs, args.train_subset, args.model))
    print(f"{args.trials} trials x {args.epochs} epochs of {args.model} on {args.train_subset} images; "
          f"one CPU per node; {os.cpu_count()} cores on this machine", flush=True)
    walls = {}
    try:
        for nodes in (1, 2):
            wall, trials = sweep_on(nodes, work, space, data_dir)
            walls[nodes] = wall
            per_node = trials.node.value_counts().to_dict()
            print(f"{nodes} node(s): {wall:.1f}s wall, trials per node {per_node}, "
                  f"mean trial {trials.wall_s.mean():.1f}s", flush=True)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"speedup (1 node / 2 nodes): {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
