"""`launch --dry-run`: the expanded trials, their count and what a full run would cost, without Ray."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from sweeper.spaces import Space, expected_epochs


def print_dry_run(space: Space, console: Console) -> None:
    spec = space.spec
    table = Table(title=f"{space.name}: {space.num_trials} trials")
    keys = (["variant"] if space.variants else []) + [a.key for a in space.grid_axes]
    random = space.random_axes
    table.add_column("#", justify="right")
    for key in keys + [a.key for a in random]:
        table.add_column(key)
    for i, point in enumerate(space.grid_points() * 1):
        for sample in range(spec.num_samples):
            row = [str(i * spec.num_samples + sample + 1)] + [str(point.get(k)) for k in keys]
            table.add_row(*row, *(a.describe() for a in random))
    console.print(table)
    fixed = ", ".join(f"{k}={v}" for k, v in space.literals.items())
    if fixed:
        console.print(f"fixed: {fixed}", markup=False, highlight=False)
    full, asha = expected_epochs(space)
    sched = spec.scheduler
    console.print(f"{space.num_trials} trials x up to {spec.epochs} epochs = {full} trial-epochs on a full run",
                  markup=False, highlight=False)
    if sched.type == "asha":
        console.print(
            f"ASHA (grace_period={sched.grace_period}, reduction_factor={sched.reduction_factor:g}): "
            f"about {asha:.0f} trial-epochs expected ({asha / full:.0%} of the full run)",
            markup=False, highlight=False,
        )
