"""sweeper against a peer: the CNN family space, same budget, driven by Optuna in a plain loop.

    .venv/bin/python -m benchmarks.peer_optuna [--train-subset 2000] [--val-subset 2000] [--epochs 9]

sweeper: search_spaces/cnn.yaml on a subset with ASHA (grace 1, reduction 3) on the local Ray, one trial per
core. Optuna: the same axes (variant, optimizer, dropout, momentum) and the same number of trials and
epochs, TPE sampler with the SuccessiveHalvingPruner (min_resource 1, reduction 3), trials one after another
in one process with torch using every core, each trial trained by the same `fit` loop. Prints, for both,
the best validation accuracy and the time until it was first reported; the ratios last.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch

from benchmarks.asha import REPO, run, variant_of
from sweeper.run import data
from sweeper.run.trainable import Tensors
from sweeper.run.trainable import train_trial as fit
from sweeper.spec import loader as spaces
from sweeper.spec.space import Space


def sweeper_side(text: str, work: Path, data_dir: str) -> tuple[float, float, float]:
    started = time.time()
    trials, epochs, wall = run(text, "peer-sweeper", work, data_dir)
    best = trials.val_accuracy.max()
    first = epochs[epochs.val_accuracy >= best].reported_at.min()
    return best, first - started, wall


def optuna_side(space: Space, data_dir: str, n_trials: int) -> tuple[float, float, float]:
    torch.set_num_threads(os.cpu_count() or 1)
    tensors = Tensors.from_splits(data.load(data_dir, space.spec.data), torch.device("cpu"))
    grid = {a.key: a.values for a in space.axes}
    best_seen: list[tuple[float, float]] = []  # (val_accuracy, time reported)
    started = time.time()

    def objective(trial: optuna.Trial) -> float:
        config: dict[str, Any] = {"variant": trial.suggest_categorical("variant", list(space.variants))}
        for key, values in grid.items():
            config[key] = trial.suggest_categorical(key, values)

        def report(metrics: dict[str, Any], save: Any) -> None:
            best_seen.append((metrics["val_accuracy"], time.time()))
            trial.report(metrics["val_accuracy"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        return fit(space.trial_params(config), tensors, space.spec.epochs, report)["val_accuracy"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    study.optimize(objective, n_trials=n_trials)
    wall = time.time() - started
    best = max(t.value for t in study.trials if t.value is not None)
    first = min(t for acc, t in best_seen if acc >= best)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    print(f"optuna: {n_trials} trials ({pruned} pruned), {wall:.0f}s", flush=True)
    return best, first - started, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-subset", type=int, default=2000)
    ap.add_argument("--val-subset", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=9)
    args = ap.parse_args()
    data_dir = os.environ.get("SWEEPER_DATA_DIR") or str(REPO.parent / "shared" / "data" / "fashion-mnist")
    work = Path(tempfile.mkdtemp(prefix="sweeper-peer-"))
    text = variant_of((REPO / "search_spaces" / "cnn.yaml").read_text(), "peer-sweeper",
                      "{type: asha, grace_period: 1, reduction_factor: 3}", args)
    (work / "space.yaml").write_text(text)
    space = spaces.load(work / "space.yaml")

    s_best, s_ttb, s_wall = sweeper_side(text, work, data_dir)
    print(f"sweeper: {space.num_trials} trials, {s_wall:.0f}s", flush=True)
    o_best, o_ttb, o_wall = optuna_side(space, data_dir, space.num_trials)
    table = pd.DataFrame(
        {"best val_accuracy": [s_best, o_best], "time to best (s)": [s_ttb, o_ttb], "wall (s)": [s_wall, o_wall]},
        index=["sweeper (Ray Tune + ASHA)", "optuna (TPE + successive halving)"],
    )
    print(f"\nsubset: {args.train_subset} train / {args.val_subset} val images, {args.epochs} epochs, "
          f"{space.num_trials} trials each")
    print(table.round(4).to_string())
    print(f"time-to-best ratio (optuna / sweeper): {o_ttb / s_ttb:.3f}")
    print(f"wall ratio (optuna / sweeper): {o_wall / s_wall:.3f}")
    print(f"best accuracy gap (sweeper - optuna): {100 * (s_best - o_best):.2f} points")


if __name__ == "__main__":
    main()
