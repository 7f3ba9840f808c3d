"""SweepVariants restored from a generator state and an experiment state that a killed driver left out of step
(Ray uploads them as separate files): each grid point runs once, under an id no other trial holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ray.tune.experiment import Experiment

from sweeper.run.search.plans import grid_plan
from sweeper.run.search.variants import SweepVariants
from sweeper.spec.loader import load_text

SPACE = "epochs: 1\nmax_concurrent: 1\nparameters: {model: logreg, lr: {grid: [0.1, 0.2, 0.3, 0.4]}}\n"
SESSION = "2026-12-08_00-00-00"


def _trainable(config: dict[str, Any]) -> None:  # pragma: no cover - never run: the generator only names it
    pass


def _launch() -> SweepVariants:
    plan = grid_plan(load_text(SPACE, Path("s.yaml")))
    generator = plan.search_alg
    assert isinstance(generator, SweepVariants)
    generator.add_configurations(Experiment("grid", _trainable, config=plan.param_space,
                                             num_samples=plan.num_samples))
    return generator


def _experiment_state(folder: Path, trials: list[tuple[str, str, float]]) -> None:
    """Ray's experiment state as its resume reads it: (id, status, lr) per trial."""
    data = [[json.dumps({"trial_id": i, "status": s, "config": {"lr": lr}}), "{}"] for i, s, lr in trials]
    (folder / f"experiment_state-{SESSION}.json").write_text(json.dumps({"trial_data": data}))


def _restore(saved: Path, recorded: frozenset[str] = frozenset()) -> SweepVariants:
    generator = _launch()  # as a resume unpickles it, before Ray restores its state
    generator.recorded = recorded
    generator.restore_from_dir(str(saved))
    return generator


def _rest(generator: SweepVariants, live: list[str]) -> list[tuple[str, float]]:
    """What the restored generator hands out until it finishes; `live` (the restored unfinished trials) end as
    their slots are needed."""
    out = []
    for trial_id in live:
        generator.on_trial_complete(trial_id)
    while (trial := generator.next_trial()) is not None:
        out.append((trial.trial_id, trial.config["lr"]))
        generator.on_trial_complete(trial.trial_id)
    assert generator.is_finished()
    return out


def test_a_generator_behind_the_experiment_state_does_not_hand_out_a_restored_trials_id_again(
        tmp_path: Path) -> None:
    generator = _launch()
    first = generator.next_trial()
    generator.save_to_dir(str(tmp_path), SESSION)  # its snapshot: one trial handed out
    generator.on_trial_complete(first.trial_id)
    second = generator.next_trial()  # then the experiment state's: trial 2 running (the kill leaves this pair)
    _experiment_state(tmp_path, [(first.trial_id, "TERMINATED", 0.1), (second.trial_id, "RUNNING", 0.2)])

    restored = _restore(tmp_path)
    rest = _rest(restored, [second.trial_id])
    ids = [i for i, _ in rest]
    assert second.trial_id not in ids and first.trial_id not in ids  # no second trial under a restored id
    assert sorted(lr for _, lr in rest) == [0.3, 0.4]  # and every point not yet run, once


def test_a_generator_ahead_of_the_experiment_state_plans_again_the_points_no_file_holds(tmp_path: Path) -> None:
    generator = _launch()
    first = generator.next_trial()
    state = tmp_path / "state"
    state.mkdir()
    _experiment_state(state, [(first.trial_id, "RUNNING", 0.1)])  # the experiment state's snapshot
    generator.on_trial_complete(first.trial_id)
    second = generator.next_trial()
    generator.on_trial_complete(second.trial_id)
    third = generator.next_trial()  # the generator's, two trials later (the kill leaves this pair)
    generator.save_to_dir(str(tmp_path), SESSION)
    shutil.copy(next(state.glob("experiment_state-*")), tmp_path)

    # the second trial ended in trials.parquet; the third, unfinished, run/recovery.py's reconcile dropped
    restored = _restore(tmp_path, recorded=frozenset({first.trial_id, second.trial_id}))
    rest = _rest(restored, [first.trial_id])
    assert sorted(lr for _, lr in rest) == [0.3, 0.4]  # the third's point again, and the fourth's
    assert not {i for i, _ in rest} & {first.trial_id, second.trial_id, third.trial_id}


def test_a_generator_in_step_with_the_experiment_state_resumes_as_ray_does(tmp_path: Path) -> None:
    generator = _launch()
    first = generator.next_trial()
    generator.save_to_dir(str(tmp_path), SESSION)
    _experiment_state(tmp_path, [(first.trial_id, "RUNNING", 0.1)])
    rest = _rest(_restore(tmp_path), [first.trial_id])
    assert [lr for _, lr in rest] == [0.2, 0.3, 0.4]
    assert first.trial_id not in {i for i, _ in rest}
