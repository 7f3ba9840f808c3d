"""What Ray's saved experiment (in a sweep's storage) holds right now, read the way `Tuner.restore` would: so a
fault test can wait for the moment it needs (a checkpoint named, a snapshot taken) instead of for wall time."""

from __future__ import annotations

import json

from sweeper.run.recovery import newest_state
from sweeper.store.storage import SweepFolder
from tests.drivers import Driver, wait_until


def saved_checkpoints(folder: SweepFolder) -> dict[str, tuple[str, str | None]]:
    """Ray's newest saved experiment state in storage, per trial: (its status, the checkpoint path it names)."""
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    name = newest_state(folder.list())
    if name is None:
        return {}
    out: dict[str, tuple[str, str | None]] = {}
    for entry in json.loads(folder.read_bytes(name) or b"{}").get("trial_data", []):
        trial = json.loads(entry[0])
        manager = _TrainingRunMetadata.from_json_state(entry[1]).checkpoint_manager
        latest = manager.latest_checkpoint_result if manager is not None else None
        checkpoint = latest.checkpoint if latest is not None else None
        out[trial["trial_id"]] = (trial["status"], checkpoint.path if checkpoint is not None else None)
    return out


def checkpoint_epoch(path: str) -> int:
    """The epoch a checkpoint folder of a trial never restored holds: checkpoint_00000k is epoch k+1."""
    return int(path.rstrip("/")[-6:]) + 1


def named_mid_trial(folder: SweepFolder, min_epoch: int = 2) -> dict[str, int]:
    """Trials unfinished in Ray's saved state whose checkpoint there is of epoch `min_epoch` or later: id -> that
    epoch. A resume restores each from at least that epoch (a later snapshot can only name a newer one)."""
    return {t: checkpoint_epoch(path) for t, (status, path) in saved_checkpoints(folder).items()
            if status not in ("TERMINATED", "ERROR") and path is not None and checkpoint_epoch(path) >= min_epoch}


def kill_once_named(driver: Driver, folder: SweepFolder, min_epoch: int = 2) -> dict[str, int]:
    """SIGKILL the driver's whole session once Ray's saved state names a checkpoint of epoch `min_epoch`
    or later for a running trial; returns those trials with that epoch (`named_mid_trial`)."""
    named: dict[str, int] = wait_until("Ray's saved state names a checkpoint of a running trial",
                                       lambda: named_mid_trial(folder, min_epoch), driver)
    driver.kill_session()
    return named
