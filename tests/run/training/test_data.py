"""Data loading: staging from read-only folders into a cache numpy reads, the study's splits, subsets, bad folders."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from sweeper.errors import SweeperError
from sweeper.run.training import data
from sweeper.spec.schema import DataSpec
from tests.conftest import write_idx


def test_tiny_folder_loads_with_study_split_and_is_never_written(tiny_data: Path) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tiny_data.iterdir())
    x_file, y_file, x_test, y_test = data.load_arrays(tiny_data)
    splits = data.split((x_file, y_file, x_test, y_test), DataSpec())
    assert splits.sizes() == {"train": 480, "val": 120, "test": 200}
    np.testing.assert_array_equal(splits.x_val, x_file[480:])  # validation = LAST 20%, unshuffled
    np.testing.assert_array_equal(splits.y_train, y_file[:480])
    assert splits.x_train.dtype == np.uint8 and splits.y_train.dtype == np.int64
    assert sorted((p.name, p.stat().st_mtime_ns) for p in tiny_data.iterdir()) == before


def test_subsets_are_seeded_and_drawn_from_their_own_split(tiny_data: Path) -> None:
    arrays = data.load_arrays(tiny_data)
    a = data.split(arrays, DataSpec(train_subset=100, val_subset=50, test_subset=20, seed=3))
    b = data.split(arrays, DataSpec(train_subset=100, val_subset=50, test_subset=20, seed=3))
    c = data.split(arrays, DataSpec(train_subset=100, seed=4))
    assert a.sizes() == {"train": 100, "val": 50, "test": 20}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    val_rows = {r.tobytes() for r in arrays[0][480:]}
    assert all(r.tobytes() in val_rows for r in a.x_val)


def test_torchvision_root_layout_is_accepted(tmp_path: Path, tiny_data: Path) -> None:
    raw = tmp_path / "root" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in tiny_data.iterdir():
        with gzip.open(f) as src:
            (raw / f.name.removesuffix(".gz")).write_bytes(src.read())
    assert len(data.load_arrays(tmp_path / "root")[1]) == 600


def test_env_var_names_the_folder(monkeypatch: pytest.MonkeyPatch, tiny_data: Path) -> None:
    monkeypatch.setenv("SWEEPER_DATA_DIR", str(tiny_data))
    assert len(data.load_arrays(None)[3]) == 200


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "missing t10k-labels-idx1-ubyte.gz"),
        ("truncated", "cannot read data file"),
        ("garbage", "cannot read data file"),
        ("wrong_count", "truncated or padded IDX images file"),
        ("swapped", "not an IDX labels file"),
    ],
)
def test_damaged_folder_is_a_one_line_user_error(tmp_path: Path, damage: str, message: str) -> None:
    folder = write_idx(tmp_path / "d", n_train=50, n_test=20)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    images = folder / "train-images-idx3-ubyte.gz"
    if damage == "missing":
        labels.unlink()
    elif damage == "truncated":
        images.write_bytes(images.read_bytes()[:500])
    elif damage == "garbage":
        images.write_bytes(b"not gzip at all")
    elif damage == "wrong_count":
        with gzip.open(images) as fh:
            body = fh.read()
        with gzip.open(images, "wb") as fh:
            fh.write(body[:-784])
    else:
        shutil.copy(folder / "t10k-images-idx3-ubyte.gz", labels)
    with pytest.raises(SweeperError, match=message) as exc:
        data.load_arrays(folder)
    assert "\n" not in str(exc.value)


def test_missing_folder_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match="does not exist"):
        data.load_arrays(tmp_path / "nowhere")


def test_real_fashion_mnist_follows_the_study_protocol(real_data: Path) -> None:
    splits = data.load(real_data, DataSpec())
    assert splits.sizes() == {"train": 48_000, "val": 12_000, "test": 10_000}
    assert splits.x_train.shape[1:] == (28, 28)
    assert splits.x_test.max() == 255 and splits.x_test.min() == 0
    assert np.bincount(splits.y_test).tolist() == [1000] * 10  # the official test set is balanced
    assert np.bincount(np.concatenate([splits.y_train, splits.y_val])).tolist() == [6000] * 10
    assert splits.y_train[:5].tolist() == [9, 0, 0, 3, 0]  # the official file order


def test_a_subset_larger_than_its_split_is_a_user_error(tiny_data: Path) -> None:
    with pytest.raises(SweeperError, match="data.train_subset 481 is more than the 480 images"):
        data.split(data.load_arrays(tiny_data), DataSpec(train_subset=481))


def test_a_damaged_folder_leaves_no_staging_debris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx(tmp_path / "d", n_train=50, n_test=20)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(SweeperError):
        data.load_arrays(folder)
    assert list((tmp_path / "cache" / "staged").iterdir()) == []


def test_real_data_reads_as_torchvision_decodes_it_without_importing_torch(real_data: Path, tmp_path: Path) -> None:
    """The numpy reader of the staged files gives exactly torchvision's arrays, in a process that never imports
    torch (a sweep's driver need not)."""
    import json
    import os
    import subprocess
    import sys

    from torchvision.datasets import FashionMNIST

    env = os.environ | {"SWEEPER_CACHE_DIR": str(tmp_path / "cache")}
    code = ("import sys, json, numpy as np; from sweeper.run import data; a = data.load_arrays(sys.argv[1]); "
            "np.save(sys.argv[2], a[0]); print(json.dumps([int(a[1].sum()), int(a[3].sum()), "
            "'torch' in sys.modules, 'torchvision' in sys.modules]))")
    for _ in range(2):  # staging, then the staged files as they are
        out = subprocess.run([sys.executable, "-c", code, str(real_data), str(tmp_path / "x.npy")], env=env,
                             capture_output=True, text=True, check=True).stdout
        y_train_sum, y_test_sum, torch_imported, torchvision_imported = json.loads(out)
        assert not torch_imported and not torchvision_imported
        root = next((tmp_path / "cache" / "staged").iterdir())
        train = FashionMNIST(str(root), train=True)
        assert np.array_equal(np.load(tmp_path / "x.npy"), train.data.numpy())
        assert y_train_sum == int(train.targets.sum())
        assert y_test_sum == int(FashionMNIST(str(root), train=False).targets.sum())


def test_a_staged_file_cut_short_later_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPER_CACHE_DIR", str(tmp_path / "cache"))
    folder = write_idx(tmp_path / "d", n_train=50, n_test=20)
    data.load_arrays(folder)
    staged = next((tmp_path / "cache" / "staged").iterdir()) / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    staged.write_bytes(staged.read_bytes()[:-5])
    with pytest.raises(SweeperError, match=r"t10k-images-idx3-ubyte: not a complete IDX images file \(magic 2051, "
                                           r"15691 bytes\); delete it to stage the data again"):
        data.load_arrays(folder)
