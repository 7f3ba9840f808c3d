"""The search space file's schema: top-level settings, validated by pydantic before anything runs."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator, model_validator

from sweeper.spec.metrics import EPOCH_METRICS, Mode, check_declared, epoch_metrics, mode_of, trial_metrics
from sweeper.spec.usermodels import BUILTIN_MODELS, REF_PATTERN, valid_ref

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class AxisKind(StrEnum):
    """A searched parameter's domain, as the YAML names it (`lr: {loguniform: [1e-4, 1e-1]}`). Re-exported by
    spec/space.py beside Axis. A StrEnum, so a kind still equals its name as a string."""

    GRID = "grid"  # every value, each in its own trials (grid search only)
    CHOICE = "choice"  # one value drawn per trial
    UNIFORM = "uniform"  # a float drawn from [low, high]
    LOGUNIFORM = "loguniform"  # a float drawn from [low, high] on a log scale
    RANDINT = "randint"  # a whole number drawn from [low, high], both included


DOMAINS = tuple(k.value for k in AxisKind)  # the domain names, in the order error messages list them


class SchedulerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["asha", "fifo"] = "asha"
    grace_period: PositiveInt = 1  # epochs every trial gets before ASHA may stop it
    reduction_factor: float = Field(3.0, gt=1.0)  # keep the top 1/rf at each rung


class SearchSpec(BaseModel):
    """How trials are chosen: every combination (grid), or `num_samples` draws (random, or TPE that learns)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["grid", "random", "tpe"] = "grid"
    startup_trials: PositiveInt | None = None  # tpe: random draws before TPE models (None: Optuna's 10)

    @model_validator(mode="after")
    def _startup_for_tpe(self) -> SearchSpec:
        if self.startup_trials is not None and self.type != "tpe":
            raise ValueError(f"startup_trials is for search type tpe only, but the type is {self.type!r}")
        return self


class ResourcesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: float = Field(1.0, gt=0.0)  # per trial; also the trial's torch threads (rounded up)
    gpu: float = Field(0.0, ge=0.0)  # per trial; fractional packs several trials on one GPU


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str | None = Field(None, pattern=REF_PATTERN)  # module:function returning sweeper.Dataset; None: Fashion
    args: dict[str, Any] = {}  # the source's keyword arguments (checked against its signature)
    train_subset: PositiveInt | None = None  # rows drawn (seeded) from the training split (Fashion: 48,000 images)
    val_subset: PositiveInt | None = None
    test_subset: PositiveInt | None = None
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # Fashion: Keras validation_split, the LAST 20% of train;
    # a source without its own val split: a seeded random val_fraction of its train split
    seed: int = 0  # seed of the subset draws (and of a source's split; passed as `seed` if the source takes it)

    @model_validator(mode="after")
    def _args_need_source(self) -> DataSpec:
        if self.args and self.source is None:
            raise ValueError("args are for a data source; add `source: module:function` (or drop args)")
        return self


class SweepSpec(BaseModel):
    """The whole search space file, validated."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=NAME_PATTERN)  # sweep folder name; default: file stem
    description: str | None = None  # free text that reports print in their header (findings, intent)
    metrics: dict[str, Mode] = {}  # your own loop's metrics beyond the standard six: name -> min or max
    metric: str = "val_accuracy"  # one of EPOCH_METRICS, or a name under `metrics:`
    mode: Mode = "max"  # default: the declared metric's mode; max for accuracy, min for loss
    epochs: PositiveInt = 10  # max epochs per trial (ASHA's max_t)
    scheduler: SchedulerSpec = SchedulerSpec()
    search: SearchSpec = SearchSpec()
    num_samples: PositiveInt = 1  # grid: draws of the random axes per grid point; random/tpe: the trial budget
    repeats: PositiveInt = 1  # seeds per configuration (seed, seed+1, ...): replicates share a config_id
    max_concurrent: PositiveInt | None = None  # None: as many as resources allow
    resources: ResourcesSpec = ResourcesSpec()
    data: DataSpec = DataSpec()
    seed: int = 0  # seed of the random-axis draws, so a sweep samples the same trials again
    models: dict[str, str] = {}  # your own models: name -> module:function (spec/usermodels.py)
    trainable: str | None = Field(None, pattern=REF_PATTERN)  # your own loop, module:function, train(ctx, **params)
    variants: list[dict[str, Any]] = []
    parameters: dict[str, Any] = {}

    @field_validator("models")
    @classmethod
    def _models(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ref in value.items():
            if name in BUILTIN_MODELS:
                raise ValueError(f"{name!r} is a built-in model ({', '.join(BUILTIN_MODELS)}); pick another name")
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) is None:
                raise ValueError(f"model name {name!r}: letters, digits, _ and - (not first)")
            if not valid_ref(ref):
                raise ValueError(f"model {name!r}: {ref!r} is not module.path:function (e.g. mypkg.nets:widenet)")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, Mode]) -> dict[str, Mode]:
        for name in value:
            if (why := check_declared(name)) is not None:
                raise ValueError(why)
        return value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str, info: ValidationInfo) -> str:
        declared = info.data.get("metrics") or {}
        if value not in epoch_metrics(declared):
            extra = f", {', '.join(declared)}" if declared else " or a name under `metrics:`"
            raise ValueError(f"must be one of {', '.join(EPOCH_METRICS)}{extra} (reported every epoch), but got "
                             f"{value!r}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: Any) -> Any:
        """No mode (or null): the one the metric implies (a declared metric's own)."""
        if isinstance(data, dict) and data.get("mode") is None:
            metric = data.get("metric", "val_accuracy")
            declared = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
            data = {**data, "mode": mode_of(metric, declared) if isinstance(metric, str) else "max"}
        return data

    @model_validator(mode="after")
    def _mode(self) -> SweepSpec:
        if self.metrics and self.trainable is None:
            raise ValueError("metrics: your own metrics are reported by your own loop; add `trainable: "
                             "module:function` (or drop metrics)")
        wanted = mode_of(self.metric, self.metrics)
        if self.mode != wanted:
            raise ValueError(f"mode must be {wanted!r} for metric {self.metric!r}, but got {self.mode!r}")
        return self

    @property
    def epoch_metrics(self) -> tuple[str, ...]:
        """The metrics every epoch may report: the standard four and the declared ones."""
        return epoch_metrics(self.metrics)

    @property
    def trial_metrics(self) -> tuple[str, ...]:
        """trials.parquet's metric columns: the standard six, the declared ones and their test counterparts."""
        return trial_metrics(self.metrics)
