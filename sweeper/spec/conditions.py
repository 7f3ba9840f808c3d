"""Conditional keys: `when` on a searched key, and the model-family keys that only some models use.

    momentum: {choice: [0.0, 0.9], when: {optimizer: sgd}}      # drawn (or gridded) only for SGD trials
    dense: {grid: [[], [128]], when: {variant: [wide, deep]}}   # `variant` names the variants it applies to

`when` maps keys to a value or a list of values, and every one of them must hold (a list-valued key such as
`hidden` takes a list of lists). A key named there may be a literal parameter, a key that variants set,
`variant`, or another searched key. A key whose condition fails is off: the trial keeps its default, trials.parquet
records null, random and TPE search never draw it, and it does not multiply a grid. A `when` naming a key that
is off does not hold. Keys of one model family (conv_layers, filters, kernel_size, padding, pooling, pool_every,
dense: cnn; hidden: mlp; dropout: mlp and cnn) are conditional on `model` by construction.

Checked before anything runs (one line each): here, as `when` is parsed, an unknown key and a `when` on `model`;
when the space loads (loader.py), a `when` on a literal, a value the key can never take, a cycle, and, under grid
search, a grid axis that depends on a randomly drawn key. This module knows no Axis or Space (space.py builds on
it): an axis's own `contains` and `dependencies` are Axis methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError, did_you_mean
from sweeper.spec.params import PARAM_KEYS, TrialFields

VARIANT = "variant"  # a `when` key: the variant's name
DEFAULTS: dict[str, Any] = {k: f.default for k, f in TrialFields.model_fields.items()}
When = dict[str, tuple[Any, ...]]


def same(a: Any, b: Any) -> bool:
    """Equal values of the same kind: 0 and 0.0 are the same value, True and 1 are not."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def parse_when(path: Path, where: str, key: str, raw: Any, known: Iterable[str] = PARAM_KEYS) -> When:
    """`when:` of the axis at `where` (parameters.KEY): a mapping of key -> value or list of values. `known`: the
    trial keys of the space (its user models' keys too)."""
    known = tuple(known)
    where = f"{where}.when"
    if key == "model":
        raise SweeperError(f"{path}: key {where!r}: the model family cannot be conditional; other keys depend on it")
    if not isinstance(raw, dict) or not raw:
        raise SweeperError(f"{path}: key {where!r}: a mapping of key -> value or list of values, but got {raw!r}")
    when: When = {}
    for ref, allowed in raw.items():
        if not isinstance(ref, str) or (ref not in known and ref != VARIANT):
            hint = did_you_mean(str(ref), [*known, VARIANT])
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
