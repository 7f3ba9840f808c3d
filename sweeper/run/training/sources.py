"""Your own data set, named in a search space as `data: {source: mypkg.data:load, args: {...}}`.

    def load(n: int = 1000, seed: int = 0) -> sweeper.Dataset:
        return sweeper.Dataset(train=(x, y), val=(x_val, y_val), test=(x_test, y_test), classes=["a", "b"])

The function is imported as `models:` factories are (usercode), `args` are checked against its signature, and it
is called with them (plus `seed=data.seed` and `data_dir=` where it declares those and `args` does not give them).
What it returns is checked and normalised into the `Splits` trials train on: x uint8 stays uint8 (images 0..255,
scaled to [0, 1] by trials), any other numbers become float32, y int64 labels 0..K-1; no `val` -> a seeded random
`val_fraction` of train; no `test` -> none; then the seeded subsets, as for Fashion-MNIST. With no `source`,
Fashion-MNIST (`data`).

numpy and pydantic: torch only where the user's function returned tensors (and then it is imported already).
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sweeper.errors import SweeperError, did_you_mean
from sweeper.run.training import data, usercode
from sweeper.run.training.data import Splits
from sweeper.spec.schema import DataSpec

Pair = tuple[np.ndarray, np.ndarray]
HINT = "return sweeper.Dataset(train=(x, y), val=..., test=..., classes=...)"


@dataclass(frozen=True)
class Dataset:
    """What a data source returns: (x, y) pairs of numpy arrays or torch tensors.

    x has any shape (N, ...), the same trailing shape in every split: uint8 for images 0..255 (scaled to [0, 1] by
    trials; (N, H, W) gains a channel axis) or any other numbers (float32 for training). y holds N integer labels
    0..K-1, K = len(classes) when given, else the largest label + 1. With no `val`, a seeded random `val_fraction`
    of `train` becomes validation; with no `test`, there is no test split. A bare (x, y) is taken as `train` alone.
    """

    train: tuple[Any, Any]
    val: tuple[Any, Any] | None = None
    test: tuple[Any, Any] | None = None
    classes: Sequence[str] | None = None


def _call(fn: Any, spec: DataSpec, data_dir: str | None, roots: tuple[str, ...], where: str) -> Any:
    """Check `spec.args` against the function's signature, then call it (an error inside it: the user's file:line)."""
    ref, what = str(spec.source), f"{where}: key 'data.source'"
    sig = usercode.signature(fn, ref, what, reserved=())
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    args = dict(spec.args)
    for key, value in args.items():
        if key not in sig.adapters:
            if takes_any:
                continue
            takes = ", ".join(sig.defaults) or "no arguments"
            raise SweeperError(f"{where}: key 'data.args.{key}': {ref} takes no argument {key!r}"
                               f"{did_you_mean(key, sig.defaults)}; it takes {takes}")
        why = sig.check(key, value)
        if why is not None:
            raise SweeperError(f"{where}: key 'data.args.{key}': {ref} refuses {value!r}: {why}")
    if "seed" in params and "seed" not in args:
        args["seed"] = spec.seed
    if "data_dir" in params and "data_dir" not in args:
        args["data_dir"] = data_dir
    try:
        return fn(**args)
    except Exception as exc:  # noqa: BLE001 - any error in the user's loader is reported as their file:line
        raise SweeperError(f"{what}: {ref} failed: {usercode.describe_error(exc, roots)}") from None


def _array(a: Any, name: str, what: str) -> np.ndarray:
    """A numpy array from a numpy array or a torch tensor (moved to the CPU)."""
    if isinstance(a, np.ndarray):
        return a
    torch = sys.modules.get("torch")  # a tensor means torch is imported already
    if torch is not None and isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.dtype == torch.bfloat16 or t.dtype == torch.float16:
            t = t.float()
        return np.asarray(t.numpy())
    raise SweeperError(f"{what}: {name} is a {type(a).__name__}; give a numpy array or a torch tensor")


def _split(pair: Any, name: str, what: str) -> Pair:
    """One split's (x, y) checked: arrays of N rows each, x numbers, y whole-number labels, no NaN or inf."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        got = f"a {len(pair)}-tuple" if isinstance(pair, (tuple, list)) else f"a {type(pair).__name__}"
        raise SweeperError(f"{what}: Dataset.{name} must be a pair (x, y), got {got}")
    x, y = _array(pair[0], f"Dataset.{name} x", what), _array(pair[1], f"Dataset.{name} y", what)
    if x.ndim < 1:
        raise SweeperError(f"{what}: Dataset.{name} x is a scalar; give one row per example, shape (N, ...)")
    if y.ndim != 1:
        raise SweeperError(f"{what}: Dataset.{name} y has shape {y.shape}; give one label per example, shape (N,)")
    if len(x) != len(y):
        raise SweeperError(f"{what}: Dataset.{name} has {len(x)} rows of x but {len(y)} labels y")
    if len(y) == 0:
        raise SweeperError(f"{what}: Dataset.{name} is empty")
    if x.dtype.kind not in "biuf":
        raise SweeperError(f"{what}: Dataset.{name} x has dtype {x.dtype}; give numbers")
    if y.dtype.kind not in "iu":
        raise SweeperError(f"{what}: Dataset.{name} y has dtype {y.dtype}; give integer class labels 0..K-1")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x.reshape(len(x), -1))
        count = int(bad.sum())
        if count:
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise SweeperError(f"{what}: Dataset.{name} x has {count} NaN or infinite value(s), the first in "
                               f"row {row}")
    return x, y


