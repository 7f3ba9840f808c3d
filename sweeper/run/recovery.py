"""Every rule that makes a resumed sweep agree with the files on disk, in the order a resume applies them.

A driver killed at any moment leaves Ray's saved experiment (its experiment state, the generator's and the
searcher's states, the trials' checkpoints, each uploaded separately and in the background) a little behind, or
ahead, of trials.parquet and epochs.parquet, which the recorder writes as results arrive. Before Ray restores:
- `set_aside_torn`: an experiment state a kill left empty or cut (Ray writes it in place) is set aside, so Ray
  restores the newest whole one instead of silently starting the experiment over;
- `reconcile`: a trial that ended in trials.parquet is marked ended in Ray's experiment state; an unfinished trial
  the state does not hold is dropped (its rows and Ray's folder), so the searcher plans it again;
- `backfill`: epochs Ray logged in a trial's result.json, or its checkpoints carry, that never reached
  epochs.parquet are added;
- `repair_checkpoints`: a checkpoint the experiment state names that Ray deleted, or left without a state.pt that
  loads, is replaced by the newest whole one (or the trial starts over), and the trial's row says so.
While Ray restores (`SweepGenerator`, the search algorithm every random or TPE sweep runs under):
- `adopt_recorded`: the searcher learns the trials that ended in trials.parquet after its last snapshot;
- `SweepVariants` (grid search; run/search/variants.py, every grid sweep's generator): Ray's generator holds
  `max_concurrent` slots only for the trials Ray restored, never hands out again an id Ray restored or
  trials.parquet holds (its state may be behind the experiment state), and plans again the points of trials it
  handed out that neither holds (its state may be ahead);
- `agree`: the searcher and the concurrency limiter agree with the unfinished trials Ray restored: a trial Ray
  lost goes back to the budget (a replicate's seed to its configuration), a trial the searcher never handed
  out counts and is learnt when it ends, and the generator's trial count is the budget spent.
`restore_tuner` runs the whole sequence and hands back the Tuner; `prepare_resume` is the part before Ray starts.
"""

from __future__ import annotations

import fnmatch
import io
import json
import os
import posixpath
import zipfile
from dataclasses import dataclass
from typing import Any

from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher, SearchGenerator

from sweeper.errors import SweeperError
from sweeper.run.driver.loggers import file_loggers
from sweeper.run.driver.recorder import ParquetRecorder
from sweeper.run.driver.tuner import trainable
from sweeper.run.history import HISTORY_FILE, parse
from sweeper.run.search.searcher import SweepLimiter, SweepSearch, searcher_of
from sweeper.run.search.variants import (  # SweepVariants: importable from here too, its first home
    ENDED,
    STATE_FILES,
    SweepVariants,
    newest_state,
    restored_unfinished,
)
from sweeper.run.training.data import Splits
from sweeper.spec.space import Space
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.schema import PARAM_PREFIX
from sweeper.store.state import sessions
from sweeper.store.storage import SweepFolder
from sweeper.store.trials import Errored, ended_of
from sweeper.store.writer import ResultsWriter

CHECKPOINT_PREFIX = "checkpoint_"  # Ray's checkpoint folders in a trial's folder: checkpoint_000000, ...


def is_whole(runs: SweepFolder, name: str) -> bool:
    """Whether experiment state `name` in `runs` is one Ray can restore from: it parses as JSON (a kill while Ray
    wrote it in place leaves it empty or cut short)."""
    try:
        json.loads(runs.read_bytes(name) or b"")
    except ValueError:
        return False
    return True


TORN = ".torn"  # the suffix of an experiment state set aside as unreadable (kept, for a post-mortem)


