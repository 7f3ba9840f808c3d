"""One run of a sweep, the sequence launch, resume and extend share: checks, data, cluster, calibration, then under
the sweep's lock (with Ray's output in the sweep's ray.log) the command's own writes, Ray, the recorder and the
Tuner, and a session of sweep.json around `Tuner.fit`. Each step's time goes into the `--verbose` start-up line.

A sweep folder `<storage>/<name>/` (store/storage.py) holds Ray's experiment state, spec.yaml, sweep.json
(store/state.py), the lock while a process runs it (store/lock.py), and the two Parquet files.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.run import calibrate, preflight, provenance
from sweeper.run.driver import cluster, raylog
from sweeper.run.driver.startup import Startup, init_ray, prefetch_imports, start_ray
from sweeper.run.training import sources
from sweeper.run.training.factories import check_forward, load_space
from sweeper.run.training.usercode import roots_of
from sweeper.spec.cost import trial_architectures
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import SPEC_FILE, TRIALS_FILE
from sweeper.store.lock import locked
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep
from sweeper.store.trials import Ended, best, count_ended

if TYPE_CHECKING:  # imported when a sweep starts, in a thread while Ray starts (startup.prefetch_imports)
    from sweeper.run.driver.recorder import ParquetRecorder, Progress
    from sweeper.run.training.data import Splits

Echo = Callable[[str], Any]


@dataclass
class Outcome:
    """What a launch, resume or extension ended with, for the CLI's last lines and exit code."""

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


def summarise(folder: SweepFolder, space: Space) -> Outcome:
    rows = read_rows(folder, TRIALS_FILE)
    counts = count_ended(rows, space.num_trials)
    top = best(rows, space.spec.metric, space.spec.mode)
    return Outcome(
        folder=folder, trials=max(len(rows), space.num_trials), errors=counts[Ended.ERROR],
        stopped=counts[Ended.ASHA], unfinished=sum(n for e, n in counts.items() if not e.finished),
        best=None if top is None else {k: top.get(k) for k in ("trial_id", "variant", space.spec.metric)},
    )


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


@dataclass
class Session:
    """One run of sweep `folder` over `space` by `command` (launch, resume or extend): where it runs and how it
    reports. `open` does what needs no lock; `run` the rest, the command's own writes in its `prepare`."""

    folder: SweepFolder
    space: Space
    command: str
    address: str | None = None
    verbose: bool = False
    echo: Echo | None = print
    progress: Progress | None = None
    startup: Startup = field(default_factory=Startup)
    timing: dict[str, Any] = field(default_factory=dict)  # calibrate.timing's, where `open` measured it
    accept_code: bool = False  # resume/extend: go on although the sweep's own models' code changed
    facts: dict[str, Any] = field(default_factory=dict)  # a launch's code and data record (run/provenance.py)

    def __post_init__(self) -> None:
        self.startup.mark("python, imports and the space file")

    @property
    def storage(self) -> Storage:
        return self.folder.storage

    def open(self, data_dir: str | None, run_state: dict[str, Any] | None = None) -> Splits:
        """The checks that need this machine, the data (before anything is written: a bad folder starts
        nothing), the cluster, and the time model's calibration where `run_state` lacks it (None: a new sweep)."""
        preflight.check(self.space, self.storage, self.address)  # writable storage, resources this machine has
        self.startup.mark("checks")
        space = self.space
        splits, loop_epoch_s = checked_data(space, data_dir, data_roots(space, run_state), self.startup.mark, self.echo)
        data_fingerprint = sources.fingerprint(splits)
        if run_state is None:
            self.facts = provenance.facts(space, data_fingerprint, splits.sizes())
        else:
            provenance.check_same(run_state, space, data_fingerprint, self.accept_code, str(self.folder))
            run_state["data_sizes"] = splits.sizes()
        from sweeper.run.driver import shipping

        shipping.runtime_env(space)  # your source trees: refused here, before anything starts, when too big to ship
        self.startup.space = space  # start_ray ships them to a Ray it starts itself
        cluster.join(self.address, self.storage, lambda a: init_ray(a, self.verbose, space))  # nodes must see storage
        shipping.check_nodes(space)  # and every node that runs trials imports your code, this machine's version
        if run_state is not None:
            known = run_state.get("seconds_per_epoch") or {}
            if all(arch in known for arch in trial_architectures(self.space)):
                return splits
            run_state |= {"seconds_per_epoch": known}  # a grown sweep keeps what was measured for it
        # seconds per epoch (cached), trials at once
        self.timing = calibrate.timing(self.space, self.address, data_shape(space, splits), loop_epoch_s)
        if run_state is not None:
            run_state["seconds_per_epoch"] |= self.timing["seconds_per_epoch"]
            run_state.setdefault("slots", self.timing["slots"])
        self.startup.mark("calibration")
        return splits

    def run(self, run_state: dict[str, Any], prepare: Callable[[], SweepFolder],
            tuner_of: Callable[[SweepFolder, ParquetRecorder], Any]) -> Outcome:
        """Under the sweep's lock: `prepare` (the command's writes; returns the Ray experiment's folder), Ray,
        the recorder, `tuner_of(experiment folder, recorder)`, then the Tuner's run as a session of sweep.json."""
        imports = prefetch_imports()  # not before: the checks read sys.modules["ray"], which must not be half-imported
        with locked(self.folder), raylog.ray_output(self.folder, self.verbose):
            runs = prepare()
            start_ray(self.address, self.verbose, self.startup, imports)
            from sweeper.run.driver.recorder import ParquetRecorder

            recorder = ParquetRecorder(self.folder, self.space, self.echo, self.progress, runs=runs,
                                       startup=self.startup if self.verbose else None)
            tuner = tuner_of(runs, recorder)
            self.startup.mark("Tuner")
            if self.verbose and self.echo is not None:
                self.echo(self.startup.summary())
            return self._fit(tuner, run_state)

    def _fit(self, tuner: Any, run_state: dict[str, Any]) -> Outcome:
        state.start_session(run_state, self.command)
        state.write_state(self.folder, run_state)
        outcome_word = "failed"
        try:
            with _sigterm_as_sigint():
                try:
                    tuner.fit()
                finally:
                    if self.progress is not None:
                        self.progress.close()
            outcome = summarise(self.folder, self.space)
            outcome_word = "interrupted" if outcome.interrupted else "finished"
            return outcome
        finally:
            state.end_session(run_state, outcome_word)
            state.write_state(self.folder, run_state)


