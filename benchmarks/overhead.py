"""sweeper's overhead: `sweeper launch` of a fixed trial against a bare PyTorch script doing the same training.

    .venv/bin/python -m benchmarks.overhead [--variant NAME ...] [--epochs 3] [--repeats N] [--quick]
    .venv/bin/python -m benchmarks.overhead --four-small [--quick]

Per variant ("Logistic regression", "2nd MLP", "4th CNN" from search_spaces/slides.yaml; all 48,000 training
images, 3 epochs, batch 32, seed 0, 1 thread), two sides, each a fresh process with the same environment
(benchmarks.common.bench_env: OMP/MKL/OPENBLAS_NUM_THREADS=1, SWEEPER_DATA_DIR, and one SWEEPER_CACHE_DIR for
both sides, so the calibration cache and the staged data are the same folder; both train with torch threads 1):
  sweeper: `.venv/bin/sweeper launch ONE.yaml --storage TMP --quiet`, ONE.yaml = the variant as the only trial
           (FIFO, resources cpu 1): a local Ray started in process, data loaded once, the trial in a Ray worker,
           a checkpoint and a Parquet row per epoch.
  bare:    `python benchmarks/bare_trial.py JOB.json OUT.jsonl`: the same trial params and data keys, the same
           arrays (sweeper.run.training.data.load), the same model (build_model), a plain loop (see bare_trial.py).
Measured, each side by its own files:
  command       subprocess start to exit (results on disk): what the user waits for;
  first epoch   subprocess start to the first epoch's `reported_at`;
  trial         the trial's own span: sweeper's trials.parquet wall_s (Ray's time_total_s: from the trial
                function's start, tensors and model built, to its last report) against bare_trial's wall_s
                (from before its tensors and model are built to after its last epoch line is written);
  epoch         median of consecutive `reported_at` differences (so sweeper's checkpoint, report and Parquet
                write of an epoch lie inside the next one; needs 2+ epochs).
Rounds alternate the side order (sweeper, bare; bare, sweeper; ...: common.interleave with alternate=True), so
neither side always runs first: 5 rounds, 3 when a run of the first took over a minute (--repeats overrides).
Prints median (min-max) per side and the sweeper/bare ratio per round as median (min-max).

The same training, checked: each trial is matched across the sides by its (model, seed), and every epoch's
val_accuracy of the two sides must agree within VAL_ACCURACY_TOLERANCE of its model, fixed here before either
side runs; the largest difference per model is printed, and the run exits non-zero after its tables when one is
outside. The sides are equal only up to float rounding, not exactly: sweeper's loop steps with the fused
optimizer kernel and trains the built-in CNN in channels_last, bare_trial.py with torch's for-loop optimizer in
the contiguous layout. Measured (2,000 images, 2 epochs of 63 batches): val_loss differed by about 1e-7 for
Logistic regression and the 2nd MLP, 1e-5 for the 4th CNN, val_accuracy not at all; the CNN's difference grows
with every step, so its tolerance is wider. A difference beyond these means the sides trained something else
(data, params, seed, model), and their times do not compare.
--four-small: one `sweeper launch` of four small trials (Logistic regression and 2nd MLP, seeds 0 and 1, 3
epochs, max_concurrent 1) against one bare process training the same four one after another.
--quick: 2,000/1,000/1,000 train/val/test images, 2 epochs, 1 round (a smoke run, not a measurement).

Full run on the 2-core machine (estimate): Logistic regression and 2nd MLP 5 rounds of about 25 s and 45 s
runs, 4th CNN 3 rounds of about 2.5 min runs: about 25 minutes; --four-small about 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks.common import (
    REPO,
    Measures,
    Run,
    bench_env,
    compare,
    data_dir,
    interleave,
    run_timed,
    slides_variant,
    sweeper_cmd,
    workdir,
    write_yaml,
)
from sweeper.spec import loader

VARIANTS = ("Logistic regression", "2nd MLP", "4th CNN")
FOUR_SMALL = ("Logistic regression", "2nd MLP")
# Largest |val_accuracy(sweeper) - val_accuracy(bare)| of any epoch that still counts as the same training, per
# model family (see the module's note on rounding); 0.002 is 24 of the 12,000 validation images (2 of --quick's
# 1,000), 0.01 is 120 (10).
VAL_ACCURACY_TOLERANCE = {"logreg": 0.002, "mlp": 0.002, "cnn": 0.01}
METRICS = {"command_s": "command", "first_s": "to first epoch", "trial_s": "trial wall (sum over trials)",
           "epoch_s": "epoch (median reported_at gap)"}


def sweep_file(work: Path, sweep: str, variants: tuple[str, ...], seeds: list[int], args: argparse.Namespace) -> Path:
    data = {"train_subset": 2000, "val_subset": 1000, "test_subset": 1000} if args.quick else {"train_subset": None}
    return write_yaml(work / f"{sweep}.yaml", {
        "name": sweep, "epochs": args.epochs, "scheduler": {"type": "fifo"}, "max_concurrent": 1,
        "resources": {"cpu": 1, "gpu": 0}, "data": {**data, "seed": 0},
        "variants": [{k: v for k, v in slides_variant(name).items() if k != "max_epochs"} for name in variants],
        "parameters": {"batch_size": 32, "seed": {"grid": seeds} if len(seeds) > 1 else seeds[0]},
    })


def bare_job(space_file: Path) -> Path:
    """The bare side's job: the trials exactly as sweeper resolves them from the same YAML."""
    space = loader.load(space_file)
    job = {"data_dir": data_dir(), "data": space.spec.data.model_dump(), "epochs": space.spec.epochs, "threads": 1,
           "trials": [space.trial_params(t).model_dump() for t in space.grid_trials()]}
    path = space_file.with_suffix(".job.json")
    path.write_text(json.dumps(job))
    return path


