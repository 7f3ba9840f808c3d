"""sweeper: YAML search spaces -> Ray Tune sweeps of PyTorch trials -> Parquet -> reports.

`import sweeper` stays light: `load_model` imports torch only when called.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"


def load_model(path: str | Path) -> torch.nn.Module:
    """The PyTorch model a `sweeper export` folder holds (eval mode, CPU), rebuilt from its model.json and
    model.safetensors: no pickle, no Ray. A folder that is not a valid export raises sweeper.errors.SweeperError."""
    # Imported by name at call time: every package imports `sweeper` (for __version__), and none may depend on run.
    export = importlib.import_module("sweeper.run.export")
    model: torch.nn.Module = export.load_model(path)
    return model
