"""The sweep `duo` that the lock races launch and resume (tests/cli/test_lock_race.py, benchmarks/lock_race.py): one
logistic-regression trial of one epoch on a few hundred images, so a round is the lock and little else; and the
command line of a real `python -m sweeper` subprocess."""

from __future__ import annotations

import sys

SPACE = """
name: duo
epochs: 1
scheduler: {type: fifo}
max_concurrent: 1
data: {train_subset: 300, val_subset: 100, test_subset: 100}
parameters: {model: logreg, batch_size: 50, lr: 0.1}
"""


def sweeper(*args: str) -> list[str]:
    """`python -m sweeper ARGS` with this interpreter."""
    return [sys.executable, "-m", "sweeper", *args]
