"""The keys one trial is configured with: what to build and how to train it.

Every key has a default, so a search space only names what it changes. Keras defaults stand where the
study is silent (batch size 32, SGD lr 0.01, Adam lr 0.001, no momentum).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

DEFAULT_LR = {"sgd": 0.01, "adam": 0.001}

# Keys that decide the network's shape: a search over any of them is checked for feasibility up front.
ARCHITECTURE_KEYS = (
    "model", "hidden", "conv_layers", "filters", "kernel_size", "pooling", "pool_every", "padding", "dense",
)

# Keys that only some model families use (a report leaves them out of the other families' tables).
KEY_MODELS = {
    **{k: {"cnn"} for k in ("conv_layers", "filters", "kernel_size", "padding", "pooling", "pool_every", "dense")},
    "hidden": {"mlp"},
    "dropout": {"mlp", "cnn"},
}


class TrialFields(BaseModel):
    """The keys and the rule for each alone (a search space checks every value it names against these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["logreg", "mlp", "cnn"] = "cnn"  # which builder in sweeper.models.MODELS
    hidden: list[PositiveInt] = []  # mlp: units of each hidden layer, e.g. [256, 128]
    conv_layers: PositiveInt = 2  # cnn: number of conv-relu layers
    filters: PositiveInt = 32  # cnn: channels of every conv layer
    kernel_size: PositiveInt = 3  # cnn: square kernel side
    padding: Literal["valid", "same"] = "valid"  # cnn: Keras' default is "valid"
    pooling: Literal["max", "avg", "none"] = "max"  # cnn: 2x2 pooling kind
    pool_every: PositiveInt = 1  # cnn: pool after every N conv layers (2 = conv-conv-pool blocks)
    dense: list[PositiveInt] = []  # cnn: hidden units of an MLP head after the conv stack ([] = none)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # after every pooling block and hidden dense layer
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float | None = Field(None, gt=0.0)  # None: Keras' default for the optimizer
    momentum: float = Field(0.0, ge=0.0, lt=1.0)  # sgd only
    nesterov: bool = False  # sgd only; needs momentum > 0
    weight_decay: float = Field(0.0, ge=0.0)
    batch_size: PositiveInt = 32
    early_stopping_patience: int = Field(0, ge=0)  # epochs without val_loss improvement; 0 = off
    max_epochs: PositiveInt | None = None  # this trial's own epoch budget (<= the sweep's epochs)
    seed: int = 0


class TrialParams(TrialFields):
    """One trial's whole configuration: the keys plus the rules that tie keys together."""

    @model_validator(mode="after")
    def _optimizer_options(self) -> TrialParams:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov needs optimizer sgd and momentum > 0")
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def recorded(self) -> dict[str, Any]:
        """Every key as trials.parquet records it: the learning rate resolved, and None for a key that does not
        apply to this trial's model family (an MLP has no filters)."""
        values = self.model_dump() | {"lr": self.learning_rate}
        return {k: (v if applies(k, {self.model}) else None) for k, v in values.items()}


def applies(key: str, models: set[str]) -> bool:
    """Does `key` change anything for a trial of one of these model families? (Any key does for an unknown set.)"""
    return key not in KEY_MODELS or not models or bool(KEY_MODELS[key] & models)


PARAM_KEYS: tuple[str, ...] = tuple(TrialParams.model_fields)


IMAGE_SIDE = 28


def cnn_plan(p: TrialParams, side: int = IMAGE_SIDE) -> list[tuple[str, int]]:
    """The CNN's layers as (kind, side after it); raises ValueError if the input is too small for them.

    Layout (the study left it open): for each conv layer i, conv(kernel) -> relu; after every
    `pool_every`-th conv layer a 2x2 pool (unless pooling is "none") then dropout. Then flatten,
    the optional dense head, and a linear layer to the 10 classes.
    """
    plan: list[tuple[str, int]] = []
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
                    f"{p.conv_layers} conv layers with pooling every {p.pool_every} shrink the 28x28 input "
                    f"below 2x2 before pool after conv layer {i}"
                )
            side //= 2
            plan.append(("pool", side))
    return plan


def check_feasible(p: TrialParams) -> None:
    """Reject a configuration whose network cannot be built for 28x28 input."""
    if p.model == "cnn":
        cnn_plan(p)
