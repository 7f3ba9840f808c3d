"""What a sweep's trials were computed from, beside its spec: its own models' code (a hash per factory's package)
and the data's fingerprint, kept in sweep.json at launch and compared by resume, extend and evaluate.

Changed data is refused: a resume would mix trials trained on two data sets (Ray's restore takes re-specified data
on trust, ray#29955). Changed code is refused naming the changed files, unless the user accepts it (`accept_code`);
then sweep.json keeps every version and trials.parquet's `code` column says which trials ran which.
"""

from __future__ import annotations

from typing import Any

from sweeper.errors import SweeperError
from sweeper.run.training.usercode import roots_of
from sweeper.spec.space import Space
from sweeper.spec.usermodels import code_version


def facts(space: Space, data_fingerprint: str, sizes: dict[str, int]) -> dict[str, Any]:
    """sweep.json's record of the code and data a launch starts from (`sizes`: rows per split, 0 for none)."""
    out: dict[str, Any] = {"data_fingerprint": data_fingerprint, "data_sizes": sizes,
                           "space_roots": list(roots_of(space.path))}  # where module paths resolved at launch
    if space.own_models:
        out["models"] = {name: m.as_json() for name, m in space.own_models.items()}
        out["code_versions"] = [code_version(space.own_models)]
    return out


def check_same(run_state: dict[str, Any], space: Space, data_fingerprint: str, accept_code: bool, where: str) -> None:
    """Refuse data that differs from the launch's, and code that differs unless `accept_code`; record what a sweep
    launched before these were kept did not have. Updates `run_state` (nothing is written here)."""
    old = run_state.get("data_fingerprint")
    if old and old != data_fingerprint:
        source = space.spec.data.source or "Fashion-MNIST (--data-dir)"
        raise SweeperError(
            f"{where}: the data from {source} differs from the data this sweep was launched with (fingerprint "
            f"{old[:12]} then, {data_fingerprint[:12]} now); continuing would mix trials trained on two data sets: "
            "restore the data, or launch a new sweep under another --name"
        )
    run_state["data_fingerprint"] = data_fingerprint
    recorded = run_state.get("models") or {}
    changed = []
    for name, model in space.own_models.items():
        before = recorded.get(name) or {}
        if before.get("sha256") and before["sha256"] != model.sha256:
            files = _changed_files(before, model.files)
            changed.append(f"{model.ref} ({', '.join(files) if files else 'its package'})")
    if changed and not accept_code:
        raise SweeperError(
            f"{where}: your code changed since this sweep ran: {'; '.join(changed)}; its trials would mix two "
            "versions. Restore it, or pass --accept-changed-code (trials.parquet's `code` column then tells them apart)"
        )
    if space.own_models:
        run_state["models"] = {name: m.as_json() for name, m in space.own_models.items()}
        versions = [v for v in run_state.get("code_versions") or [] if isinstance(v, str)]
        now = code_version(space.own_models)
        run_state["code_versions"] = versions + ([now] if now and now not in versions else [])


def _changed_files(before: dict[str, Any], now: tuple[str, ...]) -> list[str]:
    """The files of a factory's package that differ (each kept as "path@hash"): changed, added or removed."""
    then = dict(f.rsplit("@", 1) for f in before.get("files") or () if "@" in f)
    current = dict(f.rsplit("@", 1) for f in now if "@" in f)
    return sorted(p for p in set(then) | set(current) if then.get(p) != current.get(p))
