"""Per-epoch time of a trial, the code as it was against the code as it is, and how near the CPU's peak each runs.

    .venv/bin/python -m benchmarks.epoch [--base COMMIT] [--models 4th,5th,beyond] [--rounds 3] [--threads 1]
                                          [--batches N] [--bf16]

Two sides, each a fresh process per model and round, with the same environment (bench_env: OMP/MKL/OPENBLAS
threads pinned, torch.set_num_threads the same) and the same data:
  base: the sweeper package of COMMIT (default: the commit before issue 27's changes), taken out of git (git
        archive) into a temp folder put first on the child's PYTHONPATH (the child prints which package it
        imported, and the run stops if it is not that folder's);
  now:  this checkout's sweeper package.
  (--bf16 adds a third side, "now bf16": this checkout with precision bf16; informational, no threshold.)
Each child loads the study's split (48,000 training images, the last 12,000 of the training file for validation,
data seed 0) through its own sweeper.run.training.data, builds the trial's params with its own TrialParams, and
runs its own train_trial, as a trial runs it minus Ray: a warm-up epoch on 10 batches (oneDNN's kernels made,
buffers allocated), then one timed epoch. The epoch's `time_s` (training + validation, as epochs.parquet records
it) is split by timing the side's `evaluate` for the validation part. With --batches N the timed epoch trains on
N batches and validates on a quarter as many images (the 48k/12k ratio), and both parts are scaled up to the full
epoch: a smoke run, not a measurement.

Models: the study's 4th CNN and 5th CNN (search_spaces/slides.yaml) and the beyond winner (the variant of
search_spaces/beyond_long.yaml: 4 conv 32-32-64-64, dense 128, batch 64, one-cycle, label smoothing, shift + flip).

Rounds interleave the sides with the order alternating (base, now; now, base; ...), one model after another
within a round. Printed: per model, the epoch seconds per side as median (min-max), the now/base ratio per round as
median (min-max), the training and validation parts, the same in CPU time, GFLOP per epoch (convolutions and
linear layers: forward 2*MACs per image; training 3x forward, 2x for the layer that sees the input, whose input
gradient is never computed) and the achieved GFLOP/s against the CPU's fp32 peak (PEAK_GFLOPS_PER_CORE per
thread: this project's Zen 4 EPYC at its boost clock, 2 AVX-512 FMA pipes x 16 floats x 2 FLOP x ~3.6 GHz).

Thresholds, fixed here before either side runs (issue 27's Done means; medians of the now/base ratio per round):
4th CNN at most 0.5, beyond winner at most 0.75; the 5th CNN's ratio is reported without one.

Full run on the 2-core machine (estimate, one thread, quiet): per round base 4th ~20 s, 5th ~200 s, beyond ~120 s,
now about half of that, plus ~10 s of start-up per process: about 9 minutes a round, 27 minutes for 3 rounds.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BASE_COMMIT = "8f88131"  # main before issue 27's speed changes
PEAK_GFLOPS_PER_CORE = 115.0
THRESHOLDS = {"4th": 0.5, "beyond": 0.75}  # now/base epoch ratio, median over rounds
TRAIN_IMAGES, VAL_IMAGES = 48_000, 12_000
WARMUP_BATCHES = 10
MODELS = ("4th", "5th", "beyond")


# -- the trial's params, from the study's YAML (this checkout's) ----------------------------------------------


def model_params(name: str) -> dict[str, Any]:
    """The keys the YAML sets for the model (no key a base side might not know: only those written there)."""
    import yaml

    if name in ("4th", "5th"):
        from benchmarks.common import slides_variant

        values = slides_variant(f"{name} CNN")
        values.pop("name")
        return {"batch_size": 32, "seed": 0, **values}
    spec = yaml.safe_load((REPO / "search_spaces" / "beyond_long.yaml").read_text())
    variant = dict(spec["variants"][0])
    variant.pop("name")
    return {**spec["parameters"], **variant}


def flops(values: dict[str, Any]) -> tuple[float, float]:
    """(training, validation) GFLOP of one epoch of the study's split: see the module's note."""
    import torch
    from torch import nn

    from sweeper.run.training.models import build_model
    from sweeper.spec.params import TrialParams

    model = build_model(TrialParams(**values))
    counts: list[tuple[bool, float]] = []  # (sees the input, forward FLOP per image)

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        first = args[0].data_ptr() == image.data_ptr()
        if isinstance(module, nn.Conv2d):
            macs = out.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            assert isinstance(module, nn.Linear)
            macs = module.in_features * module.out_features
        counts.append((first, 2.0 * macs))

    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            m.register_forward_hook(hook)
    image = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        model.eval()(image)
    forward = sum(f for _, f in counts)
    train = sum((2.0 if first else 3.0) * f for first, f in counts)
    return train * TRAIN_IMAGES / 1e9, forward * VAL_IMAGES / 1e9


# -- one side, one model, in a fresh process ----------------------------------------------------------------------


def child(values: dict[str, Any], threads: int, batches: int | None, data_dir: str) -> dict[str, Any]:
    import torch

    import sweeper
    from sweeper.run.training import data, loop
    from sweeper.spec.params import TrialParams
    from sweeper.spec.schema import DataSpec

    torch.set_num_threads(threads)
    p = TrialParams(**values)
    bs = p.batch_size
    full_batches = math.ceil(TRAIN_IMAGES / bs)
    train_n = TRAIN_IMAGES if batches is None else min(TRAIN_IMAGES, batches * bs)
    val_n = VAL_IMAGES if batches is None else max(1, train_n // 4)
    sizes = {"train_subset": None if train_n == TRAIN_IMAGES else train_n,
             "val_subset": None if val_n == VAL_IMAGES else val_n, "test_subset": 1000, "seed": 0}
    splits = data.load(data_dir, DataSpec(**sizes))
    tensors = loop.Tensors.from_splits(splits, torch.device("cpu"))
    assert len(tensors.y_train) == train_n and len(tensors.y_val) == val_n
    warm = data.load(data_dir, DataSpec(train_subset=WARMUP_BATCHES * bs, val_subset=bs, test_subset=bs, seed=1))
    loop.train_trial(p, loop.Tensors.from_splits(warm, torch.device("cpu")), 1, lambda m, s: None)

    evaluated: list[tuple[float, float, float]] = []  # (wall s, CPU s at its start, CPU s at its end)
    plain_evaluate = loop.evaluate

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        out = plain_evaluate(*args, **kwargs)
        evaluated.append((time.perf_counter() - start, cpu, time.process_time()))
        return out

    loop.evaluate = timed_evaluate  # train_trial looks it up in its module at each call
    reports: list[dict[str, Any]] = []
    cpu0 = time.process_time()
    try:
        loop.train_trial(p.model_copy(update={"max_epochs": 1}), tensors, 1, lambda m, s: reports.append(m))
    finally:
        loop.evaluate = plain_evaluate
    epoch_s, (val_s, cpu_val0, cpu_val1) = float(reports[0]["time_s"]), evaluated[0]
    train_s = epoch_s - val_s
    ran = math.ceil(train_n / bs)
    train_scale, val_scale = full_batches / ran, VAL_IMAGES / val_n
    settings = getattr(loop, "allocator_settings", lambda: None)()
    return {"package": str(Path(sweeper.__file__).resolve().parent), "threads": torch.get_num_threads(),
            "train_s": train_s * train_scale, "val_s": val_s * val_scale,
            # CPU time of the process (its one thread) over the same parts: what waiting for a core on a busy
            # machine leaves out (the training part also holds building the model and optimizer, milliseconds)
            "cpu_epoch_s": (cpu_val0 - cpu0) * train_scale + (cpu_val1 - cpu_val0) * val_scale,
            "measured_epoch_s": epoch_s, "batches": ran, "val_images": val_n,
            "val_accuracy": reports[0]["val_accuracy"], "allocator": settings}


def run_child(tree: Path, values: dict[str, Any], threads: int, batches: int | None) -> dict[str, Any]:
    from benchmarks.common import bench_env, data_dir

    job = json.dumps({"values": values, "threads": threads, "batches": batches, "data_dir": data_dir()})
    env = bench_env(threads, PYTHONPATH=str(tree))
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", job], env=env, cwd=tree,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the {tree} side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if Path(out["package"]) != (tree / "sweeper").resolve():
        raise SystemExit(f"the child imported sweeper from {out['package']}, not from {tree}")
    out["epoch_s"] = out["train_s"] + out["val_s"]
    return out


# -- the sides, the rounds, the table --------------------------------------------------------------------------


def checkout(commit: str) -> Path:
    """`commit`'s sweeper package in a temp folder (git archive: the repository's worktrees and index are left
    alone), removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="sweeper-epoch-base-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "sweeper"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default=BASE_COMMIT, help="the commit whose code is 'as it was'")
    parser.add_argument("--models", default=",".join(MODELS), help="of " + ", ".join(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=None, help="train on N batches a side (a smoke run)")
    parser.add_argument("--bf16", action="store_true", help="also this checkout with precision bf16")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        job = json.loads(args.child)
        print(json.dumps(child(job["values"], job["threads"], job["batches"], job["data_dir"])))
        return
    from benchmarks.common import spread, table

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = set(models) - set(MODELS)
    if unknown:
        raise SystemExit(f"unknown models {sorted(unknown)}; choose from {', '.join(MODELS)}")
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.base], check=True,
                            capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "sweeper"], check=True,
                           capture_output=True, text=True).stdout.strip()
    print(f"epoch: base {commit} against now {head}{' + uncommitted changes under sweeper/' if dirty else ''}; "
          f"{args.threads} thread(s); {args.rounds} rounds; "
          + ("full epochs (48,000 + 12,000 images)" if args.batches is None else
             f"SMOKE RUN: {args.batches} batches a side, scaled to a full epoch (not a measurement)"))
    print("thresholds (fixed before the run; median now/base epoch ratio): "
          + ", ".join(f"{m} <= {t}" for m, t in THRESHOLDS.items() if m in models) + "; 5th: none")
    load = os.getloadavg()[0]
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPUs"
          + ("  (a busy machine: the numbers below are noisy)" if load > 0.5 else ""))
    base_tree = checkout(commit)
    values = {m: model_params(m) for m in models}
    sides: dict[str, tuple[Path, dict[str, Any]]] = {"base": (base_tree, {}), "now": (REPO, {})}
    if args.bf16:
        sides["now bf16"] = (REPO, {"precision": "bf16"})
    results: dict[str, dict[str, list[dict[str, Any]]]] = {m: {s: [] for s in sides} for m in models}
    for i in range(args.rounds):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for m in models:
            for side in order:
                tree, extra = sides[side]
                out = run_child(tree, values[m] | extra, args.threads, args.batches)
                results[m][side].append(out)
                print(f"  round {i + 1}/{args.rounds} {m} {side}: epoch {out['epoch_s']:.2f} s (train "
                      f"{out['train_s']:.2f}, val {out['val_s']:.2f}; CPU {out['cpu_epoch_s']:.2f} s; val acc "
                      f"{out['val_accuracy']:.4f})", flush=True)
    peak = PEAK_GFLOPS_PER_CORE * args.threads
    rows, verdicts = [], []
    for m in models:
        train_gf, val_gf = flops(values[m])
        for side in sides:
            runs = results[m][side]
            epoch = [r["epoch_s"] for r in runs]
            ratio = [r["epoch_s"] / b["epoch_s"] for r, b in zip(runs, results[m]["base"], strict=True)]
            cpu_ratio = [r["cpu_epoch_s"] / b["cpu_epoch_s"] for r, b in zip(runs, results[m]["base"], strict=True)]
            achieved = [(train_gf + val_gf) / e for e in epoch]
            rows.append([m, side, spread(epoch), spread([r["train_s"] for r in runs]),
                         spread([r["val_s"] for r in runs]), "-" if side == "base" else spread(ratio, 3),
                         spread([r["cpu_epoch_s"] for r in runs]), "-" if side == "base" else spread(cpu_ratio, 3),
                         f"{train_gf + val_gf:.0f}", spread(achieved, 1),
                         f"{100 * statistics.median(achieved) / peak:.0f}%"])
            if side == "now" and m in THRESHOLDS:
                med = statistics.median(ratio)
                verdicts.append(f"{m}: now/base {spread(ratio, 3)} (threshold {THRESHOLDS[m]}): "
                                f"{'met' if med <= THRESHOLDS[m] else 'NOT met'}")
    print(table(["model", "side", "epoch s", "train s", "val s", "now/base", "CPU s", "CPU now/base", "GFLOP",
                 "GFLOP/s", "of peak"], rows))
    print("epoch s: wall time, as epochs.parquet records it (the thresholds); CPU s: the process's CPU time over the "
          "same parts (on a busy machine the steadier of the two; on a quiet one about the same)")
    print(f"peak: {PEAK_GFLOPS_PER_CORE:.0f} GFLOP/s fp32 per core x {args.threads} thread(s)"
          + ("; the bf16 rows are against it too (avx512_bf16's own peak is about twice it)" if args.bf16 else ""))
    for line in verdicts:
        print(line + ("" if args.batches is None else "  [smoke run: not a verdict]"))


if __name__ == "__main__":
    main()
