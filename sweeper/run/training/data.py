"""Fashion-MNIST through torchvision: locate, stage, split (study protocol) and subset.

The data folder may be read-only (CI's shared copy is): it is never written to. Its .gz files are
decompressed and checked once into a writable cache laid out as torchvision's `<root>/FashionMNIST/raw/`, and
every later run memory-maps them from there with numpy (no decoding, no torch import). With no folder given,
torchvision downloads into the cache (and checks the files' MD5).

Splits follow the study (Keras `validation_split=0.2`): validation = the LAST 20% of the training file,
unshuffled; training = the rest; test = the test file. Arrays stay uint8 (N, 28, 28) + int64 labels so the
driver can put them in Ray's object store once; trials scale to [0, 1] on their own device.

`Splits` is also what a data source of your own gives (`sources`): x of any shape (N, ...), uint8 (images
0..255, which trials scale to [0, 1]; (N, H, W) gains a channel axis) or float32; y int64 labels 0..K-1; and
possibly no test split.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweeper.errors import SweeperError
from sweeper.spec.schema import DataSpec

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
IDX_MAGIC = {"images": 2051, "labels": 2049}


# Fashion-MNIST's labels 0..9, in order.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


@dataclass(frozen=True)
class Splits:
    """Train/val/test arrays, C-contiguous: x (N, ...) uint8 (images 0..255, which trials scale to [0, 1]) or
    float32, the same trailing shape in every split; y int64 (N,) labels 0..K-1. `x_test`/`y_test` are None when
    the data has no test split; `classes` names the K labels where known (Fashion-MNIST's ten)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    classes: tuple[str, ...] | None = None

    @property
    def num_classes(self) -> int:
        """K: len(classes) if given, else the largest label over the splits + 1."""
        if self.classes is not None:
            return len(self.classes)
        ys = [y for y in (self.y_train, self.y_val, self.y_test) if y is not None and len(y)]
        return max(int(y.max()) for y in ys) + 1 if ys else 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape as a model sees it: x's trailing shape, (H, W) uint8 images as (1, H, W)."""
        shape = tuple(int(d) for d in self.x_train.shape[1:])
        return (1, *shape) if self.x_train.dtype == np.uint8 and len(shape) == 2 else shape

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val),
                "test": 0 if self.y_test is None else len(self.y_test)}


def cache_dir() -> Path:
    root = os.environ.get("SWEEPER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sweeper"
    )
    return Path(root)


def _find_raw(folder: Path) -> Path:
    """The folder holding the four files (.gz or decompressed): the folder itself or a torchvision root."""
    for candidate in (folder, folder / "FashionMNIST" / "raw", folder / "raw"):
        if all((candidate / f"{name}.gz").is_file() or (candidate / name).is_file() for name in FILES):
            return candidate
    missing = [f"{n}.gz" for n in FILES if not (folder / f"{n}.gz").is_file() and not (folder / n).is_file()]
    raise SweeperError(
        f"{folder}: data folder must hold the four Fashion-MNIST files (or FashionMNIST/raw/ with them); "
        f"missing {', '.join(missing)}"
    )


def _layout(name: str, count: int) -> tuple[str, int, tuple[int, ...]]:
    """An IDX file's kind, header length and array shape, from its name and the count in its header."""
    if "images" in name:
        return "images", 16, (count, 28, 28)
    return "labels", 8, (count,)


def _check_idx(path: Path, name: str, data: bytes) -> None:
    kind = _layout(name, 0)[0]
    if len(data) < 8:
        raise SweeperError(f"{path}: not an IDX {kind} file: only {len(data)} bytes")
    magic, count = struct.unpack(">II", data[:8])
    if magic != IDX_MAGIC[kind]:
        raise SweeperError(f"{path}: not an IDX {kind} file: magic number {magic}, expected {IDX_MAGIC[kind]}")
    _, offset, shape = _layout(name, count)
    expected = offset + math.prod(shape)
    if len(data) != expected:
        raise SweeperError(f"{path}: truncated or padded IDX {kind} file: {len(data)} bytes, header says {expected}")


def _read_source(raw: Path, name: str) -> tuple[Path, bytes]:
    gz, plain = raw / f"{name}.gz", raw / name
    src = gz if gz.is_file() else plain
    try:
        if src is gz:
            with gzip.open(src, "rb") as fh:
                data = fh.read()
        else:
            data = src.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise SweeperError(f"{src}: cannot read data file: {exc}") from None
    _check_idx(src, name, data)
    return src, data


