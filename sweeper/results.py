"""Parquet schema, writer and readers: `trials.parquet` (one row per trial), `epochs.parquet` (per epoch).

`ResultsWriter` is fed by the sweep's Tune callback as results arrive and rewrites both files after every
result, each time into a temporary file renamed over the old one, so a crash at any moment leaves two
readable files holding every epoch reported before it. Only when rewriting gets expensive (a huge sweep)
does it batch: it then waits 10x the last write's duration between writes, so writing never takes more
than about a tenth of the driver's time; a trial's end always flushes. It starts from
the files already in the folder, so a resumed sweep adds to them without duplicating a row.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.errors import SweeperError

if TYPE_CHECKING:  # pandas loads only where a frame is built, so `sweeper status`/`list` stay light
    import pandas as pd

TRIALS_FILE = "trials.parquet"
EPOCHS_FILE = "epochs.parquet"
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")

EPOCH_SCHEMA = pa.schema(
    [("trial_id", pa.string()), ("epoch", pa.int64())]
    + [(m, pa.float64()) for m in METRICS]
    + [("time_s", pa.float64()), ("session", pa.int64()), ("reported_at", pa.float64())]
)
TRIAL_SCHEMA = pa.schema(
    [("trial_id", pa.string()), ("variant", pa.string()), ("state", pa.string()), ("epochs", pa.int64()),
     ("stopped_by", pa.string())]
    + [(m, pa.float64()) for m in (*METRICS, "test_loss", "test_accuracy", "wall_s")]
    + [("node", pa.string()), ("error", pa.string()), ("restored_from", pa.int64())]
)


def _is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def is_uri(path: str) -> bool:
    return _is_uri(path)


def write_text(target: str, text: str) -> None:
    """Write a small text file atomically (temp + rename locally, one object put on a URI)."""
    if _is_uri(target):
        fs, path = pa.fs.FileSystem.from_uri(target)
        with fs.open_output_stream(path) as out:
            out.write(text.encode())
        return
    path = Path(target.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_text(target: str) -> str | None:
    """A small text file's content, or None if it does not exist."""
    try:
        if _is_uri(target):
            fs, path = pa.fs.FileSystem.from_uri(target)
            with fs.open_input_stream(path) as fh:
                return fh.read().decode()
        return Path(target.removeprefix("file://")).read_text()
    except FileNotFoundError:
        return None


def write_atomic(df: pd.DataFrame, schema: pa.Schema, target: str) -> None:
    """Write df as Parquet to target: a temp file renamed over it locally, one object put on a URI."""
    extra = [c for c in df.columns if c not in schema.names]
    table = pa.Table.from_pandas(df.reindex(columns=schema.names + extra), preserve_index=False)
    fields = [schema.field(n) if n in schema.names else table.schema.field(n) for n in table.column_names]
    table = table.cast(pa.schema(fields))
    if _is_uri(target):
        fs, path = pa.fs.FileSystem.from_uri(target)
        with fs.open_output_stream(path) as out:
            pq.write_table(table, out)
        return
    target_path = Path(target.removeprefix("file://"))
    tmp = target_path.with_name(f".{target_path.name}.tmp{os.getpid()}")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target_path)


