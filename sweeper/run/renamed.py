"""The module paths of sweeper 0.1's flat run/ package, for the pickles that name them: a sweep launched before
run/ had rooms keeps its Tuner, trainable, recorder and searcher in Ray's saved experiment under those paths, and
`sweeper resume` must still find them. Importing an old path gives the module that now holds its code."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

RENAMED = {  # old module -> its home now (run/search.py and run/calibrate.py are packages of the same name now)
    "sweeper.run.data": "sweeper.run.training.data",
    "sweeper.run.models": "sweeper.run.training.models",
    "sweeper.run.augment": "sweeper.run.training.augment",
    "sweeper.run.schedules": "sweeper.run.training.schedules",
    "sweeper.run.trainable": "sweeper.run.training.loop",
    "sweeper.run.export": "sweeper.run.training.export",
    "sweeper.run.remote": "sweeper.run.trial",
    "sweeper.run.searcher": "sweeper.run.search.searcher",
    "sweeper.run.generator": "sweeper.run.recovery",
    "sweeper.run.tuner": "sweeper.run.driver.tuner",
    "sweeper.run.recorder": "sweeper.run.driver.recorder",
    "sweeper.run.startup": "sweeper.run.driver.startup",
    "sweeper.run.cluster": "sweeper.run.driver.cluster",
    "sweeper.run.raylog": "sweeper.run.driver.raylog",
    "sweeper.run.loadgen": "sweeper.run.calibrate.load",
}


class _Renamed(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module that holds its code now (the same module object)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
                  ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in RENAMED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(RENAMED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module is the new one, already imported."""


def install() -> None:
    if not any(isinstance(f, _Renamed) for f in sys.meta_path):
        sys.meta_path.append(_Renamed())
