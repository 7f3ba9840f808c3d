"""Sweeps launched before run/ had rooms: Ray's saved experiment pickles name the old flat module paths, and a
checkpoint's progress was once a pickled class under run/trainable.py; both still load."""

from __future__ import annotations

import importlib
import io
import pickle

import pytest
import torch

import sweeper.run  # noqa: F401 - installs the old paths
from sweeper.run.renamed import RENAMED
from sweeper.run.training.loop import Progress, load_checkpoint


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_an_old_module_path_is_the_module_that_holds_its_code_now(old: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(RENAMED[old])


def test_a_pickle_naming_an_old_path_loads_the_class_it_names_now() -> None:
    from sweeper.run.recovery import SweepGenerator
    from sweeper.run.search.searcher import SweepSearch

    assert pickle.loads(b"csweeper.run.searcher\nSweepSearch\n.") is SweepSearch
    assert pickle.loads(b"csweeper.run.generator\nSweepGenerator\n.") is SweepGenerator


def test_a_checkpoint_whose_progress_was_pickled_under_the_old_path_loads() -> None:
    buffer = io.BytesIO()
    Progress.__module__ = "sweeper.run.trainable"  # as a checkpoint written by sweeper 0.1 names it
    try:
        torch.save({"progress": Progress(3, 0.5, 1)}, buffer)
    finally:
        Progress.__module__ = "sweeper.run.training.loop"
    assert b"sweeper.run.trainable" in buffer.getvalue()
    buffer.seek(0)
    assert Progress.of(load_checkpoint(buffer)["progress"]) == Progress(3, 0.5, 1)
