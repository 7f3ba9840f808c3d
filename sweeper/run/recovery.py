"""The search algorithm a random or TPE sweep runs under: Ray Tune's SearchGenerator around the sweep's searcher,
made on restore to agree with the trials Ray restored.

Ray saves its experiment state (the trials), the generator's state (its trial count, the concurrency limiter's
live trials) and the searcher's state (SweepSearch: its budget, Optuna's study) as separate files, and uploads
them to the sweep's folder in the background. A driver killed during an upload leaves some newer than the others:
a trial count that includes a trial Ray never saved (the sweep would end one trial short), a concurrency slot held
for it forever, or a searcher that never handed out a trial Ray will run. After Ray restores them, the limiter and
the searcher are told which unfinished trials Ray restored (its newest experiment state, as Ray picked it), and
the trial count is set to the searcher's budget spent.
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

from ray.tune.search import SearchAlgorithm, Searcher, SearchGenerator

from sweeper.run.searcher import SweepLimiter, searcher_of

STATE_FILES = "experiment_state-*.json"  # Ray's experiment state, one per session; the newest name is the latest
ENDED = ("TERMINATED", "ERROR")  # the statuses of a trial Ray will not run again


def newest_state(names: list[str]) -> str | None:
    """The experiment state Ray restores from, among the files `names` of an experiment folder."""
    matching = [n for n in names if fnmatch.fnmatch(n, STATE_FILES)]
    return max(matching) if matching else None


def restored_unfinished(saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trials an experiment state holds that Ray will run on: id -> config. (Before a resume, extend.py's
    reconcile marks ended there every trial that ended in trials.parquet.)"""
    trials = (json.loads(entry[0]) for entry in saved.get("trial_data", []))
    return {t["trial_id"]: t.get("config") or {} for t in trials if t.get("status") not in ENDED}


class SweepGenerator(SearchGenerator):
    """Ray's SearchGenerator, restored in agreement with the trials Ray restored (see the module's text)."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        inner = searcher_of(self.searcher)
        name = newest_state(os.listdir(dirpath))
        if inner is None or name is None:
            return
        with open(os.path.join(dirpath, name)) as f:
            live = restored_unfinished(json.load(f))
        if isinstance(self.searcher, SweepLimiter):
            self.searcher.agree_with(live)
        inner.agree_with(live)
        self._counter = inner.spent
        self._finished = False  # the searcher says FINISHED again if its budget is spent


def generator(search_alg: Searcher | SearchAlgorithm) -> SearchAlgorithm:
    """A searcher under a SweepGenerator; a search algorithm (a generator already) as it is."""
    return SweepGenerator(search_alg) if isinstance(search_alg, Searcher) else search_alg
