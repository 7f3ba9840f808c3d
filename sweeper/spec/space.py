"""A validated search space: its axes, variants and literals, the trials it plans, and one trial's params.

Search `grid` (the default): every trial is one variant (or the implicit base when there are none) x one point of
the grid x `num_samples` draws of the random axes x `repeats` seeds. A conditional grid axis (spec/conditions.py)
multiplies only the points where its condition holds. Search `random` and `tpe`: `num_samples` x `repeats` trials;
every axis is drawn (random uniformly, TPE from what earlier trials scored), a variant is one more categorical
choice, and a key whose condition fails is not drawn. A variant's keys override literal parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, assert_never

from sweeper.spec.conditions import DEFAULTS, VARIANT, When, same, topological
from sweeper.spec.params import KEY_MODELS, PARAM_KEYS, TrialParams
from sweeper.spec.schema import AxisKind, SweepSpec
from sweeper.spec.usermodels import TRAINABLE, UserModel, key_models, loop_keys

__all__ = ["Axis", "AxisKind", "Space"]


@dataclass(frozen=True)
class Axis:
    """One searched parameter."""

    key: str
    kind: AxisKind
    values: list[Any]  # grid/choice values, or [low, high]
    when: When = field(default_factory=dict)  # key -> the values it must hold for this axis to apply

    @property
    def listed(self) -> bool:
        """Whether `values` lists the values themselves (grid, choice), not a range [low, high]."""
        match self.kind:
            case AxisKind.GRID | AxisKind.CHOICE:
                return True
            case AxisKind.UNIFORM | AxisKind.LOGUNIFORM | AxisKind.RANDINT:
                return False
            case _:
                assert_never(self.kind)

    def contains(self, value: Any) -> bool:
        """Whether this axis can give `value`: one of its listed values, or a number of its kind in [low, high]."""
        match self.kind:
            case AxisKind.GRID | AxisKind.CHOICE:
                return any(same(value, v) for v in self.values)
            case AxisKind.RANDINT:
                number = isinstance(value, int)
            case AxisKind.UNIFORM | AxisKind.LOGUNIFORM:
                number = isinstance(value, int | float)
            case _:
                assert_never(self.kind)
        return number and not isinstance(value, bool) and bool(self.values[0] <= value <= self.values[1])

    def dependencies(self, axis_keys: set[str], families: Mapping[str, set[str]] = KEY_MODELS) -> set[str]:
        """The searched keys (of `axis_keys`) this axis's condition reads: its `when` keys, and `model` for a
        model-family key (of `families`: the space's map, its user models' keys included)."""
        refs = set(self.when) | ({"model"} if self.key in families else set())
        return refs & axis_keys

    def describe(self) -> str:
        text = f"{self.kind}{self.values}" if self.listed else f"{self.kind}({self.values[0]}, {self.values[1]})"
        return text + (f" when {self.describe_when()}" if self.when else "")

    def value_of(self, given: Any) -> Any:
        """A value from a Ray config: a list-valued grid or choice value may come as its text ("[256, 128]"; Ray
        would read a list in a preset point as nested keys)."""
        if isinstance(given, str) and self.listed:
            return next((v for v in self.values if isinstance(v, list) and str(v) == given), given)
        return given

    def describe_when(self) -> str:
        return ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in self.when.items())


@dataclass
class Space:
    """A loaded, validated search space."""

    path: Path
    spec: SweepSpec
    text: str  # the YAML as read, kept in the sweep folder
    literals: dict[str, Any]
    axes: list[Axis]
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> reported metrics
    variant_repeats: dict[str, int] = field(default_factory=dict)  # a variant's own `repeats` (grid search only)
    models: dict[str, UserModel] = field(default_factory=dict)  # your own models (spec/usermodels.py)
    trainable: UserModel | None = None  # your own training loop (`trainable:`), its keys read like a factory's

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def search(self) -> str:
        """grid, random or tpe."""
        return self.spec.search.type

    @property
    def grid_axes(self) -> list[Axis]:
        return [a for a in self.ordered_axes if a.kind == AxisKind.GRID]

    @property
    def random_axes(self) -> list[Axis]:
        return [a for a in self.ordered_axes if a.kind != AxisKind.GRID]

    @cached_property
    def key_models(self) -> dict[str, set[str]]:
        """Which model families each family key belongs to: built-in ones and the user models' keys."""
        return key_models(KEY_MODELS, self.models)

    @cached_property
    def user_defaults(self) -> dict[str, Any]:
        """Every user model's key (not a built-in key a factory also takes) with its default; with your own loop,
        every key it declares (one named like sweeper's too: it is the loop's)."""
        out: dict[str, Any] = dict(self.trainable.keys) if self.trainable is not None else {}
        for model in self.models.values():
            out |= {k: v for k, v in model.keys.items() if k not in PARAM_KEYS and k not in out}
        return out

    @property
    def data_source(self) -> str | None:
        return self.spec.data.source

    @property
    def own_code(self) -> bool:
        """Whether the space names code of the user's own: models, a training loop, or a data source."""
        return bool(self.models) or self.trainable is not None or self.data_source is not None

    @property
    def own_models(self) -> dict[str, UserModel]:
        """The space's own code as sweep.json records it: its models, and its loop under the name TRAINABLE."""
        return {**self.models, **({TRAINABLE: self.trainable} if self.trainable is not None else {})}

    @cached_property
    def loop_builtin(self) -> tuple[str, ...]:
        """With your own loop, sweeper's keys that apply (spec/usermodels.py's loop_keys)."""
        return loop_keys(self.models, DEFAULTS)

    @cached_property
    def default_of(self) -> dict[str, Any]:
        """Each key's default: your own code's where it declares the key, else sweeper's."""
        return {**DEFAULTS, **self.user_defaults, **self.loop_model}

    @cached_property
    def loop_model(self) -> dict[str, Any]:
        """With your own loop and one factory under `models:`, the model a trial builds unless it names one."""
        return {"model": next(iter(self.models))} if self.trainable is not None and len(self.models) == 1 else {}

    @cached_property
    def ordered_axes(self) -> list[Axis]:
        """The axes, each after the keys its condition reads (YAML order otherwise)."""
        keys = {a.key for a in self.axes}
        order = topological([a.key for a in self.axes],
                            {a.key: a.dependencies(keys, self.key_models) for a in self.axes})
        by_key = {a.key: a for a in self.axes}
        return [by_key[k] for k in order]

    # -- conditions -----------------------------------------------------------------------------------------

    def base_values(self, variant: str | None) -> dict[str, Any]:
        """A trial's fixed keys: literals, overridden by the variant's keys (with `variant` itself)."""
        values = {**self.literals, **self.variants.get(variant or "", {})}
        return values | ({VARIANT: variant} if variant is not None else {})

    def applies(self, key: str, values: dict[str, Any], undecided: frozenset[str] = frozenset()) -> bool:
        """Whether `key` applies to a trial whose keys decided so far are `values` (a searched key missing from
        them is off). Keys in `undecided` are not known yet and count as holding (a grid over a random model)."""
        for ref, allowed in self._conditions(key).items():
            if ref in undecided:
                continue
            present, value = self._value(ref, values)
            if not present or not any(same(value, a) for a in allowed):
                return False
        return True

    def _conditions(self, key: str) -> When:
        axis = next((a for a in self.axes if a.key == key), None)
        own = dict(axis.when) if axis is not None else {}
        if key in self.key_models:
            own["model"] = tuple(sorted(self.key_models[key]))
        return own

    def _value(self, ref: str, values: dict[str, Any]) -> tuple[bool, Any]:
        if ref == VARIANT:
            return values.get(VARIANT) is not None, values.get(VARIANT)
        if ref in values:
            return ref == "model" or self.applies(ref, values), values[ref]
        if any(a.key == ref for a in self.axes):
            return False, None  # searched, but off for this trial
        return True, self.default_of.get(ref)

    # -- what runs ------------------------------------------------------------------------------------------

    def variant_names(self) -> list[str | None]:
        return list(self.variants) or [None]

    def grid_points(self) -> list[dict[str, Any]]:
        """Grid search: variant x the grid, a conditional axis only where it applies, in the order Ray runs them.
        Random and TPE search: one point per variant (the first points TPE evaluates)."""
        undecided = frozenset(a.key for a in self.random_axes)
        points: list[dict[str, Any]] = []
        for variant in self.variant_names():
            partial: list[dict[str, Any]] = [{} if variant is None else {VARIANT: variant}]
            for axis in self.grid_axes:
                grown = []
                for point in partial:
                    values = self.base_values(variant) | point
                    if self.applies(axis.key, values, undecided):
                        grown += [{**point, axis.key: v} for v in axis.values]
                    else:
                        grown.append(point)
                partial = grown
            points += partial
        return points

    def repeats_of(self, variant: str | None = None) -> int:
        """Replicates of each configuration of `variant`: its own `repeats`, else the sweep's."""
        return self.variant_repeats.get(variant or "", self.spec.repeats)

    def seeds(self, variant: str | None = None) -> list[int]:
        """The seeds of each configuration's replicates: seed, seed + 1, ... (`repeats` of them; a variant's own
        `repeats` for its configurations)."""
        first = int(self.literals.get("seed", 0))
        return [first + r for r in range(self.repeats_of(variant))]

    def grid_trials(self) -> list[dict[str, Any]]:
        """Grid search: every trial's fixed part (variant, grid values, seed when repeated), in run order; the
        random axes are drawn for each."""
        out = []
        for p in self.grid_points():
            variant = p.get(VARIANT)
            seeds: list[int | None] = list(self.seeds(variant)) if self.repeats_of(variant) > 1 else [None]
            out += [p | ({"seed": s} if s is not None else {}) for _ in range(self.spec.num_samples) for s in seeds]
        return out

    def planned_per_variant(self) -> dict[str | None, int] | None:
        """Grid search: the trials planned per variant (None: the space has none). Random and TPE search draw the
        variant, so only the total (`num_trials`) is planned: None."""
        if self.search != "grid":
            return None
        out: dict[str | None, int] = {}
        for trial in self.grid_trials():
            out[trial.get(VARIANT)] = out.get(trial.get(VARIANT), 0) + 1
        return out

    @property
    def num_trials(self) -> int:
        if self.search != "grid":
            return self.spec.num_samples * self.spec.repeats
        return len(self.grid_trials())

    def trial_params(self, config: dict[str, Any]) -> TrialParams:
        """Full trial params for a Ray config (variant name + sampled values): a searched key whose condition
        fails keeps its default (and is recorded as null)."""
        values = self.loop_model | self.base_values(config.get(VARIANT))
        searched = {a.key for a in self.axes}
        values.update({k: v for k, v in config.items() if k != VARIANT and k not in searched})
        values.update(self.variants.get(config.get(VARIANT) or "", {}))
        off = set()
        for axis in self.ordered_axes:
            if axis.key in config and self.applies(axis.key, values):
                values[axis.key] = axis.value_of(config[axis.key])
            elif axis.when:
                off.add(axis.key)
        values.pop(VARIANT, None)
        user = {k: values.pop(k, default) for k, default in self.user_defaults.items()}
        params = TrialParams.model_validate(values | {"user": user}).with_inactive(off)
        if self.trainable is not None:
            return params.in_space(self.key_models, self.loop_builtin)
        return params.in_space(self.key_models) if self.models else params

