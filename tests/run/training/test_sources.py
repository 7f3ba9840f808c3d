"""Data sets of your own (`data.source`): real loader modules written to a folder, imported, called, checked,
split and fingerprinted; every refusal is one line naming the space file and the rule; Fashion-MNIST unchanged."""

from __future__ import annotations

import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from sweeper.errors import SweeperError
from sweeper.run.training import data, sources
from sweeper.run.training.sources import Dataset
from sweeper.spec.schema import DataSpec

WHERE = "spaces/mine.yaml"

# Seeded random data of 3 classes: 4 features, uint8 or float.
HEADER = """\
import numpy as np
import sweeper


def arrays(n, seed=0, d=4, k=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float64), rng.integers(0, k, size=n)
"""


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a module of loaders to tmp_path under a name unique to the test; give its name. sys.path and
    sys.modules are restored after."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    names: list[str] = []

    def write(body: str, header: str = HEADER) -> str:
        name = "src_" + re.sub(r"\W", "_", tmp_path.name) + f"_{len(names)}"
        (tmp_path / f"{name}.py").write_text(header + textwrap.dedent(body))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)


def load(tmp_path: Path, ref: str, **spec: object) -> data.Splits:
    return sources.load(None, DataSpec(source=ref, **spec), (str(tmp_path),), WHERE)


def refused(tmp_path: Path, ref: str, **spec: object) -> str:
    with pytest.raises(SweeperError) as info:
        load(tmp_path, ref, **spec)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: ") and "\n" not in message, message
    return message


def test_a_dataset_with_val_and_test_is_normalised(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load(n: int = 100, seed: int = 0, data_dir: str | None = None):
            assert data_dir is None
            return sweeper.Dataset(train=arrays(n, seed), val=arrays(30, seed + 1), test=arrays(20, seed + 2),
                                   classes=["a", "b", "c"])
    """)
    s = load(tmp_path, f"{name}:load", args={"n": 50}, seed=7)
    assert s.sizes() == {"train": 50, "val": 30, "test": 20}
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64 and s.x_test is not None
    assert all(a.flags.c_contiguous for a in (s.x_train, s.y_train, s.x_val, s.y_val, s.x_test))
    x = np.random.default_rng(7).normal(size=(50, 4))
    np.testing.assert_allclose(s.x_train, x.astype(np.float32))  # seed=data.seed passed (the rng draws x first)
    assert s.classes == ("a", "b", "c") and s.num_classes == 3 and s.input_shape == (4,)


def test_uint8_images_stay_uint8_and_gain_a_channel(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load(seed: int = 0):
            rng = np.random.default_rng(seed)
            x = rng.integers(0, 256, size=(40, 8, 8)).astype(np.uint8)
            return sweeper.Dataset(train=(x, rng.integers(0, 2, size=40)), val=(x[:5], np.array([0, 1, 1, 0, 1])))
    """)
    s = load(tmp_path, f"{name}:load")
    assert s.x_train.dtype == np.uint8 and s.input_shape == (1, 8, 8) and s.num_classes == 2
    assert s.x_test is None and s.y_test is None and s.sizes()["test"] == 0 and s.classes is None


def test_tensors_are_accepted(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        import torch

        def load(seed: int = 0):
            g = torch.Generator().manual_seed(seed)
            x, y = torch.randn(60, 3, 4, generator=g, dtype=torch.float64), torch.randint(0, 4, (60,), generator=g)
            return sweeper.Dataset(train=(x, y), val=(x[:10], y[:10]), test=(x[:5].half(), y[:5].int()))
    """)
    s = load(tmp_path, f"{name}:load")
    assert isinstance(s.x_train, np.ndarray) and s.x_train.dtype == np.float32 and s.x_train.shape == (60, 3, 4)
    assert s.y_test is not None and s.y_test.dtype == np.int64 and s.num_classes == 4


def test_no_val_is_a_seeded_split_of_train(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load():
            x, y = arrays(100)
            return x, y   # a bare (x, y): train only
    """)
    a = load(tmp_path, f"{name}:load", seed=1, val_fraction=0.25)
    b = load(tmp_path, f"{name}:load", seed=1, val_fraction=0.25)
    c = load(tmp_path, f"{name}:load", seed=2, val_fraction=0.25)
    assert a.sizes() == {"train": 75, "val": 25, "test": 0} and a.x_test is None
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, c.x_val)
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    rows = sorted(r.tobytes() for r in np.concatenate([a.x_train, a.x_val]))
    assert rows == sorted(r.tobytes() for r in x)  # a partition of train
    perm = np.random.default_rng(1).permutation(100)
    np.testing.assert_array_equal(a.x_val, x[np.sort(perm[:25])])


