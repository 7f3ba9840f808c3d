"""How good sweeper's time estimates are: the dry run's expected wall time and the live "about H:MM:SS left",
each against what the sweep really took.

    .venv/bin/python -m benchmarks.eta [--seeds 4] [--epochs 3] [--train-subset 2000] [--skip-dry-run] [--quick]

The sweep (FIFO, resources cpu 1, as many trials at once as the local Ray has CPUs): two CNNs of very different
cost, a cheap one (2 conv layers, 8 filters, kernel 2) and a dear one (4 conv layers, 64 filters, kernel 3,
pooling every 2), --seeds seeds each, --epochs epochs on --train-subset / 1,000 / 1,000 train/val/test images.
The grid runs the cheap trials first: the hard case for an estimate that learns from the epochs it has seen.
  1. `sweeper launch SPACE.yaml --dry-run`: its "expected wall time" line. eta.py stops with a message if there
     is none (--skip-dry-run goes on without it).
  2. `sweeper launch SPACE.yaml --storage TMP --quiet`, a fresh process, stdout read line by line as it comes
     (its "progress: ... about H:MM:SS left" lines come every 30 s); epochs.parquet's row count is polled every
     0.2 s, and when it first reaches 10%, 25% and 50% of the planned trial-epochs, `sweeper status NAME` runs
     and its "about H:MM:SS left" is read.
  3. At exit (results on disk): actual wall = launch start to exit; actual time left at a point = exit - the
     moment status was started there.
Prints each estimate, the actual time, and estimate / actual: the dry run against the whole launch; at each
point the status estimate and the last progress line's (its "left" less the seconds since it was printed).
One run: the numbers describe this sweep's order and this machine, not an average.
--quick: one seed each, 2 epochs, 300 images (a smoke run, not a measurement).

Full run on the 2-core machine (estimate): about 5 minutes (the four dear trials dominate).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.common import bench_env, parse_duration, run_timed, sweeper_cmd, table, workdir, write_yaml
from sweeper.spec import loader
from sweeper.spec.cost import cost

POINTS = (0.10, 0.25, 0.50)
LEFT = re.compile(r"about ((?:\d+d )?\d+:\d\d:\d\d) left")
DRY_RUN_LINE = "expected wall time"


def space_file(work: Path, args: argparse.Namespace) -> Path:
    n = (300, 300, 300) if args.quick else (args.train_subset, 1000, 1000)
    return write_yaml(work / "eta.yaml", {
        "name": "eta", "epochs": args.epochs, "scheduler": {"type": "fifo"}, "resources": {"cpu": 1, "gpu": 0},
        "data": {"train_subset": n[0], "val_subset": n[1], "test_subset": n[2], "seed": 0},
        "variants": [
            {"name": "cheap 2conv-8f-k2", "model": "cnn", "conv_layers": 2, "filters": 8, "kernel_size": 2},
            {"name": "dear 4conv-64f-k3", "model": "cnn", "conv_layers": 4, "filters": 64, "kernel_size": 3,
             "pool_every": 2},
        ],
        "parameters": {"batch_size": 32, "optimizer": "adam", "seed": {"grid": list(range(args.seeds))}},
    })


def dry_run_estimate(space: Path) -> float:
    """Seconds on the dry run's "expected wall time" line; exits with a message if there is none."""
    out = run_timed([*sweeper_cmd(), "launch", str(space), "--dry-run"], bench_env()).output
    for line in out.splitlines():
        if DRY_RUN_LINE in line.lower():
            seconds = parse_duration(line.lower().split(DRY_RUN_LINE, 1)[1])
            if seconds is not None:
                return seconds
            raise SystemExit(f"eta.py: cannot read a duration in the dry run's line: {line.strip()!r}")
    raise SystemExit(f"eta.py: `sweeper launch --dry-run` printed no {DRY_RUN_LINE!r} line, so there is no dry-run "
                     f"estimate to check (issue 14 part 4 adds it). Its output ended:\n{out[-1500:]}\n"
                     "Run with --skip-dry-run to check the live estimates alone.")