def _classes(classes: Any, what: str) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, str) or not isinstance(classes, Sequence) or \
            not all(isinstance(c, str) for c in classes):
        raise SweeperError(f"{what}: Dataset.classes must be a list of class names (strings), got {classes!r}")
    return tuple(classes)


def _check(result: Any, what: str, ref: str) -> tuple[dict[str, Pair], tuple[str, ...] | None]:
    """The returned splits checked and normalised (x uint8 or float32, y int64, contiguous), and the class names."""
    if isinstance(result, Dataset):
        given = {"train": result.train, "val": result.val, "test": result.test}
        classes = _classes(result.classes, what)
    elif isinstance(result, tuple) and len(result) == 2 and not any(isinstance(p, (tuple, list)) for p in result):
        given, classes = {"train": result, "val": None, "test": None}, None
    else:
        got = f"a {len(result)}-tuple" if isinstance(result, tuple) else f"a {type(result).__name__}"
        raise SweeperError(f"{what}: {ref} returned {got}; {HINT}")
    splits = {name: _split(pair, name, what) for name, pair in given.items() if pair is not None}
    shape, uint8 = splits["train"][0].shape[1:], splits["train"][0].dtype == np.uint8
    for name, (x, y) in splits.items():
        if x.shape[1:] != shape:
            raise SweeperError(f"{what}: Dataset.{name} x has rows of shape {x.shape[1:]} but Dataset.train's are "
                               f"{shape}; every split needs the same")
        if (x.dtype == np.uint8) != uint8:
            raise SweeperError(f"{what}: Dataset.{name} x is {x.dtype} but Dataset.train x is "
                               f"{splits['train'][0].dtype}; give every split uint8 (images 0..255) or none")
        low = int(y.min())
        if low < 0:
            raise SweeperError(f"{what}: Dataset.{name} y has label {low}; labels are 0..K-1")
    top = max(int(y.max()) for _, y in splits.values())
    k = len(classes) if classes is not None else top + 1
    if classes is not None and top >= k:
        name = next(n for n, (_, y) in splits.items() if int(y.max()) == top)
        raise SweeperError(f"{what}: Dataset.{name} y has label {top}, out of range 0..{k - 1} for the {k} classes "
                           f"{list(classes)}")
    if k < 2:
        raise SweeperError(f"{what}: {ref} gave {k} class{'es' if k != 1 else ''} (labels 0..{top}); a classifier "
                           "needs at least 2")
    out = {name: (np.ascontiguousarray(x if uint8 else x.astype(np.float32, copy=False)),
                  np.ascontiguousarray(y.astype(np.int64, copy=False))) for name, (x, y) in splits.items()}
    return out, classes


def _hold_out(x: np.ndarray, y: np.ndarray, spec: DataSpec, what: str) -> tuple[np.ndarray, ...]:
    """A seeded random `val_fraction` of train as val: (x_train, y_train, x_val, y_val)."""
    n = len(y)
    n_val = int(round(n * spec.val_fraction))
    if n_val < 1 or n_val >= n:
        raise SweeperError(f"{what}: Dataset.train's {n} rows cannot give val_fraction {spec.val_fraction} as a "
                           "validation split; return Dataset(val=...) or give more rows")
    perm = np.random.default_rng(spec.seed).permutation(n)
    val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return x[train], y[train], x[val], y[val]


def load(data_dir: str | None, spec: DataSpec, roots: tuple[str, ...], where: str) -> Splits:
    """The splits `spec` names: Fashion-MNIST (`data.load`) with no `source`, else the user's function's, checked.

    `roots` are where `module.path` is looked for (usercode.roots_of), `where` the space file as errors name it."""
    if spec.source is None:
        return data.load(data_dir, spec)
    what = f"{where}: key 'data.source'"
    fn = usercode.resolve(spec.source, roots, what)
    result = _call(fn, spec, data_dir, roots, where)
    splits, classes = _check(result, what, spec.source)
    x_tr, y_tr = splits["train"]
    if "val" in splits:
        x_va, y_va = splits["val"]
    else:
        x_tr, y_tr, x_va, y_va = _hold_out(x_tr, y_tr, spec, what)
    if "test" not in splits and spec.test_subset is not None:
        raise SweeperError(f"{where}: key 'data.test_subset': {spec.source} gives no test split; drop test_subset "
                           "or return Dataset(test=...)")
    rng = np.random.default_rng(spec.seed)
    try:
        x_tr, y_tr = data.subset(x_tr, y_tr, spec.train_subset, rng, "train_subset")
        x_va, y_va = data.subset(x_va, y_va, spec.val_subset, rng, "val_subset")
        x_te, y_te = (data.subset(*splits["test"], spec.test_subset, rng, "test_subset") if "test" in splits
                      else (None, None))
    except SweeperError as exc:
        raise SweeperError(f"{where}: {exc}") from None
    c = np.ascontiguousarray
    return Splits(c(x_tr), c(y_tr), c(x_va), c(y_va), None if x_te is None else c(x_te),
                  None if y_te is None else c(y_te), classes)


def fingerprint(s: Splits) -> str:
    """sha256 (hex) of every split's shape, dtype and bytes, and the class names: equal data, equal fingerprint."""
    digest = hashlib.sha256()
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a = getattr(s, name)
        if a is None:
            digest.update(f"{name}:none;".encode())
            continue
        a = np.ascontiguousarray(a)
        digest.update(f"{name}:{a.shape}:{a.dtype.str};".encode())
        digest.update(a.data)
    digest.update(repr(s.classes).encode())
    return digest.hexdigest()
