"""Growing a sweep (`sweeper extend NAME --space FILE`), warm-starting one (`launch --warm-start OTHER`), and
making Ray's saved experiment agree with trials.parquet before a resume.

A sweep folder holds one Ray experiment per launch or extension: the launch's in the folder itself, each
extension's in `<sweep>/extend-K/`; sweep.json's `experiments` lists them and `resume` restores the last. All of
them record into the sweep's one trials.parquet and epochs.parquet, each run as a session of sweep.json.

An extension runs only the trials its space plans that have not run: under grid search, each planned trial
whose configuration (its TrialParams, the random axes aside: their draws are new trials by nature) trials.parquet
does not hold yet, as explicit points; under random and TPE search, as many trials as the budget grew by, TPE
starting from every trial that ended (an Optuna storage pre-populated from trials.parquet). Unfinished trials of
an interrupted sweep start over in the extension. Trial ids never collide with rows trials.parquet holds.
"""

from __future__ import annotations

import json
import posixpath
import secrets
from collections import Counter
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.run.generator import ENDED, newest_state
from sweeper.run.recorder import ParquetRecorder, Progress
from sweeper.run.search import SearchPlan, grid_plan, model_plan
from sweeper.spec.grow import refused
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import SPEC_FILE, TRIALS_FILE
from sweeper.store.lock import locked
from sweeper.store.parquet import read_rows
from sweeper.store.schema import PARAM_PREFIX, param_value
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep, runs_folder
from sweeper.store.trials import ended_of
from sweeper.store.writer import ResultsWriter

if TYPE_CHECKING:
    from sweeper.run.sweep import Echo, Outcome


def reconcile(folder: SweepFolder, runs: SweepFolder) -> tuple[list[str], list[str]]:
    """Before a sweep resumes: make Ray's saved experiment state (its last snapshot, which a killed
    driver may have taken a little before trials.parquet's last write) agree with trials.parquet.

    A trial that ended in trials.parquet but is unfinished in the snapshot is marked TERMINATED there (ERROR if it
    failed, so `resume --errored` still decides on it), so Ray does not run it further (an ASHA-stopped trial
    would otherwise go on from its checkpoint). An unfinished trial the snapshot does not hold (started after it)
    is dropped, its epochs and Ray's folder with it: the searcher suggests a new one under a new id (grid search:
    Ray's generator plans it again). Trials that ended stay; a random or TPE searcher adopts those it missed
    (SweepSearch.restore). Returns (the trials marked ended, the trials dropped)."""
    newest = newest_state(runs.list())  # as Ray picks it
    if newest is None:  # no experiment state: Tuner.restore says so in its own words
        return [], []
    saved = json.loads(runs.read_bytes(newest) or b"{}")
    writer = ResultsWriter(folder)
    known, ended = set(), []
    for entry in saved.get("trial_data", []):
        trial = json.loads(entry[0])
        known.add(trial["trial_id"])
        row = writer.trials.get(trial["trial_id"])
        if row is not None and ended_of(row).finished and trial.get("status") not in ENDED:
            trial["status"] = "ERROR" if row.get("state") == "ERROR" else "TERMINATED"  # --errored decides on it
            entry[0] = json.dumps(trial, indent=2)
            ended.append(trial["trial_id"])
    if ended:
        runs.write_bytes(newest, json.dumps(saved).encode())
    lost = {i for i, row in writer.trials.items() if i not in known and not ended_of(row).finished}
    if lost:
        writer.drop(lost)
        writer.flush()
        fs, base = runs.fs_path()
        for entry_name in runs.list(folders_only=True):
            if any(f"_{i}_" in entry_name for i in lost):
                fs.delete_dir(posixpath.join(base, entry_name))
    return sorted(ended), sorted(lost)


DEFAULTED = "<default>"  # a key that ran at its default before trials.parquet had a column for it


def _signature(values: dict[str, Any], keys: list[str]) -> tuple[Any, ...]:
    return tuple(param_value(values.get(k)) for k in keys)


