"""YAML search space -> validated SweepSpec -> expanded trials / Ray Tune param_space.

A search space has top-level settings (metric, epochs, scheduler, resources, data), optional named
`variants` (fixed base configurations, e.g. the study's ten rows) and `parameters`: each trial key is a
literal or one of grid / choice / uniform / loguniform / randint. Every trial is one variant (or the
implicit base when there are none) x one point of the grid x `num_samples` draws of the random axes.
A variant's keys override literal parameters; a key searched in `parameters` may not be fixed by a variant.
Everything is checked here, before Ray starts, and a violation is one line naming file, key and rule.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from sweeper.errors import SweeperError
from sweeper.params import ARCHITECTURE_KEYS, PARAM_KEYS, TrialFields, TrialParams, check_feasible

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
DOMAINS = ("grid", "choice", "uniform", "loguniform", "randint")
METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")


class SchedulerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["asha", "fifo"] = "asha"
    grace_period: PositiveInt = 1  # epochs every trial gets before ASHA may stop it
    reduction_factor: float = Field(3.0, gt=1.0)  # keep the top 1/rf at each rung


class ResourcesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: float = Field(1.0, gt=0.0)  # per trial; also the trial's torch threads (rounded up)
    gpu: float = Field(0.0, ge=0.0)  # per trial; fractional packs several trials on one GPU


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    train_subset: PositiveInt | None = None  # images drawn (seeded) from the 48,000 training images
    val_subset: PositiveInt | None = None
    test_subset: PositiveInt | None = None
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)  # Keras validation_split: the LAST 20% of train
    seed: int = 0  # seed of the subset draws


class SweepSpec(BaseModel):
    """The whole search space file, validated."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=NAME_PATTERN)  # sweep folder name; default: file stem
    description: str | None = None  # free text that reports print in their header (findings, intent)
    metric: Literal["val_accuracy", "val_loss", "train_accuracy", "train_loss"] = "val_accuracy"
    mode: Literal["min", "max"] | None = None  # default: max for accuracy, min for loss
    epochs: PositiveInt = 10  # max epochs per trial (ASHA's max_t)
    scheduler: SchedulerSpec = SchedulerSpec()
    num_samples: PositiveInt = 1  # draws of the random axes per grid point
    max_concurrent: PositiveInt | None = None  # None: as many as resources allow
    resources: ResourcesSpec = ResourcesSpec()
    data: DataSpec = DataSpec()
    seed: int = 0  # seed of the random-axis draws, so a sweep samples the same trials again
    variants: list[dict[str, Any]] = []
    parameters: dict[str, Any] = {}

    @model_validator(mode="after")
    def _mode(self) -> SweepSpec:
        wanted = "min" if self.metric.endswith("loss") else "max"
        if self.mode is None:
            self.mode = wanted
        elif self.mode != wanted:
            raise ValueError(f"mode must be {wanted!r} for metric {self.metric!r}, but got {self.mode!r}")
        return self


@dataclass(frozen=True)
class Axis:
    """One searched parameter."""

    key: str
    kind: str  # one of DOMAINS
    values: list[Any]  # grid/choice values, or [low, high]

    def describe(self) -> str:
        if self.kind in ("grid", "choice"):
            return f"{self.kind}{self.values}"
        return f"{self.kind}({self.values[0]}, {self.values[1]})"


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

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def grid_axes(self) -> list[Axis]:
        return [a for a in self.axes if a.kind == "grid"]

    @property
    def random_axes(self) -> list[Axis]:
        return [a for a in self.axes if a.kind != "grid"]

    def grid_points(self) -> list[dict[str, Any]]:
        """Variant x grid product, in the order Ray Tune expands it."""
        names: list[str | None] = list(self.variants) or [None]
        points = []
        for variant in names:
            for combo in itertools.product(*(a.values for a in self.grid_axes)):
                point: dict[str, Any] = {} if variant is None else {"variant": variant}
                point.update(zip((a.key for a in self.grid_axes), combo, strict=True))
                points.append(point)
        return points

    @property
    def num_trials(self) -> int:
        return len(self.grid_points()) * self.spec.num_samples

    def trial_params(self, config: dict[str, Any]) -> TrialParams:
        """Full trial params for a Ray config (variant name + sampled values)."""
        values = {**self.literals, **{k: v for k, v in config.items() if k != "variant"}}
        values.update(self.variants.get(config.get("variant") or "", {}))
        return TrialParams.model_validate(values)


class DuplicateKeyError(yaml.YAMLError):
    pass


class SpaceLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML loader (libyaml's C parser when present) that refuses a key given twice in one mapping and
    reads 1e-3 as a number, as a user means it (YAML 1.1 alone would read it as the string "1e-3")."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(f"key {key!r} appears twice at line {key_node.start_mark.line + 1}; "
                                        "a later value would silently replace the first")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


