"""The one cost model: ASHA's rungs (Ray's own formula), each trial's epoch budget, and the trial-epochs a sweep
is expected to spend. `launch --dry-run`, the live view, `sweeper status` and reports all use it.

Cost is counted in trial-epochs. Each trial's budget is the sweep's `epochs`, or its own `max_epochs` when that is
smaller (slides.yaml's variants run 10 to 100 epochs each). Under ASHA the chance that a trial passes each rung
comes from playing the sweep through Ray's own promotion rule (spec/asha.py): more than 1/rf of a rung's trials go
on, the first to arrive most of all, and under TPE more still.

Time is trial-epochs times seconds per epoch. An epoch's cost depends on the trial's architecture only (ARCH_KEYS
and the data sizes); sweeper/run/calibrate measures seconds per epoch per architecture on this machine, launch
stores them in sweep.json, and the arithmetic here turns them into the dry run's expected wall time and the
live view's time left: each trial's expected (remaining) epochs x its architecture's seconds per epoch, packed in
order onto the trials that run at once (list scheduling), plus a fixed start-up cost.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from sweeper.errors import SweeperError
from sweeper.spec import asha
from sweeper.spec.conditions import VARIANT
from sweeper.spec.params import TrialParams, applies
from sweeper.spec.schema import DataSpec, SweepSpec
from sweeper.spec.space import Axis, AxisKind, Space
from sweeper.spec.usermodels import BUILTIN_MODELS


@dataclass(frozen=True)
class CostModel:
    """Expected trial-epochs of one trial under the sweep's scheduler."""

    milestones: tuple[int, ...] = ()  # epochs at which ASHA decides whether a trial goes on (empty: FIFO)
    passing: tuple[float, ...] = ()  # the chance a trial that reaches each milestone goes on (spec/asha.py)

    def survival(self, rungs_passed: int) -> float:
        return math.prod(self.passing[:rungs_passed])

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

    budgets: tuple[int, ...]  # epochs each trial may run, in expansion order (random/tpe: the largest a draw has)
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


def budgets(space: Space) -> tuple[int, ...]:
    """Each planned trial's epoch budget: grid search in run order; random and TPE search, which draw the variant,
    at the largest budget a drawn trial can have."""
    if space.search != "grid":
        return (max(trial_budget(space, p) for p in space.grid_points()),) * space.num_trials
    return tuple(trial_budget(space, p) for p in space.grid_trials())


def cost(space: Space) -> Cost:
    spec, sched = space.spec, space.spec.scheduler
    budgets_ = budgets(space)
    if sched.type != "asha":
        return Cost(budgets_, CostModel(), asha=False)
    milestones = asha_milestones(spec.epochs, sched.grace_period, sched.reduction_factor)
    # Trials at once barely move the chances (a 32-trial sweep: within 0.03 from 1 to 4 at once), so where
    # max_concurrent does not say, 2 serves every caller, the dry run before it knows the machine included.
    odds = asha.passing(milestones, budgets_, sched.reduction_factor, spec.max_concurrent or 2,
                        asha.TPE_TREND if space.search == "tpe" else 0.0)
    return Cost(budgets_, CostModel(milestones, odds), asha=True)


# -- time -------------------------------------------------------------------------------------------------------

# The keys that decide what an epoch costs (besides the data sizes and the threads a trial has).
ARCH_KEYS = ("model", "hidden", "conv_layers", "filters", "kernel_size", "padding", "pooling", "pool_every", "dense",
             "batch_norm", "batch_size")
TRAIN_FILE_IMAGES = 60_000  # Fashion-MNIST's training file: train + validation
# Fixed cost of a local launch besides its epochs: imports, data load, Ray start, the first trial's worker process
# (torch import), shutdown. Measured on the 2-core dev machine, quiet (benchmarks/overhead.py --four-small,
# 2026-12-07): 9.7 s (8.6-14.5) from the command's start to its first epoch, which holds that epoch (about 1.5 s),
# and about 1 s after the last; a loaded machine takes longer (28 s was measured under a load average of 2 to 3).
STARTUP_S = 10.0
# What each trial costs besides its epochs' training and evaluation, measured on the same machine with
# examples/cancer_mlp (150 trials of 60 tiny epochs, 2 at a time): Ray placing the trial in a (reused) worker and the
# trial's set-up, about 1.3 s of its slot; and per epoch the report with its checkpoint, about 0.024 s (0.047 s of
# trial wall per 0.023 s epoch). Negligible for Fashion-MNIST's epochs; most of a sweep of small trials.
TRIAL_START_S = 1.3
EPOCH_REPORT_S = 0.025


def _norm(value: Any) -> Any:
    if isinstance(value, str | bool) or value is None:
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    try:
        return [_norm(v) for v in value]  # lists, tuples, numpy arrays from Parquet
    except TypeError:
        return str(value)


LOOP_ARCH = "your loop"  # the architecture of every trial of your own loop: the rehearsal times one epoch


