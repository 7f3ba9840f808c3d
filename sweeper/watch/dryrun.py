"""`launch --dry-run`: the expanded trials (grid search) or the axes each trial draws and the budget (random, TPE),
their count and what a full run would cost (spec/cost.py), without Ray."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from sweeper.spec.cost import STARTUP_S, TRIAL_START_S, cost, expected_wall, trial_architectures
from sweeper.spec.space import Space
from sweeper.watch.tracker import duration


def _plain(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _trials(space: Space, budgets: tuple[int, ...], varied_budget: bool) -> Table:
    """Grid search: one row per trial ("-" where a conditional key does not apply)."""
    table = Table(title=f"{space.name}: {space.num_trials} trials")
    keys = (["variant"] if space.variants else []) + [a.key for a in space.grid_axes]
    keys += ["seed"] if any(space.repeats_of(v) > 1 for v in space.variant_names()) else []
    random = space.random_axes
    table.add_column("#", justify="right")
    for key in keys + [a.key for a in random]:
        table.add_column(key)
    if varied_budget:
        table.add_column("epochs", justify="right")
    for i, (point, budget) in enumerate(zip(space.grid_trials(), budgets, strict=True)):
        row = [str(i + 1)] + [str(point[k]) if k in point else "-" for k in keys] + [a.describe() for a in random]
        table.add_row(*row, *([str(budget)] if varied_budget else []))
    return table


def _axes(space: Space) -> Table:
    """Random and TPE search: what each trial draws, not an expansion."""
    spec = space.spec
    how = "random draws" if space.search == "random" else "TPE (Optuna)"
    how += ", the variants first" if space.search == "tpe" and space.variants else ""
    models = {space.base_values(v).get("model", "cnn") for v in space.variant_names()}
    family = len(models) > 1 or any(a.key == "model" for a in space.axes)  # else a family key's condition is moot
    title = (f"{space.name}: {space.num_trials} trials ({spec.num_samples} x {spec.repeats} repeats)"
             if spec.repeats > 1 else f"{space.name}: {space.num_trials} trials")
    table = Table(title=f"{title}, {how}, seed {spec.seed}")
    for col in ("key", "drawn from", "when"):
        table.add_column(col)
    if space.variants:
        table.add_row("variant", f"choice{list(space.variants)}", "")
    for axis in space.ordered_axes:
        owners = sorted(space.key_models.get(axis.key, ())) if family else []
        conditions = ([f"model={'|'.join(owners)}"] if owners else []) + ([axis.describe_when()] if axis.when else [])
        when = ", ".join(conditions)
        table.add_row(axis.key, axis.describe().split(" when ")[0], when)
    return table


def print_dry_run(space: Space, console: Console, timing: dict[str, Any] | None = None) -> None:
    """The trials, their cost in trial-epochs, and with `timing` (run/calibrate: seconds per epoch per
    architecture, trials at once) the expected wall time."""
    spec = space.spec
    c = cost(space)
    varied_budget = len(set(c.budgets)) > 1
    console.print(_trials(space, c.budgets, varied_budget) if space.search == "grid" else _axes(space))
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
    if timing is not None:
        slots = int(timing["slots"])
        wall = expected_wall(c, trial_architectures(space), timing["seconds_per_epoch"], slots)
        at_once = f"{slots} trial{'s' if slots != 1 else ''} at once"
        _plain(console, f"expected wall time about {duration(wall)} on this machine ({at_once}; "
                        f"including {STARTUP_S:.0f} s to start and {TRIAL_START_S:g} s a trial)")
