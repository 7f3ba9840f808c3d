"""Sweeps for the report's tests, written the way a real sweep writes them: sweeper's ResultsWriter into a sweep
folder beside its spec.yaml, from a plan of trials with known values (no Ray, no training)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.spec.loader import load_text
from sweeper.store.files import SPEC_FILE
from sweeper.store.storage import Storage
from sweeper.store.writer import ResultsWriter


@dataclass
class Planned:
    """One trial: its variant and keys, its val_accuracy per epoch, how it ended, its test accuracy."""

    keys: dict[str, Any]
    curve: list[float]  # val_accuracy at epochs 1, 2, ...
    variant: str | None = None
    end: str = "done"  # done | asha | error | running
    test: float | None = None  # test accuracy, for a trial that ran to its end
    extra: dict[str, Any] = field(default_factory=dict)  # more trials.parquet columns (config_id)


def write_sweep(root: Path, name: str, spec: str, plan: list[Planned]) -> Storage:
    """The sweep `name` under storage `root`: spec.yaml and one trial per planned one, ids `<name>_00000` on."""
    storage = Storage.parse(str(root))
    folder = storage.folder(name)
    space = load_text(spec, Path(f"{name}.yaml"))
    writer = ResultsWriter(folder, flush_every_s=3600)
    for i, p in enumerate(plan):
        tid = f"{name}_{i:05d}"
        point = {"variant": p.variant, **p.keys} if p.variant else dict(p.keys)
        writer.set_params(tid, p.variant, space.trial_params(point).recorded())
        last = len(p.curve)
        for epoch, value in enumerate(p.curve, start=1):
            result = {"epoch": epoch, "val_accuracy": value, "val_loss": 1 - value, "train_accuracy": value + 0.02,
                      "train_loss": 0.98 - value, "time_s": 1.0, "time_total_s": float(epoch), "node": "n1"}
            if p.end == "done" and epoch == last:
                test = p.test if p.test is not None else value - 0.01
                result |= {"finished": True, "test_accuracy": test, "test_loss": 1 - test}
            writer.add_result(tid, result)
        if p.end == "error":
            writer.trial(tid, state="ERROR", error="RuntimeError: boom")
        elif p.end != "running":
            writer.trial(tid, state="TERMINATED", **({"stopped_by": "asha"} if p.end == "asha" else {}))
        if p.extra:
            writer.trial(tid, **p.extra)
    writer.flush()
    folder.write_text(SPEC_FILE, spec)
    return storage


def table(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    """The terminal table under the line starting with `title`, read by its columns (the rule under the header is
    broken between them): each column's label (wrapped words joined) and each row's cells."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(title)), None)
    assert start is not None, f"no table {title!r} in:\n{text}"
    rule = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("─"))
    end = next((i for i in range(rule + 1, len(lines)) if not lines[i].strip()), len(lines))
    spans = [m.span() for m in re.finditer("─+", lines[rule])]
    labels = [" ".join(w for ln in lines[start + 1:rule] for w in ln[a:b].split()) for a, b in spans]
    return labels, [[ln[a:b].strip() for a, b in spans] for ln in lines[rule + 1:end]]
