"""The bare side of report_speed.py: the tables of `sweeper report` made by hand with pandas.

    python benchmarks/bare_report.py SWEEP_FOLDER

Reads trials.parquet and epochs.parquet with pandas and prints with DataFrame.to_string: per model family the
ten best trials by val_accuracy (variant, trial, seed, how it ended, epochs run as counted from epochs.parquet,
the six metrics, wall time), then per variant the trials that ran their whole protocol: n, mean, std and a 95%
normal interval of val_accuracy, and mean test accuracy. What a user without sweeper would write.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

METRICS = ["val_accuracy", "test_accuracy", "val_loss", "test_loss", "train_accuracy", "train_loss"]


def main() -> None:
    folder = Path(sys.argv[1])
    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    trials["ran"] = trials.trial_id.map(epochs.groupby("trial_id").epoch.max())
    trials["ended"] = trials.stopped_by.fillna(trials.state.str.lower())
    pd.set_option("display.width", 160)
    for family, group in trials.groupby("param_model"):
        top = group.nlargest(10, "val_accuracy")
        print(f"{family}: {len(top)} of {len(group)} trials")
        print(top[["variant", "trial_id", "param_seed", "ended", "ran", *METRICS, "wall_s"]].round(4)
              .to_string(index=False))
        print()
    whole = trials[(trials.state == "TERMINATED") & trials.stopped_by.isna()]
    stats = whole.groupby("variant").agg(n=("val_accuracy", "size"), mean=("val_accuracy", "mean"),
                                         std=("val_accuracy", "std"), test=("test_accuracy", "mean"))
    half = 1.96 * stats["std"] / stats["n"] ** 0.5
    stats["low"], stats["high"] = stats["mean"] - half, stats["mean"] + half
    print(f"Configurations ({len(stats)})")
    print(stats.sort_values("mean", ascending=False).round(4).to_string())


if __name__ == "__main__":
    main()
