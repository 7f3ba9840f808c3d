"""trials.parquet and epochs.parquet as one pair that agrees: written so that a kill at any moment leaves a pair a
reader can put together whole, and read only through `read_pair`, so no reader ever sees a trial whose `epochs`
differs from its rows in epochs.parquet.

Two files cannot be replaced at once. So each write of the pair (a generation) carries a token, unique to that
write (`<count>-<random>`), in both files' Parquet schema metadata (key `sweeper.generation`; the columns are
unchanged), and is written in three steps, each atomic on its own (store/storage.py: temporary file + rename, or
one object put):

  1. `.trials.pending.parquet`: the new trials (the very bytes step 3 writes);
  2. `epochs.parquet`;
  3. `trials.parquet`.

Killed before step 2, the pair on disk is the previous generation, whole. Killed between steps 2 and 3,
epochs.parquet is the new generation and the pending copy holds that generation's trials. Killed after step 3,
both are new. `read_pair` reads trials.parquet, then epochs.parquet, and only when their tokens differ the pending
copy: trials with epochs.parquet's token are that generation's trials. A reader racing a live writer may find
neither agreeing (a write landed between its reads): it reads again, until they agree. The ResultsWriter loads
the pair the same way, and a pair it found disagreeing on disk it writes again at once, whole (a resume repairs
the files that users read directly).

Files without a token (written before this scheme, or by hand with write_rows) are read as they are. Files that
disagree and do not change (copied by hand from different moments) are read as they are too, marked `torn`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.errors import SweeperError
from sweeper.store.files import EPOCHS_FILE, PENDING_TRIALS_FILE, TRIALS_FILE
from sweeper.store.parquet import parquet_bytes
from sweeper.store.storage import SweepFolder

GENERATION_KEY = "sweeper.generation"  # in both files' Parquet schema metadata
SETTLE_S = 1.0  # files that disagree and have not changed for this long are not being written: read as they are
GIVE_UP_S = 30.0  # a writer that keeps a reader from a whole pair this long is flushing non-stop: an error
TRIES_UNREADABLE = 5  # an object store's file unreadable this many reads in a row is broken, not being replaced


@dataclass(frozen=True)
class Pair:
    """One generation of the two files, as read: trials (None: no trials file yet) and epochs."""

    trials: pa.Table | None
    epochs_table: pa.Table | None = None  # None: not asked for, or no epochs file yet
    epochs_error: str | None = None  # epochs.parquet was unreadable: raised by epochs(), when asked for
    generation: str | None = None  # the token both carry; None: files without one, read as they are
    torn: bool = False  # the files on disk disagree (a writer was killed, or is, between its writes)

    def epochs(self) -> pa.Table | None:
        if self.epochs_error is not None:
            raise SweeperError(self.epochs_error)
        return self.epochs_table

    def trial_rows(self) -> list[dict[str, Any]]:
        return [] if self.trials is None else self.trials.to_pylist()

    def epoch_rows(self) -> list[dict[str, Any]]:
        table = self.epochs()
        return [] if table is None else table.to_pylist()


def generation_of(schema: pa.Schema) -> str | None:
    value = (schema.metadata or {}).get(GENERATION_KEY.encode())
    return value.decode() if value else None


def next_generation(previous: str | None) -> str:
    """A new token: the previous one's count plus one, and random bytes, so two writers never share one."""
    try:
        count = int((previous or "0").split("-")[0])
    except ValueError:
        count = 0
    return f"{count + 1}-{secrets.token_hex(6)}"


def write_pair(folder: SweepFolder, trials: list[dict[str, Any]], trial_schema: pa.Schema,
               epochs: list[dict[str, Any]], epoch_schema: pa.Schema, generation: str) -> None:
    """Write one generation of the pair: the pending trials, epochs.parquet, then trials.parquet (see the module's
    text for why a kill between any two leaves a pair `read_pair` puts together whole)."""
    meta = {GENERATION_KEY: generation}
    trials_bytes = parquet_bytes(trials, trial_schema, meta)
    epochs_bytes = parquet_bytes(epochs, epoch_schema, meta)
    folder.write_bytes(PENDING_TRIALS_FILE, trials_bytes, sync=True)
    folder.write_bytes(EPOCHS_FILE, epochs_bytes, sync=True)
    folder.write_bytes(TRIALS_FILE, trials_bytes, sync=True)


class _File(NamedTuple):
    exists: bool
    token: str | None
    table: pa.Table | None  # None when only the token was asked for


_MISSING = _File(False, None, None)


def _unreadable(folder: SweepFolder, file: str, exc: BaseException) -> SweeperError:
    return SweeperError(f"{folder.uri(file)}: not a readable Parquet file: {(str(exc).splitlines() or [''])[0]}")