def test_subsets_are_seeded_draws(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load():
            return sweeper.Dataset(train=arrays(100), val=arrays(40, 1), test=arrays(30, 2))
    """)
    a = load(tmp_path, f"{name}:load", train_subset=20, val_subset=10, test_subset=5, seed=3)
    b = load(tmp_path, f"{name}:load", train_subset=20, val_subset=10, test_subset=5, seed=3)
    assert a.sizes() == {"train": 20, "val": 10, "test": 5}
    assert sources.fingerprint(a) == sources.fingerprint(b)
    full = load(tmp_path, f"{name}:load")
    train_rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in train_rows for r in a.x_train)


def test_subsets_too_large_or_without_a_test_split_are_refused(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load():
            return sweeper.Dataset(train=arrays(100), val=arrays(40, 1))
    """)
    message = refused(tmp_path, f"{name}:load", val_subset=41)
    assert "data.val_subset 41 is more than the 40" in message
    message = refused(tmp_path, f"{name}:load", test_subset=5)
    assert "key 'data.test_subset'" in message and "gives no test split" in message


@pytest.mark.parametrize(("body", "phrases"), [
    ("return {'train': arrays(10)}", ["key 'data.source'", "returned a dict;",
                                      "return sweeper.Dataset(train=(x, y), val=..., test=..., classes=...)"]),
    ("return (*arrays(10), 1)", ["returned a 3-tuple;", "return sweeper.Dataset("]),
    ("return sweeper.Dataset(train=arrays(10)[0])", ["Dataset.train must be a pair (x, y), got a ndarray"]),
    ("return sweeper.Dataset(train=(list(range(10)), np.zeros(10, int)))",
     ["Dataset.train x is a list; give a numpy array or a torch tensor"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, y[:9]))", ["Dataset.train has 10 rows of x but 9 labels y"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, y), val=(x[:0], y[:0]))", ["Dataset.val is empty"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, y.astype(float)))",
     ["Dataset.train y has dtype float64; give integer class labels 0..K-1"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, y.reshape(10, 1)))", ["Dataset.train y has shape (10, 1)"]),
    ("x, y = arrays(10); y[3] = -1; return sweeper.Dataset(train=(x, y))", ["Dataset.train y has label -1"]),
    ("x, y = arrays(10); y[3] = 5; return sweeper.Dataset(train=(x, y), test=arrays(5), classes=['a', 'b', 'c'])",
     ["Dataset.train y has label 5, out of range 0..2 for the 3 classes"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, 0 * y))",
     ["gave 1 class (labels 0..0); a classifier needs at least 2"]),
    ("x, y = arrays(10); x[4, 1] = np.nan; x[6, 0] = np.inf; return sweeper.Dataset(train=(x, y))",
     ["Dataset.train x has 2 NaN or infinite value(s), the first in row 4"]),
    ("return sweeper.Dataset(train=arrays(10), val=arrays(5, d=3))",
     ["Dataset.val x has rows of shape (3,) but Dataset.train's are (4,)"]),
    ("x, y = arrays(10); return sweeper.Dataset(train=(x, y), val=((x[:5] > 0).astype(np.uint8), y[:5]))",
     ["Dataset.val x is uint8 but Dataset.train x is float64"]),
    ("return sweeper.Dataset(train=arrays(10), classes='abc')", ["Dataset.classes must be a list of class names"]),
])
def test_bad_returns_are_refused_in_one_line(tmp_path: Path, module: Callable[[str], str], body: str,
                                             phrases: list[str]) -> None:
    name = module(f"def load():\n    {body}\n")
    message = refused(tmp_path, f"{name}:load")
    assert message.startswith(f"{WHERE}: key 'data.source': ")
    for phrase in phrases:
        assert phrase in message, message