def set_aside_torn(runs: SweepFolder) -> list[str]:
    """Ray writes its experiment state in place and uploads it in the background, so a kill can leave the newest
    one empty or cut short; Ray would then fail to parse it, say so only in its log, and start the experiment over
    with a fresh searcher (running the whole budget again). Each such file is renamed `<name>.torn` so Ray restores
    the newest whole one (`reconcile` then makes it agree with trials.parquet). Returns the files set aside; none
    whole left is a SweeperError."""
    aside: list[str] = []
    while (newest := newest_state(runs.list())) is not None:
        if is_whole(runs, newest):
            return aside
        fs, path = runs.fs_path(newest)
        fs.move(path, path + TORN)
        aside.append(newest)
    if aside:
        raise SweeperError(f"{runs.uri(aside[0])}: Ray's experiment state is empty or cut short (the driver was killed "
                           "while Ray wrote it) and no earlier one is whole, so Ray cannot restore this sweep; its "
                           "results so far are in trials.parquet and epochs.parquet (set aside as "
                           f"{aside[0]}{TORN})")
    return aside


def whole_state(runs: SweepFolder) -> bool:
    """Whether Ray saved an experiment state in `runs` that it can restore from (one that parses as JSON). A driver
    killed before Ray's first snapshot, or while it wrote its only one, leaves none."""
    names = sorted((n for n in runs.list() if fnmatch.fnmatch(n, STATE_FILES)), reverse=True)  # newest first
    return any(is_whole(runs, name) for name in names)


def reconcile(folder: SweepFolder, runs: SweepFolder) -> tuple[list[str], list[str]]:
    """Make Ray's saved experiment state (its last snapshot, which a killed driver may have taken a little before
    trials.parquet's last write) agree with trials.parquet.

    A trial that ended in trials.parquet but is unfinished in the snapshot is marked TERMINATED there (ERROR if it
    failed, so `resume --errored` still decides on it), so Ray does not run it further (an ASHA-stopped trial
    would otherwise go on from its checkpoint). An unfinished trial the snapshot does not hold (started after it)
    is dropped, its epochs and Ray's folder with it: the searcher suggests a new one under a new id (grid search:
    Ray's generator plans it again). Trials that ended stay; a random or TPE searcher adopts those it missed
    (`adopt_recorded`). Returns (the trials marked ended, the trials dropped)."""
    newest = newest_state(runs.list())  # as Ray picks it
    if newest is None:  # no experiment state: Tuner.restore says so in its own words
        return [], []
    saved = json.loads(runs.read_bytes(newest) or b"{}")
    writer = ResultsWriter(folder)
    known, ended = set(), []
    for entry in saved.get("trial_data", []):
        trial = json.loads(entry[0])
        known.add(trial["trial_id"])
        row = writer.trials.get(trial["trial_id"])
        if row is not None and ended_of(row).finished and trial.get("status") not in ENDED:
            trial["status"] = "ERROR" if row.get("state") == "ERROR" else "TERMINATED"  # --errored decides on it
            entry[0] = json.dumps(trial, indent=2)
            ended.append(trial["trial_id"])
    if ended:
        runs.write_bytes(newest, json.dumps(saved).encode())
    lost = {i for i, row in writer.trials.items() if i not in known and not ended_of(row).finished}
    if lost:
        writer.drop(lost)
        writer.flush()
        fs, base = runs.fs_path()
        for entry_name in runs.list(folders_only=True):
            if any(f"_{i}_" in entry_name for i in lost):
                fs.delete_dir(posixpath.join(base, entry_name))
    return sorted(ended), sorted(lost)


def backfill(folder: SweepFolder, runs: SweepFolder, run_state: dict[str, Any]) -> int:
    """Epochs a killed driver reported but had not yet written: Ray's per-trial result.json has them once it
    reached storage, and each checkpoint's history.jsonl has every epoch up to its own (run/history.py), so a trial
    that goes on from its checkpoint never goes on after an epoch no file records. They are filed under the last
    session (the one that was killed). Returns how many epochs were added."""
    writer = ResultsWriter(folder, session=len(sessions(run_state)))  # the session about to start
    before = len(writer.epochs)
    for entry in runs.list(folders_only=True):  # one per trial
        trial = SweepFolder(runs.storage, f"{runs.name}/{entry}")
        logs = ["result.json"] + [f"{c}/{HISTORY_FILE}" for c in trial.list(folders_only=True)
                                  if c.startswith(CHECKPOINT_PREFIX)]
        for log in logs:
            for result in parse(trial.read_bytes(log)):
                writer.backfill(result["trial_id"], result)
    writer.flush()
    return len(writer.epochs) - before


