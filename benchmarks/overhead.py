"""sweeper's overhead: the same fixed trial through `sweeper launch` and through a bare PyTorch loop.

    .venv/bin/python benchmarks/overhead.py [--variant "4th CNN"] [--epochs 3] [--train-subset N] [--threads 1]

Both train the study's variant (from search_spaces/slides.yaml) on the same data, with the same threads,
batch size and epochs. The bare loop is written out here with plain torch (no sweeper code in its hot path).
Prints per-epoch times, whole-trial wall times, and the two ratios (sweeper / bare) last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from sweeper.run import data
from sweeper.run.models import build_model as build
from sweeper.spec import loader as spaces
from sweeper.store.storage import Storage

REPO = Path(__file__).resolve().parents[1]


def bare_loop(model: nn.Module, splits: data.Splits, epochs: int, batch: int, lr: float, seed: int) -> list[float]:
    """A textbook loop: tensors in memory, shuffled index batches, Adam, eval on val each epoch, test at the end
    (the same work a sweeper trial does, minus sweeper: no Ray, no checkpoints, no reports)."""
    x = torch.from_numpy(splits.x_train).unsqueeze(1).float() / 255
    y = torch.from_numpy(splits.y_train).long()
    xv = torch.from_numpy(splits.x_val).unsqueeze(1).float() / 255
    yv = torch.from_numpy(splits.y_val).long()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch):
            idx = order[i : i + batch]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(xv[i : i + 2048]).argmax(1) == yv[i : i + 2048]).sum().item()
                          for i in range(0, len(yv), 2048))
        times.append(time.perf_counter() - start)
        print(f"bare    epoch {len(times)}: {times[-1]:.2f}s val_accuracy={correct / len(yv):.4f}", flush=True)
    xt = torch.from_numpy(splits.x_test).unsqueeze(1).float() / 255
    yt = torch.from_numpy(splits.y_test).long()
    with torch.no_grad():
        correct = sum((model(xt[i : i + 2048]).argmax(1) == yt[i : i + 2048]).sum().item()
                      for i in range(0, len(yt), 2048))
    print(f"bare    test_accuracy={correct / len(yt):.4f}", flush=True)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="4th CNN")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-subset", type=int, default=None, help="default: all 48,000 training images")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    data_dir = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")

    slides = spaces.load(REPO / "search_spaces" / "slides.yaml")
    variant = {"name": args.variant, **slides.variants[args.variant]}
    variant.pop("max_epochs", None)
    subset = f"train_subset: {args.train_subset}" if args.train_subset else "train_subset: null"
    work = Path(tempfile.mkdtemp(prefix="sweeper-overhead-"))
    space_file = work / "overhead.yaml"
    space_file.write_text(
        f"name: overhead\nepochs: {args.epochs}\nscheduler: {{type: fifo}}\n"
        f"resources: {{cpu: {args.threads}}}\ndata: {{{subset}}}\n"
        f"variants: [{variant!r}]\nparameters: {{batch_size: 32, seed: 0}}\n".replace("'", '"')
    )
    space = spaces.load(space_file)
    p = space.trial_params({"variant": args.variant})
    splits = data.load(data_dir, space.spec.data)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    bare = bare_loop(build(p), splits, args.epochs, p.batch_size, p.learning_rate, p.seed)
    bare_wall = time.perf_counter() - start

    from sweeper.run.sweep import launch

    start = time.perf_counter()
    outcome = launch(space, Storage.parse(str(work / "runs")), data_dir=data_dir,
                     echo=lambda line: print(line, flush=True))
    sweep_wall = time.perf_counter() - start
    epochs = pd.read_parquet(outcome.folder.path / "epochs.parquet")
    trial = pd.read_parquet(outcome.folder.path / "trials.parquet").iloc[0]
    for row in epochs.itertuples():
        print(f"sweeper epoch {row.epoch}: {row.time_s:.2f}s val_accuracy={row.val_accuracy:.4f}")

    bare_epoch = statistics.median(bare[1:] or bare)  # the first epoch of a process warms up; both pay it
    sweep_epoch = statistics.median(epochs.time_s.tolist()[1:] or epochs.time_s.tolist())
    print(f"\n{args.variant}, {len(splits.y_train)} training images, {args.epochs} epochs, {args.threads} thread(s)")
    print(f"bare loop:  median epoch after the first {bare_epoch:.3f}s, wall {bare_wall:.1f}s")
    print(f"sweeper:    median epoch after the first {sweep_epoch:.3f}s, trial wall {trial.wall_s:.1f}s, "
          f"command wall {sweep_wall:.1f}s (Ray start + data + trial)")
    print(f"ratio trial wall (sweeper trial / bare): {trial.wall_s / bare_wall:.3f}")
    print(f"ratio command wall (sweeper launch / bare): {sweep_wall / bare_wall:.3f}")
    print(f"ratio per-epoch (sweeper / bare): {sweep_epoch / bare_epoch:.3f}")


if __name__ == "__main__":
    main()