def load_sweep_space(storage: Storage, name: str) -> tuple[SweepFolder, dict[str, Any], Space]:
    """An existing sweep's folder, sweep.json and search space (from its spec.yaml)."""
    folder, run_state = open_sweep(storage, name)
    spec_text = folder.read_text(SPEC_FILE)
    if spec_text is None:
        raise SweeperError(f"{folder}: sweep {name!r} has no {SPEC_FILE}, so it cannot be resumed")
    original = Path(run_state.get("space_file") or f"{name}.yaml")
    return folder, run_state, load_space(original, text=spec_text, roots=recorded_roots(run_state))


def recorded_roots(run_state: dict[str, Any] | None) -> tuple[str, ...]:
    """Where a sweep's own code was found at launch (sweep.json): looked in first on resume and extend, so they work
    from another working directory."""
    found = list((run_state or {}).get("space_roots") or [])
    for model in ((run_state or {}).get("models") or {}).values():
        found += list(model.get("roots") or []) if isinstance(model, dict) else []
    return tuple(dict.fromkeys(str(r) for r in found))


def data_roots(space: Space, run_state: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*recorded_roots(run_state), *roots_of(space.path))))


def data_shape(space: Space, splits: Splits) -> calibrate.DataShape | None:
    """What the calibration times on: the loaded data's shape, classes and sizes (None: Fashion-MNIST and
    built-in models, timed as always)."""
    if not space.own_code:
        return None
    return calibrate.DataShape(splits.input_shape, splits.num_classes, (len(splits.y_train), len(splits.y_val)))


def checked_data(space: Space, data_dir: str | None, roots: tuple[str, ...],
                 mark: Callable[[str], Any] = lambda step: None,
                 echo: Echo | None = None) -> tuple[Splits, float | None]:
    """The data the trials train on, and with code of the user's own every reachable architecture built once at its
    shape and your loop rehearsed: what launch, resume, extend and a dry run check before anything starts (`mark`:
    each step's end). Returns the data and, with your own loop, its seconds per epoch at the rehearsal's pace."""
    splits = sources.load(data_dir, space.spec.data, roots, str(space.path))
    mark("data")
    loop_epoch_s = None
    if space.own_code:
        check_forward(space, splits.input_shape, splits.num_classes)
        if space.trainable is not None:
            from sweeper.run.training.rehearsal import check_loop

            seen = check_loop(space, splits)
            loop_epoch_s = seen.epoch_seconds(splits)
            for note in seen.notes:
                if echo is not None:
                    echo(f"note: {space.trainable.ref}: {note}")
        mark("your code")
    return splits, loop_epoch_s


def check_and_time(space: Space, data_dir: str | None) -> dict[str, Any]:
    """A dry run's checks of your own code and data (loaded, every architecture built) and its time model; a space
    of built-in models on Fashion-MNIST loads no data here."""
    if not space.own_code:
        return calibrate.timing(space, None, None)
    splits, loop_epoch_s = checked_data(space, data_dir, roots_of(space.path))
    return calibrate.timing(space, None, data_shape(space, splits), loop_epoch_s)


def data_folder(data_dir: str | None) -> str | None:
    """`--data-dir` as sweep.json keeps it: absolute, so a resume from another directory finds it."""
    return str(Path(data_dir).expanduser().resolve()) if data_dir else None
