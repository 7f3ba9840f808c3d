"""Your own models, as the spec knows them: a name, the factory's `module:function`, and its trial keys.

    models: {widenet: mypkg.nets:widenet}      # `model: widenet` trains mypkg.nets.widenet(**its keys, ...)

The spec never imports user code (status, list and report stay torch-free): run/usercode.py imports the factory
and reads its signature into a `UserModel` (keys, defaults, which take whole numbers, the code's hash), and
sweep.json records that, so a sweep's readers rebuild it without importing anything. A user model's keys apply
only where `model` is that model, like a built-in family's keys (spec/params.py's KEY_MODELS): null in
trials.parquet elsewhere, never drawn there by TPE. A factory may also declare a built-in family key (`dropout`,
`batch_norm`, ...): it then applies to that model too and is passed to the factory.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# module.path:function, the form `models:`, `data.source` (and `trainable:`) take
REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
BUILTIN_MODELS = ("logreg", "mlp", "cnn")
# Keyword arguments sweeper fills in itself when it calls a factory.
FACTORY_RESERVED = ("input_shape", "num_classes")
# The name `trainable:` goes by among the space's own code (what a resolver is asked for, sweep.json's `models`):
# not a valid model name, so it never collides with one.
TRAINABLE = "@trainable"
# sweeper's keys that apply to a trial of your own loop without the loop declaring them.
LOOP_KEYS = ("seed", "max_epochs")


def valid_ref(ref: str) -> bool:
    return re.fullmatch(REF_PATTERN, ref) is not None


@dataclass(frozen=True)
class UserModel:
    """One entry of `models:` with what its factory's signature says: plain data (pickled to trials, kept in
    sweep.json)."""

    name: str
    ref: str  # module.path:function
    keys: dict[str, Any] = field(default_factory=dict)  # trial key -> the factory's default for it
    whole: frozenset[str] = frozenset()  # keys that take whole numbers (a uniform draw would give fractions)
    sha256: str = ""  # of the factory module's source (the package's .py files for a source tree)
    files: tuple[str, ...] = ()  # the source files hashed, relative to their root (to name a changed one)
    roots: tuple[str, ...] = ()  # sys.path entries it was found under (the spec's folder, the working directory)

    def as_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "keys": self.keys, "whole": sorted(self.whole), "sha256": self.sha256,
                "files": list(self.files), "roots": list(self.roots)}

    @classmethod
    def of_json(cls, name: str, raw: Mapping[str, Any]) -> UserModel:
        return cls(name, str(raw["ref"]), dict(raw.get("keys") or {}), frozenset(raw.get("whole") or ()),
                   str(raw.get("sha256") or ""), tuple(raw.get("files") or ()), tuple(raw.get("roots") or ()))


# What the loader asks for a space's `models:` (name -> module:function): each model's keys. run/usercode.py
# imports the factories; a sweep's readers answer from sweep.json (`recorded`).
ModelResolver = Callable[[Mapping[str, str]], Mapping[str, UserModel]]


def recorded(stored: Mapping[str, Any] | None) -> ModelResolver:
    """A resolver from sweep.json's `models` (what run/usercode.py read at launch): imports nothing."""
    known = {name: UserModel.of_json(name, raw) for name, raw in (stored or {}).items()}

    def resolve(wanted: Mapping[str, str]) -> Mapping[str, UserModel]:
        return {name: known[name] if name in known else UserModel(name, ref) for name, ref in wanted.items()}

    return resolve


def code_version(models: Mapping[str, UserModel]) -> str | None:
    """A short hash of all of a space's own models' code (None: built-in models only): trials.parquet's `code`."""
    if not models:
        return None
    text = "\n".join(f"{m.name}={m.ref}@{m.sha256}" for m in sorted(models.values(), key=lambda m: m.name))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def loop_keys(models: Mapping[str, UserModel], builtin: Iterable[str]) -> tuple[str, ...]:
    """With your own loop, sweeper's keys (of `builtin`) that apply: the seed, the epoch budget, and with `models:`
    the model and the family keys its factories declare. The others do nothing and are refused in the YAML."""
    names = set(builtin)
    family = sorted({k for m in models.values() for k in m.keys if k in names})
    return (*LOOP_KEYS, *(("model", *family) if models else ()))


def key_models(builtin: Mapping[str, set[str]], models: Mapping[str, UserModel]) -> dict[str, set[str]]:
    """Which model families each family key belongs to: the built-in map, grown by each user model's keys."""
    out = {k: set(v) for k, v in builtin.items()}
    for model in models.values():
        for key in model.keys:
            out.setdefault(key, set()).add(model.name)
    return out
