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
