"""YAML search space file -> validated Space; every violation is one line naming file, key and rule.

A search space has top-level settings (metric, epochs, scheduler, search, repeats, resources, data), optional
named `variants` (fixed base configurations, e.g. the study's ten rows) and `parameters`: each trial key is a
literal or one of grid / choice / uniform / loguniform / randint, optionally with a `when` condition
(spec/conditions.py). A key searched in `parameters` may not be fixed by a variant; random and TPE search take
no grid axes. Everything is checked here, before Ray starts, including that every reachable trial can be built.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Any, assert_never

import yaml
from pydantic import BaseModel, ValidationError

from sweeper.errors import SweeperError, did_you_mean
from sweeper.spec.conditions import VARIANT, parse_when, same, topological
from sweeper.spec.metrics import METRICS
from sweeper.spec.params import ARCHITECTURE_KEYS, PARAM_KEYS, TrialFields, check_feasible
from sweeper.spec.schema import DOMAINS, NAME_PATTERN, SweepSpec
from sweeper.spec.space import Axis, AxisKind, Space
from sweeper.spec.usermodels import BUILTIN_MODELS, TRAINABLE, ModelResolver, UserModel, loop_keys


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
    return did_you_mean(key, valid, ALIASES)


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


class Keys:
    """The trial keys a space may name: sweeper's own, and those of the models under its `models:`; with your own
    loop (`trainable`), its keys instead of sweeper's training keys."""

    def __init__(self, models: dict[str, UserModel], trainable: UserModel | None = None) -> None:
        self.models, self.trainable = models, trainable
        self.user = {k for m in models.values() for k in m.keys if k not in PARAM_KEYS}
        if trainable is not None:  # every key the loop declares is its own, even one named like sweeper's
            self.user |= set(trainable.keys)
        builtin = PARAM_KEYS if trainable is None else self.loop_builtin()
        self.all: tuple[str, ...] = (*builtin, *sorted(self.user - set(builtin)))
        self.model_names = (*BUILTIN_MODELS, *models) if trainable is None else tuple(models)

    def loop_builtin(self) -> tuple[str, ...]:
        """sweeper's keys that apply with your own loop (before the space exists)."""
        return loop_keys(self.models, PARAM_KEYS)

    def __contains__(self, key: object) -> bool:
        return key in self.all

    def unknown(self, path: Path, where: str, key: str, what: str = "unknown parameter") -> SweeperError:
        """The error for a key this space does not take."""
        if self.trainable is not None and key in PARAM_KEYS:
            return SweeperError(f"{path}: key {where!r}: with `trainable:` only the parameters of "
                                f"{self.trainable.ref} apply (and {', '.join(self.loop_builtin())}); declare "
                                f"{key!r} there as a keyword parameter with a default")
        return SweeperError(f"{path}: key {where!r}: {what}{_nearest(key, self.all)}")

    def whole(self, key: str) -> bool:
        if key in self.user:
            owners = [*self.models.values(), *([self.trainable] if self.trainable is not None else [])]
            return any(key in m.whole for m in owners if key in m.keys)
        return _takes_int(key)


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


def _validate_value(path: Path, where: str, key: str, value: Any, keys: Keys | None = None) -> None:
    """One key's value on its own, strictly typed (no "2" for 2, no true for 1, no 32.0 for 32). A user model's
    key is checked against its factory's annotation by run/usercode.py, which imports it."""
    if keys is not None and key in keys.user:
        return
    if key == "model" and keys is not None and isinstance(value, str) and value not in keys.model_names:
        shown = where if where.startswith("parameters.model") else f"{where}.model"
        raise SweeperError(f"{path}: key {shown!r}: unknown model "
                           f"{value!r}{_nearest(value, keys.model_names)}; models are {', '.join(BUILTIN_MODELS)} "
                           "and the names under `models:`")
    try:
        TrialFields.model_validate({key: value}, strict=True)
    except ValidationError as exc:
        raise SweeperError(f"{path}: {_first_error(exc, (where,), PARAM_KEYS)}") from None


