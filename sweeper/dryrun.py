"""`launch --dry-run`: the expanded trials, their count and what a full run would cost, without Ray.

Cost is counted in trial-epochs. Each trial's budget is the sweep's `epochs`, or its own `max_epochs` when that is
smaller (slides.yaml's variants run 10 to 100 epochs each). Under ASHA a trial is expected to pass k rungs with
probability max(1/rf^k, 1/trials): the scheduler keeps the top 1/rf at each rung, and at least one trial
goes on. The same model gives the live view and `sweeper status` their time-left estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from sweeper.spaces import Space


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


def _plain(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_dry_run(space: Space, console: Console) -> None:
    spec = space.spec
    c = cost(space)
    table = Table(title=f"{space.name}: {space.num_trials} trials")
    keys = (["variant"] if space.variants else []) + [a.key for a in space.grid_axes]
    random = space.random_axes
    varied_budget = len(set(c.budgets)) > 1
    table.add_column("#", justify="right")
    for key in keys + [a.key for a in random]:
        table.add_column(key)
    if varied_budget:
        table.add_column("epochs", justify="right")
    budgets = iter(c.budgets)
    for i, point in enumerate(space.grid_points()):
        for sample in range(spec.num_samples):
            row = [str(i * spec.num_samples + sample + 1)] + [str(point.get(k)) for k in keys]
            row += [a.describe() for a in random]
            budget = next(budgets)
            table.add_row(*row, *([str(budget)] if varied_budget else []))
    console.print(table)
    fixed = ", ".join(f"{k}={v}" for k, v in space.literals.items())
    if fixed:
        _plain(console, f"fixed: {fixed}")
    if varied_budget:
        each = f"{min(c.budgets)} to {max(c.budgets)} epochs each (their max_epochs)"
    else:
        each = f"up to {c.budgets[0]} epochs"
    _plain(console, f"{space.num_trials} trials x {each} = {c.full} trial-epochs on a full run")
    sched = spec.scheduler
    if c.asha:
        rungs = ", ".join(str(m) for m in c.model.milestones if m < spec.epochs) or "none below epochs"
        _plain(console, f"ASHA (grace_period={sched.grace_period}, reduction_factor={sched.reduction_factor:g}, "
                        f"rungs at epochs {rungs}): about {c.expected:.0f} trial-epochs expected "
                        f"({c.expected / c.full:.0%} of the full run)")
    else:
        _plain(console, "FIFO: every trial runs its whole budget (no early stopping by the scheduler)")