def architecture(values: Mapping[str, Any]) -> str:
    """The key of an epoch's cost: the ARCH_KEYS that apply to the trial's model, a missing or null one at its
    default (trials.parquet records a key that does not apply as null)."""
    fields = TrialParams.model_fields
    model = values.get("model") or fields["model"].default
    if model not in BUILTIN_MODELS:  # your own model: its factory's keys (recorded, so not null) and the batch size
        own = sorted(k for k, v in values.items() if k not in fields and k != "user" and v is not None)
        user = values.get("user") or {}
        own_values = {k: values[k] for k in own} | {k: v for k, v in user.items() if v is not None}
        batch = values.get("batch_size") or fields["batch_size"].default
        return " ".join([f"model={model}", *(f"{k}={_norm(v)}".replace(" ", "") for k, v in sorted(own_values.items())),
                         f"batch_size={_norm(batch)}", *_precision(values)])
    parts = []
    for key in ARCH_KEYS:
        if key != "model" and not applies(key, {str(model)}):
            continue
        value = values.get(key)
        if value is None or (isinstance(value, float) and value != value):
            value = fields[key].default
        parts.append(f"{key}={_norm(value if key != 'model' else model)}".replace(" ", ""))
    return " ".join([*parts, *_precision(values)])


def _precision(values: Mapping[str, Any]) -> list[str]:
    """An epoch's cost also depends on the trial's `precision` (bf16 runs faster): named when it is not the default
    fp32, so every fp32 architecture keeps the key it had before the key existed."""
    value = values.get("precision")
    return [] if value is None or value == TrialParams.model_fields["precision"].default else [f"precision={value}"]


def row_architecture(row: Mapping[str, Any]) -> str:
    """A trials.parquet (or live) row's architecture, from its param_ columns."""
    return architecture({k[len("param_"):]: v for k, v in row.items() if k.startswith("param_")})


def data_sizes(data: DataSpec) -> tuple[int, int]:
    """(train, validation) images an epoch trains on and evaluates, from the data spec (data.py's split)."""
    val = int(round(TRAIN_FILE_IMAGES * data.val_fraction))
    return data.train_subset or TRAIN_FILE_IMAGES - val, data.val_subset or val


def threads(cpu: float) -> int:
    """Torch threads a trial with `cpu` CPUs uses: the one rule (run/trial.py applies it)."""
    return max(1, math.ceil(cpu))


def trials_at_once(spec: SweepSpec, cpus: int, trials: int) -> int:
    """How many trials run at once on `cpus` CPUs: max_concurrent, the CPUs each trial asks for, the trial count."""
    fit = max(int(cpus // spec.resources.cpu), 1) if spec.resources.cpu > 0 else trials
    return max(min(fit, spec.max_concurrent or fit, trials), 1)


def _draw(axis: Axis, rng: random.Random) -> Any:
    lo, hi = axis.values[0], axis.values[-1]
    match axis.kind:
        case AxisKind.GRID | AxisKind.CHOICE:
            return rng.choice(axis.values)
        case AxisKind.UNIFORM:
            return rng.uniform(lo, hi)
        case AxisKind.LOGUNIFORM:
            return math.exp(rng.uniform(math.log(lo), math.log(hi)))
        case AxisKind.RANDINT:
            return rng.randint(lo, hi)
        case _:
            assert_never(axis.kind)


def trial_architectures(space: Space) -> tuple[str, ...]:
    """Each planned trial's architecture, aligned with `budgets(space)`: grid search in run order, random axes
    drawn (seeded); random and TPE search: `num_trials` seeded draws of the variant and every axis. With your own
    loop, one for all (its rehearsal timed it)."""
    if space.trainable is not None:
        return (LOOP_ARCH,) * space.num_trials
    rng = random.Random(space.spec.seed)
    if space.search == "grid":
        configs = [p | {a.key: _draw(a, rng) for a in space.random_axes} for p in space.grid_trials()]
    else:
        variants = list(space.variants)
        configs = [({VARIANT: rng.choice(variants)} if variants else {}) | {a.key: _draw(a, rng) for a in space.axes}
                   for _ in range(space.num_trials)]
    out = []
    for config in configs:
        try:
            out.append(architecture(space.trial_params(config).recorded()))
        except (SweeperError, ValueError):  # a draw the space rejects: the variant's base configuration
            out.append(architecture(space.base_values(config.get(VARIANT))))
    return tuple(out)


def pack(works: Sequence[float], slots: int, busy: Sequence[float] = ()) -> float:
    """List scheduling: when the last of `works` ends, each started in order on whichever of `slots` frees first,
    while `busy` slots still have that much work of their own (running trials)."""
    heap = sorted(busy) + [0.0] * max(slots - len(busy), 0) or [0.0]
    heapq.heapify(heap)
    for work in works:
        heapq.heappush(heap, heapq.heappop(heap) + work)
    return max(heap)


def expected_wall(c: Cost, archs: Sequence[str], seconds: Mapping[str, float], slots: int,
                  startup: float = STARTUP_S, per_trial: float = TRIAL_START_S,
                  per_epoch: float = EPOCH_REPORT_S) -> float:
    """Seconds a sweep is expected to take: each trial's start plus its expected epochs x (its architecture's seconds
    per epoch + an epoch's report), packed onto `slots` trials at once, plus the start-up."""
    works = [per_trial + c.model.expected(b) * (seconds[a] + per_epoch) for b, a in zip(c.budgets, archs, strict=True)]
    return startup + pack(works, slots)
