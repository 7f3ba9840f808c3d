#!/usr/bin/env bash
# sweeper on a real GPU (issue 27, part 3): one script, at most 8 minutes, a table at the end.
#
#     benchmarks/gpu_check.sh            # from the repository root; PYTHON=... to choose the interpreter
#
# On a machine without CUDA it says so and exits 0. With CUDA, each step in fresh processes running this
# checkout's train_trial (PYTHONPATH = the repository root), the way a Ray trial runs it minus Ray:
#  1. kill/resume exactness: a trial killed (SIGKILL) right after its epoch-2 checkpoint and resumed from it in a
#     new process must give epoch 3 exactly (==) as an uninterrupted run does: the CUDA generator's state (dropout)
#     is in the checkpoint. fp32 (cuDNN deterministic); the 4th CNN and the beyond winner (augmentation, one-cycle),
#     on 12,000 + 3,000 images.
#  2. per-epoch time (training + validation, 48,000 + 12,000 images; after a warm-up epoch on 10 batches) of the
#     4th CNN and the beyond winner at fp32, tf32 and bf16.
#  3. throughput of 1, 2 and 4 trials of the 4th CNN (fp32) packed on the one GPU (what `resources: {gpu: 0.5}` or
#     0.25 does under Ray: processes sharing the card), each training one epoch at once; and again under NVIDIA
#     MPS when nvidia-cuda-mps-control is there (MPS runs the processes' kernels concurrently instead of
#     time-slicing them).
# Data: the real Fashion-MNIST from SWEEPER_DATA_DIR (or ../shared/data/fashion-mnist) when it is there, else random
# images of its shape and sizes (the times are the same; the exactness check holds for any data): the table says
# which. Needs torch with CUDA, numpy, pydantic and PyYAML (sweeper's own dependencies).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# GPU_CHECK_CPU=1: the same steps on the CPU on a few hundred images, to try the script itself where there is no GPU
# (its numbers mean nothing).
if [[ -z "${GPU_CHECK_CPU:-}" ]] && ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_check: no CUDA device here (torch.cuda.is_available() is False, or torch is missing): nothing to check."
  exit 0
fi
WORK=$(mktemp -d -t sweeper-gpu-check-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cat > "$WORK/check.py" <<'PY'
"""gpu_check.sh's steps (see there). `check.py main WORK` runs them all; the other modes are its child processes."""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(os.environ["PYTHONPATH"].split(":")[0])
DRY = bool(os.environ.get("GPU_CHECK_CPU"))  # the script tried on a CPU, on few images
SCALE = 1 / 75 if DRY else 1.0
BUDGET_S = 8 * 60 - 20  # the whole script's; steps that would start later are skipped and say so
STARTED = time.time()
FOURTH = {"model": "cnn", "conv_layers": 2, "filters": 32, "kernel_size": 3, "dropout": 0.2, "optimizer": "adam",
          "batch_size": 32, "seed": 0}


def beyond() -> dict[str, Any]:
    import yaml

    spec = yaml.safe_load((ROOT / "search_spaces" / "beyond_long.yaml").read_text())
    variant = dict(spec["variants"][0])
    variant.pop("name")
    return {**spec["parameters"], **variant}


def data_dir() -> Path:
    return Path(os.environ.get("SWEEPER_DATA_DIR") or ROOT.parent / "shared" / "data" / "fashion-mnist")


def splits(n_train: int, n_val: int, n_test: int = 1000) -> Any:
    """The study's split (subsets when smaller), or random images of its shape where the data is not here."""
    from sweeper.run.training import data
    from sweeper.spec.schema import DataSpec

    if (data_dir() / "train-images-idx3-ubyte.gz").is_file():
        sub = {"train_subset": None if n_train == 48_000 else n_train,
               "val_subset": None if n_val == 12_000 else n_val, "test_subset": n_test, "seed": 0}
        return data.load(data_dir(), DataSpec(**sub))
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)

    (xt, yt), (xv, yv), (xe, ye) = part(n_train), part(n_val), part(n_test)
    return data.Splits(xt, yt, xv, yv, xe, ye, data.FASHION_CLASSES)


