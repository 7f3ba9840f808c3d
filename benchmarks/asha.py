"""What ASHA saves: search_spaces/cnn.yaml on a subset, once with ASHA and once as a full grid (FIFO).

    .venv/bin/python benchmarks/asha.py [--train-subset 1000] [--val-subset 1000] [--epochs 27]

Both sweeps run the same 32 trials of the CNN family (same seeds, same data subset) on the local Ray.
Prints the trial-epochs each used, the fraction ASHA used, the best validation accuracy each found and
the gap in points, last.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import pandas as pd

from sweeper.run.sweep import launch
from sweeper.spec import loader as spaces
from sweeper.store.storage import Storage

REPO = Path(__file__).resolve().parents[1]


def variant_of(text: str, name: str, scheduler: str, args: argparse.Namespace) -> str:
    """cnn.yaml with a subset, a shorter epoch budget and the given scheduler."""
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", text)
    text = re.sub(r"(?m)^epochs: .*$", f"epochs: {args.epochs}", text)
    text = re.sub(r"(?m)^scheduler: .*$", f"scheduler: {scheduler}", text)
    return re.sub(r"(?m)^data: .*$", f"data: {{train_subset: {args.train_subset}, val_subset: {args.val_subset}, "
                  f"test_subset: 1000, seed: 0}}", text)


def run(text: str, name: str, work: Path, data_dir: str) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    path = work / f"{name}.yaml"
    path.write_text(text)
    started = time.perf_counter()
    outcome = launch(spaces.load(path), Storage.parse(str(work / "runs")), data_dir=data_dir, echo=None)
    wall = time.perf_counter() - started
    folder = outcome.folder.path
    return pd.read_parquet(folder / "trials.parquet"), pd.read_parquet(folder / "epochs.parquet"), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-subset", type=int, default=1000)
    ap.add_argument("--val-subset", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=27)  # rungs at 1, 3, 9: the shape of cnn.yaml's 3, 9, 27
    ap.add_argument("--grace-period", type=int, default=1)
    ap.add_argument("--reduction-factor", type=int, default=3)
    args = ap.parse_args()
    data_dir = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")
    text = (REPO / "search_spaces" / "cnn.yaml").read_text()
    work = Path(tempfile.mkdtemp(prefix="sweeper-asha-"))
    asha = f"{{type: asha, grace_period: {args.grace_period}, reduction_factor: {args.reduction_factor}}}"
    results = {}
    for label, scheduler in (("fifo", "{type: fifo}"), ("asha", asha)):
        trials, epochs, wall = run(variant_of(text, f"bench-{label}", scheduler, args), f"bench-{label}", work,
                                   data_dir)
        best = trials.loc[trials.val_accuracy.idxmax()]
        results[label] = (len(epochs), best, wall)
        print(f"{label}: {len(trials)} trials, {len(epochs)} trial-epochs, {wall:.0f}s; best val_accuracy "
              f"{best.val_accuracy:.4f} ({best.variant}, {best.param_optimizer}, dropout {best.param_dropout})",
              flush=True)
    fifo_epochs, fifo_best, fifo_wall = results["fifo"]
    asha_epochs, asha_best, asha_wall = results["asha"]
    print(f"\nsubset: {args.train_subset} train / {args.val_subset} val images, {args.epochs} epochs, "
          f"ASHA grace {args.grace_period}, reduction {args.reduction_factor}")
    print(f"wall time ratio (asha / fifo): {asha_wall / fifo_wall:.3f}")
    print(f"trial-epochs used by ASHA: {asha_epochs}/{fifo_epochs} = {asha_epochs / fifo_epochs:.1%}")
    print(f"best accuracy gap (fifo - asha): {100 * (fifo_best.val_accuracy - asha_best.val_accuracy):.2f} points")


if __name__ == "__main__":
    main()
