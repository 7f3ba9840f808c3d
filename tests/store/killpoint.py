"""A process that stops at a chosen point between two file writes, for a test to SIGKILL it there.

    python -m tests.store.killpoint EVENT FILE N [--grown] -- writer STORAGE NAME
    python -m tests.store.killpoint EVENT FILE 0 -- live STORAGE NAME   (never stops: writes until killed)
    python -m tests.store.killpoint EVENT FILE N [--grown] -- SWEEPER ARGS...   (the real CLI: launch, resume, ...)

Every write of a sweep's files goes through SweepFolder.write_bytes; it is wrapped so that right after the Nth
write of FILE (counting, with --grown, only writes of a Parquet file with more rows than its previous write: a
flush that added an epoch) the process writes its pid to EVENT (whole: a temporary file renamed) and then waits
to be killed. The test waits for EVENT, never for a time, and kills it: the files are left exactly as that moment
left them. Nothing in sweeper knows of this: the wrapping is the test's, so the same test runs against any
version of the writer.

`writer STORAGE NAME` runs a fixed sequence through a ResultsWriter: three trials start, report epochs 1 to 4 in
turn (each a flush), and end; the writes of epochs.parquet are numbered 1 (t1 starts) to 18 (t3 ends).
`live STORAGE NAME`: four trials report epoch after epoch, each a flush, a couple of milliseconds apart (a sweep
whose writer is always at it), until killed.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from sweeper.store.storage import Storage, SweepFolder

WAIT_S = 600  # a stopped process nobody killed exits by itself after this


def result(epoch: int, trial: int, last: bool = False) -> dict[str, Any]:
    """A result like run/training/loop.py's (the fixed sequence's)."""
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "train_accuracy": 0.5, "val_loss": 1.1 / epoch,
            "val_accuracy": 0.4 + epoch / 100 + trial / 1000, "time_s": 0.5, "time_total_s": 0.6 * epoch,
            "node": "n1", "reported_at": 1000.0 + epoch, "restored_from": 0,
            **({"finished": True, "early_stopped": False, "test_loss": 0.3, "test_accuracy": 0.5} if last else {})}


def scripted_writer(storage: str, name: str) -> None:
    from sweeper.store.writer import ResultsWriter

    folder = Storage.parse(storage).folder(name)
    w = ResultsWriter(folder, flush_every_s=0)
    trials = ("t1", "t2", "t3")
    for i, trial in enumerate(trials):
        w.set_params(trial, None, {"lr": 0.1 * (i + 1)})
        w.trial(trial, state="RUNNING")
        w.flush()
    for epoch in range(1, 5):
        for i, trial in enumerate(trials):
            w.add_result(trial, result(epoch, i, last=epoch == 4))  # flush_every_s=0: each flushes
    for trial in trials:
        w.trial(trial, state="TERMINATED")
        w.flush()


def live_writer(storage: str, name: str) -> None:
    from sweeper.store.writer import ResultsWriter

    w = ResultsWriter(Storage.parse(storage).folder(name), flush_every_s=0)
    epoch = 0
    while True:
        epoch += 1
        for i in range(4):
            w.add_result(f"t{i}", result(epoch, i))  # flush_every_s=0: each flushes
            time.sleep(0.002)


def stop_after(event: Path, file: str, nth: int, grown: bool) -> None:
    original = SweepFolder.write_bytes
    seen = {"count": 0, "rows": -1}

    def write_bytes(self: SweepFolder, name: str, data: bytes, sync: bool = False) -> None:
        original(self, name, data, sync)
        if name != file:
            return
        if grown:
            rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
            more, seen["rows"] = rows > seen["rows"], rows
            if not more:
                return
        seen["count"] += 1
        if seen["count"] == nth:
            tmp = event.with_name(event.name + ".tmp")
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, event)
            time.sleep(WAIT_S)
            os._exit(3)

    SweepFolder.write_bytes = write_bytes  # type: ignore[method-assign,assignment]


def main(argv: list[str]) -> None:
    split = argv.index("--")
    head, rest = argv[:split], argv[split + 1:]
    grown = "--grown" in head
    event, file, nth = [a for a in head if a != "--grown"]
    stop_after(Path(event), file, int(nth), grown)
    if rest[0] in ("writer", "live"):
        (scripted_writer if rest[0] == "writer" else live_writer)(rest[1], rest[2])
        return
    from sweeper.cli import app

    sys.argv = ["sweeper", *rest]
    app(prog_name="sweeper")


if __name__ == "__main__":
    main(sys.argv[1:])