CHECKPOINT_FILE = "state.pt"  # in each checkpoint folder, as run/training/loop.py and context.py write it


@dataclass(frozen=True)
class CheckpointRepair:
    """A trial whose checkpoint named in Ray's saved experiment state could not be restored, and what was done."""

    trial_id: str
    trial_folder: str  # the trial's folder in the experiment (its name)
    named: str  # the checkpoint folder the saved state names
    flaw: str  # what was wrong with it ("was deleted", "has no state.pt", ...)
    used: str | None  # the whole checkpoint copied under its name; None: none was whole, the trial starts over

    def __str__(self) -> str:
        return f"{self.trial_folder}/{self.named}"

    @property
    def note(self) -> str:
        """What trials.parquet's `restore_note` says (its `restored_from` says from which epoch it went on)."""
        if self.used is None:
            return f"started over: its checkpoint {self.named} {self.flaw} and no other checkpoint was whole"
        return f"went on from {self.used}: its checkpoint {self.named} {self.flaw}"


def checkpoint_flaw(fs: Any, path: str) -> str | None:
    """Why the checkpoint folder at `path` cannot be restored, or None if it is whole: it must exist and hold a
    state.pt that is a whole torch.save archive (a zip whose every member's CRC checks out; checked without torch,
    which the driver never imports), as a cut upload or an interrupted delete leaves it otherwise."""
    import pyarrow.fs as pafs

    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return "was deleted"
    state = posixpath.join(path, CHECKPOINT_FILE)
    try:
        with fs.open_input_stream(state) as fh:
            data = fh.read()
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or "not found" in str(exc).lower() or "does not exist" in str(exc):
            return f"has no {CHECKPOINT_FILE}"
        raise
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if archive.testzip() is None and any(n.endswith("/data.pkl") for n in archive.namelist()):
                return None
    except (zipfile.BadZipFile, OSError, EOFError):
        pass
    return f"has a {CHECKPOINT_FILE} that does not load (cut short or damaged)"


def repair_checkpoints(folder: SweepFolder) -> list[CheckpointRepair]:
    """Make every checkpoint that Ray's saved experiment state names for an unfinished trial restorable.

    Ray keeps one checkpoint per trial (num_to_keep=1): it deletes the previous one the moment the next is
    registered, and writes the experiment state that names the new one only afterwards (at the end of that
    step, uploaded in the background). A driver killed in between leaves a state naming a deleted checkpoint, or,
    on an object store, where a folder is deleted file by file, a folder without its state.pt; a cut upload or a
    damaged file leaves a state.pt that does not load (`checkpoint_flaw`). Resuming as it is would end that trial in
    ERROR. Instead it goes on from the newest whole checkpoint:
    - a later one: the first whole one after the named one (each one's deletion means the next was registered,
      so the first whole one is the newest Ray registered; any after it never were, and may be cut short);
    - else an earlier one, the newest whole;
    - else none: the trial starts over (its checkpoint is taken out of the saved state).
    The whole checkpoint is copied under the named one's name (it holds its own epoch count, so the trial goes on
    from that epoch: `restored_from`), and a torn named folder is replaced. Returns what was done, per trial."""
    import pyarrow.fs as pafs
    from ray.tune import ExperimentAnalysis

    fs, base = folder.fs_path()
    try:
        trials = ExperimentAnalysis(base, storage_filesystem=fs).trials
    except Exception:  # noqa: BLE001 - no readable experiment state: Tuner.restore says so in its own words
        return []
    repairs = []
    for trial in trials:
        checkpoint = trial.checkpoint
        if checkpoint is None or trial.status == "TERMINATED":  # Ray will not run an ended trial again
            continue
        named_path = checkpoint.path.rstrip("/")
        trial_dir, named = posixpath.split(named_path)
        if not named.startswith(CHECKPOINT_PREFIX):
            continue
        flaw = checkpoint_flaw(fs, named_path)
        if flaw is None:
            continue
        others = sorted(e.base_name for e in fs.get_file_info(pafs.FileSelector(trial_dir, allow_not_found=True))
                        if e.type == pafs.FileType.Directory and e.base_name.startswith(CHECKPOINT_PREFIX)
                        and e.base_name != named)
        order = [n for n in others if n > named] + [n for n in reversed(others) if n < named]
        used = next((n for n in order if checkpoint_flaw(fs, posixpath.join(trial_dir, n)) is None), None)
        if fs.get_file_info(named_path).type == pafs.FileType.Directory:
            fs.delete_dir(named_path)  # torn: replaced whole, or (none whole) no longer named
        if used is not None:
            fs.create_dir(named_path, recursive=True)  # local filesystems copy into existing folders only
            pafs.copy_files(posixpath.join(trial_dir, used), named_path, source_filesystem=fs,
                            destination_filesystem=fs)
        repairs.append(CheckpointRepair(trial.trial_id, posixpath.basename(trial_dir), named, flaw, used))
    _start_over(folder, {r.trial_id for r in repairs if r.used is None})
    return repairs


