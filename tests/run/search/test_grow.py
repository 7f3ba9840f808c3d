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
