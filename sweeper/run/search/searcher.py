"""The searcher of random and TPE search: Optuna through Ray Tune's OptunaSearch, over a define-by-run function
that draws a key only when its `when` holds; with a trial budget, replicates (`repeats`: a configuration's
replicates share one Optuna trial, told the mean of their values once all have ended), a history (an Optuna
in-memory storage pre-populated with `optuna.trial.create_trial` from trials.parquet rows: an extension, a warm
start), and the bookkeeping run/recovery.py's rules change when a sweep resumes.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, assert_never

import optuna
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

from sweeper.spec.conditions import VARIANT, same
from sweeper.spec.space import Axis, AxisKind, Space
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.schema import PARAM_PREFIX, param_value
from sweeper.store.storage import SweepFolder
from sweeper.store.trials import TrialState, ended_of, present

STUDY = "sweeper"
optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study created: the sweep's output says enough


def choices(axis: Axis) -> list[Any]:
    """An axis's categorical choices as Optuna stores them: lists as their trials.parquet text ("[256, 128]")."""
    return [param_value(v) for v in axis.values]


def distribution(space: Space, key: str) -> optuna.distributions.BaseDistribution:
    if key == VARIANT:
        return optuna.distributions.CategoricalDistribution(list(space.variants))
    axis = next(a for a in space.axes if a.key == key)
    low, high = axis.values[0], axis.values[-1]
    match axis.kind:
        case AxisKind.RANDINT:
            return optuna.distributions.IntDistribution(low, high)
        case AxisKind.UNIFORM | AxisKind.LOGUNIFORM:
            return optuna.distributions.FloatDistribution(low, high, log=axis.kind == AxisKind.LOGUNIFORM)
        case AxisKind.CHOICE | AxisKind.GRID:
            return optuna.distributions.CategoricalDistribution(choices(axis))
        case _:
            assert_never(axis.kind)


class SpaceSampler:
    """Optuna's define-by-run function for a space: the variant, then each axis whose condition holds given the
    keys drawn before it. Returns the values as trials get them (lists as lists)."""

    def __init__(self, space: Space) -> None:
        self.space = space

    def __call__(self, trial: Any) -> dict[str, Any]:
        space, out = self.space, {}
        variant = trial.suggest_categorical(VARIANT, list(space.variants)) if space.variants else None
        if variant is not None:
            out[VARIANT] = variant
        values = space.base_values(variant)
        for axis in space.ordered_axes:
            if not space.applies(axis.key, values):
                continue
            dist = distribution(space, axis.key)
            if isinstance(dist, optuna.distributions.IntDistribution):
                value: Any = trial.suggest_int(axis.key, dist.low, dist.high)
            elif isinstance(dist, optuna.distributions.FloatDistribution):
                value = trial.suggest_float(axis.key, dist.low, dist.high, log=dist.log)
            else:
                value = axis.values[choices(axis).index(trial.suggest_categorical(axis.key, choices(axis)))]
            values[axis.key] = out[axis.key] = value
        return out


