"""The one cost model: ASHA's rungs (Ray's own formula), each trial's epoch budget, and the trial-epochs a sweep
is expected to spend. `launch --dry-run`, the live view, `sweeper status` and reports all use it.

Cost is counted in trial-epochs. Each trial's budget is the sweep's `epochs`, or its own `max_epochs` when that is
smaller (slides.yaml's variants run 10 to 100 epochs each). Under ASHA a trial is expected to pass k rungs with
probability max(1/rf^k, 1/trials): the scheduler keeps the top 1/rf at each rung, and at least one trial
goes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweeper.spec.space import Space


@dataclass(frozen=True)
class CostModel:
    """Expected trial-epochs of one trial under the sweep's scheduler."""

    milestones: tuple[int, ...] = ()  # epochs at which ASHA decides whether a trial goes on (empty: FIFO)
    reduction_factor: float = 3.0
    floor: float = 1.0  # the smallest chance of passing a rung: 1 / trials (ASHA always keeps one)

    def survival(self, rungs_passed: int) -> float:
        return max(self.reduction_factor ** -rungs_passed, self.floor)

    def expected(self, budget: int, start: int = 0) -> float:
        """Epochs a trial with this budget is expected to run from epoch `start` on, given it reached `start`."""
        if start >= budget:
            return 0.0
        bounds = [0, *(m for m in self.milestones if m < budget), budget]
        passed = sum(1 for m in bounds[1:-1] if m <= start)
        total = 0.0
        for k in range(len(bounds) - 1):
            length = bounds[k + 1] - max(bounds[k], start)
            if length > 0:
                total += length * self.survival(k) / self.survival(passed)
        return total


@dataclass(frozen=True)
class Cost:
    """What a sweep costs: per-trial budgets, the full run, and the scheduler's expectation."""

    budgets: tuple[int, ...]  # epochs each trial may run, in expansion order
    model: CostModel
    asha: bool

    @property
    def full(self) -> int:
        return sum(self.budgets)

    @property
    def expected(self) -> float:
        return sum(self.model.expected(b) for b in self.budgets)

    @property
    def mean_trial(self) -> float:
        """Expected trial-epochs of a trial not yet started."""
        return self.expected / len(self.budgets) if self.budgets else 0.0


def asha_milestones(max_t: int, grace_period: int, reduction_factor: float) -> tuple[int, ...]:
    """The rungs Ray's ASHAScheduler builds (its own formula), as the epochs at which it decides."""
    rungs = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return tuple(sorted({math.ceil(grace_period * reduction_factor**k) for k in range(max(rungs, 0))}))


def trial_budget(space: Space, point: dict[str, Any]) -> int:
    """Epochs one grid point's trials may run: `epochs`, or a smaller max_epochs (a searched one at its largest)."""
    config = dict(point)
    for axis in space.random_axes:
        if axis.key == "max_epochs":
            config["max_epochs"] = max(axis.values)
    own = space.trial_params(config).max_epochs
    return min(space.spec.epochs, own or space.spec.epochs)


def cost(space: Space) -> Cost:
    spec, sched = space.spec, space.spec.scheduler
    budgets = tuple(trial_budget(space, p) for p in space.grid_points() for _ in range(spec.num_samples))
    if sched.type != "asha":
        return Cost(budgets, CostModel(), asha=False)
    model = CostModel(asha_milestones(spec.epochs, sched.grace_period, sched.reduction_factor),
                      sched.reduction_factor, 1.0 / max(len(budgets), 1))
    return Cost(budgets, model, asha=True)
