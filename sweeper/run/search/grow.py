"""Growing a sweep's plan: what `sweeper extend NAME --space FILE` runs, and the trials `launch --warm-start
OTHER` starts from.

An extension runs only the trials its space plans that have not run: under grid search, each planned trial
whose configuration (its TrialParams, the random axes aside: their draws are new trials by nature) trials.parquet
does not hold yet, as explicit points; under random and TPE search, as many trials as the budget grew by, TPE
starting from every trial that ended (an Optuna storage pre-populated from trials.parquet). Unfinished trials of
an interrupted sweep start over in the extension. Trial ids never collide with rows trials.parquet holds.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import Counter
from typing import Any

from sweeper.errors import SweeperError
from sweeper.run.search.plans import SearchPlan, grid_plan, model_plan
from sweeper.spec.conditions import same
from sweeper.spec.grow import refused
from sweeper.spec.params import TrialParams
from sweeper.spec.space import Space
from sweeper.store import state
from sweeper.store.files import TRIALS_FILE
from sweeper.store.pair import read_pair
from sweeper.store.parquet import read_rows
from sweeper.store.schema import PARAM_PREFIX, param_value
from sweeper.store.storage import Storage, SweepFolder
from sweeper.store.sweeps import open_sweep
from sweeper.store.trials import ended_of

DEFAULTED = "<default>"  # a key that ran at its default: null in trials.parquet, or no column for it yet


def _signature(values: dict[str, Any], keys: list[str], defaults: dict[str, Any]) -> tuple[Any, ...]:
    """A trial's configuration as `missing_grid_trials` matches it: each key's cell, DEFAULTED where it is null or
    holds the key's default (the same trial either way)."""
    def cell(key: str) -> Any:
        value = param_value(values.get(key))
        return DEFAULTED if value is None or same(value, param_value(defaults.get(key))) else value

    return tuple(cell(k) for k in keys)


def missing_grid_trials(space: Space, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The planned grid trials no finished row matches (a configuration planned twice needs two rows).

    A key a row holds null for ran at its default: the key did not apply to that trial (it keeps the default), or
    the sweep ran before sweeper had the key (trials.parquet had no column for it; after an extension it has one,
    null in the older rows). So a planned trial matches such a row where it holds the default too (or the key does
    not apply to it)."""
    drawn = {a.key for a in space.random_axes}
    keys = [k for k in space.trial_params({}).recorded() if k not in drawn]
    defaults = TrialParams().model_dump()
    ran = Counter(_signature({k: r.get(PARAM_PREFIX + k) for k in keys}, keys, defaults) for r in rows)
    missing = []
    for trial in space.grid_trials():
        sig = _signature(space.trial_params(trial).recorded(), keys, defaults)
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
    # trials.parquet of the generation epochs.parquet holds (store/pair.py): after a kill between the two files'
    # writes, the trials on disk are one write behind, and a trial that ended in the newer one would be planned
    # again (or, unfinished in the older one, dropped with its result) while its epochs stay
    rows = read_pair(folder, epochs=False).trial_rows()
    finished = [r for r in rows if ended_of(r).finished]
    restart = sorted(r["trial_id"] for r in rows if not ended_of(r).finished)
    offset = len(state.experiments(state.read_state(folder) or {}))
    drawn = space.spec.model_copy(update={"seed": space.spec.seed + offset})  # new draws, not the launch's again
    space = dataclasses.replace(space, spec=drawn)  # every field kept (variants' repeats, your own models)
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
