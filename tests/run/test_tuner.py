"""The Tuner's checkpoints: what a driver killed mid-step leaves behind is put right before Ray resumes."""

from __future__ import annotations

import shutil
from pathlib import Path

from sweeper.run.sweep import launch
from sweeper.run.tuner import repair_checkpoints
from sweeper.spec.loader import load
from sweeper.store.storage import Storage


def test_a_checkpoint_the_saved_state_names_but_ray_deleted_is_put_back(
    tmp_path: Path, tiny_data: Path, ray_session
) -> None:
    """Ray deletes a trial's previous checkpoint as soon as it registers the next, and only then writes the
    experiment state naming the new one: a kill in between leaves a state naming a deleted checkpoint."""
    (tmp_path / "ck.yaml").write_text("epochs: 2\nscheduler: {type: fifo}\nparameters: {model: logreg}\n")
    storage = Storage.parse(str(tmp_path / "runs"))
    outcome = launch(load(tmp_path / "ck.yaml"), storage, data_dir=str(tiny_data), echo=None)
    assert outcome.trials == 1 and outcome.errors == 0
    folder = storage.folder("ck")
    (trial_dir,) = [p for p in folder.path.iterdir() if p.is_dir()]
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000001"]  # the one it names
    assert repair_checkpoints(folder) == []  # nothing missing, nothing done

    named = trial_dir / "checkpoint_000001"
    weights = (named / "state.pt").read_bytes()
    named.rename(trial_dir / "checkpoint_000002")  # registered next; the named one deleted ...
    shutil.copytree(trial_dir / "checkpoint_000002", trial_dir / "checkpoint_000003")
    (trial_dir / "checkpoint_000003" / "state.pt").write_bytes(b"cut short")  # ... and one never registered

    assert repair_checkpoints(folder) == [f"{trial_dir.name}/checkpoint_000001"]
    assert (named / "state.pt").read_bytes() == weights  # from the next registered one, not the cut one
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == [
        "checkpoint_000001", "checkpoint_000002", "checkpoint_000003"]
    assert repair_checkpoints(folder) == []
