"""Where sweeps live: `--storage` resolved once into a Storage, and one sweep's folder under it.

`--storage` may be a local path (relative to the working directory, `~` expanded), `file:///abs/path`, or a
URI of any pyarrow filesystem (`s3://BUCKET/PATH`, `gs://BUCKET/PATH`). `file://` and a plain path are the same
local folder. Every command (launch, resume, status, list, report, export) gets its sweep folders from
`Storage.parse(...).folder(name)`, so they all find the same files. A folder reads and writes small files and
Parquet atomically: locally a temporary file renamed over the old one, on an object store one object put.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pyarrow.fs as pafs

from sweeper.errors import SweeperError


def is_uri(location: str) -> bool:
    """A remote filesystem URI (s3://, gs://, ...): not a local path, nor file://."""
    return "://" in location and not location.startswith("file://")


def _file_uri_path(given: str) -> str:
    """The local path a `file://` URI names (percent-decoded, an explicit `localhost` host dropped); a plain
    path as it is. `file://runs` and `file://~/runs` stay the relative and home paths they look like."""
    if not given.startswith("file://"):
        return given
    rest = given.removeprefix("file://")
    if rest.startswith("localhost/"):
        rest = rest.removeprefix("localhost")
    return unquote(rest)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@dataclass(frozen=True)
class Storage:
    """The folder (or bucket prefix) that holds sweeps, one sub-folder per sweep."""

    given: str  # as the user wrote it: messages and the resume command repeat it
    location: str  # canonical: an absolute local path, or the URI without a trailing slash

    @classmethod
    def parse(cls, given: str) -> Storage:
        if is_uri(given):
            return cls(given, given.rstrip("/"))
        return cls(given, os.path.abspath(Path(_file_uri_path(given)).expanduser()))  # `..` folded, as `cd` does

    @property
    def local(self) -> bool:
        return not is_uri(self.location)

    @property
    def path(self) -> Path:
        """The local folder (only for local storage)."""
        if not self.local:
            raise ValueError(f"{self.location} is not a local folder")
        return Path(self.location)

    def folder(self, name: str) -> SweepFolder:
        return SweepFolder(self, name)

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and this storage's path inside it."""
        if self.local:
            return pafs.LocalFileSystem(), self.location
        try:
            return pafs.FileSystem.from_uri(self.location)
        except (ValueError, OSError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise SweeperError(f"--storage {self.given}: not a usable storage URI: {_first_line(exc)}") from None

    def subfolders(self) -> list[str]:
        """Names of the folders directly under this storage ([] if it does not exist yet)."""
        if self.local:
            root = self.path
            if not root.exists():
                return []
            if not root.is_dir():
                raise SweeperError(f"--storage {self.given}: is not a folder; sweeps are stored in a folder")
            try:
                return sorted(p.name for p in root.iterdir() if p.is_dir())
            except OSError as exc:
                raise SweeperError(f"--storage {self.given}: cannot list: {exc.strerror or exc}") from None
        fs, base = self.filesystem()
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except OSError as exc:
            raise SweeperError(f"--storage {self.given}: cannot list: {_first_line(exc)}") from None
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def __str__(self) -> str:
        return self.given


@dataclass(frozen=True)
class SweepFolder:
    """`<storage>/<name>/`: a sweep's own folder, and atomic reads and writes of the files in it."""

    storage: Storage
    name: str

    @property
    def location(self) -> str:
        """An absolute local path, or a URI: what messages show and Ray's storage gets."""
        return f"{self.storage.location}/{self.name}" if not self.storage.local else str(
            Path(self.storage.location) / self.name)

    @property
    def local(self) -> bool:
        return self.storage.local

    @property
    def path(self) -> Path:
        """The local folder (only for local storage)."""
        return Path(self.location)

    def uri(self, file: str) -> str:
        """A file of this folder, as a local path or URI."""
        return f"{self.location}/{file}"

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        fs, base = self.storage.filesystem()
        return fs, posixpath.join(base, self.name) if not self.local else str(self.path)

    def fs_path(self, file: str = "") -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the path of `file` (or of the folder) inside it."""
        fs, base = self._fs()
        return fs, (f"{base}/{file}" if file else base)

    # -- small files ------------------------------------------------------------------------------------------

    def read_bytes(self, file: str) -> bytes | None:
        """A file's bytes, or None if it does not exist; an unreadable one is a SweeperError naming it."""
        try:
            if self.local:
                return (self.path / file).read_bytes()
            fs, path = self.fs_path(file)
            with fs.open_input_stream(path) as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if not self.local and "not found" in str(exc).lower():  # some object stores say so in the message
                return None
            raise SweeperError(f"{self.uri(file)}: cannot read: {getattr(exc, 'strerror', None) or _first_line(exc)}"
                               ) from None

    def read_text(self, file: str) -> str | None:
        data = self.read_bytes(file)
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise SweeperError(f"{self.uri(file)}: not a text file: {exc}") from None

    def write_bytes(self, file: str, data: bytes, sync: bool = False) -> None:
        """Write a file atomically: a temporary file renamed over the old one locally, one object put on a URI."""
        if not self.local:
            fs, path = self.fs_path(file)
            with fs.open_output_stream(path) as out:
                out.write(data)
            return
        target = self.path / file
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)

    def write_text(self, file: str, text: str) -> None:
        self.write_bytes(file, text.encode())

    def has(self, file: str) -> bool:
        if self.local:
            return (self.path / file).is_file()
        fs, path = self.fs_path(file)
        try:
            return fs.get_file_info(path).type == pafs.FileType.File
        except OSError:
            return False

    def mtime(self, file: str) -> float | None:
        """When a file was last written (seconds since the epoch), if the storage says."""
        fs, path = self.fs_path(file)
        try:
            info = fs.get_file_info(path)
        except OSError:
            return None
        return info.mtime.timestamp() if info.type == pafs.FileType.File and info.mtime else None

    # -- the folder itself ------------------------------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the folder holds anything."""
        return bool(self.list())

    def list(self, folders_only: bool = False) -> list[str]:
        """Names of the entries (or only the sub-folders) in this folder ([] if it does not exist)."""
        fs, base = self.fs_path()
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except OSError:
            return []
        return sorted(i.base_name for i in infos if not folders_only or i.type == pafs.FileType.Directory)

    def clear(self, keep: tuple[str, ...] = ()) -> None:
        """Delete everything in the folder except the top-level entries named in `keep`, on any storage."""
        fs, base = self.fs_path()
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except OSError as exc:
            raise SweeperError(f"{self.location}: cannot list: {_first_line(exc)}") from None
        for info in infos:
            if info.base_name in keep:
                continue
            if info.type == pafs.FileType.Directory:
                fs.delete_dir(info.path)
            else:
                fs.delete_file(info.path)

    def mkdir(self) -> None:
        fs, base = self.fs_path()
        fs.create_dir(base, recursive=True)

    def __str__(self) -> str:
        return self.location
