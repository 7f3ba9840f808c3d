"""Checks that need the machine, not just the YAML: run before a launch or resume writes anything.

- storage: the sweep's folder can be created (its nearest existing ancestor is a folder we may write in);
- resources: on a local run, a trial's cpu/gpu fit this machine (an in-process Ray already started counts
  with its own resources); a trial that can never be placed would wait forever. On a cluster (--address) the
  autoscaler may add nodes, so nothing is checked there (nor with $RAY_ADDRESS set).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from sweeper.errors import SweeperError
from sweeper.spec.space import Space
from sweeper.store.storage import Storage


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(storage: Storage) -> None:
    """A local storage folder exists and is writable, or can be created: probed with a folder made and removed.
    A URI is not probed here: its first write says whether it works."""
    if not storage.local:
        return
    target = storage.path
    if target.exists() and not target.is_dir():
        raise SweeperError(f"--storage {storage}: is a file, not a folder; sweeps are stored in a folder")
    base = _nearest_existing(target)
    if not base.is_dir():
        raise SweeperError(f"--storage {storage}: {base} is a file, so no folder can be created under it")
    try:
        probe = tempfile.mkdtemp(prefix=".sweeper-probe-", dir=base)
        os.rmdir(probe)
    except OSError as exc:
        raise SweeperError(
            f"--storage {storage}: cannot create folders in {base}: {exc.strerror or exc}; pick a writable --storage"
        ) from None


def _local_resources() -> tuple[float, float, str]:
    """(CPUs, GPUs, where) a local run can use: the running in-process Ray's, else this machine's."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        res = ray.cluster_resources()
        return float(res.get("CPU", 0)), float(res.get("GPU", 0)), "the running Ray instance has"
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count() or 1
    return float(cpus), -1.0, "this machine has"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def check_resources(space: Space, address: str | None) -> None:
    """A trial's resources must fit the machine it runs on (local runs only)."""
    if address or os.environ.get("RAY_ADDRESS"):
        return
    res = space.spec.resources
    cpus, gpus, where = _local_resources()
    where_file = f"{space.path}: key 'resources"
    if res.cpu > cpus:
        raise SweeperError(f"{where_file}.cpu': {_num(res.cpu)} CPUs per trial, but {where} {_num(cpus)}; "
                           "no trial could ever start")
    if res.gpu > 0:
        gpus = gpus if gpus >= 0 else float(_gpu_count())
        if res.gpu > gpus:
            raise SweeperError(f"{where_file}.gpu': {_num(res.gpu)} GPUs per trial, but {where} {_num(gpus)}; "
                               "no trial could ever start")


def check(space: Space, storage: Storage, address: str | None) -> None:
    check_writable(storage)
    check_resources(space, address)
