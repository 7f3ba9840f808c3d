"""A sweep's start: Ray's (local by default: in-process with the dashboard off; `address` joins an existing cluster:
`auto`, `HOST:PORT` or `ray://HOST:10001`), with the imports Ray Tune needs done meanwhile; and where the
start-up time goes, printed with `--verbose`: from the process's start (Python and imports) through the checks,
the data, the calibration and Ray's start to the Tuner, then the first trial's own start (Ray's worker process,
its torch import and its data) until its first epoch is reported."""

from __future__ import annotations

import importlib
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.run.driver import shipping

if TYPE_CHECKING:
    from sweeper.spec.space import Space

_IMPORTED = time.time()  # the fallback clock start where the process's own start time cannot be read


def process_started() -> float:
    """When this process started (seconds since the epoch), from /proc on Linux; elsewhere when sweeper's run
    package was first imported (so "python and imports" then reads 0)."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime, in clock ticks after boot
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])  # seconds since boot, to 1/100 s (btime is whole seconds)
        started = time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return _IMPORTED
    return min(started, _IMPORTED)


@dataclass
class Startup:
    """Phases timed in order: `mark(name)` closes the phase that ran since the last mark."""

    started: float = field(default_factory=process_started)
    phases: list[tuple[str, float]] = field(default_factory=list)
    last: float = 0.0
    tuner_started: float | None = None
    reported: bool = False
    space: Space | None = None  # whose source trees `start_ray` ships to a Ray it starts (Session.open sets it)

    def __post_init__(self) -> None:
        self.last = self.last or self.started

    def mark(self, phase: str) -> None:
        now = time.time()
        self.phases.append((phase, now - self.last))
        self.last = now

    def summary(self) -> str:
        """One line, when Ray Tune is about to start: the phases so far."""
        self.tuner_started = self.last
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases)
        return f"start-up: {self.last - self.started:.1f} s until Ray Tune starts ({parts})"

    def first_result(self, result: dict[str, Any]) -> str | None:
        """One line at the sweep's first reported epoch: how long its trial took to start, and the epoch."""
        if self.reported or self.tuner_started is None:
            return None
        self.reported = True
        reported, epoch = float(result.get("reported_at") or time.time()), float(result.get("time_s") or 0.0)
        trial_start = reported - epoch - self.tuner_started
        return (f"start-up: first epoch reported {reported - self.started:.1f} s after the process started "
                f"(trial start {trial_start:.1f} s: Ray's worker process, torch import, data to the trial; "
                f"epoch {result.get('epoch', 1)} {epoch:.1f} s)")


# Before a worker runs the next trial (reuse_actors), Ray Tune waits this long for the previous trial's thread to
# end, then gives up and fails the NEW trial ("Could not re-use actor ... reset_config()"). Its default, 2 s, is
# too short where a stopped trial's clean-up (Ray persisting its files, our gc) runs on a loaded machine: the
# chaos soak met it (benchmarks/chaos.py), and it left CI's resumed TPE sweep short of its budget.
REUSE_WAIT_VAR, REUSE_WAIT_S = "TUNE_FUNCTION_THREAD_TIMEOUT_S", "60"


def init_ray(address: str | None, verbose: bool = False, space: Space | None = None) -> None:
    """Start Ray (`address` None: in this process) or join a cluster, with `space`'s source trees in its
    runtime_env (shipping.py): every worker of the sweep, on every node, imports them. A Ray already initialised
    in this process is kept as it is."""
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault(REUSE_WAIT_VAR, REUSE_WAIT_S)  # this process's Ray and its workers inherit it
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "INFO" if verbose else "WARNING",
                              "log_to_driver": verbose}
    if address:
        kwargs["address"] = address
    env = shipping.runtime_env(space)  # refused here when too big to ship, before Ray starts
    kwargs["runtime_env"] = {**env, "env_vars": {REUSE_WAIT_VAR: os.environ[REUSE_WAIT_VAR]}}  # a cluster's too
    try:
        ray.init(**kwargs)
    except ray.exceptions.RuntimeEnvSetupError as exc:  # the upload of your packages failed
        raise SweeperError(f"cannot ship your code ({', '.join(env.get('py_modules', []))}) to Ray: "
                           f"{str(exc).strip().splitlines()[-1]}") from None
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise SweeperError(f"--address {address}: cannot connect to Ray: {str(exc).splitlines()[0]}") from None


TUNE_MODULES = ("sweeper.run.recovery", "sweeper.run.search.plans")  # Ray Tune, Optuna, pandas, the Tuner and recorder


def prefetch_imports() -> threading.Thread:
    """Import what the Tuner needs in a thread, while this one checks, loads data and waits for Ray's processes
    to start: the imports then cost no wall time of their own. Join the thread before using them (a module
    imported meanwhile by this thread too waits on Python's import lock, so either way it is whole)."""
    thread = threading.Thread(target=lambda: [importlib.import_module(m) for m in TUNE_MODULES], daemon=True)
    thread.start()
    return thread


def start_ray(address: str | None, verbose: bool, startup: Startup, imports: threading.Thread,
              space: Space | None = None) -> None:
    """Start (or join) Ray, shipping the source trees of `space` (default: `startup.space`), then wait for the
    imports `prefetch_imports` started."""
    init_ray(address, verbose, space if space is not None else startup.space)
    startup.mark("Ray start")
    imports.join()
    startup.mark("imports left after Ray's start")