# Names users bring from Keras, Optuna or W&B, mapped to ours for the did-you-mean hint.
ALIASES = {
    "learning_rate": "lr", "units": "hidden", "hidden_units": "hidden", "layers": "conv_layers",
    "kernel": "kernel_size", "num_filters": "filters", "patience": "early_stopping_patience",
    "batch": "batch_size", "wd": "weight_decay", "opt": "optimizer", "max_t": "epochs",
}


def _nearest(key: str, valid: list[str] | tuple[str, ...]) -> str:
    if ALIASES.get(key) in valid:
        return f" (did you mean {ALIASES[key]!r}?)"
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _first_error(exc: ValidationError, prefix: tuple[Any, ...], fields: tuple[str, ...]) -> str:
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return f"key {_loc(loc)!r}: unknown key{_nearest(str(loc[-1]), fields)}"
    msg = err["msg"].removeprefix("Value error, ")
    where = f"key {_loc(loc)!r}: " if loc else ""
    value = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
    return f"{where}{msg}{value}"


def _fields_at(loc: tuple[Any, ...]) -> tuple[str, ...]:
    model: Any = SweepSpec
    for part in loc[:-1]:
        info = getattr(model, "model_fields", {}).get(part)
        if info is None or not isinstance(info.annotation, type) or not issubclass(info.annotation, BaseModel):
            return ()
        model = info.annotation
    return tuple(getattr(model, "model_fields", {}))


def _takes_int(key: str) -> bool:
    """Whether a trial key is whole-numbered (a uniform draw would give it fractions)."""
    try:
        TrialFields.model_validate({key: 1.5})
    except ValidationError:
        try:
            TrialFields.model_validate({key: 1})
            return True
        except ValidationError:
            return False
    return False


def _validate_value(path: Path, where: str, key: str, value: Any) -> None:
    """One key's value on its own, strictly typed (no "2" for 2, no true for 1, no 32.0 for 32)."""
    try:
        TrialFields.model_validate({key: value}, strict=True)
    except ValidationError as exc:
        raise SweeperError(f"{path}: {_first_error(exc, (where,), PARAM_KEYS)}") from None


def _parse_axis(path: Path, key: str, raw: dict[str, Any]) -> Axis:
    where = f"parameters.{key}"
    if len(raw) != 1 or next(iter(raw)) not in DOMAINS:
        found = ", ".join(map(str, raw)) or "nothing"
        near = _nearest(str(next(iter(raw), "")), DOMAINS) if len(raw) == 1 else ""
        raise SweeperError(
            f"{path}: key {where!r}: a search domain is exactly one of {', '.join(DOMAINS)}, "
            f"but got {found}{near}"
        )
    kind, values = next(iter(raw.items()))
    where = f"{where}.{kind}"
    if not isinstance(values, list) or not values:
        raise SweeperError(f"{path}: key {where!r}: must be a non-empty list, but got {values!r}")
    if kind in ("uniform", "loguniform", "randint"):
        numeric = int if kind == "randint" else (int, float)
        if len(values) != 2 or not all(isinstance(v, numeric) and not isinstance(v, bool) for v in values):
            kind_of = "integers" if kind == "randint" else "numbers"
            raise SweeperError(f"{path}: key {where!r}: must be [low, high] {kind_of}, but got {values!r}")
        low, high = values
        if low > high:
            raise SweeperError(f"{path}: key {where!r}: `low <= high` must hold, but got (low={low}, high={high})")
        if kind == "loguniform" and low <= 0:
            raise SweeperError(f"{path}: key {where!r}: `low > 0` must hold for loguniform, but got low={low}")
        if kind != "randint" and _takes_int(key):
            raise SweeperError(
                f"{path}: key {where!r}: {kind} draws fractions but {key!r} takes whole numbers; use randint"
            )
    if kind in ("grid", "choice") and len({repr(v) for v in values}) != len(values):
        raise SweeperError(f"{path}: key {where!r}: values must be distinct, but got {values!r}")
    for v in values:
        _validate_value(path, where, key, v)
    return Axis(key, kind, list(values))


REFERENCE_METRICS = (*METRICS, "test_loss", "test_accuracy")


def _check_reference(path: Path, where: str, ref: Any) -> None:
    """A variant's `reference`: the numbers a study reported for it, shown beside the reproduction."""
    if ref is None:
        return
    if not isinstance(ref, dict):
        raise SweeperError(f"{path}: key {where + '.reference'!r}: a mapping of metric -> number, but got {ref!r}")
    for key, value in ref.items():
        if key not in REFERENCE_METRICS:
            raise SweeperError(
                f"{path}: key {where}.reference.{key}: unknown metric{_nearest(str(key), REFERENCE_METRICS)}"
            )
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SweeperError(f"{path}: key {where}.reference.{key}: must be a number, but got {value!r}")