def epoch_seconds(epochs: pd.DataFrame, trial: str) -> float:
    """Median of consecutive reported_at differences within each trial."""
    gaps = epochs.sort_values([trial, "epoch"]).groupby(trial).reported_at.diff().dropna()
    return statistics.median(gaps) if len(gaps) else float("nan")


Vals = dict[tuple[str, int], list[float]]  # (model, seed) -> val_accuracy per epoch, in epoch order


def measures(run: Run, epochs: pd.DataFrame, trial: str, walls: list[float]) -> Measures:
    return {"command_s": run.seconds, "first_s": epochs.reported_at.min() - run.started_at, "trial_s": sum(walls),
            "epoch_s": epoch_seconds(epochs, trial)}


def val_curves(epochs: pd.DataFrame, trial: str, keys: dict[Any, tuple[str, int]]) -> Vals:
    """Each trial's val_accuracy per epoch, under its (model, seed): how the two sides' trials are matched."""
    return {keys[t]: rows.sort_values("epoch").val_accuracy.tolist() for t, rows in epochs.groupby(trial)}


def sweeper_side(space_file: Path, name: str, storage: Path, vals: list[Vals]) -> Measures:
    run = run_timed([*sweeper_cmd(), "launch", str(space_file), "--storage", str(storage), "--quiet"], bench_env())
    folder = storage / name
    trials, epochs = pd.read_parquet(folder / "trials.parquet"), pd.read_parquet(folder / "epochs.parquet")
    if (trials.state != "TERMINATED").any():
        raise SystemExit(f"sweeper side: a trial did not finish:\n{trials[['trial_id', 'state', 'error']]}")
    shutil.rmtree(storage)
    keys = {t: (m, int(s)) for t, m, s in zip(trials.trial_id, trials.param_model, trials.param_seed, strict=True)}
    vals.append(val_curves(epochs, "trial_id", keys))
    return measures(run, epochs, "trial_id", trials.wall_s.tolist())


def bare_side(job: Path, out: Path, vals: list[Vals]) -> Measures:
    run = run_timed([sys.executable, str(REPO / "benchmarks" / "bare_trial.py"), str(job), str(out)], bench_env())
    lines = pd.DataFrame([json.loads(line) for line in out.read_text().splitlines()])
    epochs, ends = lines[lines.epoch.notna()], lines[lines.epoch.isna()]
    trials = json.loads(job.read_text())["trials"]
    vals.append(val_curves(epochs, "trial", {i: (t["model"], int(t["seed"])) for i, t in enumerate(trials)}))
    return measures(run, epochs, "trial", ends.wall_s.tolist())


