"""Launch and resume a sweep: check, load the data, take the lock, run the Tuner, summarise what happened.

A sweep folder `<storage>/<name>/` (store/storage.py) holds Ray's experiment state, spec.yaml, sweep.json
(store/state.py), the lock while a process runs it (store/lock.py), and the two Parquet files.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sweeper.errors import SweeperError
from sweeper.run import calibrate, cluster, preflight, raylog
from sweeper.run import data as data_mod
from sweeper.run.startup import Startup, init_ray, prefetch_imports, start_ray
from sweeper.spec.loader import load_text
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import LOCK_FILE, SPEC_FILE, TRIALS_FILE
from sweeper.store.lock import locked
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import current_runs, open_sweep
from sweeper.store.trials import Ended, best, count_ended

if TYPE_CHECKING:  # imported when a sweep starts, in a thread while Ray starts (startup.prefetch_imports)
    from sweeper.run.recorder import Progress

Errored = Literal["resume", "restart", "leave"]
Echo = Callable[[str], Any]


@dataclass
class Outcome:
    """What a launch or resume ended with, for the CLI's last lines and exit code."""

    folder: SweepFolder
    trials: int
    errors: int
    stopped: int
    unfinished: int
    best: dict[str, Any] | None  # trial_id, variant and the metric of the best trial (store/trials.py's rule)

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def interrupted(self) -> bool:
        return self.unfinished > 0


@contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """Ray Tune stops gracefully (saving state) on SIGINT; make SIGTERM do the same."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def summarise(folder: SweepFolder, space: Space) -> Outcome:
    rows = read_rows(folder, TRIALS_FILE)
    counts = count_ended(rows, space.num_trials)
    top = best(rows, space.spec.metric, space.spec.mode)
    return Outcome(
        folder=folder, trials=max(len(rows), space.num_trials), errors=counts[Ended.ERROR],
        stopped=counts[Ended.ASHA], unfinished=sum(n for e, n in counts.items() if not e.finished),
        best=None if top is None else {k: top.get(k) for k in ("trial_id", "variant", space.spec.metric)},
    )


def _run(tuner: Any, folder: SweepFolder, run_state: dict[str, Any], command: str, space: Space,
         progress: Progress | None) -> Outcome:
    state.start_session(run_state, command)
    state.write_state(folder, run_state)
    outcome_word = "failed"
    try:
        with _sigterm_as_sigint():
            try:
                tuner.fit()
            finally:
                if progress is not None:
                    progress.close()
        outcome = summarise(folder, space)
        outcome_word = "interrupted" if outcome.interrupted else "finished"
        return outcome
    finally:
        state.end_session(run_state, outcome_word)
        state.write_state(folder, run_state)


def tell_startup(startup: Startup, echo: Echo | None) -> None:
    startup.mark("Tuner")
    if echo is not None:
        echo(startup.summary())


def launch(
    space: Space, storage: Storage, name: str | None = None, address: str | None = None, data_dir: str | None = None,
    if_exists: Literal["refuse", "resume", "overwrite"] = "refuse", max_failures: int = 0,
    echo: Echo | None = print, progress: Progress | None = None, verbose: bool = False, warm_start: str | None = None,
) -> Outcome:
    """Run the sweep to its end (or an interrupt) in `<storage>/<name>/`. `progress`: where to report (the live
    view); `verbose`: let Ray's own output through rather than into the sweep's ray.log; `warm_start`: a sweep
    under the same storage whose ended trials a TPE search starts from."""
    startup = Startup()
    startup.mark("python, imports and the space file")
    folder = storage.folder(name or space.name)
    past = None
    if warm_start:
        from sweeper.run.extend import warm_start_rows

        past = warm_start_rows(storage, warm_start, space)
    exists = folder.exists()
    if exists and if_exists == "resume":
        return resume(folder.name, storage, address=address, data_dir=data_dir, space=space, echo=echo,
                      progress=progress, verbose=verbose)
    if exists and if_exists == "refuse":
        old = state.read_state(folder)
        how = "is unfinished" if old and old.get("state") != "finished" else "already exists"
        raise SweeperError(
            f"{folder}: sweep {folder.name!r} {how}; continue it with `sweeper resume {folder.name} --storage "
            f"{storage}`, or pass --resume or --overwrite to launch"
        )
    preflight.check(space, storage, address)  # writable storage, resources this machine has
    startup.mark("checks")
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    splits = data_mod.load(data_dir, space.spec.data)  # before anything is written: a bad folder starts nothing
    startup.mark("data")
    cluster.join(address, storage, lambda a: init_ray(a, verbose))  # a cluster: all nodes must see storage
    timing = calibrate.timing(space, address)  # seconds per epoch per architecture (cached), trials at once
    startup.mark("calibration")
    imports = prefetch_imports()  # not before: the checks read sys.modules["ray"], which must not be half-imported
    with locked(folder), raylog.ray_output(folder, verbose):
        if exists and if_exists == "overwrite":
            folder.clear(keep=(LOCK_FILE,))  # on every kind of storage: old and new trials never mix
        start_ray(address, verbose, startup, imports)
        from sweeper.run.recorder import ParquetRecorder
        from sweeper.run.search import model_plan
        from sweeper.run.tuner import new_tuner

        folder.write_text(SPEC_FILE, space.text)
        run_state = state.new_state(space, data_dir) | timing
        recorder = ParquetRecorder(folder, space, echo, progress, startup=startup if verbose else None)
        plan = None if past is None else model_plan(space, folder, past=past)
        if plan is not None and echo is not None:
            notes = plan.notes
            skipped = f"; {len(notes)} skipped ({notes[0]}{', ...' if len(notes) > 1 else ''})" if notes else ""
            echo(f"warm start: TPE starts from {plan.learned} configurations of {warm_start!r}{skipped}")
        tuner = new_tuner(space, folder, splits, max_failures, recorder, plan)
        tell_startup(startup, echo if verbose else None)
        return _run(tuner, folder, run_state, "launch", space, progress)


def load_sweep_space(storage: Storage, name: str) -> tuple[SweepFolder, dict[str, Any], Space]:
    """An existing sweep's folder, sweep.json and search space (from its spec.yaml)."""
    folder, run_state = open_sweep(storage, name)
    spec_text = folder.read_text(SPEC_FILE)
    if spec_text is None:
        raise SweeperError(f"{folder}: sweep {name!r} has no {SPEC_FILE}, so it cannot be resumed")
    original = Path(run_state.get("space_file") or f"{name}.yaml")
    return folder, run_state, load_text(spec_text, original)


