"""What ASHA saves: search_spaces/cnn.yaml on a subset, with ASHA and as a full grid (FIFO), each a fresh process.

    .venv/bin/python -m benchmarks.asha [--train-subset 1000] [--val-subset 1000] [--epochs 27] [--repeats 3] [--quick]

Both sides run cnn.yaml's 32 trials (same seeds, same data subset, one one-thread trial per core on the local
Ray), as `.venv/bin/sweeper launch SPACE.yaml --storage TMP --quiet` in the same environment
(OMP/MKL/OPENBLAS_NUM_THREADS=1); only the scheduler differs: {type: fifo} against ASHA (grace 1, reduction 3:
rungs at 1, 3, 9 below 27, the shape of cnn.yaml's 3, 9, 27). Timed: the launch from its start to its exit
(results on disk). Rounds interleave fifo, asha, the order alternating (fifo asha, asha fifo, ...): 3 (these runs
take minutes). Prints, median (min-max) over the
rounds: the command's seconds, the trial-epochs each used, the best val_accuracy each found; then the asha/fifo
ratios per round and the best-accuracy gap (fifo - asha) in points.
--quick: 200/200 images, 3 epochs, 1 round (a smoke run, not a measurement).

Full run on the 2-core machine (estimate): fifo 15-25 minutes, asha about a quarter of that: 1 to 1.5 hours for
3 rounds (--repeats 1 for a single pair).
"""

from __future__ import annotations

import argparse
import re
from functools import partial
from pathlib import Path

import pandas as pd

from benchmarks.common import (
    REPO,
    Measures,
    bench_env,
    interleave,
    ratios,
    run_timed,
    spread,
    sweeper_cmd,
    table,
    workdir,
)


def variant_of(text: str, name: str, scheduler: str, args: argparse.Namespace) -> str:
    """cnn.yaml with a subset, a shorter epoch budget and the given scheduler."""
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text)
    text = re.sub(r"(?m)^epochs: .*$", f"epochs: {args.epochs}", text)
    text = re.sub(r"(?m)^scheduler: .*$", f"scheduler: {scheduler}", text)
    return re.sub(r"(?m)^data: .*$", f"data: {{train_subset: {args.train_subset}, val_subset: {args.val_subset}, "
                  f"test_subset: 1000, seed: 0}}", text)


def launch(space: Path, work: Path, i: int) -> Measures:
    storage = work / f"runs-{space.stem}-{i}"
    run = run_timed([*sweeper_cmd(), "launch", str(space), "--storage", str(storage), "--quiet"], bench_env())
    folder = storage / space.stem
    trials, epochs = pd.read_parquet(folder / "trials.parquet"), pd.read_parquet(folder / "epochs.parquet")
    return {"command_s": run.seconds, "trial_epochs": len(epochs), "best": trials.val_accuracy.max()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-subset", type=int, default=None, help="default 1000 (200 with --quick)")
    ap.add_argument("--val-subset", type=int, default=None, help="default 1000 (200 with --quick)")
    ap.add_argument("--epochs", type=int, default=None, help="default 27 (3 with --quick)")
    ap.add_argument("--grace-period", type=int, default=1)
    ap.add_argument("--reduction-factor", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=None, help="rounds; default 3 (1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="tiny data, 3 epochs, one round")
    args = ap.parse_args()
    args.train_subset = args.train_subset or (200 if args.quick else 1000)
    args.val_subset = args.val_subset or (200 if args.quick else 1000)
    args.epochs = args.epochs or (3 if args.quick else 27)
    text = (REPO / "search_spaces" / "cnn.yaml").read_text()
    work = workdir("sweeper-asha-")
    asha = f"{{type: asha, grace_period: {args.grace_period}, reduction_factor: {args.reduction_factor}}}"
    spaces = {}
    for label, scheduler in (("fifo", "{type: fifo}"), ("asha", asha)):
        spaces[label] = work / f"bench-{label}.yaml"
        spaces[label].write_text(variant_of(text, f"bench-{label}", scheduler, args))
    print(f"cnn.yaml on {args.train_subset} train / {args.val_subset} val images, {args.epochs} epochs, "
          f"ASHA grace {args.grace_period}, reduction {args.reduction_factor}", flush=True)
    sides = {label: partial(launch, space, work) for label, space in spaces.items()}
    results = interleave(sides, args.repeats or (1 if args.quick else 3), echo=lambda line: print(line, flush=True))
    labels = {"command_s": ("command seconds", 1), "trial_epochs": ("trial-epochs", 0),
              "best": ("best val_accuracy", 4)}
    rows = []
    for key, (label, digits) in labels.items():
        fifo, ashas = [m[key] for m in results["fifo"]], [m[key] for m in results["asha"]]
        rows.append([label, spread(fifo, digits), spread(ashas, digits), spread(ratios(ashas, fifo), 3)])
    print(table(["median (min-max)", "fifo", "asha", "asha/fifo per round"], rows))
    gaps = [100 * (f["best"] - a["best"]) for f, a in zip(results["fifo"], results["asha"], strict=True)]
    print(f"best accuracy gap (fifo - asha), points: {spread(gaps)}")


if __name__ == "__main__":
    main()