def _parse_axis(path: Path, key: str, raw: dict[str, Any], keys: Keys) -> Axis:
    where = f"parameters.{key}"
    raw = dict(raw)
    when = parse_when(path, where, key, raw.pop("when"), keys.all) if "when" in raw else {}
    if when and not raw:
        raise SweeperError(
            f"{path}: key {where!r}: `when` needs a search domain ({', '.join(DOMAINS)}); a literal applies to every "
            f"trial (for a value only when the condition holds, write {{choice: [VALUE], when: ...}})"
        )
    if len(raw) != 1 or next(iter(raw)) not in DOMAINS:
        found = ", ".join(map(str, raw)) or "nothing"
        near = _nearest(str(next(iter(raw), "")), DOMAINS) if len(raw) == 1 else ""
        raise SweeperError(
            f"{path}: key {where!r}: a search domain is exactly one of {', '.join(DOMAINS)}, "
            f"but got {found}{near}"
        )
    domain, values = next(iter(raw.items()))
    kind = AxisKind(domain)
    where = f"{where}.{kind}"
    if not isinstance(values, list) or not values:
        raise SweeperError(f"{path}: key {where!r}: must be a non-empty list, but got {values!r}")
    match kind:
        case AxisKind.GRID | AxisKind.CHOICE:
            if len({repr(v) for v in values}) != len(values):
                raise SweeperError(f"{path}: key {where!r}: values must be distinct, but got {values!r}")
        case AxisKind.UNIFORM | AxisKind.LOGUNIFORM | AxisKind.RANDINT:
            _check_range(path, where, key, kind, values, keys)
        case _:
            assert_never(kind)
    for v in values:
        _validate_value(path, where, key, v, keys)
    return Axis(key, kind, list(values), when)


def _check_range(path: Path, where: str, key: str, kind: AxisKind, values: list[Any], keys: Keys) -> None:
    """A random draw's [low, high]: two numbers (integers for randint), in order, positive for loguniform, and
    whole-numbered draws (randint) for a key that takes whole numbers."""
    whole = kind == AxisKind.RANDINT
    numeric = int if whole else (int, float)
    if len(values) != 2 or not all(isinstance(v, numeric) and not isinstance(v, bool) for v in values):
        kind_of = "integers" if whole else "numbers"
        raise SweeperError(f"{path}: key {where!r}: must be [low, high] {kind_of}, but got {values!r}")
    low, high = values
    if low > high:
        raise SweeperError(f"{path}: key {where!r}: `low <= high` must hold, but got (low={low}, high={high})")
    if kind == AxisKind.LOGUNIFORM and low <= 0:
        raise SweeperError(f"{path}: key {where!r}: `low > 0` must hold for loguniform, but got low={low}")
    if not whole and keys.whole(key):
        raise SweeperError(
            f"{path}: key {where!r}: {kind} draws fractions but {key!r} takes whole numbers; use randint"
        )


def _check_search(space: Space) -> None:
    """Rules of the search type and of repeats: every axis is drawn under random/TPE; repeats sets the seeds."""
    path = space.path
    if space.search != "grid":
        for axis in (a for a in space.axes if a.kind == AxisKind.GRID):
            raise SweeperError(
                f"{path}: key 'parameters.{axis.key}.grid': search type {space.search!r} draws every axis, so a "
                f"grid is never exhausted; use choice: {axis.values!r} (or search type grid)"
            )
    if space.variant_repeats and space.search != "grid":
        first = next(iter(space.variant_repeats))
        raise SweeperError(
            f"{path}: key 'variants[{list(space.variants).index(first)}].repeats': a variant's own repeats need "
            f"search type grid (search type {space.search!r} draws the variant); use the top-level repeats"
        )
    seed_axis = [f"parameters.{a.key}" for a in space.axes if a.key == "seed"]
    for i, variant in enumerate(space.variant_names()):
        n = space.repeats_of(variant)
        seeded = seed_axis + ([f"variant {variant!r}"] if "seed" in space.variants.get(variant or "", {}) else [])
        if n > 1 and seeded:
            key = f"variants[{i}].repeats" if variant in space.variant_repeats else "repeats"
            seeds = space.seeds(variant)
            which = "every configuration" if key == "repeats" else repr(variant)
            raise SweeperError(
                f"{path}: key {key!r}: repeats {n} trains {which}"
                f" with seeds {seeds[0]}..{seeds[-1]}, but {seeded[0]} sets the seed too; keep one of them"
            )