def val_gaps(ours: list[Vals], bare: list[Vals]) -> dict[str, float]:
    """Per model: the largest val_accuracy difference between the sides, any round, trial and epoch."""
    gaps: dict[str, float] = {}
    for a, b in zip(ours, bare, strict=True):
        if a.keys() != b.keys():
            raise SystemExit(f"the sides trained other trials: sweeper {sorted(a)}, bare {sorted(b)}")
        for key, curve in a.items():
            if len(curve) != len(b[key]):
                raise SystemExit(f"{key}: sweeper ran {len(curve)} epochs, bare {len(b[key])}")
            gap = max(abs(x - y) for x, y in zip(curve, b[key], strict=True))
            gaps[key[0]] = max(gaps.get(key[0], 0.0), gap)
    return gaps


def bench(label: str, space_file: Path, work: Path, repeats: int | None) -> list[str]:
    """Run and print one comparison; the models whose val_accuracy differed beyond their tolerance."""
    name = loader.load(space_file).name
    job = bare_job(space_file)
    print(f"\n{label}", flush=True)
    vals: dict[str, list[Vals]] = {"sweeper": [], "bare": []}
    results = interleave({
        "sweeper": lambda i: sweeper_side(space_file, name, work / f"runs-{i}", vals["sweeper"]),
        "bare": lambda i: bare_side(job, work / f"bare-{i}.jsonl", vals["bare"]),
    }, repeats, echo=lambda line: print(line, flush=True), alternate=True)
    print(compare(results, "sweeper", "bare", METRICS))
    outside = []
    for model, gap in val_gaps(vals["sweeper"], vals["bare"]).items():
        tolerance = VAL_ACCURACY_TOLERANCE.get(model)
        ok = tolerance is not None and gap <= tolerance
        print(f"{model}: largest val_accuracy difference between the sides, any epoch: {gap:.4f} (tolerance "
              f"{'none' if tolerance is None else f'{tolerance:.3f}'}): {'same training' if ok else 'NOT the same'}",
              flush=True)
        if not ok:
            outside.append(f"{label.split(':')[0]} ({model}, {gap:.4f})")
    return outside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", choices=VARIANTS, help="default: all three")
    ap.add_argument("--epochs", type=int, default=None, help="default 3 (2 with --quick)")
    ap.add_argument("--repeats", type=int, default=None, help="rounds; default 5, or 3 for runs over a minute")
    ap.add_argument("--four-small", action="store_true", help="one launch of four small trials vs one bare script")
    ap.add_argument("--quick", action="store_true", help="tiny data, 2 epochs, 1 round: checks it runs")
    args = ap.parse_args()
    args.epochs = args.epochs or (2 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else None)
    work = workdir("sweeper-overhead-")
    images = "2,000 (--quick)" if args.quick else "48,000"
    print("val_accuracy tolerance between the sides (fixed before either runs): "
          + ", ".join(f"{m} {t}" for m, t in VAL_ACCURACY_TOLERANCE.items()), flush=True)
    outside: list[str] = []
    if args.four_small:
        space_file = sweep_file(work, "four-small", FOUR_SMALL, [0, 1], args)
        outside += bench(f"four small trials ({', '.join(FOUR_SMALL)} x seeds 0, 1), {images} training images, "
                         f"{args.epochs} epochs, one at a time, 1 thread", space_file, work, repeats)
    else:
        for variant in args.variant or VARIANTS:
            space_file = sweep_file(work, "overhead", (variant,), [0], args)
            outside += bench(f"{variant}: {images} training images, {args.epochs} epochs, 1 thread", space_file,
                             work, repeats)
    if outside:
        raise SystemExit("the sides did not train the same within the tolerance, so their times do not compare: "
                         + "; ".join(outside))


if __name__ == "__main__":
    main()
