"""`launch --dry-run`: the expanded trials, their count and what a full run would cost (spec/cost.py), without
Ray."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sweeper.spec.cost import cost
from sweeper.spec.space import Space


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