def read_table(folder: str | Path, name: str) -> pd.DataFrame:
    """Read one of the two files; a missing or unreadable file is a SweeperError naming it."""
    target = f"{str(folder).rstrip('/')}/{name}"
    try:
        if _is_uri(target):
            fs, path = pa.fs.FileSystem.from_uri(target)
            return pq.read_table(path, filesystem=fs).to_pandas()
        return pq.read_table(target.removeprefix("file://")).to_pandas()
    except FileNotFoundError:
        raise SweeperError(f"{target}: no such results file") from None
    except (pa.ArrowException, OSError) as exc:
        raise SweeperError(f"{target}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None


def _param_value(v: Any) -> Any:
    return str(list(v)) if isinstance(v, list | tuple) else v


class ResultsWriter:
    """Collects trial and epoch rows in memory and flushes them atomically."""

    def __init__(self, folder: str | Path, flush_every_s: float | None = None, session: int = 0) -> None:
        self.folder = str(folder).rstrip("/")
        self.session = session  # which launch/resume of the sweep wrote a row (0 = the launch)
        self.flush_every_s = flush_every_s  # None: adaptive, 10x the last write's duration
        self._last_write_s = 0.0
        self.trials: dict[str, dict[str, Any]] = {}
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self._last_flush: float | None = None
        self._dirty = False
        self._load_existing()

    def _load_existing(self) -> None:
        for name, store in ((TRIALS_FILE, self.trials), (EPOCHS_FILE, self.epochs)):
            try:
                df = read_table(self.folder, name)
            except SweeperError:
                continue
            for row in df.to_dict("records"):
                row = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                key = (row["trial_id"], int(row["epoch"])) if name == EPOCHS_FILE else row["trial_id"]
                store[key] = row  # type: ignore[index]

    def trial(self, trial_id: str, **fields: Any) -> dict[str, Any]:
        row = self.trials.setdefault(trial_id, {"trial_id": trial_id, "state": "PENDING", "epochs": 0})
        row.update(fields)
        self._dirty = True
        return row

    def set_params(self, trial_id: str, variant: str | None, params: dict[str, Any]) -> None:
        self.trial(trial_id, variant=variant, **{f"param_{k}": _param_value(v) for k, v in params.items()})

    def add_epoch(self, trial_id: str, result: dict[str, Any]) -> int:
        """The epochs row of one report; returns its epoch."""
        epoch = int(result["epoch"])
        self.epochs[(trial_id, epoch)] = {"trial_id": trial_id, "epoch": epoch, "time_s": result.get("time_s"),
                                          "session": self.session, "reported_at": result.get("reported_at"),
                                          **{m: result.get(m) for m in METRICS}}
        self._dirty = True
        return epoch

    def add_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """One epoch's report: an epochs row plus the trial row's latest metrics."""
        epoch = self.add_epoch(trial_id, result)
        fields: dict[str, Any] = {m: result.get(m) for m in METRICS}
        fields |= {"state": "RUNNING", "epochs": epoch, "node": result.get("node"),
                   "wall_s": result.get("time_total_s"), "restored_from": result.get("restored_from")}
        if result.get("finished"):
            fields |= {"test_loss": result.get("test_loss"), "test_accuracy": result.get("test_accuracy"),
                       "stopped_by": "early_stopping" if result.get("early_stopped") else None}
        self.trial(trial_id, **fields)
        self.maybe_flush()

    def backfill(self, trial_id: str, result: dict[str, Any]) -> None:
        """A report found in Ray's own per-trial log: add its epoch row if a crash kept it from the files."""
        if (trial_id, int(result["epoch"])) not in self.epochs:
            self.add_epoch(trial_id, result)
            self.epochs[(trial_id, int(result["epoch"]))]["session"] = max(self.session - 1, 0)

    def maybe_flush(self) -> None:
        every = self.flush_every_s if self.flush_every_s is not None else 10 * self._last_write_s
        if self._last_flush is None or time.monotonic() - self._last_flush >= every:
            self.flush()

    def flush(self) -> None:
        if not self._dirty and self._last_flush is not None:
            return
        started = time.monotonic()
        import pandas as pd

        trials = pd.DataFrame(list(self.trials.values()), columns=None if self.trials else TRIAL_SCHEMA.names)
        epochs = pd.DataFrame(list(self.epochs.values()), columns=EPOCH_SCHEMA.names)
        if len(epochs):
            epochs = epochs.sort_values(["trial_id", "epoch"], kind="stable")
        write_atomic(epochs, EPOCH_SCHEMA, f"{self.folder}/{EPOCHS_FILE}")
        write_atomic(trials, TRIAL_SCHEMA, f"{self.folder}/{TRIALS_FILE}")
        self._last_flush = time.monotonic()
        self._last_write_s = self._last_flush - started
        self._dirty = False


def read_trials(folder: str | Path) -> pd.DataFrame:
    return read_table(folder, TRIALS_FILE)


def read_epochs(folder: str | Path) -> pd.DataFrame:
    return read_table(folder, EPOCHS_FILE)
