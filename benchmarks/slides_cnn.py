"""The study's 1st-4th CNN re-run with today's code, against the same rows of the recorded study run (issue 27,
part 2): per-trial wall time and accuracy.

    .venv/bin/python -m benchmarks.slides_cnn --storage DIR [--compare-only]

The sweep: search_spaces/slides.yaml with only its 1st, 2nd, 3rd and 4th CNN (each with its own max_epochs, 22 to
30, and its 3 seeds, as slides.yaml runs them: 12 trials, 315 trial-epochs on the full data, FIFO, one thread per
trial, as many trials at once as the local Ray has CPUs), named slides_cnn. `sweeper launch` runs it in --storage
(keep it outside the work tree); if the sweep is there already and unfinished, `sweeper resume` goes on with it.
--compare-only skips the run and compares what DIR holds.

The other side is not run here: it is the study run recorded in reports/study/trials.csv (the same rows: variant
and seed), made with the code before issue 27 on this project's 2-core machine, two trials at a time. So the two
sides did not share a session or a machine state: the recorded run's own spread (its 1st CNN took 269 to 472 s
for the same work) is printed beside the ratio, and the ratio is a direction, not an A/B measurement.

Printed per variant: trial wall time (trials.parquet wall_s) median (min-max) now and then, and the ratio of
medians; val and test accuracy, the mean of the 3 seeds now, and the recorded run's mean with its 95% t-interval
(n=3), and whether the new mean lies inside. Thresholds, fixed before the run (issue 27's Done means): the ratio of
medians at most 0.6 for each variant, and every new mean inside the recorded interval.

Full run on the 2-core machine (estimate): 315 trial-epochs of about 4 to 10 s, two at a time: about 25 minutes.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
from pathlib import Path

import yaml
from scipy import stats

from benchmarks.common import REPO, bench_env, spread, sweeper_cmd, table, workdir, write_yaml
from sweeper.store.files import TRIALS_FILE
from sweeper.store.parquet import read_rows
from sweeper.store.storage import Storage

VARIANTS = ("1st CNN", "2nd CNN", "3rd CNN", "4th CNN")
NAME = "slides_cnn"
RECORDED = REPO / "reports" / "study" / "trials.csv"
MAX_WALL_RATIO = 0.6  # issue 27: wall time per trial at most 0.6x of the recorded run's
METRICS = ("val_accuracy", "test_accuracy")


def space_file(folder: Path) -> Path:
    slides = yaml.safe_load((REPO / "search_spaces" / "slides.yaml").read_text())
    slides["name"] = NAME
    slides["variants"] = [v for v in slides["variants"] if v["name"] in VARIANTS]
    return write_yaml(folder / f"{NAME}.yaml", slides)


def run(storage: str) -> None:
    folder = Storage.parse(storage).folder(NAME)
    if folder.has("sweep.json"):
        cmd = [*sweeper_cmd(), "resume", NAME, "--storage", storage, "--quiet"]
    else:  # the sweep keeps its own copy of the space (spec.yaml): the written file may go
        cmd = [*sweeper_cmd(), "launch", str(space_file(workdir("slides_cnn-"))), "--storage", storage, "--quiet"]
    subprocess.run(cmd, env=bench_env(), cwd=REPO, check=True)


def interval(values: list[float]) -> tuple[float, float]:
    mean, n = statistics.fmean(values), len(values)
    half = stats.t.ppf(0.975, n - 1) * statistics.stdev(values) / n**0.5
    return mean - half, mean + half


def compare(storage: str) -> bool:
    folder = Storage.parse(storage).folder(NAME)
    now = [r for r in read_rows(folder, TRIALS_FILE) if r["state"] == "TERMINATED"]
    then = [r for r in csv.DictReader(RECORDED.open()) if r["variant"] in VARIANTS]
    rows, ok = [], True
    for variant in VARIANTS:
        new = [r for r in now if r["variant"] == variant]
        old = [r for r in then if r["variant"] == variant]
        if len(new) != 3 or len(old) != 3:
            raise SystemExit(f"{variant}: {len(new)} ended trials now, {len(old)} recorded; 3 each expected")
        wall_new, wall_old = [float(r["wall_s"]) for r in new], [float(r["wall_s"]) for r in old]
        ratio = statistics.median(wall_new) / statistics.median(wall_old)
        ok &= ratio <= MAX_WALL_RATIO
        cells = [variant, spread(wall_new, 0), spread(wall_old, 0), f"{ratio:.2f}"]
        for metric in METRICS:
            mean = statistics.fmean(float(r[metric]) for r in new)
            lo, hi = interval([float(r[metric]) for r in old])
            inside = lo <= mean <= hi
            ok &= inside
            cells.append(f"{mean:.4f} vs [{lo:.4f}, {hi:.4f}] {'inside' if inside else 'OUTSIDE'}")
        rows.append(cells)
    print(table(["variant", "wall s now", "wall s recorded", "now/recorded (medians)",
                 "val acc: mean now vs recorded 95% CI (n=3)", "test acc: the same"], rows))
    print(f"thresholds (fixed before the run): ratio at most {MAX_WALL_RATIO}, every mean inside: "
          f"{'met' if ok else 'NOT met'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="where the sweep lives (outside the work tree)")
    parser.add_argument("--compare-only", action="store_true")
    args = parser.parse_args()
    if not args.compare_only:
        run(args.storage)
    raise SystemExit(0 if compare(args.storage) else 1)


if __name__ == "__main__":
    main()