def _row_params(space: Space, row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A trials.parquet row's params as Optuna stores them for this space, or the reason it falls outside."""
    params: dict[str, Any] = {}
    variant = row.get(VARIANT) if space.variants else None
    if space.variants:
        if variant not in space.variants:
            return {}, f"variant {variant!r} is not in this space"
        params[VARIANT] = variant
    values = space.base_values(variant)
    for axis in space.ordered_axes:
        if not space.applies(axis.key, values):
            continue
        value = row.get(PARAM_PREFIX + axis.key)
        dist = distribution(space, axis.key)
        if not present(value):
            return {}, f"{axis.key} is not recorded"
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            found = [i for i, c in enumerate(dist.choices) if same(c, value)]
            if not found:
                return {}, f"{axis.key}={value} is not among {axis.describe()}"
            params[axis.key], values[axis.key] = dist.choices[found[0]], axis.values[found[0]]
        else:
            number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
            low, high = axis.values[0], axis.values[-1]
            if number is None or not low <= number <= high:
                return {}, f"{axis.key}={value} is outside {axis.describe()}"
            params[axis.key] = values[axis.key] = int(number) if axis.kind == AxisKind.RANDINT else float(number)
    return params, None


def history(space: Space, rows: Iterable[dict[str, Any]]) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
    """Finished trials as Optuna trials (replicates of one configuration: one trial, told their mean), with a
    note for each one left out because its params fall outside this space."""
    groups: dict[str, list[dict[str, Any]]] = {}
    notes = []
    for row in rows:
        if ended_of(row).finished:
            groups.setdefault(row.get("config_id") or row["trial_id"], []).append(row)
    trials = []
    metric = space.spec.metric
    for group in groups.values():
        params, why = _row_params(space, group[0])
        if why is not None:
            notes.append(f"trial {group[0]['trial_id']}: {why}")
            continue
        scores = [float(r[metric]) for r in group if r.get("state") != TrialState.ERROR and present(r.get(metric))
                  and math.isfinite(float(r[metric]))]
        trials.append(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE if scores else optuna.trial.TrialState.FAIL,
            value=statistics.fmean(scores) if scores else None, params=params,
            distributions={k: distribution(space, k) for k in params},
            user_attrs={"trial_ids": [r["trial_id"] for r in group]},
        ))
    return trials, notes


@dataclass
class Replicates:
    """One configuration's replicates: the seeds still to start, and the values of those that ended."""

    params: dict[str, Any]
    config_id: str
    seeds_left: list[int]
    trial_ids: list[str]
    values: list[float | None] = field(default_factory=list)


