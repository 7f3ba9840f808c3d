"""The search algorithm a grid sweep runs under: Ray's grid generator (BasicVariantGenerator) as `SweepVariants`,
restored holding `max_concurrent` slots only for the trials Ray restored; and what it reads of Ray's saved
experiment state for that (`newest_state`, `restored_unfinished`: run/recovery.py's rules read them too).

plans.py builds every grid sweep's generator as a SweepVariants, so the Tuner's pickle (tuner.pkl) names this class
by its module path and a resume unpickles one (a sweep launched before then pickled a plain BasicVariantGenerator:
run/recovery.py's `restore_tuner` turns it into one). Moved, its old path must stay importable (run/renamed.py);
its first home, run/recovery.py, still holds the name.
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

from ray.tune.search import BasicVariantGenerator

STATE_FILES = "experiment_state-*.json"  # Ray's experiment state, one per session; the newest name is the latest
ENDED = ("TERMINATED", "ERROR")  # the statuses of a trial Ray will not run again


def newest_state(names: list[str]) -> str | None:
    """The experiment state Ray restores from, among the files `names` of an experiment folder."""
    matching = [n for n in names if fnmatch.fnmatch(n, STATE_FILES)]
    return max(matching) if matching else None


def restored_unfinished(saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trials an experiment state holds that Ray will run on: id -> config. (run/recovery.py's `reconcile` has
    marked ended there every trial that ended in trials.parquet.)"""
    trials = (json.loads(entry[0]) for entry in saved.get("trial_data", []))
    return {t["trial_id"]: t.get("config") or {} for t in trials if t.get("status") not in ENDED}


class SweepVariants(BasicVariantGenerator):
    """Ray's grid generator (grid search), restored holding a `max_concurrent` slot for exactly the unfinished trials
    Ray restored: a trial that ended after the generator's snapshot would hold its slot forever, and the resumed
    sweep would wait for it (until Ray's own 600 s timeout)."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        name = newest_state(os.listdir(dirpath))
        if name is None:
            return
        with open(os.path.join(dirpath, name)) as f:
            live = restored_unfinished(json.load(f))
        self._live_trials = {t for t in self._live_trials if t in live}