def _start_over(runs: SweepFolder, trial_ids: set[str]) -> None:
    """Take these trials' checkpoint out of Ray's newest saved experiment state, so it starts them over."""
    if not trial_ids:
        return
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    newest = newest_state(runs.list())
    if newest is None:
        return
    saved = json.loads(runs.read_bytes(newest) or b"{}")
    for entry in saved.get("trial_data", []):
        if json.loads(entry[0]).get("trial_id") in trial_ids:
            metadata = _TrainingRunMetadata.from_json_state(entry[1])
            kept = metadata.checkpoint_manager
            metadata.checkpoint_manager = _CheckpointManager(kept.checkpoint_config if kept is not None else None)
            entry[1] = metadata.get_json_state()
    runs.write_bytes(newest, json.dumps(saved).encode())


def note_repairs(folder: SweepFolder, repairs: list[CheckpointRepair]) -> None:
    """Say in each repaired trial's row (trials.parquet's `restore_note`) which checkpoint it goes on from."""
    if not repairs:
        return
    writer = ResultsWriter(folder)
    for repair in repairs:
        if repair.trial_id in writer.trials:
            writer.trial(repair.trial_id, restore_note=repair.note)
    writer.flush()


def adopt_recorded(search: SweepSearch) -> list[str]:
    """Teach `search` the trials that ended in trials.parquet after Ray's last snapshot of it (a killed driver
    records trials after it): one it still waits for is told its value; one it never handed out joins its
    configuration's replicates if they await it, else is added to its history, and counts towards the budget.
    Returns the ids of the latter."""
    rows = read_rows(search.folder, TRIALS_FILE)
    search.taken = {r["trial_id"] for r in rows}
    finished = [r for r in rows if ended_of(r).finished]
    for row in finished:
        search.tell_recorded(row)
    known = search.known()
    lost = [r for r in finished if r["trial_id"] not in known]
    search.add_lost([r for r in lost if not search.join_replicates(r)], len(lost))
    return [r["trial_id"] for r in lost]


def agree(search: SweepSearch, live: dict[str, dict[str, Any]]) -> None:
    """Make the budget agree with the unfinished trials Ray restored (`live`: id -> config). A trial still waited
    for that Ray lost (not live; those that ended in trials.parquet were adopted) is given back to the budget, a
    replicate's seed to its configuration; a live trial never handed out counts towards the budget, joins its
    configuration's replicates if it is one of them, and is learnt when it ends."""
    lost = sorted(search.waiting() - set(live))
    if lost:
        recorded = {r["trial_id"]: r.get(PARAM_PREFIX + "seed") for r in read_rows(search.folder, TRIALS_FILE)}
        seeds = recorded | {i: config.get("seed") for i, config in live.items()}
        for trial_id in lost:
            search.give_back(trial_id, seeds)
    known = search.known()
    for trial_id, config in live.items():
        if trial_id not in known:
            search.take(trial_id, config)