def _taken(space: Space, ref: str) -> list[Any] | Axis:
    """The values `ref` can take in this space (an Axis: any value it can draw)."""
    if ref == VARIANT:
        return list(space.variants)
    for axis in space.axes:
        if axis.key == ref:
            return axis
    values = [v[ref] for v in space.variants.values() if ref in v]
    if not space.variants or any(ref not in v for v in space.variants.values()):
            values.append(space.literals.get(ref, space.default_of.get(ref)))
    return values


def _check_conditions(space: Space) -> None:
    """Every `when` of a loaded space (spec/conditions.py): values its keys can take, no cycle, grid axes
    decidable at expansion."""
    path, keys = space.path, {a.key for a in space.axes}
    for axis in space.axes:
        for ref, allowed in axis.when.items():
            where = f"parameters.{axis.key}.when.{ref}"
            taken = _taken(space, ref)
            for value in allowed:
                ok = taken.contains(value) if not isinstance(taken, list) else any(same(value, v) for v in taken)
                if not ok:
                    shown = taken.describe() if not isinstance(taken, list) else ", ".join(map(repr, taken)) or "none"
                    raise SweeperError(f"{path}: key {where!r}: {ref!r} never takes {value!r} in this space "
                                       f"(it takes {shown})")
            ref_axis = None if isinstance(taken, list) else taken
            if space.spec.search.type == "grid" and axis.kind == AxisKind.GRID and ref_axis is not None \
                    and ref_axis.kind != AxisKind.GRID:
                raise SweeperError(
                    f"{path}: key {where!r}: a grid axis may only depend on literals, variants and grid axes, but "
                    f"{ref!r} is drawn at random ({ref_axis.kind}); make {ref!r} a grid axis or {axis.key!r} a choice"
                )
    try:
        topological([a.key for a in space.axes], {a.key: a.dependencies(keys, space.key_models) for a in space.axes})
    except ValueError as exc:
        first = str(exc).split(" -> ")[0]
        raise SweeperError(f"{path}: key 'parameters.{first}.when': conditions form a cycle: {exc}") from None


REFERENCE_METRICS = METRICS  # a variant's `reference` may name any of them


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


VARIANT_META = ("name", "reference", "repeats")  # a variant's keys that are not trial parameters


