"""What every benchmark shares: a fresh process timed from its start to its exit, the same environment on both
sides (bench_env), interleaved repeats with the side order alternating, and medians with their min-max.

A benchmark compares sides (e.g. "sweeper" and "bare"). Each side is a function of the round number that runs
one fresh process and returns its measurements, a dict of name -> seconds (or counts) with at least
"command_s": subprocess start to exit, i.e. until its results are on disk. `interleave` runs every side once per
round; with alternate=True (the project's standard) in the order round_order gives, A B in even rounds and B A in
odd ones, so neither side always runs first, after the other has warmed or loaded the machine; without it,
A B, A B, ... as before.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
LONG_RUN_S = 60.0  # a side whose first run takes longer gets 3 rounds instead of 5
Measures = dict[str, float]


def data_dir() -> str:
    return os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")


def sweeper_cmd() -> list[str]:
    """The CLI as a user runs it: the venv's `sweeper` script (or `python -m sweeper`)."""
    script = Path(sys.executable).with_name("sweeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sweeper"]


@functools.cache
def cache_dir() -> str:
    """The one cache folder every side of this benchmark gets as SWEEPER_CACHE_DIR: the folder sweeper would use
    here anyway (sweeper.run.training.data.cache_dir: $SWEEPER_CACHE_DIR, else $XDG_CACHE_HOME/sweeper, else
    ~/.cache/sweeper), resolved once, at the first call, so later changes to the environment cannot move it."""
    from sweeper.run.training.data import cache_dir as sweepers_cache_dir

    return str(sweepers_cache_dir().resolve())


def bench_env(threads: int = 1, **extra: str) -> dict[str, str]:
    """The environment every side of a benchmark gets: os.environ less RAY_ADDRESS (each side starts its own Ray),
    with these pinned to the same values for every side:
    - OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS: `threads`;
    - SWEEPER_DATA_DIR: data_dir();
    - SWEEPER_CACHE_DIR: cache_dir(), one folder for the whole benchmark. It holds the calibration cache
      (calibration.json: seconds per epoch per architecture, which `sweeper launch` measures when missing) and the
      staged (decompressed) data every side's data.load reads, so no side runs with a warmer or colder cache than
      another because its environment named another folder. It is shared, not emptied: the first run that needs
      an entry pays for it (alternate the side order so that is not always the same side);
    - RAY_USAGE_STATS_ENABLED=0, COLUMNS=160, PYTHONUNBUFFERED=1.
    `extra` adds variables (e.g. PYTHONPATH); it may not name another SWEEPER_CACHE_DIR."""
    cache = cache_dir()
    if extra.get("SWEEPER_CACHE_DIR", cache) != cache:
        raise ValueError(f"bench_env pins SWEEPER_CACHE_DIR to {cache} for every side, not "
                         f"{extra['SWEEPER_CACHE_DIR']}")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS",)}
    pinned = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    return env | pinned | {"SWEEPER_DATA_DIR": data_dir(), "SWEEPER_CACHE_DIR": cache, "RAY_USAGE_STATS_ENABLED": "0",
                           "COLUMNS": "160", "PYTHONUNBUFFERED": "1"} | extra


@dataclass
class Run:
    """One finished process: when it started (wall clock), how long it ran, what it printed."""

    started_at: float  # time.time() just before the process was started
    seconds: float  # process start to exit
    output: str


def run_timed(cmd: Sequence[str], env: dict[str, str], cwd: Path = REPO, check: bool = True) -> Run:
    """Run `cmd` as a fresh process; time it from just before it starts to its exit."""
    return run_together([cmd], env, cwd, check)


