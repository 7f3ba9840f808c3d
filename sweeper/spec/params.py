"""The keys one trial is configured with: what to build and how to train it.

Every key has a default, so a search space only names what it changes. Keras defaults stand where the
study is silent (batch size 32, SGD lr 0.01, Adam lr 0.001, no momentum).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_validator,
)

from sweeper.spec.usermodels import BUILTIN_MODELS

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001, "adamw": 0.001}

# Keys that decide the network's shape: a search over any of them is checked for feasibility up front.
ARCHITECTURE_KEYS = (
    "model", "hidden", "conv_layers", "filters", "kernel_size", "pooling", "pool_every", "padding", "dense",
)

# Keys that only some model families use (a report leaves them out of the other families' tables).
KEY_MODELS = {
    **{k: {"cnn"} for k in ("conv_layers", "filters", "kernel_size", "padding", "pooling", "pool_every", "dense")},
    "hidden": {"mlp"},
    "dropout": {"mlp", "cnn"},
    "batch_norm": {"mlp", "cnn"},
}


def _filters(value: Any) -> int | list[int]:
    """`filters`: one channel count for every conv layer, or a list with one per conv layer."""
    def positive(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if positive(value):
        return int(value)
    if isinstance(value, list | tuple) and value and all(positive(v) for v in value):
        return [int(v) for v in value]
    raise ValueError("must be a positive integer, or a non-empty list of them with one per conv layer "
                     "(e.g. [32, 64])")


Filters = Annotated[int | list[int], PlainValidator(_filters)]


class TrialFields(BaseModel):
    """The keys and the rule for each alone (a search space checks every value it names against these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "cnn"  # logreg, mlp, cnn (run/training/models.py), or a name the space's `models:` gives
    hidden: list[PositiveInt] = []  # mlp: units of each hidden layer, e.g. [256, 128]
    conv_layers: PositiveInt = 2  # cnn: number of conv-relu layers
    filters: Filters = 32  # cnn: channels of every conv layer, or a list with one per conv layer ([32, 64])
    kernel_size: PositiveInt = 3  # cnn: square kernel side
    padding: Literal["valid", "same"] = "valid"  # cnn: Keras' default is "valid"
    pooling: Literal["max", "avg", "none"] = "max"  # cnn: 2x2 pooling kind
    pool_every: PositiveInt = 1  # cnn: pool after every N conv layers (2 = conv-conv-pool blocks)
    dense: list[PositiveInt] = []  # cnn: hidden units of an MLP head after the conv stack ([] = none)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # after every pooling block and hidden dense layer
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float | None = Field(None, gt=0.0)  # None: Keras' default for the optimizer
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # sgd only
    nesterov: bool = False  # sgd only; needs momentum > 0
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: PositiveInt = 32
    early_stopping_patience: int = Field(0, ge=0)  # epochs without val_loss improvement; 0 = off
    max_epochs: PositiveInt | None = None  # this trial's own epoch budget (<= the sweep's epochs)
    seed: int = 0
    # Beyond the study: each default is what the study did, so a trial that leaves these alone trains as before.
    batch_norm: bool = False  # cnn: BatchNorm2d after each conv (before relu); mlp/cnn: BatchNorm1d per dense layer
    lr_schedule: Literal["none", "cosine", "onecycle", "step"] = "none"  # run/training/schedules.py
    lr_step_size: PositiveInt = 10  # step: epochs between learning-rate drops
    lr_gamma: float = Field(0.1, gt=0.0, le=1.0)  # step: factor of each drop
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)  # training loss only; evaluation is plain cross-entropy
    augment_shift: int = Field(0, ge=0, lt=28)  # training only: random shift of each image by up to N pixels
    augment_flip: bool = False  # training only: random horizontal flip of each image
    # fp32: float32 throughout, results equal up to float rounding whatever the device's kernels; tf32 (CUDA): TF32
    # matmuls and convolutions, cudnn.benchmark; bf16: bfloat16 autocast of training and evaluation (CPUs with
    # avx512_bf16 or AMX, CUDA), cudnn.benchmark. Both trade float32's numerics for speed, so they are opt-in.
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"

    @field_validator("model")
    @classmethod
    def _model_name(cls, value: str) -> str:
        if not value or not value.replace("_", "a").replace("-", "a").isalnum():
            raise ValueError(f"a model is one of {', '.join(BUILTIN_MODELS)} or a name under `models:`, "
                             f"but got {value!r}")
        return value