def test_unknown_and_badly_typed_args_are_refused(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load(n_rows: int = 10, scale: float = 1.0, seed: int = 0):
            return arrays(n_rows, seed)
    """)
    message = refused(tmp_path, f"{name}:load", args={"n_row": 5})
    assert message.startswith(f"{WHERE}: key 'data.args.n_row': {name}:load takes no argument 'n_row'")
    assert "(did you mean 'n_rows'?)" in message and "it takes n_rows, scale, seed" in message
    message = refused(tmp_path, f"{name}:load", args={"n_rows": "ten"})
    assert message.startswith(f"{WHERE}: key 'data.args.n_rows': {name}:load refuses 'ten': ")
    assert "integer" in message
    assert load(tmp_path, f"{name}:load", args={"n_rows": 20, "scale": 2}).sizes()["train"] == 16  # int for float


def test_an_error_inside_the_loader_names_the_users_file_and_line(tmp_path: Path,
                                                                  module: Callable[[str], str]) -> None:
    name = module("""
        def load():
            x, y = arrays(10)
            raise ValueError("no such file: train.csv")
    """)
    line = HEADER.count("\n") + 4
    message = refused(tmp_path, f"{name}:load")
    assert message == (f"{WHERE}: key 'data.source': {name}:load failed: {tmp_path / name}.py:{line}: "
                       "ValueError: no such file: train.csv")


def test_a_syntax_error_names_file_and_line(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("def load(:\n    pass\n", header="")
    message = refused(tmp_path, f"{name}:load")
    assert message.startswith(f"{WHERE}: key 'data.source': importing {name!r} failed: {tmp_path / name}.py:1: "
                              "SyntaxError")


def test_a_missing_module_or_function_is_refused(tmp_path: Path, module: Callable[[str], str]) -> None:
    message = refused(tmp_path, "no_such_pkg_xyz.data:load")
    assert message.startswith(f"{WHERE}: key 'data.source': cannot import 'no_such_pkg_xyz.data': no module named "
                              "'no_such_pkg_xyz'")
    name = module("def load_data():\n    return arrays(10)\n")
    message = refused(tmp_path, f"{name}:load_dat")
    assert f"{name!r} has no 'load_dat' (did you mean 'load_data'?)" in message


def test_fingerprint_follows_the_data(tmp_path: Path, module: Callable[[str], str]) -> None:
    name = module("""
        def load(seed: int = 0, n: int = 50):
            return sweeper.Dataset(train=arrays(n, seed), val=arrays(10, seed + 1), classes=["a", "b", "c"])
    """)
    a, b = load(tmp_path, f"{name}:load"), load(tmp_path, f"{name}:load")
    assert sources.fingerprint(a) == sources.fingerprint(b)
    assert re.fullmatch(r"[0-9a-f]{64}", sources.fingerprint(a))
    assert sources.fingerprint(a) != sources.fingerprint(load(tmp_path, f"{name}:load", seed=1))
    assert sources.fingerprint(a) != sources.fingerprint(load(tmp_path, f"{name}:load", args={"n": 51}))
    x = a.x_train.copy()
    x[0, 0] += 1
    changed = data.Splits(x, a.y_train, a.x_val, a.y_val, a.x_test, a.y_test, a.classes)
    assert sources.fingerprint(changed) != sources.fingerprint(a)
    renamed = data.Splits(a.x_train, a.y_train, a.x_val, a.y_val, None, None, ("a", "b", "z"))
    assert sources.fingerprint(renamed) != sources.fingerprint(a)


def test_dataset_is_sweepers_public_type() -> None:
    import sweeper

    assert sweeper.Dataset is Dataset and "Dataset" in sweeper.__all__


def test_fashion_is_unchanged_without_a_source(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("SWEEPER_DATA_DIR"):
        monkeypatch.setenv("SWEEPER_DATA_DIR", str(Path(__file__).resolve().parents[4] / "shared" / "data"
                                                   / "fashion-mnist"))
    spec = DataSpec(train_subset=5000, seed=2)
    mine, theirs = sources.load(None, spec, (), WHERE), data.load(None, spec)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a, b = getattr(mine, field), getattr(theirs, field)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    full = sources.load(None, DataSpec(), (), WHERE)
    assert full.sizes() == {"train": 48000, "val": 12000, "test": 10000}
    assert full.x_train.dtype == np.uint8 and full.input_shape == (1, 28, 28) and full.num_classes == 10
    assert full.classes is not None and full.classes[0] == "T-shirt/top" and full.classes[9] == "Ankle boot"
    assert sources.fingerprint(full) == sources.fingerprint(data.load(None, DataSpec()))
