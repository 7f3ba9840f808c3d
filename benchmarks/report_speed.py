"""How long `sweeper report` takes on a big sweep, against a bare `pandas.read_parquet` of the same files.

    .venv/bin/python benchmarks/report_speed.py [--trials 10000] [--epochs 100] [--repeats 7]

Writes a synthetic sweep (the study's ten variants from search_spaces/slides.yaml, spec.yaml with their
reference numbers, seeds, some ASHA-stopped and failed trials; trials x epochs epoch rows) into a temp folder
in sweeper's Parquet schema, then times, best of --repeats (alternating rounds):
  - bare read: pandas.read_parquet of trials.parquet and epochs.parquet;
  - report: `sweeper report PATH` (the default terminal table) through the real CLI, in process;
  - report --out: the same plus report.md, trials.csv and the three PNGs (reads epochs.parquet for curves);
  - the CLI as a user runs it, in a fresh interpreter (Python start-up and imports included).
Prints the times, then the ratio report / bare read last. Target: report under 3 s and within 2x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec import loader as spaces
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA

REPO = Path(__file__).resolve().parents[1]
SLIDES = REPO / "search_spaces" / "slides.yaml"


def synthetic_sweep(folder: Path, n_trials: int, n_epochs: int, seed: int = 0) -> None:
    """trials.parquet, epochs.parquet and spec.yaml of a finished-looking sweep, built with vectorised numpy."""
    rng = np.random.default_rng(seed)
    space = spaces.load(SLIDES)
    folder.mkdir(parents=True)
    shutil.copy(SLIDES, folder / "spec.yaml")
    names = list(space.variants)
    variant_params = pd.DataFrame([
        {f"param_{k}": (str(v) if isinstance(v, list) else v) for k, v in
         (p.model_dump() | {"lr": p.learning_rate}).items()}
        for p in (space.trial_params({"variant": v}) for v in names)
    ])
    which = np.arange(n_trials) % len(names)
    ids = np.array([f"{i % 0xFFFFF:05x}_{i:05d}" for i in range(n_trials)], dtype=object)
    final_val = 0.80 + 0.12 * rng.random(n_trials)
    state = np.where(rng.random(n_trials) < 0.01, "ERROR", "TERMINATED")
    stopped = np.where((state == "TERMINATED") & (rng.random(n_trials) < 0.3), "asha", None)
    trials = variant_params.iloc[which].reset_index(drop=True)
    trials["param_seed"] = np.arange(n_trials) // len(names)
    trials = pd.concat([pd.DataFrame({
        "trial_id": ids, "variant": np.array(names, dtype=object)[which], "state": state, "epochs": n_epochs,
        "stopped_by": stopped, "train_loss": 0.5 - 0.3 * final_val, "train_accuracy": final_val + 0.03,
        "val_loss": 0.6 - 0.3 * final_val, "val_accuracy": final_val, "test_loss": 0.62 - 0.3 * final_val,
        "test_accuracy": final_val - 0.005, "wall_s": 120 * rng.random(n_trials), "node": "10.0.0.1",
        "error": np.where(state == "ERROR", "RuntimeError: CUDA error: out of memory", None),
    }), trials], axis=1)
    epoch = np.tile(np.arange(1, n_epochs + 1), n_trials)
    progress = 1 - (1 - epoch / n_epochs) ** 2
    val = 0.5 + (np.repeat(final_val, n_epochs) - 0.5) * progress + 0.003 * rng.standard_normal(len(epoch))
    epochs = pd.DataFrame({
        "trial_id": np.repeat(ids, n_epochs), "epoch": epoch, "train_loss": 1.5 - progress,
        "train_accuracy": val + 0.02, "val_loss": 1.6 - progress, "val_accuracy": val, "time_s": 1.2,
    })
    for df, schema, name in ((epochs, EPOCH_SCHEMA, EPOCHS_FILE), (trials, TRIAL_SCHEMA, TRIALS_FILE)):
        extra = [c for c in df.columns if c not in schema.names]
        table = pa.Table.from_pandas(df.reindex(columns=schema.names + extra), preserve_index=False)
        fields = [schema.field(n) if n in schema.names else table.schema.field(n) for n in table.column_names]
        pq.write_table(table.cast(pa.schema(fields)), folder / name)


def best_of(repeats: int, *fns: Callable[[], object]) -> list[float]:
    """Each function's best wall time over `repeats` rounds; rounds alternate them, so load drifts hit all."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def cli(*args: str) -> None:
    result = CliRunner().invoke(app, ["report", *args], env={"COLUMNS": "160"})
    if result.exit_code != 0:
        raise SystemExit(f"sweeper report {' '.join(args)} failed ({result.exit_code}): {result.output}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweeper-report-bench-") as tmp:
        folder = Path(tmp) / "big"
        start = time.perf_counter()
        synthetic_sweep(folder, args.trials, args.epochs)
        rows = args.trials * args.epochs
        print(f"synthetic sweep: {args.trials:,} trials x {args.epochs} epochs = {rows:,} epoch rows "
              f"({(folder / EPOCHS_FILE).stat().st_size / 1e6:.1f} MB epochs.parquet, "
              f"{(folder / TRIALS_FILE).stat().st_size / 1e6:.1f} MB trials.parquet), written in "
              f"{time.perf_counter() - start:.1f} s")

        def bare() -> None:
            pd.read_parquet(folder / TRIALS_FILE)
            pd.read_parquet(folder / EPOCHS_FILE)

        bare()  # warm the page cache and pandas/pyarrow imports for both sides
        start = time.perf_counter()
        cli(str(folder))
        print(f"report, first call (imports report modules, spec parsing):   {time.perf_counter() - start:6.3f} s")
        t_bare, t_report = best_of(args.repeats, bare, lambda: cli(str(folder)))
        out = Path(tmp) / "out"
        (t_out,) = best_of(max(1, args.repeats // 2), lambda: cli(str(folder), "--out", str(out)))
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).with_name("sweeper")), "report", str(folder)], check=True,
                       capture_output=True, env={**os.environ, "COLUMNS": "160"}, cwd=REPO)
        t_process = time.perf_counter() - start
        print(f"bare pandas.read_parquet of trials + epochs:                 {t_bare:6.3f} s")
        print(f"sweeper report PATH (terminal table), in process:            {t_report:6.3f} s")
        print(f"sweeper report PATH --out DIR (+ md, csv, 3 PNGs), in process: {t_out:6.3f} s "
              f"({t_out / t_bare:.2f}x the bare read)")
        print(f"sweeper report PATH as a new process (start-up + imports):   {t_process:6.3f} s")
        print(f"target: report < 3 s and <= 2x the bare read: "
              f"{'met' if t_report < 3 and t_report <= 2 * t_bare else 'NOT met'}")
        print(f"ratio report / bare read: {t_report / t_bare:.2f}")


if __name__ == "__main__":
    main()