class TrialParams(TrialFields):
    """One trial's whole configuration: the keys plus the rules that tie keys together."""

    # Your own models' keys (spec/usermodels.py): every user key of the space, at its default where not given.
    user: dict[str, Any] = Field(default={}, exclude=True)  # not in model_dump: recorded() flattens it
    # Searched keys whose `when` did not hold for this trial: they keep their default and are recorded as null.
    _inactive: frozenset[str] = PrivateAttr(default_factory=frozenset)
    # Which families each family key belongs to, user models included (None: the built-in KEY_MODELS).
    _key_models: dict[str, set[str]] | None = PrivateAttr(default=None)
    # With your own loop: the only sweeper keys that apply (spec/space.py's loop_builtin); None: sweeper's loop.
    _loop_keys: frozenset[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _optimizer_options(self) -> TrialParams:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs optimizer sgd and momentum > 0")
        return self

    def in_space(self, key_models: dict[str, set[str]], loop_keys: tuple[str, ...] | None = None) -> TrialParams:
        """These params as a space with user models sees them: their keys apply only to their model. `loop_keys`:
        with your own loop, the sweeper keys that still apply (the others are recorded as null)."""
        self._key_models = key_models
        self._loop_keys = None if loop_keys is None else frozenset(loop_keys)
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def inactive(self) -> frozenset[str]:
        """Keys that do not apply to this trial: its model family's (an MLP has no filters) and searched keys
        whose `when` did not hold."""
        keys = (*PARAM_KEYS, *self.user)
        off = {k for k in keys if not applies(k, {self.model}, self._key_models)}
        if self._loop_keys is not None:  # your own loop: sweeper's training keys do nothing unless it declares them
            off |= {k for k in PARAM_KEYS if k not in self._loop_keys and k not in self.user}
        return frozenset(off) | self._inactive

    def model_keys(self) -> dict[str, Any]:
        """What a user model's factory is given: the keys of its own (user keys and the family keys it declares)."""
        families = self._key_models or KEY_MODELS
        values = self.model_dump() | self.user
        return {k: values[k] for k, owners in families.items() if self.model in owners and k in values}

    def with_inactive(self, keys: set[str] | frozenset[str]) -> TrialParams:
        self._inactive = frozenset(keys)
        return self

    def recorded(self) -> dict[str, Any]:
        """Every key as trials.parquet records it: the learning rate resolved, and None for a key that does not
        apply to this trial (see `inactive`)."""
        values = self.model_dump() | {"lr": self.learning_rate} | self.user  # a loop's own `lr` is its own
        off = self.inactive
        return {k: (None if k in off else v) for k, v in values.items()}

    def config_id(self) -> str:
        """A short stable hash of the configuration without its seed: replicates (repeats) share it. A key added after
        config ids were first recorded is left out where it holds what trials did before it existed (or does not
        apply), so a configuration keeps the id its earlier trials were recorded with."""
        recorded = {k: v for k, v in self.recorded().items()
                    if k != "seed" and not (k in LATER_KEYS and v in (None, LATER_KEYS[k]))}
        return hashlib.sha1(json.dumps(recorded, sort_keys=True).encode()).hexdigest()[:10]


def applies(key: str, models: set[str], key_models: Mapping[str, set[str]] | None = None) -> bool:
    """Does `key` change anything for a trial of one of these model families? (Any key does for an unknown set.)
    `key_models`: the space's map with its user models (spec/usermodels.py's key_models); None: the built-in one."""
    families = KEY_MODELS if key_models is None else key_models
    return key not in families or not models or bool(families[key] & models)


PARAM_KEYS: tuple[str, ...] = tuple(TrialFields.model_fields)
# Keys added after config_id existed, with the value every trial before them had (see config_id).
LATER_KEYS: dict[str, Any] = {"precision": "fp32"}
# sweeper's training keys: a user model's factory may not take one (it may take a family key, e.g. dropout)
TRAINING_KEYS: tuple[str, ...] = tuple(k for k in PARAM_KEYS if k not in KEY_MODELS)


IMAGE_SIDE = 28


def conv_filters(p: TrialParams) -> list[int]:
    """Output channels of each conv layer: `filters` repeated, or its per-layer list (one entry per conv layer)."""
    if isinstance(p.filters, int):
        return [p.filters] * p.conv_layers
    if len(p.filters) != p.conv_layers:
        raise ValueError(f"filters {p.filters} has {len(p.filters)} entries but conv_layers is {p.conv_layers}; "
                         "a list gives one per conv layer")
    return list(p.filters)


def cnn_plan(p: TrialParams, side: int = IMAGE_SIDE) -> list[tuple[str, int]]:
    """The CNN's layers as (kind, side after it); raises ValueError if the input is too small for them.

    Layout (the study left it open): for each conv layer i, conv(kernel) -> relu; after every
    `pool_every`-th conv layer a 2x2 pool (unless pooling is "none") then dropout. Then flatten,
    the optional dense head, and a linear layer to the 10 classes.
    """
    conv_filters(p)  # a per-layer list must match conv_layers
    plan: list[tuple[str, int]] = []
    input_side = side
    for i in range(1, p.conv_layers + 1):
        if p.kernel_size > side:
            raise ValueError(
                f"kernel_size {p.kernel_size} is larger than the {side}x{side} feature map at conv layer {i}"
            )
        if p.padding == "valid":
            side = side - p.kernel_size + 1
        plan.append(("conv", side))
        if p.pooling != "none" and i % p.pool_every == 0:
            if side < 2:
                raise ValueError(
                    f"{p.conv_layers} conv layers with pooling every {p.pool_every} shrink the "
                    f"{input_side}x{input_side} input "
                    f"below 2x2 before pool after conv layer {i}"
                )
            side //= 2
            plan.append(("pool", side))
    return plan


def check_feasible(p: TrialParams) -> None:
    """Reject a configuration whose network cannot be built for 28x28 input."""
    if p.model == "cnn":
        cnn_plan(p)