class SweepGenerator(SearchGenerator):
    """Ray's SearchGenerator, restored in agreement with the trials Ray restored (see the module's text)."""

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        inner = searcher_of(self.searcher)
        if inner is None:
            return
        adopt_recorded(inner)
        name = newest_state(os.listdir(dirpath))
        if name is None:
            return
        with open(os.path.join(dirpath, name)) as f:
            live = restored_unfinished(json.load(f))
        if isinstance(self.searcher, SweepLimiter):
            self.searcher.agree_with(live)
        agree(inner, live)
        self._counter = inner.spent
        self._finished = False  # the searcher says FINISHED again if its budget is spent


def generator(search_alg: Searcher | SearchAlgorithm) -> SearchAlgorithm:
    """A searcher under a SweepGenerator; a search algorithm (a generator already) as it is."""
    return SweepGenerator(search_alg) if isinstance(search_alg, Searcher) else search_alg


def prepare_resume(folder: SweepFolder, runs: SweepFolder, run_state: dict[str, Any]) -> None:
    """What a resume does to the files before Ray starts: `set_aside_torn`, `reconcile`, then `backfill`."""
    set_aside_torn(runs)
    reconcile(folder, runs)
    backfill(folder, runs, run_state)


def restore_tuner(runs: SweepFolder, space: Space, splits: Splits, errored: Errored,
                  recorder: ParquetRecorder) -> Any:
    """The Tuner of an interrupted sweep, from Ray's experiment state in `runs`, recording into `recorder`.

    Ray brings the run config back from its pickle, callbacks included; the recorder found there is replaced
    by this process's, which knows where to report progress."""
    from ray import tune

    repairs = repair_checkpoints(runs)
    note_repairs(recorder.folder, repairs)
    if recorder.echo is not None:
        for repair in repairs:
            recorder.echo(f"trial {repair.trial_id}: {repair.note}")
    tuner = tune.Tuner.restore(
        runs.location, trainable=trainable(space, splits), resume_unfinished=True,
        resume_errored=errored == Errored.RESUME, restart_errored=errored == Errored.RESTART,
    )
    internal = tuner._local_tuner  # Ray has no public way to re-specify callbacks on restore
    if internal is None:  # pragma: no cover - only with Ray Client, which restores on the server
        raise SweeperError("resuming a sweep through Ray Client (ray://) is not supported; use --address HOST:PORT")
    run_config = internal.get_run_config()
    kept = [c for c in run_config.callbacks or [] if not isinstance(c, ParquetRecorder)]
    # a sweep launched before loggers.py gets its loggers (else Ray would add its TensorBoard one)
    kept += [logger for logger in file_loggers() if not any(type(c) is type(logger) for c in kept)]
    run_config.callbacks = [*kept, recorder]
    # A grid sweep launched before plans.py built its generator as a SweepVariants pickled a plain
    # BasicVariantGenerator: it becomes one here (the same state, one more rule on restore). Newer ones already are.
    if type(internal._tune_config.search_alg) is BasicVariantGenerator:
        internal._tune_config.search_alg.__class__ = SweepVariants
    if isinstance(internal._tune_config.search_alg, SweepVariants):  # ids it must not hand out again
        recorded = read_rows(recorder.folder, TRIALS_FILE)
        internal._tune_config.search_alg.recorded = frozenset(r["trial_id"] for r in recorded)
    searcher = searcher_of(internal._tune_config.search_alg)
    if searcher is not None:  # it reads trials.parquet where this process finds it
        searcher.folder = recorder.folder
        # a sweep launched before SweepGenerator: Ray would wrap its searcher in a plain SearchGenerator
        internal._tune_config.search_alg = generator(internal._tune_config.search_alg)  # type: ignore[arg-type]
    return tuner
