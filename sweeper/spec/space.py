"""A validated search space: its axes, variants and literals, the grid it expands to, and one trial's params.

Every trial is one variant (or the implicit base when there are none) x one point of the grid x `num_samples`
draws of the random axes. A variant's keys override literal parameters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.spec.params import TrialParams
from sweeper.spec.schema import SweepSpec


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
