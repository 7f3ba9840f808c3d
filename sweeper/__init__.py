"""sweeper: YAML search spaces -> Ray Tune sweeps of PyTorch trials -> Parquet -> reports.

Packages, imports pointing down (import-linter keeps it so; nothing imports this root module back):
`cli` -> {`watch`, `report`, `run`} -> `store` -> `spec` -> `errors`, with `version` at the very bottom. Each
package's docstring names its modules and what it may import; `testing` is the test harness (a local Ray cluster),
which the package never imports.

`import sweeper` stays light: `load_model` imports torch only when called; `sweeper.Dataset` (what a data source
of your own returns) and `sweeper.TrialContext` (what your own loop is called with, for type hints) are imported
from sweeper/run/training on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.version import __version__

if TYPE_CHECKING:
    import torch

    from sweeper.run.training.context import TrialContext
    from sweeper.run.training.sources import Dataset

__all__ = ["Dataset", "TrialContext", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """`sweeper.Dataset` and `sweeper.TrialContext`, imported on first use (numpy, torch and the training package
    stay out of `import sweeper`)."""
    if name == "Dataset":
        from sweeper.run.training.sources import Dataset

        return Dataset
    if name == "TrialContext":
        from sweeper.run.training.context import TrialContext

        return TrialContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(path: str | Path) -> torch.nn.Module:
    """The PyTorch model a `sweeper export` folder holds (eval mode, CPU), rebuilt from its model.json and
    model.safetensors: no pickle, no Ray. A built-in model is JSON and weights only; an export of your own model
    imports and runs your factory's module (model.json names it). A folder that is not a valid export raises
    sweeper.errors.SweeperError."""
    from sweeper.run.training.loading import load_model as load

    return load(path)
