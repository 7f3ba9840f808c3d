"""The epochs a trial reported, carried in each of its checkpoints, so a resume can file the ones a killed driver
never wrote.

The recorder writes epochs.parquet from the driver in batches; Ray's per-trial result.json reaches storage on its own
schedule. A driver killed between the two can lose the last epochs' rows, while the trial's newest checkpoint (written
by the trial itself, before Ray hears of the epoch) already holds them: the trial then goes on after epochs that no
file records. Each checkpoint therefore carries `history.jsonl`, one JSON line per epoch of its timeline (the newest
`KEPT`), which `recovery.backfill` reads without torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HISTORY_FILE = "history.jsonl"  # in each checkpoint folder, beside state.pt
KEPT = 1000  # epochs a checkpoint carries: far more than a recorder's unwritten batch


def _plain(value: Any) -> Any:
    """A JSON-safe copy of one reported value (numbers, strings, booleans; anything else as its text)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def parse(text: bytes | None) -> list[dict[str, Any]]:
    """The reports in a history.jsonl (or Ray's result.json); a line cut short by a kill is skipped."""
    out = []
    for line in (text or b"").decode(errors="replace").splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(result, dict) and "epoch" in result and "trial_id" in result:
            out.append(result)
    return out


class History:
    """One trial's reports so far, on the timeline it goes on from."""

    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id
        self.lines: list[str] = []

    def restore(self, checkpoint: Path) -> None:
        """Go on from a checkpoint: its history (none, from a checkpoint written before histories) is the past."""
        saved = checkpoint / HISTORY_FILE
        self.lines = [json.dumps(r) for r in parse(saved.read_bytes())] if saved.is_file() else []

    def add(self, metrics: dict[str, Any]) -> None:
        self.lines.append(json.dumps({"trial_id": self.trial_id, **{k: _plain(v) for k, v in metrics.items()}}))
        del self.lines[:-KEPT]

    def write(self, folder: Path) -> None:
        (folder / HISTORY_FILE).write_text("\n".join(self.lines) + "\n")
