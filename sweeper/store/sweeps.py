"""The sweeps under a storage (a sub-folder is a sweep exactly when it holds sweep.json), and the folders of a
sweep's Ray experiments: the launch's in the sweep folder itself, each extension's in `<sweep>/extend-K/`."""

from __future__ import annotations

from typing import Any

from sweeper.errors import SweeperError, did_you_mean
from sweeper.store.files import STATE_FILE
from sweeper.store.state import experiments, last_started, read_state
from sweeper.store.storage import Storage, SweepFolder


def sweep_names(storage: Storage) -> list[str]:
    """Names of the sweeps under storage, sorted; a local storage that does not exist is a SweeperError."""
    if storage.local and not storage.path.is_dir():
        what = "is not a folder" if storage.path.exists() else "does not exist"
        raise SweeperError(f"--storage {storage}: {what}; sweeps are stored under --storage or $SWEEPER_STORAGE")
    return [n for n in storage.subfolders() if storage.folder(n).has(STATE_FILE)]


def open_sweep(storage: Storage, name: str) -> tuple[SweepFolder, dict[str, Any]]:
    """An existing sweep's folder and its sweep.json; a name that is no sweep is a SweeperError listing those
    that are."""
    folder = storage.folder(name)
    state = read_state(folder)
    if state is None:
        try:
            known = sweep_names(storage)
        except SweeperError:
            known = []
        hint = did_you_mean(name, known) or (f"; sweeps there: {', '.join(known[:8])}" if known else "")
        raise SweeperError(f"sweep {name!r}: no such sweep under --storage {storage} (no {folder.uri(STATE_FILE)})"
                           f"{hint}")
    return folder, state


def latest(storage: Storage) -> str:
    """The sweep started (or resumed) most recently under storage."""
    names = sweep_names(storage)
    if not names:
        raise SweeperError(f"--storage {storage}: holds no sweeps; launch one, or pass --storage")

    def started(name: str) -> float:
        try:
            return last_started(read_state(storage.folder(name)) or {})
        except SweeperError:
            return 0.0

    return max(names, key=started)


def runs_folder(folder: SweepFolder, experiment: str) -> SweepFolder:
    """The folder of one of the sweep's Ray experiments ("" = the sweep folder itself)."""
    if not experiment:
        return folder
    return Storage(given=folder.location, location=folder.location).folder(experiment)


def current_runs(folder: SweepFolder, run_state: dict[str, Any]) -> SweepFolder:
    return runs_folder(folder, experiments(run_state)[-1])
