"""How often a trial passes each ASHA rung, from simulating Ray's own promotion rule.

Ray's ASHAScheduler (`ray.tune.schedulers.async_hyperband._Bracket.on_result`) decides once, when a trial reaches
a rung: it goes on unless its result is below the (1 - 1/rf) percentile (linear interpolation) of the results
recorded at that rung before it; the first trial at a rung always goes on. So a rung passes more than 1/rf of its
trials: the first to arrive meet a low bar, a rung that few trials reach passes most of them, and where later
trials are better than earlier ones (TPE learning) they beat the bar more often still.

`passing` plays the sweep through that rule many times: trials start in order on the trials-at-once slots, every
epoch takes the same time, and each trial has a quality (a normal draw; under TPE plus a trend from the first trial
to the last, TPE_TREND) with its result at each rung the quality plus noise (NOISE), so ranks mostly hold from rung
to rung. The trend was chosen for the least worst error over the four TPE + ASHA sweeps on record: resnet_fmnist
(60 trials, 378 trial-epochs run), digits_loop (48, 580), cancer_mlp (150, 5,280) and peer_optuna's (12, 62). It
expects 0.95, 0.95, 1.11 and 0.92 of those; without a trend 0.83, 0.79, 1.02 and 0.71; the 1/rf^k of a synchronous
halving that this replaced expected 0.79, 0.74, 0.95 and 0.45. A grid on record (the quickstart: 12 trials, 76)
comes out at 0.89. What it leaves out: trials whose results depend on their cost (dear architectures that are
also the good ones run longer than it says), and a grid's order.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Sequence

NOISE = 0.5  # sd of a trial's result at a rung around its quality (sd 1)
TPE_TREND = 1.5  # under TPE, the last trial's quality is this many sd above the first's (chosen: module docstring)
DRAWS_TRIALS = 40_000  # simulated trials in all: the sweep is played max(20, min(400, this // trials)) times
SEED = 0  # the estimate is the same every time it is made


def bar(recorded: Sequence[float], rf: float) -> float:
    """Ray's cutoff: the (1 - 1/rf) percentile of a rung's recorded results (sorted), interpolated as numpy's."""
    pos = (1 - 1 / rf) * (len(recorded) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(recorded) - 1)
    return recorded[lo] + (recorded[hi] - recorded[lo]) * (pos - lo)


def goes_on(recorded: list[float], result: float, rf: float) -> bool:
    """Ray's rule at one rung, then the result recorded there (kept sorted)."""
    go = not recorded or result >= bar(recorded, rf)
    bisect.insort(recorded, result)
    return go


def passing(milestones: Sequence[int], budgets: Sequence[int], rf: float, slots: int,
            trend: float = 0.0) -> tuple[float, ...]:
    """The chance that a trial which reaches each of `milestones` (a decision below its budget) goes on, from
    playing the sweep through Ray's rule (module docstring)."""
    n = len(budgets)
    reached, passed = [0] * len(milestones), [0] * len(milestones)
    rng = random.Random(SEED)
    for _ in range(max(20, min(400, DRAWS_TRIALS // max(n, 1))) if n else 0):
        quality = [rng.gauss(0.0, 1.0) + trend * i / max(n - 1, 1) for i in range(n)]
        _play(milestones, budgets, rf, slots, quality, rng, reached, passed)
    return tuple(p / r if r else 1.0 for p, r in zip(passed, reached, strict=True))


def _play(milestones: Sequence[int], budgets: Sequence[int], rf: float, slots: int,
          quality: Sequence[float], rng: random.Random, reached: list[int], passed: list[int]) -> None:
    """One sweep: trials start in order on `slots`, one time unit an epoch, a trial's result at a rung its quality
    plus noise; each rung's decisions added up."""
    end = len(milestones)  # the rung number of a trial's budget's end
    recorded: list[list[float]] = [[] for _ in milestones]
    started = [0.0] * len(budgets)
    events: list[tuple[float, int, int]] = []  # (time, trial, rung)

    def next_event(trial: int, after: int) -> None:
        rung = next((k for k in range(after, end) if milestones[k] < budgets[trial]), end)
        heapq.heappush(events, (started[trial] + (milestones[rung] if rung < end else budgets[trial]), trial, rung))

    for trial in range(min(slots, len(budgets))):
        next_event(trial, 0)
    waiting = min(slots, len(budgets))
    while events:
        now, trial, rung = heapq.heappop(events)
        if rung < end:
            reached[rung] += 1
            if goes_on(recorded[rung], quality[trial] + NOISE * rng.gauss(0.0, 1.0), rf):
                passed[rung] += 1
                next_event(trial, rung + 1)
                continue
        if waiting < len(budgets):  # the trial ended: the next one starts in its slot
            started[waiting] = now
            next_event(waiting, 0)
            waiting += 1
