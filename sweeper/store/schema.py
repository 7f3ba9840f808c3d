"""The two Parquet files' columns: `trials.parquet` (one row per trial) and `epochs.parquet` (one per epoch).

trials: trial_id, variant, state (store/trials.py), epochs, stopped_by, the six metrics (test only for trials
that ran to their end), wall_s, node, error, restored_from, then `param_<key>` for every trial key: null where
the key does not apply to the trial's model family (an MLP has no filters). Lists are stored as strings.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sweeper.spec.metrics import EPOCH_METRICS, METRICS

PARAM_PREFIX = "param_"

EPOCH_SCHEMA = pa.schema(
    [("trial_id", pa.string()), ("epoch", pa.int64())]
    + [(m, pa.float64()) for m in EPOCH_METRICS]
    + [("time_s", pa.float64()), ("session", pa.int64()), ("reported_at", pa.float64())]
)
TRIAL_SCHEMA = pa.schema(
    [("trial_id", pa.string()), ("variant", pa.string()), ("state", pa.string()), ("epochs", pa.int64()),
     ("stopped_by", pa.string())]
    + [(m, pa.float64()) for m in (*METRICS, "wall_s")]
    + [("node", pa.string()), ("error", pa.string()), ("restored_from", pa.int64())]
)


def param_value(value: Any) -> Any:
    """A trial key's value as a Parquet cell: lists become their string form."""
    return str(list(value)) if isinstance(value, list | tuple) else value


def param_columns(params: dict[str, Any]) -> dict[str, Any]:
    """`param_<key>` cells for a trial's keys (those that do not apply to it given as None)."""
    return {f"{PARAM_PREFIX}{k}": param_value(v) for k, v in params.items()}
