"""Sweeps for the report's tests, written the way a real sweep writes them: sweeper's ResultsWriter into a sweep
folder beside its spec.yaml, from a plan of trials with known values (no Ray, no training). A space with its own
loop (`trainable:`) gets the sweep.json `models` entry launch records for it, and its trials report what such a
loop reports: the sweep's declared metric, val_loss and train_loss, no accuracy."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.spec.loader import load_text
from sweeper.spec.metrics import test_counterpart
from sweeper.spec.usermodels import TRAINABLE, recorded
from sweeper.store.files import SPEC_FILE
from sweeper.store.state import write_state
from sweeper.store.storage import Storage
from sweeper.store.writer import ResultsWriter


@dataclass
class Planned:
    """One trial: its variant and keys, its metric per epoch, how it ended, its test score."""

    keys: dict[str, Any]
    curve: list[float]  # the sweep's metric (val_accuracy, or a declared one) at epochs 1, 2, ...
    variant: str | None = None
    end: str = "done"  # done | asha | error | running
    test: float | None = None  # the metric's test counterpart, for a trial that ran to its end
    extra: dict[str, Any] = field(default_factory=dict)  # more trials.parquet columns (config_id)


def loop_models(ref: str, keys: dict[str, Any]) -> dict[str, Any]:
    """sweep.json's `models` for a space with `trainable: ref` whose loop takes `keys` (with their defaults)."""
    whole = sorted(k for k, v in keys.items() if isinstance(v, int) and not isinstance(v, bool))
    return {TRAINABLE: {"ref": ref, "keys": keys, "whole": whole, "sha256": "0" * 64, "files": ["loop.py"],
                        "roots": ["/src"]}}


def write_sweep(root: Path, name: str, spec: str, plan: list[Planned], models: dict[str, Any] | None = None
                ) -> Storage:
    """The sweep `name` under storage `root`: spec.yaml, sweep.json where the space has its own code (`models`:
    sweep.json's entry for it) and one trial per planned one, ids `<name>_00000` on."""
    storage = Storage.parse(str(root))
    folder = storage.folder(name)
    space = load_text(spec, Path(f"{name}.yaml"), recorded(models) if models is not None else None)
    metric = space.spec.metric
    own = metric in space.spec.metrics  # your own loop's metric: its test counterpart is the final score
    final = (test_counterpart(metric) if own else None) or "test_accuracy"
    writer = ResultsWriter(folder, flush_every_s=3600, metrics=space.spec.metrics)
    for i, p in enumerate(plan):
        tid = f"{name}_{i:05d}"
        point = {"variant": p.variant, **p.keys} if p.variant else dict(p.keys)
        writer.set_params(tid, p.variant, space.trial_params(point).recorded())
        last = len(p.curve)
        for epoch, value in enumerate(p.curve, start=1):
            result = {"epoch": epoch, "val_loss": 1 - value, "train_loss": 0.98 - value, "time_s": 1.0,
                      "time_total_s": float(epoch), "node": "n1"}
            # a standard sweep's curve is val_accuracy (whatever its metric); your own loop's, its declared metric
            result |= {metric: value} if own else {"val_accuracy": value, "train_accuracy": value + 0.02}
            if p.end == "done" and epoch == last:
                test = p.test if p.test is not None else value - 0.01
                result |= {"finished": True, final: test, "test_loss": 1 - test}
            writer.add_result(tid, result)
        if p.end == "error":
            writer.trial(tid, state="ERROR", error="RuntimeError: boom")
        elif p.end != "running":
            writer.trial(tid, state="TERMINATED", **({"stopped_by": "asha"} if p.end == "asha" else {}))
        if p.extra:
            writer.trial(tid, **p.extra)
    writer.flush()
    folder.write_text(SPEC_FILE, spec)
    if models is not None:
        write_state(folder, {"name": name, "models": models, "state": "finished", "sessions": []})
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
