"""Seconds per epoch of each distinct architecture on this machine: the calibration behind spec/cost.py's time.

For each architecture (spec/cost.py's ARCH_KEYS) a model is built as a trial builds it, with the trial's thread
count, and the trial's own train_epoch and evaluate run on random images of the right shape (a warm-up, then
training batches for at least MIN_TIMED_S, and one evaluation batch of the trial's size), while as many helper
processes as the sweep runs other trials at once on this machine train the same architecture (load.py: trials
that share a machine slow each other). The measured seconds per training batch and per evaluated image are cached
in the user's cache folder, keyed by architecture, torch version, threads, trials at once, machine and METHOD, with
the machine's load when they were taken (one taken on a saturated machine that is quieter now is retaken), so a
second dry run does not import torch at all; an epoch's seconds are extrapolated from them to the sweep's
train/validation sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from sweeper.run.calibrate.load import Load, Workload
from sweeper.run.training.data import cache_dir
from sweeper.spec.cost import LOOP_ARCH, data_sizes, threads, trial_architectures, trials_at_once
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space

CHUNK, MIN_CHUNKS, MAX_CHUNKS, MIN_TIMED_S = 4, 3, 16, 0.5  # timed training: batches per call, calls, seconds
CACHE_FILE = "calibration.json"
# In the cache key: entries timed another way are not used (1: a bare step loop, 512-image evaluation; 2: the loop
# before issue 27's fast path: contiguous layout, for-loop optimizers, glibc's default thresholds, batch 2,048).
METHOD = 3
# A cached timing is retaken when it was taken on a saturated machine (load average per CPU at least SATURATED) that
# is quieter now by at least BUSIER per CPU, or when it does not say: timings taken under load stay too slow for
# good otherwise (an entry taken under load made a quiet machine's dry run 2.2x the actual, benchmarks/eta.py). A
# one-minute load average moves slowly, so two launches in a row keep their timings.
SATURATED, BUSIER = 1.0, 0.5


def machine() -> str:
    """What the numbers hold for: the CPU model and count, the OS and architecture."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()} {model or platform.processor()} x{os.cpu_count()}"