def trial(job: dict[str, Any]) -> dict[str, Any]:
    """One train_trial on the GPU; job: values, n_train, n_val, epochs, [restore], [kill_after], [ckpt], [warmup],
    [barrier: (folder, n)]."""
    import torch

    from sweeper.run.training.loop import Tensors, train_trial
    from sweeper.spec.params import TrialParams

    torch.set_num_threads(1)
    device = torch.device("cpu" if DRY else "cuda")
    p = TrialParams(**job["values"])
    if job.get("warmup"):
        warm = Tensors.from_splits(splits(10 * p.batch_size, p.batch_size, p.batch_size), device)
        train_trial(p, warm, 1, lambda m, s: None)
        sync()
    t = Tensors.from_splits(splits(int(job["n_train"] * SCALE), int(job["n_val"] * SCALE)), device)
    if job.get("barrier"):  # every packed trial starts its timed epoch together
        folder, n = Path(job["barrier"][0]), job["barrier"][1]
        (folder / f"ready.{os.getpid()}").touch()
        while len(list(folder.glob("ready.*"))) < n:
            time.sleep(0.01)
    reports: list[dict[str, Any]] = []
    ckpt = Path(job["ckpt"]) if job.get("ckpt") else None

    def report(metrics: dict[str, Any], save: Any) -> None:
        reports.append({k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool)})
        if ckpt is not None:
            folder = ckpt / f"epoch{metrics['epoch']}"
            folder.mkdir(parents=True, exist_ok=True)
            save(folder)
        if job.get("kill_after") == metrics["epoch"]:
            os.kill(os.getpid(), signal.SIGKILL)  # a killed trial: nothing after its checkpoint runs

    start = time.time()
    restore = Path(job["restore"]) if job.get("restore") else None
    train_trial(p, t, job["epochs"], report, restore_from=restore)
    sync()
    return {"reports": reports, "start": start, "end": time.time(), "device": str(device)}


def sync() -> None:
    import torch

    if not DRY:
        torch.cuda.synchronize()


def child(job: dict[str, Any], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, __file__, "child", json.dumps(job)], capture_output=True, text=True,
                          timeout=timeout)