def _check_repeats(path: Path, where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweeperError(f"{path}: key {where + '.repeats'!r}: seeds for this variant, a whole number >= 1, "
                           f"but got {value!r}")


def _parse_variants(path: Path, raw: list[dict[str, Any]], axes: list[Axis], keys: Keys) -> dict[str, dict[str, Any]]:
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
        _check_repeats(path, where, entry.get("repeats", 1))
        values = {k: v for k, v in entry.items() if k not in VARIANT_META}
        for key, value in values.items():
            if key not in keys:
                raise keys.unknown(path, f"{where}.{key}", key, "unknown key")
            _validate_value(path, where, key, value, keys)
        clash = sorted(searched & set(values))
        if clash:
            raise SweeperError(
                f"{path}: key {where + '.' + clash[0]!r}: variant {name!r} fixes {clash[0]!r}, which "
                f"parameters also search; search it in one place only"
            )
        variants[name] = values
    return variants


MAX_CHECKED_TRIALS = 20_000


def _discrete(axis: Axis) -> list[Any] | None:
    """The draws of `axis` to check: its choice values, its randint bounds; None for a grid or continuous axis."""
    match axis.kind:
        case AxisKind.CHOICE:
            return axis.values
        case AxisKind.RANDINT:
            return sorted(set(axis.values))
        case AxisKind.GRID | AxisKind.UNIFORM | AxisKind.LOGUNIFORM:
            return None
        case _:
            assert_never(axis.kind)


def _discrete_options(space: Space) -> list[tuple[str, list[Any]]]:
    """Choice values and randint bounds: discrete draws a trial may get. Beyond MAX_CHECKED_TRIALS
    combinations, only the axes that shape the network."""
    drawn = [(a.key, _discrete(a)) for a in space.random_axes]
    options = [(k, v) for k, v in drawn if v is not None]
    if math.prod(len(v) for _, v in options) * len(space.grid_points()) > MAX_CHECKED_TRIALS:
        options = [(k, v) for k, v in options if k in ARCHITECTURE_KEYS or k in space.user_defaults]
    return options


def reachable_configs(space: Space) -> list[dict[str, Any]]:
    """Each grid point with each discrete draw it may get: the trials checked before anything runs (run/usercode.py
    builds each user model among them)."""
    options = _discrete_options(space)
    return [{**point, **dict(zip((k for k, _ in options), combo, strict=True))}
            for point in space.grid_points() for combo in itertools.product(*(v for _, v in options))]


def _check_trials(space: Space) -> None:
    """Every reachable trial must be buildable: each grid point with the discrete draws it may get. The CNN's layer
    plan is checked here for Fashion-MNIST's 28x28 images; with a data source, run/usercode.py builds every
    architecture at the data's shape instead."""
    for config in reachable_configs(space):
        try:
            params = space.trial_params(config)
            if space.data_source is None:
                check_feasible(params)
            if params.max_epochs and params.max_epochs > space.spec.epochs:
                raise ValueError(f"max_epochs {params.max_epochs} exceeds the sweep's epochs {space.spec.epochs}")
        except (ValueError, ValidationError) as exc:
            text = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            which = f"trial {config}" if config else "parameters"
            raise SweeperError(f"{space.path}: {which}: {text.removeprefix('Value error, ')}") from None


def load(path: str | Path, models: ModelResolver | None = None) -> Space:
    """Read and validate a search space file; raises SweeperError naming file, key and rule. `models`: what the
    space's `models:` factories take (run/usercode.py imports them; spec/usermodels.py's `recorded` reads
    sweep.json)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SweeperError(f"{path}: cannot read search space: {reason}") from None
    return load_text(text, path, models)


def load_text(text: str, path: Path, models: ModelResolver | None = None) -> Space:
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
    own = {**spec.models, **({TRAINABLE: spec.trainable} if spec.trainable else {})}
    if own and models is None:
        key = "models" if spec.models else "trainable"
        raise SweeperError(f"{path}: key {key!r}: your own code is read by the commands that run a sweep "
                           "(launch, resume, extend, export); this reader cannot import it")
    resolved = dict(models(own)) if own and models is not None else {}
    trainable = resolved.pop(TRAINABLE, None)
    keys = Keys(resolved, trainable)
    literals: dict[str, Any] = {}
    axes: list[Axis] = []
    for key, value in spec.parameters.items():
        if key not in keys:
            raise keys.unknown(path, f"parameters.{key}", key)
        if isinstance(value, dict):
            axes.append(_parse_axis(path, key, value, keys))
        else:
            _validate_value(path, "parameters", key, value, keys)
            literals[key] = value
    variants = _parse_variants(path, spec.variants, axes, keys)
    references = {v["name"]: v["reference"] for v in spec.variants if v.get("reference")}
    repeats = {v["name"]: v["repeats"] for v in spec.variants if "repeats" in v}
    space = Space(path=path, spec=spec, text=text, literals=literals, axes=axes, variants=variants,
                  references=references, variant_repeats=repeats, models=keys.models,
                  trainable=trainable)
    _check_search(space)
    _check_conditions(space)
    _check_trials(space)
    return space
