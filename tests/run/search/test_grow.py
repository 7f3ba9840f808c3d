"""An extension's plan (run/search/grow.py)."""

from __future__ import annotations

from pathlib import Path

from sweeper.spec.loader import load_text


def test_extend_counts_a_key_that_had_no_column_yet_at_its_default() -> None:
    """A sweep recorded before sweeper had `label_smoothing` ran it at 0.0: extending it with seeds plans only the
    new seeds, and a non-default value of the new key is a new trial."""
    from sweeper.run.search.grow import missing_grid_trials

    text = "epochs: 1\nrepeats: 2\nparameters: {model: mlp, hidden: [8], lr: {grid: [0.1, 0.2]}}\n"
    grown = load_text(text.replace("repeats: 2", "repeats: 3"), Path("s.yaml"))
    old = load_text(text, Path("s.yaml"))
    rows = [{f"param_{k}": v for k, v in old.trial_params(t).recorded().items() if k != "label_smoothing"}
            for t in old.grid_trials()]
    assert [(t["lr"], t["seed"]) for t in missing_grid_trials(grown, rows)] == [(0.1, 2), (0.2, 2)]
    smoothed = load_text(text.replace("model: mlp", "model: mlp, label_smoothing: 0.1"), Path("s.yaml"))
    assert len(missing_grid_trials(smoothed, rows)) == 4


def test_a_second_extension_counts_rows_that_hold_a_key_as_null_at_its_default() -> None:
    """A sweep recorded before sweeper had `precision` ran at fp32. Its first extension records the key, so
    trials.parquet gains the column and the older rows hold null in it: a second extension still counts those rows
    (it plans only its new seeds, not the first trials again), and a non-default precision is a new trial."""
    from sweeper.run.search.grow import missing_grid_trials
    from sweeper.store.schema import param_columns

    text = "epochs: 1\nrepeats: 2\nparameters: {model: mlp, hidden: [8], lr: {grid: [0.1, 0.2]}}\n"
    old, once, twice = (load_text(text.replace("repeats: 2", f"repeats: {n}"), Path("s.yaml")) for n in (2, 3, 4))
    rows = [param_columns(old.trial_params(t).recorded()) | {"param_precision": None} for t in old.grid_trials()]
    first = [param_columns(once.trial_params(t).recorded()) for t in missing_grid_trials(once, rows)]
    assert [(r["param_seed"], r["param_precision"]) for r in first] == [(2, "fp32"), (2, "fp32")]
    assert [(t["lr"], t["seed"]) for t in missing_grid_trials(twice, rows + first)] == [(0.1, 3), (0.2, 3)]
    bf16 = load_text(text.replace("repeats: 2", "repeats: 4").replace("model: mlp", "model: mlp, precision: bf16"),
                     Path("s.yaml"))
    assert len(missing_grid_trials(bf16, rows + first)) == 8


def test_an_extension_plans_from_the_generation_epochs_parquet_holds_after_a_kill_between_the_writes(
    tmp_path: Path,
) -> None:
    """A driver killed between its writes of epochs.parquet and trials.parquet (store/pair.py) leaves trials.parquet
    a write behind: there trial b still runs. Planned from it, the extension would start b over (dropping the result
    the newer generation holds) and plan its configuration again; planned from the pair, it plans only what the
    grown space adds."""
    from sweeper.run.search.grow import extension_plan
    from sweeper.store.files import TRIALS_FILE
    from sweeper.store.storage import Storage
    from sweeper.store.writer import ResultsWriter

    text = "epochs: 1\nscheduler: {type: fifo}\nparameters: {model: logreg, lr: {grid: [0.1, 0.2]}}\n"
    old = load_text(text, Path("s.yaml"))
    grown = load_text(text.replace("[0.1, 0.2]", "[0.1, 0.2, 0.3]"), Path("s.yaml"))
    folder = Storage.parse(str(tmp_path)).folder("s")
    writer = ResultsWriter(folder)
    for trial_id, trial in zip(("a", "b"), old.grid_trials(), strict=True):
        writer.set_params(trial_id, None, old.trial_params(trial).recorded())
        writer.add_result(trial_id, {"epoch": 1, "val_accuracy": 0.5, "finished": trial_id == "a"})
        writer.trial(trial_id, state="TERMINATED" if trial_id == "a" else "RUNNING")
    writer.flush()
    behind = folder.read_bytes(TRIALS_FILE)
    writer.trial("b", state="TERMINATED")
    writer.flush()
    assert behind is not None
    folder.write_bytes(TRIALS_FILE, behind)  # as the kill left it: pending copy and epochs.parquet are newer

    plan, restart = extension_plan(folder, old, grown)
    assert restart == [] and plan.num_samples == 1
