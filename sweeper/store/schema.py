"""The two Parquet files' columns: `trials.parquet` (one row per trial) and `epochs.parquet` (one per epoch).

trials: trial_id, variant, state (store/trials.py), epochs, stopped_by, the six metrics (test only for trials
that ran to their end), then the space's declared metrics and their test counterparts (spec/metrics.py's
trial_metrics), wall_s, node, error, restored_from, then `param_<key>` for every trial key: null where the key
does not apply to the trial's model family (an MLP has no filters). Lists are stored as strings.
epochs: trial_id, epoch, the four epoch metrics, then the declared ones (epoch_metrics), time_s, session,
reported_at. A file written before metrics could be declared has only the standard columns and reads as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from sweeper.spec.metrics import EPOCH_METRICS, METRICS

PARAM_PREFIX = "param_"


def epoch_schema(metrics: Sequence[str] = EPOCH_METRICS) -> pa.Schema:
    """epochs.parquet's columns with these metric columns (the standard four first)."""
    return pa.schema(
        [("trial_id", pa.string()), ("epoch", pa.int64())]
        + [(m, pa.float64()) for m in metrics]
        + [("time_s", pa.float64()), ("session", pa.int64()), ("reported_at", pa.float64())]
    )


def trial_schema(metrics: Sequence[str] = METRICS) -> pa.Schema:
    """trials.parquet's columns with these metric columns (the standard six first)."""
    return pa.schema(
        [("trial_id", pa.string()), ("variant", pa.string()), ("state", pa.string()), ("epochs", pa.int64()),
         ("stopped_by", pa.string())]
        + [(m, pa.float64()) for m in (*metrics, "wall_s")]
        + [("node", pa.string()), ("error", pa.string()), ("restored_from", pa.int64())]
    )


EPOCH_SCHEMA = epoch_schema()
TRIAL_SCHEMA = trial_schema()


def held_metrics(held: pa.Schema, standard: pa.Schema) -> tuple[str, ...]:
    """The metric columns a file holds beyond `standard`'s: its float columns that are not parameters (a space's
    declared metrics, written by a writer that knew them), in the file's order."""
    return tuple(f.name for f in held if f.name not in standard.names and not f.name.startswith(PARAM_PREFIX)
                 and pa.types.is_floating(f.type))


def param_value(value: Any) -> Any:
    """A trial key's value as a Parquet cell: lists become their string form."""
    return str(list(value)) if isinstance(value, list | tuple) else value


def param_columns(params: dict[str, Any]) -> dict[str, Any]:
    """`param_<key>` cells for a trial's keys (those that do not apply to it given as None)."""
    return {f"{PARAM_PREFIX}{k}": param_value(v) for k, v in params.items()}
