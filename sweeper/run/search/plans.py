"""How trials are chosen, as Ray Tune objects: the param space, the search algorithm and the trial count.

Grid search: Ray's BasicVariantGenerator, as variants.py's SweepVariants, runs the space's planned trials
(spec/space.py's `grid_trials`: a conditional axis only where it applies) as explicit points; the random axes are
drawn per trial from its seeded RNG. Random and TPE search: searcher.py's SweepSearch (Optuna through Ray Tune's
OptunaSearch, RandomSampler or a TPESampler seeded by the YAML's `seed`), wrapped in a ConcurrencyLimiter when
max_concurrent is set, under run/recovery.py's SweepGenerator (which the commands put it under). TPE evaluates each
named variant first, and may start from the trials of this sweep (an extension) or another one (`launch
--warm-start`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, assert_never

import optuna
from ray import tune
from ray.tune.search import Searcher

from sweeper.run.search.searcher import SweepLimiter, SweepSearch, history
from sweeper.run.search.variants import SweepVariants
from sweeper.spec.conditions import VARIANT, same
from sweeper.spec.space import Axis, AxisKind, Space
from sweeper.store.schema import param_value
from sweeper.store.storage import SweepFolder


@dataclass
class SearchPlan:
    """What the Tuner gets: its param_space, search_alg and num_samples."""

    param_space: dict[str, Any]
    search_alg: Any
    num_samples: int
    learned: int = 0  # configurations a TPE search starts from
    notes: list[str] = field(default_factory=list)  # history left out (params outside the space), and why


def domain(axis: Axis) -> Any:
    """A random axis as Ray Tune's sample domain (YAML randint bounds are inclusive)."""
    low, high = axis.values[0], axis.values[-1]
    match axis.kind:
        case AxisKind.CHOICE | AxisKind.GRID:
            return tune.choice(axis.values)
        case AxisKind.UNIFORM:
            return tune.uniform(low, high)
        case AxisKind.LOGUNIFORM:
            return tune.loguniform(low, high)
        case AxisKind.RANDINT:
            return tune.randint(low, high + 1)
        case _:
            assert_never(axis.kind)


def grid_plan(space: Space, trials: list[dict[str, Any]] | None = None) -> SearchPlan:
    """Grid search over `trials` (default: all the space plans). Every point names every point key, None where a
    conditional axis does not apply; Ray wants each in the param space, so each gets a choice of its values.
    Ray reads a list in a point as nested keys, so list values travel as their text."""
    trials = space.grid_trials() if trials is None else trials
    keys = list(dict.fromkeys(k for t in trials for k in t))
    points = [{k: param_value(t.get(k)) for k in keys} for t in trials]  # lists as text: see Axis.value_of
    out: dict[str, Any] = dict(space.literals)
    out.update({a.key: domain(a) for a in space.random_axes})
    for key in keys:
        values = [p[key] for p in points]
        out[key] = tune.choice([v for i, v in enumerate(values) if not any(same(v, w) for w in values[:i])])
    spec = space.spec
    generator = SweepVariants(points_to_evaluate=points, random_state=spec.seed,  # restored by its own rule
                              max_concurrent=spec.max_concurrent or 0)
    return SearchPlan(out, generator, len(points))


def sampler(space: Space) -> optuna.samplers.BaseSampler:
    search = space.spec.search
    if search.type == "random":
        return optuna.samplers.RandomSampler(seed=space.spec.seed)
    return optuna.samplers.TPESampler(seed=space.spec.seed, n_startup_trials=search.startup_trials or 10)


def model_plan(space: Space, folder: SweepFolder, budget: int | None = None,
               past: Iterable[dict[str, Any]] = ()) -> SearchPlan:
    """Random or TPE search of `budget` trials (default: all the space plans) after the `past` rows (TPE learns
    from them; both know their ids)."""
    trials, notes = history(space, past)
    seen = {t.params.get(VARIANT) for t in trials}
    points = [{VARIANT: v} for v in space.variants if v not in seen] if space.search == "tpe" else None
    budget = space.num_trials if budget is None else budget
    searcher: Searcher = SweepSearch(space, sampler(space), budget, folder, trials, points)
    if space.spec.max_concurrent:
        searcher = SweepLimiter(searcher, max_concurrent=space.spec.max_concurrent)
    return SearchPlan(dict(space.literals), searcher, budget, len(trials), notes)


def plan(space: Space, folder: SweepFolder) -> SearchPlan:
    """A new sweep's search."""
    return grid_plan(space) if space.search == "grid" else model_plan(space, folder)