def rows_in(path: Path) -> int:
    try:
        return pq.read_metadata(path).num_rows
    except (OSError, ValueError):  # not written yet
        return 0


def left_in(text: str) -> float | None:
    m = LEFT.search(text)
    return parse_duration(m.group(1)) if m else None


@dataclass
class Point:
    """What the estimates said when the sweep first reached a fraction of its trial-epochs."""

    fraction: float
    rows: int
    at: float  # time.time() when status was started
    status: float | None  # seconds left, as `sweeper status` said
    progress: float | None  # the last progress line's seconds left, less the time since it was printed

    def line(self, started: float) -> str:
        said = f"{self.status:.0f} s left" if self.status is not None else "no estimate"
        return f"  {self.fraction:.0%}: {self.rows} trial-epochs at {self.at - started:.1f} s; status says {said}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=None, help="trials per architecture; default 4 (1 with --quick)")
    ap.add_argument("--epochs", type=int, default=None, help="default 3 (2 with --quick)")
    ap.add_argument("--train-subset", type=int, default=2000)
    ap.add_argument("--skip-dry-run", action="store_true", help="check the live estimates even without a dry-run one")
    ap.add_argument("--quick", action="store_true", help="a tiny sweep (checks it runs)")
    args = ap.parse_args()
    args.seeds = args.seeds or (1 if args.quick else 4)
    args.epochs = args.epochs or (2 if args.quick else 3)
    work = workdir("sweeper-eta-")
    space = space_file(work, args)
    planned = cost(loader.load(space)).full
    dry = None if args.skip_dry_run else dry_run_estimate(space)
    storage, env = work / "runs", bench_env()
    epochs_file = storage / "eta" / "epochs.parquet"
    print(f"{2 * args.seeds} trials, {planned} trial-epochs planned; dry run says "
          + (f"{dry:.0f} s" if dry is not None else "(skipped)"), flush=True)

    lines: list[tuple[float, str]] = []  # (when it arrived, the line)
    started = time.time()
    proc = subprocess.Popen([*sweeper_cmd(), "launch", str(space), "--storage", str(storage), "--quiet"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    stdout = proc.stdout
    if stdout is None:
        raise SystemExit("no stdout pipe")
    reader = threading.Thread(target=lambda: lines.extend((time.time(), ln) for ln in stdout), daemon=True)
    reader.start()
    points: list[Point] = []
    todo = list(POINTS)
    while proc.poll() is None:
        done = rows_in(epochs_file)
        while todo and done >= math.ceil(todo[0] * planned):
            at = time.time()
            status = subprocess.run([*sweeper_cmd(), "status", "eta", "--storage", str(storage)], env=env,
                                    capture_output=True, text=True).stdout
            said = [(t, left) for t, ln in list(lines) if t <= at and (left := left_in(ln)) is not None]
            progress = said[-1][1] - (at - said[-1][0]) if said else None
            points.append(Point(todo.pop(0), done, at, left_in(status), progress))
            print(points[-1].line(started), flush=True)
        time.sleep(0.2)
    ended = time.time()
    reader.join(timeout=5)
    if proc.returncode != 0:
        raise SystemExit(f"sweeper launch failed ({proc.returncode}):\n{''.join(ln for _, ln in lines)[-3000:]}")

    def cells(estimate: float | None, actual: float) -> list[str]:
        if estimate is None:
            return ["-", f"{actual:.0f}", "-"]
        return [f"{estimate:.0f}", f"{actual:.0f}", f"{estimate / actual:.2f}" if actual > 0 else "-"]

    rows = [["dry run: whole launch", *cells(dry, ended - started)]]
    for p in points:
        rows.append([f"{p.fraction:.0%} of trial-epochs: status", *cells(p.status, ended - p.at)])
        rows.append([f"{p.fraction:.0%} of trial-epochs: last progress line", *cells(p.progress, ended - p.at)])
    print(table(["estimate, seconds", "estimated", "actual", "estimated/actual"], rows))


if __name__ == "__main__":
    main()
