"""Your own code, named `module.path:function` in a search space: found, imported, read and hashed.

Module paths resolve with the spec file's folder and the working directory on `sys.path` (in that order), then
installed packages. An import that fails is one line with its root cause in your own file: the innermost frame of
the traceback under one of those folders (a SyntaxError's own file and line), never a wrapper's message (what
Hydra's users get, hydra#1863, #2289). A function's keyword parameters with defaults are its trial keys; their
annotations (or the defaults' types) become strict pydantic validators, so a YAML value a factory would refuse is a
one-line error before anything starts.

Plain Python and pydantic, no torch at import (the driver reads signatures without it).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
import traceback
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from sweeper.errors import SweeperError, did_you_mean

SWEEPER_DIR = str(Path(__file__).resolve().parents[2]) + os.sep  # the sweeper package's folder


def roots_of(space_path: Path) -> tuple[str, ...]:
    """Where `module.path` is looked for besides installed packages: the spec file's folder, the working directory."""
    out: list[str] = []
    for folder in (Path(space_path).expanduser().resolve().parent, Path.cwd()):
        if str(folder) not in out:
            out.append(str(folder))
    return tuple(out)


@contextmanager
def on_path(roots: Iterable[str]) -> Iterator[None]:
    """`roots` first on sys.path while importing (kept there after: a trial's worker imports the module again)."""
    for root in reversed(tuple(roots)):
        if root not in sys.path and os.path.isdir(root):
            sys.path.insert(0, root)
    yield


def _root_cause(exc: BaseException, roots: tuple[str, ...]) -> str:
    """`file:line: Type: message` of the frame in the user's code where `exc` came from."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    skip = ("importlib", "<frozen")
    # sweeper's own files are never yours, though a working directory (a root) may hold them (a source checkout)
    mine = [f for f in frames if any(f.filename.startswith(r + os.sep) for r in roots)
            and not f.filename.startswith(SWEEPER_DIR)]
    theirs = [f for f in frames if not any(s in f.filename for s in skip) and "/sweeper/run/" not in f.filename]
    chosen = mine or theirs or list(frames)
    where = f"{chosen[-1].filename}:{chosen[-1].lineno}: " if chosen else ""
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"{where}{type(exc).__name__}: {message}".rstrip(": ")


def describe_error(exc: BaseException, roots: tuple[str, ...]) -> str:
    """An exception raised inside user code as one line naming the user's file and line (public: trials use it)."""
    return _root_cause(exc, roots)


