"""`sweeper report` on a big sweep against a pandas script printing the same rows, each a fresh process.

    .venv/bin/python -m benchmarks.report_speed [--trials 10000] [--epochs 100] [--repeats 5] [--quick]

Writes a synthetic sweep in sweeper's Parquet schema into a temp folder: the study's ten variants from
search_spaces/slides.yaml (spec.yaml with their reference numbers), --trials trials (seeds, 30% ASHA-stopped, 1%
failed) x --epochs epoch rows. Then times three fresh processes, each from its start to its exit (the terminal
table printed, or the files written), in interleaved rounds, the order alternating (report, report --out, pandas;
pandas, report --out, report; ...):
  report:     `.venv/bin/sweeper report PATH` (the terminal tables);
  report-out: `.venv/bin/sweeper report PATH --out DIR` (also report.md, trials.csv and the PNGs);
  pandas:     `python benchmarks/bare_report.py PATH`: reads trials.parquet and epochs.parquet with pandas and
              prints the per-family best trials and the per-variant statistics with to_string.
All three in the same environment (COLUMNS=160). Prints median (min-max) of each and the ratios to pandas per
round, median (min-max).
--quick: 500 trials x 10 epochs, 1 round (a smoke run, not a measurement).

Full run (estimate): writing the sweep about 30 s, then 5 rounds of about 5 + 15 + 3 s: about 3 minutes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import REPO, Measures, bench_env, interleave, ratios, run_timed, spread, sweeper_cmd, table
from sweeper.spec import loader as spaces
from sweeper.store.files import EPOCHS_FILE, TRIALS_FILE
from sweeper.store.schema import EPOCH_SCHEMA, TRIAL_SCHEMA

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
    stopped = np.where((state == "TERMINATED") & (rng.random(n_trials) < 0.3), "asha", np.array(None))
    trials = variant_params.iloc[which].reset_index(drop=True)
    trials["param_seed"] = np.arange(n_trials) // len(names)
    trials = pd.concat([pd.DataFrame({
        "trial_id": ids, "variant": np.array(names, dtype=object)[which], "state": state, "epochs": n_epochs,
        "stopped_by": stopped, "train_loss": 0.5 - 0.3 * final_val, "train_accuracy": final_val + 0.03,
        "val_loss": 0.6 - 0.3 * final_val, "val_accuracy": final_val, "test_loss": 0.62 - 0.3 * final_val,
        "test_accuracy": final_val - 0.005, "wall_s": 120 * rng.random(n_trials), "node": "10.0.0.1",
        "error": np.where(state == "ERROR", "RuntimeError: CUDA error: out of memory", np.array(None)),
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


def timed(cmd: list[str]) -> Measures:
    return {"command_s": run_timed(cmd, bench_env()).seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=None, help="default 10,000 (500 with --quick)")
    ap.add_argument("--epochs", type=int, default=None, help="default 100 (10 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds; default 5 (1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a small sweep, one round")
    args = ap.parse_args()
    trials = args.trials or (500 if args.quick else 10_000)
    n_epochs = args.epochs or (10 if args.quick else 100)
    with tempfile.TemporaryDirectory(prefix="sweeper-report-bench-") as tmp:
        folder = Path(tmp) / "big"
        start = time.perf_counter()
        synthetic_sweep(folder, trials, n_epochs)
        print(f"synthetic sweep: {trials:,} trials x {n_epochs} epochs = {trials * n_epochs:,} epoch rows "
              f"({(folder / EPOCHS_FILE).stat().st_size / 1e6:.1f} MB epochs.parquet, "
              f"{(folder / TRIALS_FILE).stat().st_size / 1e6:.1f} MB trials.parquet), written in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        out = Path(tmp) / "out"

        def report_out(i: int) -> Measures:
            shutil.rmtree(out, ignore_errors=True)
            return timed([*sweeper_cmd(), "report", str(folder), "--out", str(out)])

        results = interleave({
            "report": lambda i: timed([*sweeper_cmd(), "report", str(folder)]),
            "report-out": report_out,
            "pandas": lambda i: timed([sys.executable, str(REPO / "benchmarks" / "bare_report.py"), str(folder)]),
        }, args.repeats or (1 if args.quick else 5), echo=lambda line: print(line, flush=True))
    seconds = {side: [m["command_s"] for m in runs] for side, runs in results.items()}
    rows = [[side, spread(values), "" if side == "pandas" else spread(ratios(values, seconds["pandas"]))]
            for side, values in seconds.items()]
    print(table(["fresh process, seconds", "median (min-max)", "ratio to pandas, median (min-max)"], rows))


if __name__ == "__main__":
    main()
