"""The commands that run a sweep, each one session (run/session.py): `launch` (a sweep's first run), `resume`
(its continuation from Ray's saved experiment) and `extend` (growing it: a new Ray experiment in the sweep's folder
that runs only what run/search/grow.py plans).

A sweep folder holds one Ray experiment per launch or extension: the launch's in the folder itself, each
extension's in `<sweep>/extend-K/`; sweep.json's `experiments` lists them and `resume` restores the last. All of
them record into the sweep's one trials.parquet and epochs.parquet, each run as a session of sweep.json.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from sweeper.errors import SweeperError
from sweeper.run.session import Echo, Outcome, Session, data_folder, load_sweep_space
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import LOCK_FILE, SPEC_FILE
from sweeper.store.lock import locked
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import current_runs, runs_folder
from sweeper.store.trials import Errored
from sweeper.store.writer import ResultsWriter

if TYPE_CHECKING:
    from sweeper.run.driver.recorder import ParquetRecorder, Progress


def launch(
    space: Space, storage: Storage, name: str | None = None, address: str | None = None, data_dir: str | None = None,
    if_exists: Literal["refuse", "resume", "overwrite"] = "refuse", max_failures: int = 0,
    echo: Echo | None = print, progress: Progress | None = None, verbose: bool = False, warm_start: str | None = None,
) -> Outcome:
    """Run the sweep to its end (or an interrupt) in `<storage>/<name>/`. `progress`: where to report (the live
    view); `verbose`: let Ray's own output through rather than into the sweep's ray.log; `warm_start`: a sweep
    under the same storage whose ended trials a TPE search starts from."""
    session = Session(storage.folder(name or space.name), space, "launch", address, verbose, echo, progress)
    folder = session.folder
    past = None
    if warm_start:
        from sweeper.run.search.grow import warm_start_rows

        past = warm_start_rows(storage, warm_start, space)
    # sweep.json is written just before the first trial can start: a folder without it is a launch killed before
    # that (spec.yaml, ray.log), with nothing to resume and nothing to lose; this launch takes it over
    exists = folder.exists() and state.read_state(folder) is not None
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
    data_dir = data_folder(data_dir)
    splits = session.open(data_dir)
    run_state = state.new_state(space, data_dir) | session.timing | session.facts

    def prepare() -> SweepFolder:
        if not exists and state.read_state(folder) is not None:  # under the lock now: another launch ran it meanwhile
            raise SweeperError(f"{folder}: sweep {folder.name!r} was launched by another process meanwhile; "
                               f"continue it with `sweeper resume {folder.name} --storage {storage}`")
        if (exists and if_exists == "overwrite") or (not exists and folder.exists()):
            folder.clear(keep=(LOCK_FILE,))  # on every kind of storage: old and new trials never mix
        folder.write_text(SPEC_FILE, space.text)
        return folder

    def tuner_of(runs: SweepFolder, recorder: ParquetRecorder) -> Any:
        from sweeper.run.driver.tuner import new_tuner
        from sweeper.run.recovery import generator
        from sweeper.run.search.plans import model_plan, plan

        chosen = plan(space, folder) if past is None else model_plan(space, folder, past=past)
        if past is not None and echo is not None:
            notes = chosen.notes
            skipped = f"; {len(notes)} skipped ({notes[0]}{', ...' if len(notes) > 1 else ''})" if notes else ""
            echo(f"warm start: TPE starts from {chosen.learned} configurations of {warm_start!r}{skipped}")
        chosen.search_alg = generator(chosen.search_alg)
        return new_tuner(space, runs, splits, max_failures, recorder, chosen)

    return session.run(run_state, prepare, tuner_of)


def resume(
    name: str, storage: Storage, address: str | None = None, data_dir: str | None = None, space: Space | None = None,
    errored: Errored = Errored.LEAVE, echo: Echo | None = print, progress: Progress | None = None,
    verbose: bool = False, accept_code: bool = False,
) -> Outcome:
    """Continue an interrupted sweep from Ray's experiment state; unfinished trials restart from their
    last epoch checkpoint. `space`, if given, must not change what the trials are; `accept_code`: go on although
    the sweep's own models changed (run/provenance.py)."""
    from sweeper.run.recovery import whole_state

    folder, run_state, stored = load_sweep_space(storage, name)
    if space is not None:
        changed = state.trial_changes(run_state["fingerprint"], state.fingerprint(space))
        if changed:
            raise SweeperError(
                f"{space.path}: differs from the search space sweep {name!r} was launched with in "
                f"{', '.join(changed)}; that would change its trials: launch it under another --name, or --overwrite"
            )
    if not whole_state(current_runs(folder, run_state)):
        # killed before Ray's first snapshot (it takes one about every 10 s), or in the middle of writing it: Ray
        # has nothing to restore and would start the experiment over with the searcher it began with (and end
        # early). The trials that ended are kept; the rest of the budget runs as a new experiment, like extend.
        if echo is not None:
            echo(f"resume {name}: Ray saved no whole experiment state before the driver stopped; the trials that "
                 "ended are kept and the rest start over")
        return extend(name, storage, space or stored, address, data_dir, echo=echo, progress=progress,
                      verbose=verbose, accept_code=accept_code, rest=True)
    session = Session(folder, stored, f"resume --errored {Errored(errored).value}", address, verbose, echo, progress,
                      accept_code=accept_code)
    splits = session.open(data_dir or run_state.get("data_dir"), run_state)
    runs = current_runs(folder, run_state)  # the latest Ray experiment: the launch's, or the last extension's

    def prepare() -> SweepFolder:
        from sweeper.run.recovery import prepare_resume

        if space is not None and space.text != stored.text:
            # Only keys that leave the trials alone changed (resources, max_concurrent, description): record them.
            folder.write_text(SPEC_FILE, space.text)
            run_state["fingerprint"] = state.fingerprint(space)
        prepare_resume(folder, runs, run_state)  # Ray's last snapshot may predate trials.parquet's last write
        return runs

    def tuner_of(runs: SweepFolder, recorder: ParquetRecorder) -> Any:
        from sweeper.run.recovery import restore_tuner

        return restore_tuner(runs, stored, splits, Errored(errored), recorder)

    return session.run(run_state, prepare, tuner_of)