def stage(folder: str | Path) -> Path:
    """Decompress and check the four files into a cache root that torchvision reads; return that root.

    The cache key is the source folder and the files' sizes and mtimes, so a changed folder is re-staged.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise SweeperError(f"{folder}: data folder does not exist or is not a folder")
    raw = _find_raw(folder)
    key = hashlib.sha256(str(raw).encode())
    for name in FILES:
        for src in (raw / f"{name}.gz", raw / name):
            if src.is_file():
                st = src.stat()
                key.update(f"{src.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    root = cache_dir() / "staged" / key.hexdigest()[:16]
    target = root / "FashionMNIST" / "raw"
    if all((target / name).is_file() for name in FILES):
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    (tmp / "FashionMNIST" / "raw").mkdir(parents=True, exist_ok=True)
    try:
        for name in FILES:
            _, data = _read_source(raw, name)
            (tmp / "FashionMNIST" / "raw" / name).write_bytes(data)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(root, ignore_errors=True)
    try:
        tmp.rename(root)
    except OSError:  # another process staged it first
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _read_idx(path: Path, name: str) -> np.ndarray:
    """One decompressed IDX file as a read-only memory map (no copy until a split slices it), its header checked
    against its size: a staged file changed or cut since staging is an error, not garbage."""
    kind, offset, _ = _layout(name, 0)
    try:
        with open(path, "rb") as fh:
            header = fh.read(offset)
        size = path.stat().st_size
    except OSError as exc:
        raise SweeperError(f"{path}: cannot read data file: {exc.strerror or exc}") from None
    if len(header) < 8:
        raise SweeperError(f"{path}: not an IDX {kind} file: only {size} bytes")
    magic, count = struct.unpack(">II", header[:8])
    _, offset, shape = _layout(name, count)
    if magic != IDX_MAGIC[kind] or size != offset + math.prod(shape):
        raise SweeperError(f"{path}: not a complete IDX {kind} file (magic {magic}, {size} bytes); delete it to "
                           "stage the data again")
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=shape)


def _raw_arrays(raw: Path) -> tuple[np.ndarray, ...]:
    """(x_train_file, y_train_file, x_test, y_test) from a folder of the four decompressed IDX files."""
    x_train, y_train, x_test, y_test = (_read_idx(raw / name, name) for name in FILES)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def _download(root: Path) -> Path:
    """torchvision downloads (and checks the MD5 of) the four files into `root`; the folder holding them."""
    from torchvision.datasets import FashionMNIST

    try:
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except RuntimeError as exc:
        raise SweeperError(f"{root}: torchvision could not download Fashion-MNIST: {exc}") from None
    return root / "FashionMNIST" / "raw"


def load_arrays(data_dir: str | Path | None) -> tuple[np.ndarray, ...]:
    """(x_train_file, y_train_file, x_test, y_test) from a folder, SWEEPER_DATA_DIR, or a download.

    Read with numpy from the staged (decompressed) files: no torch or torchvision import, and no decoding after
    the first run; torchvision only downloads."""
    folder = data_dir or os.environ.get("SWEEPER_DATA_DIR")
    if folder:
        return _raw_arrays(stage(folder) / "FashionMNIST" / "raw")
    raw = cache_dir() / "download" / "FashionMNIST" / "raw"
    if not all((raw / name).is_file() for name in FILES):
        raw = _download(cache_dir() / "download")
    return _raw_arrays(raw)


def subset(
    x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator, key: str
) -> tuple[np.ndarray, ...]:
    """`n` rows of a split drawn with `rng` (in their order), or all of it; more than it has is an error naming `key`.
    Fashion-MNIST's split and a data source's (sources.py) share it."""
    if n is not None and n > len(y):
        raise SweeperError(f"data.{key} {n} is more than the {len(y)} images of that split")
    if n is None or n == len(y):
        return x, y
    idx = np.sort(rng.choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


def split(arrays: tuple[np.ndarray, ...], spec: DataSpec) -> Splits:
    """Study protocol split plus optional seeded subsets."""
    x_file, y_file, x_test, y_test = arrays
    n_val = int(round(len(y_file) * spec.val_fraction))
    cut = len(y_file) - n_val
    rng = np.random.default_rng(spec.seed)
    x_tr, y_tr = subset(x_file[:cut], y_file[:cut], spec.train_subset, rng, "train_subset")
    x_va, y_va = subset(x_file[cut:], y_file[cut:], spec.val_subset, rng, "val_subset")
    x_te, y_te = subset(x_test, y_test, spec.test_subset, rng, "test_subset")
    x_tr, y_tr, x_va, y_va, x_te, y_te = (np.ascontiguousarray(a) for a in (x_tr, y_tr, x_va, y_va, x_te, y_te))
    return Splits(x_tr, y_tr, x_va, y_va, x_te, y_te, FASHION_CLASSES)


def load(data_dir: str | Path | None, spec: DataSpec) -> Splits:
    """Load Fashion-MNIST and split it as the study did."""
    return split(load_arrays(data_dir), spec)