class SweepSearch(OptunaSearch):
    """OptunaSearch over a space's define-by-run function, with a trial budget, replicates, a history, and
    trials adopted from trials.parquet on restore."""

    def __init__(self, space: Space, sampler: optuna.samplers.BaseSampler, budget: int, folder: SweepFolder,
                 past: Iterable[optuna.trial.FrozenTrial] = (), points: list[dict[str, Any]] | None = None) -> None:
        spec = space.spec
        storage = optuna.storages.InMemoryStorage()
        study = optuna.create_study(storage=storage, study_name=STUDY,
                                    direction="maximize" if spec.mode == "max" else "minimize")
        study.add_trials(list(past))
        super().__init__(space=SpaceSampler(space), metric=spec.metric, mode=spec.mode, sampler=sampler,
                         points_to_evaluate=points or None, study_name=STUDY, storage=storage)
        self.space, self.budget, self.spent, self.folder = space, budget, 0, folder
        self.groups: dict[str, Replicates] = {}  # first replicate's trial id -> its configuration's replicates
        self.group_of: dict[str, str] = {}  # trial id -> key in groups
        self.taken = {r["trial_id"] for r in read_rows(folder, TRIALS_FILE, ["trial_id"])}
        self.strays: dict[str, dict[str, Any]] = {}  # trials Ray restored that this searcher never handed out

    @property
    def study(self) -> optuna.Study:
        if self._ot_study is None:
            raise RuntimeError("SweepSearch used before its study was set up")
        return self._ot_study

    def suggest(self, trial_id: str) -> Any:  # a config, None (not now) or Searcher.FINISHED
        if trial_id in self.taken:  # an id trials.parquet already holds: Ray asks again with a fresh one
            return None
        if self.spent >= self.budget:
            return Searcher.FINISHED
        for key, group in self.groups.items():
            if group.seeds_left:
                self.group_of[trial_id] = key
                group.trial_ids.append(trial_id)
                self.spent += 1
                return {**group.params, "seed": group.seeds_left.pop(0)}
        params = super().suggest(trial_id)
        if not isinstance(params, dict):
            return params
        self.spent += 1
        seeds = self.space.seeds()
        if self.space.spec.repeats > 1:
            config_id = self.space.trial_params(params).config_id()
            self.groups[trial_id] = Replicates(params, config_id, seeds[1:], [trial_id])
            self.group_of[trial_id] = trial_id
            params = {**params, "seed": seeds[0]}
        return params

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._ot_trials and trial_id not in self.group_of:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self.group_of:
            value = None if error or not result else result.get(self.metric)
            self._replicate_ended(self.group_of.pop(trial_id), value)
        elif self._alone_waiting(trial_id):
            super().on_trial_complete(trial_id, result=result, error=error)
        elif trial_id in self.strays:
            config = self.strays.pop(trial_id)
            self._learn(trial_id, {VARIANT: config.get(VARIANT),
                                   **{PARAM_PREFIX + k: param_value(v) for k, v in config.items()},
                                   "state": TrialState.ERROR.value if error else TrialState.TERMINATED.value,
                                   self.metric: None if error or not result else result.get(self.metric)})

    def _replicate_ended(self, key: str, value: float | None) -> None:
        """One replicate of the configuration first handed out as trial `key` ended with `value`; once all have,
        Optuna's trial for the configuration is told their mean."""
        group = self.groups[key]
        group.values.append(value)
        if group.seeds_left or len(group.values) < len(group.trial_ids):
            return
        scores = [float(v) for v in group.values if v is not None and math.isfinite(float(v))]
        state = optuna.trial.TrialState.COMPLETE if scores else optuna.trial.TrialState.FAIL
        self.study.tell(self._ot_trials[key], statistics.fmean(scores) if scores else None, state=state)
        self._completed_trials.add(key)

    def restore(self, checkpoint_path: str) -> None:
        folder = self.folder  # this process's (resume may find the sweep under another path than launch did)
        super().restore(checkpoint_path)
        self.folder = folder
        self.strays = getattr(self, "strays", {})  # a state saved before strays existed has none

    # What run/recovery.py's rules change when a sweep resumes; nothing else calls these.

    def _alone_waiting(self, trial_id: str) -> bool:
        """Whether `trial_id` is a configuration of its own (no replicates) whose end Optuna still waits for. A
        first replicate's id also names its configuration's Optuna trial, told only once all replicates ended."""
        return trial_id in self._ot_trials and trial_id not in self._completed_trials and trial_id not in self.groups

    def waiting(self) -> set[str]:
        """Trials this searcher handed out and has not seen end."""
        alone = {i for i in self._ot_trials if self._alone_waiting(i)}
        return alone | set(self.group_of) | set(self.strays)

    def known(self) -> set[str]:
        """Trial ids this searcher handed out or learned from."""
        ids = set(self._ot_trials) | set(self.group_of) | set(self.strays)
        ids |= {i for g in self.groups.values() for i in g.trial_ids}
        return ids | {i for t in self.study.trials for i in t.user_attrs.get("trial_ids", [])}

    def value_of(self, row: dict[str, Any]) -> float | None:
        value: Any = row.get(self.metric)
        return float(value) if row.get("state") != TrialState.ERROR and present(value) else None

    def tell_recorded(self, row: dict[str, Any]) -> None:
        """A trial that ended as trials.parquet's `row` records: told, if this searcher handed it out (or Ray
        restored it as a stray) and has not seen it end."""
        trial_id = row["trial_id"]
        if trial_id in self.group_of:
            self._replicate_ended(self.group_of.pop(trial_id), self.value_of(row))
        elif trial_id in self.strays:
            self.strays.pop(trial_id)
            self._learn(trial_id, row)
        elif self._alone_waiting(trial_id):
            value = self.value_of(row)
            state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
            self.study.tell(self._ot_trials[trial_id], value, state=state)
            self._completed_trials.add(trial_id)

    def join_replicates(self, row: dict[str, Any]) -> bool:
        """A recorded trial this searcher never handed out joins its configuration's replicates, if they still
        await its seed (and is told); False if none do."""
        key = self._group_awaiting(row.get("config_id"), row.get(PARAM_PREFIX + "seed"))
        if key is None:
            return False
        group = self.groups[key]
        group.seeds_left.remove(row[PARAM_PREFIX + "seed"])
        group.trial_ids.append(row["trial_id"])
        self._replicate_ended(key, self.value_of(row))
        return True

    def add_lost(self, rows: list[dict[str, Any]], count: int) -> None:
        """`count` recorded trials this searcher never handed out count towards the budget; `rows` (those not
        joined to replicates) join the history."""
        self.study.add_trials(history(self.space, rows)[0])
        self.spent += count
        if count:  # the sampler's saved RNG would draw the lost trials' params again: draw afresh instead
            self.study.sampler.reseed_rng()

    def give_back(self, trial_id: str, seeds: dict[str, Any]) -> None:
        """A trial handed out that Ray lost goes back to the budget: a configuration of its own is Optuna's FAIL
        (the sampler draws another); a replicate's seed goes back to its configuration (`seeds`: the seed each
        other trial holds)."""
        self.spent -= 1
        self.strays.pop(trial_id, None)
        key = self.group_of.pop(trial_id, None)
        if key is None:
            if trial_id in self._ot_trials:
                self.study.tell(self._ot_trials[trial_id], state=optuna.trial.TrialState.FAIL)
                self._completed_trials.add(trial_id)
            return
        group = self.groups[key]
        group.trial_ids.remove(trial_id)
        held = {seeds.get(i) for i in group.trial_ids}
        free = [s for s in self.space.seeds() if s not in held and s not in group.seeds_left]
        if free:  # its seed: the one no other replicate holds
            group.seeds_left = sorted([free[0], *group.seeds_left])

    def take(self, trial_id: str, config: dict[str, Any]) -> None:
        """A trial Ray restored that this searcher never handed out counts towards the budget: it joins its
        configuration's replicates if it is one of them, else is a stray, learnt when it ends."""
        self.spent += 1
        if self.space.spec.repeats > 1:
            key = self._group_awaiting(self.space.trial_params(config).config_id(), config.get("seed"))
            if key is not None:
                self.groups[key].seeds_left.remove(config["seed"])
                self.groups[key].trial_ids.append(trial_id)
                self.group_of[trial_id] = key
                return
        self.strays[trial_id] = config

    def _group_awaiting(self, config_id: Any, seed: Any) -> str | None:
        """The key of the replicates of configuration `config_id` that still wait for `seed`, if any."""
        return next((k for k, g in self.groups.items() if g.config_id == config_id and seed in g.seeds_left), None)

    def _learn(self, trial_id: str, row: dict[str, Any]) -> None:
        """A trial Ray ran that this searcher never handed out (a stray), added to the study's history as it
        ended: `row` as trials.parquet holds it."""
        self.study.add_trials(history(self.space, [{**row, "trial_id": trial_id}])[0])


class SweepLimiter(ConcurrencyLimiter):
    """Ray's ConcurrencyLimiter, restored (under run/recovery.py's SweepGenerator) holding slots for exactly the
    trials Ray restored: not for those that ended after its snapshot, or that Ray lost (each would hold a slot
    forever)."""

    def agree_with(self, live: dict[str, dict[str, Any]]) -> None:
        """Hold a slot for exactly the unfinished trials Ray restored (see run/recovery.py's `agree`): not for one
        it lost, which would never free its slot, and for each one it will run, whose end this limiter must
        pass on to the searcher."""
        self.live_trials = set(live)
        self.num_unfinished_live_trials = len(live)


def searcher_of(search_alg: Any) -> SweepSearch | None:
    """The SweepSearch inside a Tuner's search algorithm (under its wrappers), if it has one."""
    while search_alg is not None and not isinstance(search_alg, SweepSearch):
        search_alg = getattr(search_alg, "searcher", None)
    return search_alg