def extend(name: str, storage: Storage, space: Space, address: str | None = None, data_dir: str | None = None,
           max_failures: int = 0, echo: Echo | None = print, progress: Progress | None = None,
           verbose: bool = False, accept_code: bool = False, rest: bool = False) -> Outcome:
    """Grow sweep `name` to `space`: run, as a new Ray experiment in the sweep's folder, only the trials it plans
    that have not run; they land in the sweep's Parquet files, under a new session. `rest`: a resume with no Ray
    state to restore runs the rest of its own space this way (recorded as a resume)."""
    from sweeper.run.search.grow import extension_plan  # Optuna and Ray Tune: not for a dry run's imports

    folder, run_state, stored = load_sweep_space(storage, name)
    with locked(folder):  # refused while another process runs the sweep; nothing is written before the checks
        plan, restart = extension_plan(folder, stored, space)
    session = Session(folder, space, "extend", address, verbose, echo, progress, accept_code=accept_code)
    splits = session.open(data_dir or run_state.get("data_dir"), run_state)

    def prepare() -> SweepFolder:
        if restart:
            writer = ResultsWriter(folder)
            writer.drop(set(restart))
            writer.flush()
        folder.write_text(SPEC_FILE, space.text)
        run_state["fingerprint"] = state.fingerprint(space)
        experiment = state.add_experiment(run_state)
        session.command = f"{'resume (the rest as' if rest else 'extend'} {experiment}{')' if rest else ''}"
        runs = runs_folder(folder, experiment)
        if echo is not None:
            echo(f"extend {name}: {plan.num_samples} new trials in {runs}"
                 + (f"; {len(restart)} unfinished trials start over" if restart else ""))
        return runs

    def tuner_of(runs: SweepFolder, recorder: ParquetRecorder) -> Any:
        from sweeper.run.driver.tuner import new_tuner
        from sweeper.run.recovery import generator

        plan.search_alg = generator(plan.search_alg)
        return new_tuner(space, runs, splits, max_failures, recorder, plan)

    return session.run(run_state, prepare, tuner_of)
