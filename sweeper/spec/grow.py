"""What `sweeper extend` may change in a sweep's search space: it adds trials, never alters those that ran.

Allowed: more num_samples or repeats, more grid values, choice values or variants, a new axis (the trials that ran
had its default), a literal that becomes an axis holding its value, other ranges for random draws, the draw seed,
and what never changes a trial (resources, max_concurrent, description, search.startup_trials). Refused, by name:
epochs, data, metric, mode, the declared metrics, your own loop (`trainable`) and models, scheduler, the search
type, a changed literal parameter, an axis's kind or `when`, an axis removed, a changed or removed variant, a
removed grid value, or fewer num_samples or repeats.
"""

from __future__ import annotations

from typing import Any

from sweeper.spec.conditions import same
from sweeper.spec.space import AxisKind, Space

FIXED_SETTINGS = ("epochs", "metric", "mode", "metrics", "trainable", "models", "scheduler", "data")


def _dump(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def refused(old: Space, new: Space) -> list[str]:
    """The keys whose change would alter the trials that ran (or shrink the sweep), in file order."""
    keys = [k for k in FIXED_SETTINGS if _dump(getattr(old.spec, k)) != _dump(getattr(new.spec, k))]
    if old.search != new.search:
        keys.append("search.type")
    for count in ("num_samples", "repeats"):
        if getattr(new.spec, count) < getattr(old.spec, count):
            keys.append(count)
    if old.spec.repeats > 1 and old.seeds()[0] != new.seeds()[0]:
        keys.append("parameters.seed")
    new_axes = {a.key: a for a in new.axes}
    for key in dict.fromkeys([*old.literals, *new.literals]):
        before = old.literals.get(key, old.default_of.get(key))
        if key in new.literals:
            kept = same(before, new.literals[key])
        else:  # a literal that became an axis keeps the trials that ran if it can still take their value
            kept = key in new_axes and new_axes[key].contains(before) and not new_axes[key].when
        if not kept and not (key == "seed" and "parameters.seed" in keys):
            keys.append(f"parameters.{key}")
    for axis in old.axes:
        grown = new_axes.get(axis.key)
        if grown is None or grown.kind != axis.kind:
            keys.append(f"parameters.{axis.key}")
        elif grown.when != axis.when:
            keys.append(f"parameters.{axis.key}.when")
        elif axis.kind == AxisKind.GRID and not all(any(same(v, w) for w in grown.values) for v in axis.values):
            keys.append(f"parameters.{axis.key}.grid")
    for name, values in old.variants.items():
        if name not in new.variants or new.variants[name] != values:
            keys.append(f"variants.{name}")
    return list(dict.fromkeys(keys))
