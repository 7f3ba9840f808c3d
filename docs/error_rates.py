"""How often the report's "worse" is wrong, and how often it finds a real difference: simulated sweeps through the
report's own test (sweeper.report.stats.versus_best, the function behind the Configurations table's marks).
docs/hooks.py puts this table into docs/explanation/statistics.md at every build, so it follows the code; to print
it alone:

    .venv/bin/python docs/error_rates.py     # a few seconds; seeded: the same numbers every time

Each simulated configuration's metric over its seeds is normal with standard deviation sigma (the spread across
seeds); configurations are independent and share their seeds, so every test is paired, as in a sweep with
`repeats: N`. Each cell is SWEEPS sweeps: a rate near 5% is good to about a point (two standard errors).
"""

from __future__ import annotations

import numpy as np

SWEEPS = 2000
CONFIGURATIONS = (2, 4, 8)
SEEDS = (2, 3, 5)
GAPS = (2.0, 3.0)  # in sigma


def rates(k: int, n: int, rng: np.random.Generator) -> tuple[float, list[float]]:
    """(P(some configuration is called worse) when all k are equal, [P(the one truly `gap` sigma lower is called
    worse) when the others are equal, per gap])."""
    from sweeper.report.stats import ALPHA, versus_best

    seeds = np.zeros(k, dtype=np.int64)  # one seed set: paired tests
    p_holm = versus_best(rng.normal(size=(SWEEPS, k, n)), seeds, "max")[2]  # corrected p against the best
    false_alarm = float(np.mean(np.nanmin(p_holm, axis=1) < ALPHA))
    found = []
    for gap in GAPS:
        x = rng.normal(size=(SWEEPS, k, n))
        x[:, -1, :] -= gap
        result = versus_best(x, seeds, "max")
        best, p_holm = result[0], result[2]
        found.append(float(np.mean((best != k - 1) & (p_holm[:, -1] < ALPHA))))
    return false_alarm, found


def table() -> str:
    """The Markdown table: one row per (configurations, seeds)."""
    rng = np.random.default_rng(0)
    lines = ["| configurations | seeds (n) | all equal: some called worse |"
             + "".join(f" one {g:g} σ lower: called worse |" for g in GAPS),
             "|---:|---:|---:|" + "---:|" * len(GAPS)]
    for k in CONFIGURATIONS:
        for n in SEEDS:
            false_alarm, found = rates(k, n, rng)
            lines.append(f"| {k} | {n} | {false_alarm:.1%} | " + " | ".join(f"{f:.0%}" for f in found) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(), end="")