def run_together(cmds: Sequence[Sequence[str]], env: dict[str, str], cwd: Path = REPO, check: bool = True) -> Run:
    """Start every command at once (fresh processes); time from just before the first starts to the last exit."""
    logs = [tempfile.TemporaryFile("w+") for _ in cmds]  # files, not pipes: a full pipe would stall a process
    started_at = time.time()
    start = time.perf_counter()
    procs = [subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
             for cmd, log in zip(cmds, logs, strict=True)]
    codes = [proc.wait() for proc in procs]
    seconds = time.perf_counter() - start
    outputs = []
    for log in logs:
        log.seek(0)
        outputs.append(log.read())
        log.close()
    for cmd, code, output in zip(cmds, codes, outputs, strict=True):
        if check and code != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed (exit {code}):\n{output[-4000:]}")
    return Run(started_at, seconds, "".join(outputs))


def round_order(names: Sequence[str], i: int) -> list[str]:
    """The sides' order in round i (from 0): as given in even rounds, reversed in odd ones (A B, B A, A B, ...)."""
    return list(names) if i % 2 == 0 else list(reversed(names))


def interleave(sides: Mapping[str, Callable[[int], Measures]], repeats: int | None = None,
               echo: Callable[[str], Any] = print, alternate: bool = True) -> dict[str, list[Measures]]:
    """Run every side once per round, the order alternating as round_order gives it (A B, B A, ...: no side always
    runs first, on a machine warmer or colder for it); alternate=False keeps the given order every round. With
    repeats None: 5 rounds, or 3 when a run of the first round took over a
    minute. The result keeps the sides' given order."""
    results: dict[str, list[Measures]] = {name: [] for name in sides}
    rounds = repeats or 5
    i = 0
    while i < rounds:
        for name in round_order(list(sides), i) if alternate else list(sides):
            measures = sides[name](i)
            results[name].append(measures)
            echo(f"  round {i + 1}/{rounds} {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in measures.items()))
        if i == 0 and repeats is None and max(r[0]["command_s"] for r in results.values()) > LONG_RUN_S:
            rounds = 3
        i += 1
    return results


def spread(values: Sequence[float], digits: int = 2) -> str:
    """median (min-max), or "-" when there is no value."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "-"
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a_i / b_i for each round (a pair ran back to back)."""
    return [x / y if y else math.nan for x, y in zip(a, b, strict=True)]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain aligned text table."""
    cells = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def compare(results: dict[str, list[Measures]], a: str, b: str, metrics: dict[str, str]) -> str:
    """A table of median (min-max) per side and of the a/b ratio over the rounds, one row per metric."""
    rows = []
    for key, label in metrics.items():
        xs, ys = [r[key] for r in results[a]], [r[key] for r in results[b]]
        rows.append([label, spread(xs), spread(ys), spread(ratios(xs, ys), 3)])
    n = len(results[a])
    return table(["seconds, median (min-max)", a, b, f"{a}/{b} over {n} rounds"], rows)


def workdir(prefix: str) -> Path:
    """A temp folder for a benchmark's files, removed when the benchmark exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def write_yaml(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def slides_variant(name: str) -> dict[str, Any]:
    """A variant of search_spaces/slides.yaml as written there, less its reference numbers and its replicates
    (`repeats`): one configuration, one trial."""
    slides = yaml.safe_load((REPO / "search_spaces" / "slides.yaml").read_text())
    found = [dict(v) for v in slides["variants"] if v["name"] == name]
    if not found:
        raise SystemExit(f"no variant {name!r} in slides.yaml; it has {[v['name'] for v in slides['variants']]}")
    found[0].pop("reference", None)
    found[0].pop("repeats", None)
    return found[0]


_HMS = re.compile(r"(?:(\d+)d )?(\d+):(\d\d):(\d\d)")
_WORDS = re.compile(r"(\d+(?:\.\d+)?)\s*(h|hours?|min|minutes?|m|s|sec|seconds?)\b")


def parse_duration(text: str) -> float | None:
    """Seconds from the first duration in text: "1d 2:03:04", "0:12:34", "1 h 28 min", "45 s"; None if none."""
    m = _HMS.search(text)
    if m:
        days, h, mi, s = (int(g or 0) for g in m.groups())
        return days * 86400 + h * 3600 + mi * 60 + s
    parts = _WORDS.findall(text)
    if not parts:
        return None
    scale = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * scale[unit[0]] for n, unit in parts)
