"""The search algorithm a grid sweep runs under: Ray's grid generator (BasicVariantGenerator) as `SweepVariants`,
restored in agreement with the trials Ray restored; and what it reads of Ray's saved experiment state for that
(`newest_state`, `state_ids`, `restored_unfinished`: run/recovery.py's rules read them too).

plans.py builds every grid sweep's generator as a SweepVariants, so the Tuner's pickle (tuner.pkl) names this class
by its module path and a resume unpickles one (a sweep launched before then pickled a plain BasicVariantGenerator:
run/recovery.py's `restore_tuner` turns it into one). Moved, its old path must stay importable (run/renamed.py);
its first home, run/recovery.py, still holds the name.
"""

from __future__ import annotations

import copy
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


def state_ids(saved: dict[str, Any]) -> list[str]:
    """The ids of every trial an experiment state holds, ended or not."""
    return [json.loads(entry[0])["trial_id"] for entry in saved.get("trial_data", [])]


def restored_unfinished(saved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The trials an experiment state holds that Ray will run on: id -> config. (run/recovery.py's `reconcile` has
    marked ended there every trial that ended in trials.parquet.)"""
    trials = (json.loads(entry[0]) for entry in saved.get("trial_data", []))
    return {t["trial_id"]: t.get("config") or {} for t in trials if t.get("status") not in ENDED}


class SweepVariants(BasicVariantGenerator):
    """Ray's grid generator (grid search), restored in agreement with the trials Ray restored. Ray uploads the
    generator's state and its experiment state as separate files, so a killed driver can leave either one ahead:
    - a `max_concurrent` slot is held for exactly the unfinished trials Ray restored: a trial that ended after the
      generator's snapshot would hold its slot forever, and the resumed sweep would wait for it (until Ray's own
      600 s timeout);
    - a generator behind the experiment state would plan again a trial Ray restored (or that ended in
      trials.parquet) under the same id: two trials of one id, and Ray's controller waits on them forever. Such a
      trial is skipped (`next_trial`);
    - a generator ahead of it planned trials Ray never saved (run/recovery.py's `reconcile` dropped them): their
      grid points are planned again, under new ids.
    `recorded`: the ids trials.parquet holds (run/recovery.py's `restore_tuner` sets them before Ray restores)."""

    recorded: frozenset[str] = frozenset()
    _taken: frozenset[str] = frozenset()  # ids this generator must not hand out again (set on restore)

    def restore_from_dir(self, dirpath: str) -> None:
        recorded = self.recorded  # the restored state holds a past session's
        super().restore_from_dir(dirpath)
        self.recorded = recorded
        name = newest_state(os.listdir(dirpath))
        if name is None:
            return
        with open(os.path.join(dirpath, name)) as f:
            saved = json.load(f)
        live = restored_unfinished(saved)
        self._live_trials = {t for t in self._live_trials if t in live}
        self._taken = frozenset(state_ids(saved)) | recorded
        if self._replan_lost():
            self._finished = False  # it may have handed out its last point before the kill

    def _replan_lost(self) -> int:
        """Put back at the front of the plan every grid point whose trial the generator handed out but no saved
        file holds. Returns how many. (Each point is one trial, named `<prefix><counter>` in order.)"""
        if len(self._iterators) != 1:
            return 0
        it = self._iterators[0]
        done = it.num_points_to_evaluate - len(it.points_to_evaluate)
        start = it.counter - done
        if start < 0 or done > len(self._points_to_evaluate) or (it.variants is not None and it.variants.has_next()):
            return 0  # not a plan of one trial per point: left as Ray restored it
        lost = [k for k in range(done) if f"{it.uuid_prefix}{start + k:05d}" not in self._taken]
        it.points_to_evaluate[:0] = [copy.deepcopy(self._points_to_evaluate[k]) for k in lost]
        it.num_samples_left += len(lost)
        return len(lost)

    def next_trial(self) -> Any:
        while True:
            trial = super().next_trial()
            if trial is None or trial.trial_id not in self._taken:
                return trial
            self._live_trials.discard(trial.trial_id)  # Ray restored it (or it ended): not a second one