def resume(
    name: str, storage: Storage, address: str | None = None, data_dir: str | None = None, space: Space | None = None,
    errored: Errored = "leave", echo: Echo | None = print, progress: Progress | None = None,
    verbose: bool = False,
) -> Outcome:
    """Continue an interrupted sweep from Ray's experiment state; unfinished trials restart from their
    last epoch checkpoint. `space`, if given, must not change what the trials are."""
    startup = Startup()
    startup.mark("python and imports")
    folder, run_state, stored = load_sweep_space(storage, name)
    if space is not None:
        changed = state.trial_changes(run_state["fingerprint"], state.fingerprint(space))
        if changed:
            raise SweeperError(
                f"{space.path}: differs from the search space sweep {name!r} was launched with in "
                f"{', '.join(changed)}; that would change its trials: launch it under another --name, or --overwrite"
            )
    preflight.check(stored, storage, address)
    startup.mark("checks")
    data_dir = data_dir or run_state.get("data_dir")
    splits = data_mod.load(data_dir, stored.spec.data)
    startup.mark("data")
    cluster.join(address, storage, lambda a: init_ray(a, verbose))
    runs = current_runs(folder, run_state)  # the latest Ray experiment: the launch's, or the last extension's
    if "seconds_per_epoch" not in run_state:  # launched before the time model existed
        run_state |= calibrate.timing(stored, address)
        startup.mark("calibration")
    imports = prefetch_imports()  # not before: the checks read sys.modules["ray"], which must not be half-imported
    with locked(folder), raylog.ray_output(folder, verbose):
        if space is not None and space.text != stored.text:
            # Only keys that leave the trials alone changed (resources, max_concurrent, description): record them.
            folder.write_text(SPEC_FILE, space.text)
            run_state["fingerprint"] = state.fingerprint(space)
        start_ray(address, verbose, startup, imports)
        from sweeper.run.extend import reconcile
        from sweeper.run.recorder import ParquetRecorder
        from sweeper.run.tuner import restore_tuner

        reconcile(folder, runs)  # Ray's last snapshot may predate trials.parquet's last write
        recorder = ParquetRecorder(folder, stored, echo, progress, runs=runs, startup=startup if verbose else None)
        tuner = restore_tuner(runs, stored, splits, errored, recorder)
        tell_startup(startup, echo if verbose else None)
        return _run(tuner, folder, run_state, f"resume --errored {errored}", stored, progress)
