"""Reading and writing a sweep's Parquet files: atomically, from any storage, with pandas or pyarrow alone.

`read_rows` uses pyarrow only (no pandas), so `sweeper status` and `sweeper list` stay light; `read_table` gives
the ResultsWriter the rows with their column types; `read_frame` gives reports a pandas frame. A missing or
unreadable file is a SweeperError naming it.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sweeper.errors import SweeperError
from sweeper.store.storage import SweepFolder

if TYPE_CHECKING:  # pandas loads only where a frame is built
    import pandas as pd


def _inferred(values: list[Any]) -> pa.Array:
    """A column of values whose type Arrow infers; one that mixes types (`filters` as 32 in one trial and
    "[32, 64]" in another) is stored as strings."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema, metadata: dict[str, str] | None = None) -> bytes:
    """Rows (dicts) as a Parquet file's bytes: the columns of `schema` with its types, then any other key the rows
    have (param_<key> columns), its type inferred; `metadata` as the schema's key-value metadata."""
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in schema.names))
    arrays = [pa.array([r.get(n) for r in rows], type=schema.field(n).type) for n in schema.names]
    arrays += [_inferred([r.get(n) for r in rows]) for n in extra]
    table = pa.Table.from_arrays(arrays, names=[*schema.names, *extra])
    if metadata:
        table = table.replace_schema_metadata(metadata)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_rows(folder: SweepFolder, file: str, rows: list[dict[str, Any]], schema: pa.Schema,
               metadata: dict[str, str] | None = None) -> None:
    """Write rows (dicts) as Parquet atomically (temp + rename, or one object put); see `parquet_bytes`."""
    folder.write_bytes(file, parquet_bytes(rows, schema, metadata), sync=True)


def _read(folder: SweepFolder, file: str, columns: list[str] | None) -> pa.Table | None:
    """The file as an Arrow table; None if it does not exist. ParquetFile, not pq.read_table: the latter goes
    through pyarrow.dataset, which imports pandas."""
    source: Any
    if folder.local:
        source = folder.path / file
        if not source.is_file():
            return None
    else:
        data = folder.read_bytes(file)
        if data is None:
            return None
        source = pa.BufferReader(data)
    try:
        pf = pq.ParquetFile(source)
        if columns is not None:
            columns = [c for c in columns if c in pf.schema_arrow.names]
        return pf.read(columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise SweeperError(f"{folder.uri(file)}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None


def read_table(folder: SweepFolder, file: str) -> pa.Table | None:
    """One of the files as an Arrow table, its column types with it (None if it does not exist yet); pyarrow only."""
    return _read(folder, file, None)


def read_rows(folder: SweepFolder, file: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """The rows of one of the files as dicts ([] if it does not exist yet); pyarrow only."""
    table = _read(folder, file, columns)
    return [] if table is None else table.to_pylist()


def read_frame(folder: SweepFolder, file: str, columns: list[str] | None = None) -> pd.DataFrame:
    """One of the files as a pandas frame; a missing file is a SweeperError naming it."""
    table = _read(folder, file, columns)
    if table is None:
        raise SweeperError(f"{folder.uri(file)}: no such results file")
    return table.to_pandas()