def result(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    if proc.returncode != 0:
        raise RuntimeError(f"child failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def left() -> float:
    return BUDGET_S - (time.time() - STARTED)


def table(header: list[str], rows: list[list[str]]) -> str:
    cells = [header, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def resume_check(work: Path, name: str, values: dict[str, Any]) -> list[str]:
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
    base = {"values": values, "n_train": 12_000, "n_val": 3_000, "epochs": 3}
    straight = result(child(base))["reports"]
    ckpt = work / f"ckpt-{name}"
    killed = child(base | {"ckpt": str(ckpt), "kill_after": 2})
    if killed.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the trial to kill exited {killed.returncode}: {killed.stderr[-2000:]}")
    state = __import__("torch").load(ckpt / "epoch2" / "state.pt", weights_only=True, map_location="cpu")
    resumed = result(child(base | {"restore": str(ckpt / "epoch2")}))["reports"]
    same = resumed[0]["epoch"] == 3 and all(resumed[0][k] == straight[2][k] for k in keys)
    diff = max(abs(resumed[0][k] - straight[2][k]) for k in keys)
    return [name, "n/a (CPU)" if DRY else "yes" if "cuda_rng" in state else "NO", "exact" if same else f"DIFFERS (max {diff:.2e})",
            f"{straight[2]['val_accuracy']:.4f}"]


def main(work: Path) -> None:
    import torch

    real = (data_dir() / "train-images-idx3-ubyte.gz").is_file()
    name = "CPU DRY RUN (GPU_CHECK_CPU: the script tried, its numbers mean nothing)" if DRY else (
        torch.cuda.get_device_name())
    print(f"gpu_check: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}; data: {'Fashion-MNIST' if real else 'RANDOM images (no data here)'}")
    sections: list[str] = []

    # 1. kill/resume exactness
    rows = []
    for name, values in (("4th CNN", FOURTH), ("beyond winner", beyond())):
        try:
            rows.append(resume_check(work, name, values))
        except Exception as exc:  # noqa: BLE001 - a failed step is a row, the others still run
            rows.append([name, "?", f"FAILED: {str(exc).splitlines()[-1][:100]}", "-"])
        print(f"  resume {rows[-1]}", flush=True)
    sections.append("1. kill -9 after epoch 2, resume in a new process: epoch 3 against an uninterrupted run (fp32)\n"
                    + table(["trial", "cuda_rng in checkpoint", "epoch 3", "val acc"], rows))

    # 2. per-epoch time
    rows = []
    for name, values in (("4th CNN", FOURTH), ("beyond winner", beyond())):
        for precision in ("fp32", "tf32", "bf16"):
            if left() < 90:
                rows.append([name, precision, "skipped: out of time", "-", "-"])
                continue
            try:
                out = result(child({"values": values | {"precision": precision}, "n_train": 48_000, "n_val": 12_000,
                                    "epochs": 1, "warmup": True}))
                r = out["reports"][0]
                rows.append([name, precision, f"{r['time_s']:.2f}", f"{60_000 * SCALE / r['time_s']:,.0f}",
                             f"{r['val_accuracy']:.4f}"])
            except Exception as exc:  # noqa: BLE001
                rows.append([name, precision, f"FAILED: {str(exc).splitlines()[-1][:80]}", "-", "-"])
            print(f"  epoch {rows[-1]}", flush=True)
    sections.append("2. one epoch (48,000 training + 12,000 validation images), after a warm-up\n"
                    + table(["trial", "precision", "epoch s", "images/s", "val acc after 1 epoch"], rows))

    # 3. packing
    rows = []
    mps = not DRY and subprocess.run(["which", "nvidia-cuda-mps-control"], capture_output=True).returncode == 0
    for use_mps in (False, True) if mps else (False,):
        if use_mps:
            subprocess.run(["nvidia-cuda-mps-control", "-d"], check=False)
        try:
            one = None
            for n in (1, 2, 4):
                if left() < 60:
                    rows.append([f"{n}{' + MPS' if use_mps else ''}", "skipped: out of time", "-", "-"])
                    continue
                barrier = work / f"barrier-{n}-{use_mps}"
                barrier.mkdir()
                job = {"values": FOURTH, "n_train": 48_000, "n_val": 12_000, "epochs": 1, "warmup": True,
                       "barrier": [str(barrier), n]}
                procs = [subprocess.Popen([sys.executable, __file__, "child", json.dumps(job)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n)]
                outs = []
                for proc in procs:
                    stdout, stderr = proc.communicate(timeout=300)
                    outs.append(result(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)))
                wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
                epochs = [o["reports"][0]["time_s"] for o in outs]
                rate = n / wall * 3600  # trial-epochs an hour
                one = rate if n == 1 else one
                rows.append([f"{n}{' + MPS' if use_mps else ''}", f"{statistics.median(epochs):.2f}",
                             f"{rate:,.0f}", f"{rate / one:.2f}x" if one else "-"])
                print(f"  packed {rows[-1]}", flush=True)
        except Exception as exc:  # noqa: BLE001
            rows.append([f"{'MPS' if use_mps else 'packed'}", f"FAILED: {str(exc).splitlines()[-1][:80]}", "-", "-"])
        finally:
            if use_mps:
                subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, check=False)
    sections.append("3. trials of the 4th CNN (fp32) packed on one GPU, each one epoch at once\n"
                    + table(["trials at once", "epoch s (median)", "trial-epochs/hour", "vs one"], rows))
    print()
    print("\n\n".join(sections))
    print(f"\ngpu_check: {time.time() - STARTED:.0f} s")


if __name__ == "__main__":
    if sys.argv[1] == "child":
        print(json.dumps(trial(json.loads(sys.argv[2]))))
    else:
        main(Path(sys.argv[2]))
PY
timeout 480 "$PYTHON" "$WORK/check.py" main "$WORK"
status=$?
if [[ $status -eq 124 ]]; then echo "gpu_check: stopped at its 8-minute limit"; fi
exit $status
