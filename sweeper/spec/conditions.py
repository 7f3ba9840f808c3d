"""Conditional keys: `when` on a searched key, and the model-family keys that only some models use.

    momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}      # drawn (or gridded) only for SGD trials
    dense: {grid: [[], [128]], when: {variant: [wide, deep]}}   # `variant` names the variants it applies to

`when` maps keys to a value or a list of values, and every one of them must hold (a list-valued key such as
`hidden` takes a list of lists). A key named there may be a literal parameter, a key that variants set,
`variant`, or another searched key. A key whose condition fails is off: the trial keeps its default, trials.parquet
records null, random and TPE search never draw it, and it does not multiply a grid. A `when` naming a key that
is off does not hold. Keys of one model family (conv_layers, filters, kernel_size, padding, pooling, pool_every,
dense: cnn; hidden: mlp; dropout: mlp and cnn) are conditional on `model` by construction.

Checked before anything runs (one line each): an unknown key, a value the key can never take, a cycle, a `when`
on a literal or on `model`, and, under grid search, a grid axis that depends on a randomly drawn key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError, did_you_mean
from sweeper.spec.params import KEY_MODELS, PARAM_KEYS, TrialFields

if TYPE_CHECKING:
    from sweeper.spec.space import Axis, Space

VARIANT = "variant"  # a `when` key: the variant's name
DEFAULTS: dict[str, Any] = {k: f.default for k, f in TrialFields.model_fields.items()}
When = dict[str, tuple[Any, ...]]


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind: 0 and 0.0 are the same value, True and 1 are not."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def parse_when(path: Path, where: str, key: str, raw: Any) -> When:
    """`when:` of the axis at `where` (parameters.KEY): a mapping of key -> value or list of values."""
    where = f"{where}.when"
    if key == "model":
        raise SweeperError(f"{path}: key {where!r}: the model family cannot be conditional; other keys depend on it")
    if not isinstance(raw, dict) or not raw:
        raise SweeperError(f"{path}: key {where!r}: a mapping of key -> value or list of values, but got {raw!r}")
    when: When = {}
    for ref, allowed in raw.items():
        if not isinstance(ref, str) or (ref not in PARAM_KEYS and ref != VARIANT):
            hint = did_you_mean(str(ref), [*PARAM_KEYS, VARIANT])
            raise SweeperError(f"{path}: key '{where}.{ref}': unknown key{hint}; `when` names a trial key or variant")
        if ref == key:
            raise SweeperError(f"{path}: key '{where}.{ref}': a key cannot depend on itself (a cycle)")
        values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        if not values:
            raise SweeperError(f"{path}: key '{where}.{ref}': must name at least one value, but got []")
        when[ref] = values
    return when


def topological(keys: list[str], deps: Mapping[str, Iterable[str]]) -> list[str]:
    """`keys` ordered so that each comes after the keys it depends on (stable otherwise); ValueError naming a
    cycle, e.g. "a -> b -> a"."""
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(key: str, trail: list[str]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "open":
            cycle = [*trail[trail.index(key):], key]
            raise ValueError(" -> ".join(cycle))
        state[key] = "open"
        for dep in deps.get(key, ()):
            if dep in keys:
                visit(dep, [*trail, key])
        state[key] = "done"
        done.append(key)

    for key in keys:
        visit(key, [])
    return done


def dependencies(axis: Axis, axis_keys: set[str]) -> set[str]:
    """The searched keys an axis's condition reads: its `when` keys, and `model` for a model-family key."""
    refs = set(axis.when) | ({"model"} if axis.key in KEY_MODELS else set())
    return refs & axis_keys


def contains(axis: Axis, value: Any) -> bool:
    if axis.kind in ("grid", "choice"):
        return any(same(value, v) for v in axis.values)
    if isinstance(value, bool) or not isinstance(value, int | float) or (axis.kind == "randint"
                                                                        and not isinstance(value, int)):
        return False
    return bool(axis.values[0] <= value <= axis.values[1])


def _taken(space: Space, ref: str) -> list[Any] | Axis:
    """The values `ref` can take in this space (an Axis: any value it can draw)."""
    if ref == VARIANT:
        return list(space.variants)
    for axis in space.axes:
        if axis.key == ref:
            return axis
    values = [v[ref] for v in space.variants.values() if ref in v]
    if not space.variants or any(ref not in v for v in space.variants.values()):
        values.append(space.literals.get(ref, DEFAULTS[ref]))
    return values


def check(space: Space) -> None:
    """Every `when` of a loaded space: values its keys can take, no cycle, grid axes decidable at expansion."""
    path, keys = space.path, {a.key for a in space.axes}
    for axis in space.axes:
        for ref, allowed in axis.when.items():
            where = f"parameters.{axis.key}.when.{ref}"
            taken = _taken(space, ref)
            for value in allowed:
                ok = contains(taken, value) if not isinstance(taken, list) else any(same(value, v) for v in taken)
                if not ok:
                    shown = taken.describe() if not isinstance(taken, list) else ", ".join(map(repr, taken)) or "none"
                    raise SweeperError(f"{path}: key {where!r}: {ref!r} never takes {value!r} in this space "
                                       f"(it takes {shown})")
            ref_axis = None if isinstance(taken, list) else taken
            if space.spec.search.type == "grid" and axis.kind == "grid" and ref_axis is not None \
                    and ref_axis.kind != "grid":
                raise SweeperError(
                    f"{path}: key {where!r}: a grid axis may only depend on literals, variants and grid axes, but "
                    f"{ref!r} is drawn at random ({ref_axis.kind}); make {ref!r} a grid axis or {axis.key!r} a choice"
                )
    try:
        topological([a.key for a in space.axes], {a.key: dependencies(a, keys) for a in space.axes})
    except ValueError as exc:
        first = str(exc).split(" -> ")[0]
        raise SweeperError(f"{path}: key 'parameters.{first}.when': conditions form a cycle: {exc}") from None