def resolve(ref: str, roots: Iterable[str], what: str) -> Callable[..., Any]:
    """The function `module.path:function` names; `what` says where the space names it (e.g. "key 'models.resnet'")."""
    roots = tuple(roots)
    module_name, _, attr = ref.partition(":")
    with on_path(roots):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                raise SweeperError(
                    f"{what}: cannot import {module_name!r}: no module named {exc.name!r} in {', '.join(roots)} or "
                    "the installed packages"
                ) from None
            raise SweeperError(f"{what}: importing {module_name!r} failed: {_root_cause(exc, roots)}") from None
        except Exception as exc:  # noqa: BLE001 - any error in the user's module is reported, not raised
            raise SweeperError(f"{what}: importing {module_name!r} failed: {_root_cause(exc, roots)}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise SweeperError(f"{what}: {module_name!r} has no {attr!r}{did_you_mean(attr, names)}")
    if not callable(fn):
        raise SweeperError(f"{what}: {ref} is a {type(fn).__name__}, not a function")
    return typing.cast(Callable[..., Any], fn)


def code_hash(ref: str) -> tuple[str, tuple[str, ...], str]:
    """(sha256, files, root) of the code `ref` lives in: every .py file of its top-level package (or its single
    module file), so an edit anywhere in the package changes it; `files` as "path@hash" each, to name a changed
    one; `root`: the folder holding the package."""
    top = importlib.import_module(ref.partition(":")[0].split(".")[0])
    file = getattr(top, "__file__", None)
    if file is None:
        return "", (), ""
    path = Path(file).resolve()
    if path.name == "__init__.py":
        base, files = path.parent, sorted(p for p in path.parent.rglob("*.py") if "__pycache__" not in p.parts)
    else:
        base, files = path, [path]
    digest = hashlib.sha256()
    names = []
    for f in files:
        name, data = f.relative_to(base.parent).as_posix(), f.read_bytes()
        names.append(f"{name}@{hashlib.sha256(data).hexdigest()[:12]}")
        digest.update(name.encode() + b"\0" + data + b"\0")
    return digest.hexdigest(), tuple(names), str(base.parent)


@dataclass(frozen=True)
class Signature:
    """A user function's trial keys: each key's default, which take whole numbers, and a validator each."""

    defaults: dict[str, Any]
    whole: frozenset[str]
    adapters: dict[str, TypeAdapter[Any]]

    def check(self, key: str, value: Any) -> str | None:
        """Why `value` is refused for `key` (None: accepted)."""
        try:
            self.adapters[key].validate_python(value, strict=True)
        except ValidationError as exc:
            err = exc.errors()[0]
            return str(err["msg"]).removeprefix("Value error, ")
        return None


def _takes_whole(adapter: TypeAdapter[Any]) -> bool:
    def ok(v: Any) -> bool:
        try:
            adapter.validate_python(v, strict=True)
            return True
        except ValidationError:
            return False
    return ok(1) and not ok(1.5)


def signature(fn: Callable[..., Any], ref: str, what: str, reserved: tuple[str, ...],
              refused: Iterable[str] = (), context: bool = False) -> Signature:
    """Read `fn`'s keyword parameters: each needs a default; `reserved` are filled in by sweeper (and must be taken);
    `refused` are sweeper's own keys, which the function may not take; `context`: the first parameter is the
    context sweeper passes (your own loop's `train(ctx, **params)`)."""
    try:
        params = dict(inspect.signature(fn).parameters)
    except (TypeError, ValueError) as exc:
        raise SweeperError(f"{what}: cannot read the signature of {ref}: {exc}") from None
    if context:
        first = next(iter(params.values()), None)
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if first is None or first.kind not in positional or first.default is not inspect.Parameter.empty:
            raise SweeperError(f"{what}: {ref} must take the context first, as train(ctx, **params) (a positional "
                               "parameter without a default)")
        params.pop(first.name)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: fall back to the defaults' types
        hints = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    missing = [r for r in reserved if r not in params and not takes_any]
    if missing:
        raise SweeperError(f"{what}: {ref} must take {', '.join(missing)} as keyword arguments (sweeper passes "
                           f"{', '.join(reserved)})")
    refused = set(refused)
    defaults: dict[str, Any] = {}
    adapters: dict[str, TypeAdapter[Any]] = {}
    for name, p in params.items():
        if name in reserved or p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise SweeperError(f"{what}: parameter {name!r} of {ref} is positional-only; sweeper passes keywords")
        if name in refused:
            raise SweeperError(f"{what}: parameter {name!r} of {ref} clashes with sweeper's training key {name!r}; "
                               "rename it")
        if p.default is inspect.Parameter.empty:
            raise SweeperError(f"{what}: parameter {name!r} of {ref} has no default; give it one (its trial key's "
                               "value when a space leaves it out)")
        annotation = hints.get(name, Any if p.default is None else type(p.default))
        try:
            adapters[name] = TypeAdapter(annotation)
        except Exception as exc:  # noqa: BLE001 - pydantic cannot validate this annotation
            raise SweeperError(f"{what}: parameter {name!r} of {ref}: annotation {annotation!r} cannot be "
                               f"checked: {str(exc).splitlines()[0]}") from None
        defaults[name] = p.default
    whole = frozenset(k for k, a in adapters.items() if _takes_whole(a))
    return Signature(defaults, whole, adapters)