def missing_grid_trials(space: Space, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned grid trials no finished row matches (a configuration planned twice needs two rows).

    A key trials.parquet has no column for (the sweep ran before sweeper had that key) ran at its default: a
    planned trial matches such a row where it holds the default too (or the key does not apply to it)."""
    drawn = {a.key for a in space.random_axes}
    keys = [k for k in space.trial_params({}).recorded() if k not in drawn]
    absent = {k for k in keys if rows and all(PARAM_PREFIX + k not in r for r in rows)}
    defaults = TrialParams().model_dump()

    def planned(values: dict[str, Any]) -> dict[str, Any]:
        return {k: (DEFAULTED if k in absent and values[k] in (None, defaults.get(k)) else v)
                for k, v in values.items()}

    ran = Counter(_signature({k: DEFAULTED if k in absent else r.get(PARAM_PREFIX + k) for k in keys}, keys)
                  for r in rows)
    missing = []
    for trial in space.grid_trials():
        sig = _signature(planned(space.trial_params(trial).recorded()), keys)
        if ran[sig] > 0:
            ran[sig] -= 1
        else:
            missing.append(trial)
    return missing


def fresh_ids(plan: SearchPlan, taken: set[str]) -> None:
    """Grid search names trials `<prefix>_<counter>` (Ray's BasicVariantGenerator draws the prefix from the clock):
    make it one no recorded trial id starts with."""
    generator = plan.search_alg
    while any(i.startswith(getattr(generator, "_uuid_prefix", "\0")) for i in taken):
        generator._uuid_prefix = secrets.token_hex(3)[:5] + "_"


def extension_plan(folder: SweepFolder, stored: Space, space: Space) -> tuple[SearchPlan, list[str]]:
    """What an extension of a sweep to `space` runs, and the unfinished trials it starts over. A SweeperError if
    the new space alters trials that ran, or adds none."""
    changed = refused(stored, space)
    if changed:
        raise SweeperError(
            f"{space.path}: extending sweep {folder.name!r} would change the trials it ran in {', '.join(changed)}; "
            "extend only adds trials (more num_samples, repeats, grid values or variants): launch a new sweep "
            "under another --name for the rest"
        )
    rows = read_rows(folder, TRIALS_FILE)
    finished = [r for r in rows if ended_of(r).finished]
    restart = sorted(r["trial_id"] for r in rows if not ended_of(r).finished)
    offset = len(state.experiments(state.read_state(folder) or {}))
    drawn = space.spec.model_copy(update={"seed": space.spec.seed + offset})  # new draws, not the launch's again
    space = Space(space.path, drawn, space.text, space.literals, space.axes, space.variants, space.references)
    if space.search == "grid":
        trials = missing_grid_trials(space, finished)
        if not trials:
            raise SweeperError(f"{space.path}: adds no trial to sweep {folder.name!r}: all {len(finished)} planned "
                               "trials have run; raise num_samples or repeats, or add grid values or variants")
        plan = grid_plan(space, trials)
        fresh_ids(plan, {r["trial_id"] for r in rows})
    else:
        budget = space.num_trials - len(finished)
        if budget <= 0:
            raise SweeperError(f"{space.path}: adds no trial to sweep {folder.name!r}: {len(finished)} trials have "
                               f"run and num_samples x repeats is {space.num_trials}; raise num_samples or repeats")
        plan = model_plan(space, folder, budget, past=finished)
    return plan, restart


def extend(name: str, storage: Storage, space: Space, address: str | None = None, data_dir: str | None = None,
           max_failures: int = 0, echo: Echo | None = print, progress: Progress | None = None,
           verbose: bool = False) -> Outcome:
    """Grow sweep `name` to `space`: run, as a new Ray experiment in the sweep's folder, only the trials it plans
    that have not run; they land in the sweep's Parquet files, under a new session."""
    from sweeper.run import cluster, preflight, raylog
    from sweeper.run import data as data_mod
    from sweeper.run.startup import init_ray
    from sweeper.run.sweep import _run as run_session
    from sweeper.run.sweep import load_sweep_space
    from sweeper.run.tuner import new_tuner

    folder, run_state, stored = load_sweep_space(storage, name)
    with locked(folder):  # refused while another process runs the sweep; nothing is written before the checks
        plan, restart = extension_plan(folder, stored, space)
    preflight.check(space, storage, address)
    data_dir = data_dir or run_state.get("data_dir")
    splits = data_mod.load(data_dir, space.spec.data)
    cluster.join(address, storage, lambda a: init_ray(a, verbose))
    with locked(folder), raylog.ray_output(folder, verbose):
        if restart:
            writer = ResultsWriter(folder)
            writer.drop(set(restart))
            writer.flush()
        folder.write_text(SPEC_FILE, space.text)
        run_state["fingerprint"] = state.fingerprint(space)
        experiment = state.add_experiment(run_state)
        runs = runs_folder(folder, experiment)
        if echo is not None:
            echo(f"extend {name}: {plan.num_samples} new trials in {runs}"
                 + (f"; {len(restart)} unfinished trials start over" if restart else ""))
        init_ray(address, verbose)
        recorder = ParquetRecorder(folder, space, echo, progress, runs=runs)
        tuner = new_tuner(space, runs, splits, max_failures, recorder, plan)
        return run_session(tuner, folder, run_state, f"extend {experiment}", space, progress)


def warm_start_rows(storage: Storage, other: str, space: Space) -> list[dict[str, Any]]:
    """`launch --warm-start OTHER`: the trials of sweep OTHER (under the same storage) that ended."""
    if space.search != "tpe":
        raise SweeperError(f"--warm-start {other}: only search type tpe learns from earlier trials, but "
                           f"{space.path} searches by {space.search}")
    folder, _ = open_sweep(storage, other)
    rows = [r for r in read_rows(folder, TRIALS_FILE) if ended_of(r).finished]
    if not rows:
        raise SweeperError(f"--warm-start {other}: sweep {other!r} has no trial that ended yet")
    return rows