class _Replaced(Exception):
    """An object store's file that did not parse: maybe replaced while read (pyarrow asks its size, then reads
    that many bytes of whatever version is there by then), so read again; `error` if it stays so."""

    def __init__(self, error: SweeperError) -> None:
        super().__init__(str(error))
        self.error = error


def _parse(folder: SweepFolder, file: str, source: Any, columns: list[str] | None, token_only: bool,
           settled: bool) -> _File:
    try:
        pf = pq.ParquetFile(source)
        token = generation_of(pf.schema_arrow)
        if token_only:
            return _File(True, token, None)
        if columns is not None:
            columns = [c for c in columns if c in pf.schema_arrow.names]
        return _File(True, token, pf.read(columns=columns))
    except (pa.ArrowException, OSError) as exc:
        if folder.local or settled:  # locally replaced only by a rename: what was opened is whole
            raise _unreadable(folder, file, exc) from None
        raise _Replaced(_unreadable(folder, file, exc)) from None


def _load(folder: SweepFolder, file: str, columns: list[str] | None = None, token_only: bool = False,
          settled: bool = False) -> _File:
    """One file's token (from its footer) and rows, both from one version of it: locally one open file (a rename
    over it does not change what it reads), on an object store the bytes of one read (only the footer's, for the
    token alone). pyarrow only."""
    if folder.local:
        try:
            source = pa.OSFile(str(folder.path / file))
        except FileNotFoundError:
            return _MISSING
        except OSError as exc:
            raise SweeperError(f"{folder.uri(file)}: cannot read: {exc}") from None
        with source:
            return _parse(folder, file, source, columns, token_only, settled)
    if token_only:
        fs, path = folder.fs_path(file)
        try:
            handle = fs.open_input_file(path)
        except FileNotFoundError:
            return _MISSING
        except OSError as exc:
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return _MISSING
            raise SweeperError(f"{folder.uri(file)}: cannot read: {str(exc).splitlines()[0]}") from None
        with handle:
            return _parse(folder, file, handle, None, True, settled)
    data = folder.read_bytes(file)
    return _MISSING if data is None else _parse(folder, file, pa.BufferReader(data), columns, False, settled)


class _Disagree(NamedTuple):
    """Files that disagree with no pending copy to match: their tokens, and the files as read."""

    tokens: tuple[str | None, str | None, str | None]
    trials: pa.Table | None
    epochs: pa.Table | None


def _attempt(folder: SweepFolder, trial_columns: list[str] | None, epoch_columns: list[str] | None,
             epochs: bool, settled: bool) -> Pair | _Disagree:
    trials = _load(folder, TRIALS_FILE, trial_columns, settled=settled)
    try:
        ep = _load(folder, EPOCHS_FILE, epoch_columns, token_only=not epochs, settled=settled)
    except SweeperError as exc:  # trials still read (a report's tables need no epochs); epochs() raises this
        return Pair(trials.table, epochs_error=str(exc))
    if trials.token == ep.token or (trials.exists and (trials.token is None or ep.token is None)):
        return Pair(trials.table, ep.table, generation=trials.token if ep.exists else None)
    pending = _load(folder, PENDING_TRIALS_FILE, trial_columns, settled=settled)  # epochs.parquet's trials?
    if pending.token is not None and pending.token == ep.token:
        return Pair(pending.table, ep.table, generation=ep.token, torn=True)
    if not trials.exists:  # epochs without any trials: no trial to disagree with
        return Pair(None, ep.table)
    return _Disagree((trials.token, ep.token, pending.token), trials.table, ep.table)


def read_pair(folder: SweepFolder, trial_columns: list[str] | None = None, epoch_columns: list[str] | None = None,
              epochs: bool = True, wait: bool = True) -> Pair:
    """trials.parquet and epochs.parquet (only these columns, where given) of one generation; epochs=False reads
    only epochs.parquet's token, to pick the trials that go with it. A reader racing a writer reads again until the
    files agree (`wait`); files that disagree and do not change are read as they are, marked torn (so is any
    disagreement with wait=False: the ResultsWriter, alone on the folder, writes them again whole)."""
    started = time.monotonic()
    seen: dict[tuple[str | None, ...], float] = {}
    delay = 0.002
    unreadable = 0
    while True:
        try:
            got = _attempt(folder, trial_columns, epoch_columns, epochs, settled=unreadable >= TRIES_UNREADABLE)
        except _Replaced:
            unreadable += 1
            time.sleep(delay)
            continue
        unreadable = 0
        if isinstance(got, Pair):
            return got
        now = time.monotonic()
        first = seen.setdefault(got.tokens, now)
        if not wait or now - first >= SETTLE_S:  # nobody is writing them: as they are
            return Pair(got.trials, got.epochs, torn=True)
        if now - started >= GIVE_UP_S:
            raise SweeperError(f"{folder}: {TRIALS_FILE} and {EPOCHS_FILE} kept changing while read for "
                               f"{GIVE_UP_S:.0f} s (a writer flushing without pause?); try again")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
