"""`report --format yaml`: the trials a report shows (--sort-by, --top, --where pick them) as a spec's
`parameters:` and `variants:`, to train them again: a confirmation with `repeats: 3` (beyond_confirm.yaml), a
longer budget, another machine. Each variant holds the keys as its trial ran them (trials.parquet's param_
columns), so nothing depends on today's defaults; keys every shown trial shares go to `parameters:`. Left out:
`seed` (the new spec's `repeats` or seed axis decides it) and keys a trial recorded as null (they did not apply,
e.g. momentum of an Adam trial).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import yaml

from sweeper.errors import SweeperError
from sweeper.report.frame import Report
from sweeper.report.sections import fmt_value, id_prefix, isna

LEFT_OUT = ("seed",)


def plain(value: Any) -> Any:
    """A parameter cell as YAML writes it: numpy scalars as Python's, lists (stored as text "[32, 64]") as lists."""
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)  # report frames hold an integer key with gaps (null elsewhere) as float: 2.0 is 2
    if isinstance(value, str) and value.startswith("["):
        parsed = yaml.safe_load(value)
        return parsed if isinstance(parsed, list) else value
    return value


def _block(data: dict[str, Any], first: str, rest: str) -> list[str]:
    """A mapping one key a line (lists in flow style, [32, 64]); the first line after `first`, others `rest`."""
    lines = []
    for i, (k, v) in enumerate(data.items()):
        text = yaml.safe_dump({k: v}, default_flow_style=True, sort_keys=False, width=10**6).strip()
        lines.append((first if i == 0 else rest) + text[1:-1])  # {k: v} -> k: v
    return lines


def variants_yaml(rep: Report, command: str) -> str:
    """The shown rows as `parameters:` (keys they share) and `variants:` (one per trial, named after its variant
    and trial id), each variant headed by a comment naming its trial and metric; `command` is quoted at the top."""
    if rep.group_by:
        raise SweeperError("--format yaml: writes trials as spec variants, so it takes no --group-by")
    rows = rep.rows
    if rows.empty:
        raise SweeperError("--format yaml: no trial to write (none has reported, or --where left none)")
    params = [p for p in rep.trial_params if p not in LEFT_OUT and p in rows]
    keys = [{p: plain(r[p]) for p in params if not isna(r[p])} for r in rows.to_dict("records")]
    shared = {k: v for k, v in keys[0].items() if all(k in e and e[k] == v for e in keys[1:])} if len(keys) > 1 \
        else {}
    prefix = id_prefix(rep)
    lines = [f"# {len(rows)} trial{'s' if len(rows) > 1 else ''} as `{command}` showed them, as spec parameters and",
             "# variants: add name, metric, epochs, scheduler and `repeats` (seeds) to train them again.",
             "parameters:" if shared else "parameters: {}", *_block(shared, "  ", "  ")]
    lines.append("variants:")
    # replicates (equal keys but seed) make one variant, named after the first; its comment names them all
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for r, own in zip(rows.to_dict("records"), keys, strict=True):
        value = r.get(rep.metric)
        shown = fmt_value(value, rep.metric, rep.metrics)
        about = f"{rep.metric} {shown}" if not pd.isna(value) else f"no {rep.metric}"
        short = str(r["trial_id"]).removeprefix(prefix)
        name = f"{r['variant']}-{short}" if isinstance(r.get("variant"), str) else f"trial-{short}"
        variant, trials = groups.setdefault(repr(sorted(own.items(), key=str)), (
            {"name": name, **{k: v for k, v in own.items() if k not in shared}}, []))
        trials.append(f"  # trial {r['sweep']}/{r['trial_id']}: {about} after {fmt_value(r.get('epochs'))} epochs")
    for variant, trials in groups.values():
        lines += [*trials, *_block(variant, "  - ", "    ")]
    return "\n".join(lines) + "\n"
