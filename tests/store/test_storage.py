"""Storage.parse and SweepFolder: every spelling of one local folder is one location, and a sweep folder's
reads, writes, listing and clearing behave the same on a local folder and on an S3 bucket (a local moto server).
No Ray here."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from sweeper.errors import SweeperError
from sweeper.store.storage import Storage, is_uri
from tests.s3 import S3, s3_fixture, s3_server_fixture  # noqa: F401 - the s3 fixtures


@pytest.fixture
def home_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as both the working directory and the home folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_every_spelling_of_a_local_folder_is_the_same_location(home_and_cwd: Path) -> None:
    runs = home_and_cwd / "runs"
    (home_and_cwd / "sub").mkdir()
    spellings = [
        "runs", "./runs", "runs/", "sub/../runs", "~/runs", "~/runs/", str(runs), f"{runs}/",
        f"file://{runs}", f"file://{runs}/", f"file://localhost{runs}", "file://runs", "file://~/runs",
    ]
    for given in spellings:
        storage = Storage.parse(given)
        assert storage.local and not is_uri(given), given
        assert storage.location == str(runs), given
        assert storage.path == runs, given
        assert storage.given == str(storage) == given  # messages repeat what the user wrote
        folder = storage.folder("cnn")
        assert folder.location == str(runs / "cnn") and folder.path == runs / "cnn", given
        assert folder.uri("trials.parquet") == str(runs / "cnn" / "trials.parquet"), given
    assert not (home_and_cwd / "file:").exists()


def test_a_file_uri_is_percent_decoded_like_any_file_uri(tmp_path: Path) -> None:
    storage = Storage.parse(f"file://{tmp_path}/my%20runs")
    assert storage.location == str(tmp_path / "my runs")


def test_a_uri_keeps_its_scheme_and_loses_trailing_slashes() -> None:
    storage = Storage.parse("s3://bucket/team/runs/")
    assert not storage.local and is_uri("s3://bucket/team/runs/")
    assert storage.location == "s3://bucket/team/runs" and str(storage) == "s3://bucket/team/runs/"
    folder = storage.folder("cnn")
    assert folder.location == "s3://bucket/team/runs/cnn" and not folder.local
    assert folder.uri("sweep.json") == "s3://bucket/team/runs/cnn/sweep.json"
    with pytest.raises(ValueError, match="not a local folder"):
        _ = storage.path


def test_an_unknown_scheme_is_a_one_line_user_error() -> None:
    folder = Storage.parse("nosuchfs://bucket/runs").folder("cnn")
    with pytest.raises(SweeperError, match=r"^--storage nosuchfs://bucket/runs: not a usable storage URI: "):
        folder.list()


# -- a sweep folder on each kind of storage ----------------------------------------------------------------------

BACKENDS = ["local", "s3"]


Files = Callable[[str], list[str]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, Files]:
    """An empty storage (a local folder, or a prefix of a fresh bucket on the local S3 server), and a function
    listing every file under one of its sweep folders straight from the storage (os.walk, or the bucket's
    own object listing), independent of SweepFolder."""
    if request.param == "local":
        root = tmp_path / "runs"

        def local_files(name: str) -> list[str]:
            top = root / name
            return sorted(str((Path(d) / f).relative_to(top)) for d, _, fs in os.walk(top) for f in fs)

        return Storage.parse(str(root)), local_files
    bucket: S3 = request.getfixturevalue("s3")

    def s3_files(name: str) -> list[str]:
        prefix = f"team/runs/{name}/"
        return [k.removeprefix(prefix) for k in bucket.keys(prefix) if not k.endswith("/")]  # not dir markers

    return Storage.parse(bucket.uri("team/runs") + "/"), s3_files


def test_an_empty_storage_has_no_folders_and_reads_nothing(backend: tuple[Storage, Files]) -> None:
    storage, _ = backend
    folder = storage.folder("cnn")
    assert storage.subfolders() == []
    assert not folder.exists() and folder.list() == [] and folder.list(folders_only=True) == []
    assert folder.read_bytes("sweep.json") is None and folder.read_text("sweep.json") is None
    assert not folder.has("sweep.json") and folder.mtime("sweep.json") is None
    folder.clear()  # nothing to clear: not an error


def test_write_read_has_list_on_every_storage(backend: tuple[Storage, Files]) -> None:
    storage, files = backend
    folder = storage.folder("cnn")
    folder.write_text("sweep.json", '{"state": "new"}')
    folder.write_text("spec.yaml", "name: cnn  # ünïcode\n")
    folder.write_bytes("trials.parquet", bytes(range(256)))
    folder.write_bytes("empty", b"")
    folder.write_text("trial_0/result.json", '{"epoch": 1}\n')

    assert folder.read_text("sweep.json") == '{"state": "new"}'
    assert folder.read_text("spec.yaml") == "name: cnn  # ünïcode\n"
    assert folder.read_bytes("trials.parquet") == bytes(range(256))
    assert folder.read_bytes("empty") == b""
    assert folder.read_text("trial_0/result.json") == '{"epoch": 1}\n'
    assert folder.has("sweep.json") and folder.has("trial_0/result.json") and folder.has("empty")
    assert not folder.has("trial_0") and not folder.has("missing.json")  # a folder is not a file
    assert isinstance(folder.mtime("sweep.json"), float) and folder.mtime("trial_0") is None

    folder.write_text("sweep.json", '{"state": "finished"}')  # a rewrite replaces the whole file
    assert folder.read_text("sweep.json") == '{"state": "finished"}'

    assert folder.exists()
    assert folder.list() == ["empty", "spec.yaml", "sweep.json", "trial_0", "trials.parquet"]  # no temp files
    assert folder.list(folders_only=True) == ["trial_0"]
    assert files("cnn") == ["empty", "spec.yaml", "sweep.json", "trial_0/result.json",
                                            "trials.parquet"]
    assert storage.subfolders() == ["cnn"]
    storage.folder("cnn2").write_text("sweep.json", "{}")
    assert storage.subfolders() == ["cnn", "cnn2"]


def test_clear_keeps_only_what_it_is_told_and_leaves_neighbours_alone(backend: tuple[Storage, Files]) -> None:
    storage, files = backend
    folder, neighbour = storage.folder("cnn"), storage.folder("cnn-2")  # one name a prefix of the other
    for f in (folder, neighbour):
        f.write_text(".lock", '{"pid": 1}')
        f.write_text("sweep.json", "{}")
        f.write_bytes("epochs.parquet", b"PAR1")
        f.write_text("trial_0/result.json", "{}")
        f.write_text("trial_0/checkpoint_000001/state.pt", "w")
    before = files("cnn-2")

    folder.clear(keep=(".lock",))
    assert folder.list() == [".lock"] and folder.read_text(".lock") == '{"pid": 1}'
    assert files("cnn") == [".lock"]
    assert not folder.has("sweep.json") and folder.read_bytes("trial_0/result.json") is None
    assert files("cnn-2") == before and neighbour.read_text("sweep.json") == "{}"

    folder.write_text("sweep.json", '{"new": true}')  # the cleared folder takes new files as before
    assert folder.list() == [".lock", "sweep.json"]

    folder.clear()
    assert folder.list() == [] and not folder.exists() and files("cnn") == []
    assert files("cnn-2") == before


def test_a_folder_from_each_spelling_sees_the_same_files(home_and_cwd: Path) -> None:
    Storage.parse("runs").folder("cnn").write_text("sweep.json", "{}")
    for given in ("~/runs", f"file://{home_and_cwd}/runs", str(home_and_cwd / "runs")):
        folder = Storage.parse(given).folder("cnn")
        assert folder.has("sweep.json") and folder.read_text("sweep.json") == "{}", given
        assert folder.list() == ["sweep.json"], given
        assert Storage.parse(given).subfolders() == ["cnn"], given


def test_unreadable_local_file_is_a_sweeper_error_naming_it(tmp_path: Path) -> None:
    folder = Storage.parse(str(tmp_path)).folder("cnn")
    (tmp_path / "cnn" / "sweep.json").mkdir(parents=True)  # a folder where a file should be
    with pytest.raises(SweeperError, match=f"^{tmp_path}/cnn/sweep.json: cannot read: "):
        folder.read_bytes("sweep.json")


def test_a_local_storage_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(SweeperError, match="is not a folder"):
        Storage.parse(str(tmp_path / "runs")).subfolders()