def machine_load() -> float:
    """This machine's load average over the last minute, per CPU, before any helper of ours starts."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # pragma: no cover - not on Linux or macOS
        return 0.0


def _torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:  # pragma: no cover - torch is a dependency
        return "?"


def cache_key(arch: str, n_threads: int, at_once: int = 1, extra: list[Any] | None = None) -> str:
    text = json.dumps([arch, _torch_version(), n_threads, machine(), at_once, METHOD, *(extra or [])])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _read_cache() -> dict[str, Any]:
    try:
        value = json.loads((cache_dir() / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _write_cache(entries: dict[str, Any]) -> None:
    path = cache_dir() / CACHE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{CACHE_FILE}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(_read_cache() | entries, indent=1))
        tmp.replace(path)
    except OSError:  # a read-only cache only costs the next run a calibration
        pass


def measure(p: TrialParams, n_threads: int, workload: Workload | None = None) -> dict[str, float]:
    """{train_batch_s, eval_image_s} of one architecture with `n_threads` torch threads.

    Times the trial's own code on random images: train_epoch (index gather, loss, backward, step, the running
    accuracy) in chunks of CHUNK batches for at least MIN_TIMED_S (the median chunk counts), and evaluate() on one
    EVAL_BATCH, the batch a trial evaluates with."""
    import torch

    from sweeper.run.training.loop import EVAL_BATCH, evaluate, make_optimizer, train_epoch

    w = workload or Workload()
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        gen = torch.Generator().manual_seed(0)
        model = w.build(p)
        opt = make_optimizer(p, model)
        x = torch.rand(CHUNK * p.batch_size, *w.shape, generator=gen)
        y = torch.randint(0, w.k, (len(x),), generator=gen)
        for _ in range(2):  # warm-up
            train_epoch(model, opt, x, y, p.batch_size, gen, p)
        chunks: list[float] = []
        while len(chunks) < MIN_CHUNKS or (sum(chunks) < MIN_TIMED_S and len(chunks) < MAX_CHUNKS):
            start = time.perf_counter()
            train_epoch(model, opt, x, y, p.batch_size, gen, p)
            chunks.append(time.perf_counter() - start)
        train_batch_s = statistics.median(chunks) / CHUNK  # the median chunk: a stall elsewhere does not count
        xe = torch.rand(EVAL_BATCH, *w.shape, generator=gen)
        ye = torch.randint(0, w.k, (EVAL_BATCH,), generator=gen)
        evaluate(model, xe, ye)  # warm-up
        start = time.perf_counter()
        evaluate(model, xe, ye)
        eval_image_s = (time.perf_counter() - start) / EVAL_BATCH
    finally:
        torch.set_num_threads(before)
    return {"train_batch_s": train_batch_s, "eval_image_s": eval_image_s}


def epoch_seconds(entry: dict[str, float], batch_size: int, train: int, val: int) -> float:
    return math.ceil(train / batch_size) * entry["train_batch_s"] + val * entry["eval_image_s"]


def local_at_once(space: Space) -> int:
    """Trials at once on this machine: its CPUs, the CPUs each trial asks for, max_concurrent, the trial count."""
    return trials_at_once(space.spec, os.cpu_count() or 1, space.num_trials)


def seconds_per_epoch(space: Space, data: DataShape | None = None) -> dict[str, float]:
    """Seconds per epoch of each architecture the sweep's trials use, measured here with the sweep's other trials
    at once as load (or from the cache). `data`: the loaded data's shape, classes and split sizes (None:
    Fashion-MNIST's, from the data spec)."""
    n_threads = threads(space.spec.resources.cpu)
    at_once = local_at_once(space)
    train, val = data.sizes if data is not None else data_sizes(space.spec.data)
    w = Workload(data.shape, data.k, space.models) if data is not None else Workload(models=space.models)
    cache = _read_cache()
    archs = list(dict.fromkeys(trial_architectures(space)))
    keys = {a: cache_key(a, n_threads, at_once, w.cache_part(a)) for a in archs}
    entries = {a: cache.get(keys[a]) for a in archs}
    now = machine_load()
    missing = [a for a, e in entries.items() if not isinstance(e, dict) or not isinstance(e.get("load"), int | float)
               or (e["load"] >= SATURATED and e["load"] - now >= BUSIER)]
    if missing:
        with Load(at_once - 1, n_threads, w) as load:
            for arch in missing:
                load.train(arch)
                entries[arch] = measure(w.params(arch), n_threads, w) | {"architecture": arch, "at_once": at_once,
                                                                          "load": now}
        _write_cache({keys[a]: entries[a] for a in missing})
    out = {}
    for arch, entry in entries.items():
        assert isinstance(entry, dict)
        batch = int(arch.split("batch_size=")[1].split()[0])
        out[arch] = epoch_seconds(entry, batch, train, val)
    return out


def local_slots(space: Space, address: str | None = None) -> int:
    """Trials at once: this machine's CPUs, or a joined Ray cluster's."""
    cpus = os.cpu_count() or 1
    if address:
        import ray

        if ray.is_initialized():
            cpus = int(ray.cluster_resources().get("CPU", cpus))
    return trials_at_once(space.spec, cpus, space.num_trials)


@dataclass(frozen=True)
class DataShape:
    """What an epoch's cost depends on in the data: input shape, classes, (train, validation) rows."""

    shape: tuple[int, ...]
    k: int
    sizes: tuple[int, int]


def timing(space: Space, address: str | None = None, data: DataShape | None = None,
           loop_epoch_s: float | None = None) -> dict[str, Any]:
    """What sweep.json keeps for the time model: seconds per epoch per architecture and the trials at once. With your
    own loop, `loop_epoch_s` (its rehearsal's pace) is the one architecture's."""
    if space.trainable is not None:
        return {"seconds_per_epoch": {LOOP_ARCH: loop_epoch_s or 0.0}, "slots": local_slots(space, address)}
    return {"seconds_per_epoch": seconds_per_epoch(space, data), "slots": local_slots(space, address)}