def _parse_variants(path: Path, raw: list[dict[str, Any]], axes: list[Axis]) -> dict[str, dict[str, Any]]:
    variants: dict[str, dict[str, Any]] = {}
    searched = {a.key for a in axes}
    for i, entry in enumerate(raw):
        where = f"variants[{i}]"
        if not isinstance(entry, dict):
            raise SweeperError(f"{path}: key {where!r}: a variant is a mapping, but got {entry!r}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise SweeperError(f"{path}: key {where + '.name'!r}: every variant needs a non-empty name")
        if name in variants:
            raise SweeperError(f"{path}: key {where + '.name'!r}: variant names must be unique, {name!r} repeats")
        _check_reference(path, where, entry.get("reference"))
        values = {k: v for k, v in entry.items() if k not in ("name", "reference")}
        for key, value in values.items():
            if key not in PARAM_KEYS:
                raise SweeperError(f"{path}: key '{where}.{key}': unknown key{_nearest(key, PARAM_KEYS)}")
            _validate_value(path, where, key, value)
        clash = sorted(searched & set(values))
        if clash:
            raise SweeperError(
                f"{path}: key {where + '.' + clash[0]!r}: variant {name!r} fixes {clash[0]!r}, which "
                f"parameters also search; search it in one place only"
            )
        variants[name] = values
    return variants


MAX_CHECKED_TRIALS = 20_000


def _discrete_options(space: Space) -> list[tuple[str, list[Any]]]:
    """Choice values and randint bounds: discrete draws a trial may get. Beyond MAX_CHECKED_TRIALS
    combinations, only the axes that shape the network."""
    axes = [a for a in space.random_axes if a.kind in ("choice", "randint")]
    options = [(a.key, a.values if a.kind == "choice" else sorted(set(a.values))) for a in axes]
    if math.prod(len(v) for _, v in options) * len(space.grid_points()) > MAX_CHECKED_TRIALS:
        options = [(k, v) for k, v in options if k in ARCHITECTURE_KEYS]
    return options


def _check_trials(space: Space) -> None:
    """Every reachable trial must be buildable: each grid point with the discrete draws it may get."""
    options = _discrete_options(space)
    for point in space.grid_points():
        for combo in itertools.product(*(v for _, v in options)):
            config = {**point, **dict(zip((k for k, _ in options), combo, strict=True))}
            try:
                params = space.trial_params(config)
                check_feasible(params)
                if params.max_epochs and params.max_epochs > space.spec.epochs:
                    raise ValueError(f"max_epochs {params.max_epochs} exceeds the sweep's epochs {space.spec.epochs}")
            except (ValueError, ValidationError) as exc:
                text = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
                which = f"trial {config}" if config else "parameters"
                raise SweeperError(f"{space.path}: {which}: {text.removeprefix('Value error, ')}") from None


def load(path: str | Path) -> Space:
    """Read and validate a search space file; raises SweeperError naming file, key and rule."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SweeperError(f"{path}: cannot read search space: {reason}") from None
    return load_text(text, path)


def load_text(text: str, path: Path) -> Space:
    """Validate search-space YAML text; `path` names it in errors and gives the default sweep name."""
    try:
        raw = yaml.load(text, Loader=SpaceLoader)
    except DuplicateKeyError as exc:
        raise SweeperError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SweeperError(f"{path}: malformed YAML{where}: {problem}") from None
    if raw is None:
        raise SweeperError(f"{path}: the file is empty; a search space is a YAML mapping of keys")
    if not isinstance(raw, dict):
        raise SweeperError(f"{path}: a search space is a YAML mapping of keys, but got a {type(raw).__name__}")
    try:
        spec = SweepSpec.model_validate(raw, strict=True)
    except ValidationError as exc:
        err_loc = tuple(exc.errors()[0]["loc"])
        raise SweeperError(f"{path}: {_first_error(exc, (), _fields_at(err_loc))}") from None
    literals: dict[str, Any] = {}
    axes: list[Axis] = []
    for key, value in spec.parameters.items():
        if key not in PARAM_KEYS:
            raise SweeperError(f"{path}: key 'parameters.{key}': unknown parameter{_nearest(key, PARAM_KEYS)}")
        if isinstance(value, dict):
            axes.append(_parse_axis(path, key, value))
        else:
            _validate_value(path, "parameters", key, value)
            literals[key] = value
    variants = _parse_variants(path, spec.variants, axes)
    references = {v["name"]: v["reference"] for v in spec.variants if v.get("reference")}
    space = Space(path=path, spec=spec, text=text, literals=literals, axes=axes, variants=variants,
                  references=references)
    _check_trials(space)
    return space


def expected_epochs(space: Space) -> tuple[int, float]:
    """Trial-epochs of a full run, and the ASHA expectation (each rung keeps 1/rf of the trials)."""
    n, epochs = space.num_trials, space.spec.epochs
    full = n * epochs
    sched = space.spec.scheduler
    if sched.type != "asha":
        return full, float(full)
    total, survivors, done = 0.0, float(n), 0
    rung = sched.grace_period
    while rung < epochs:
        total += survivors * (rung - done)
        done, survivors = rung, max(survivors / sched.reduction_factor, 1.0)
        rung = math.ceil(rung * sched.reduction_factor)
    total += survivors * (epochs - done)
    return full, min(total, float(full))
