"""`.lock` in a sweep's folder: who runs the sweep now (pid, host, command). One driver per sweep, on every storage.

A second launch/resume is refused (a SweeperError naming the holder: exit 2) while the holder may still run; a lock
is taken over only when its holder is provably gone. How each store makes that hold:

- Local disk: the lock is written whole to a temporary file beside the sweep's folder (in it only where the folder
  is a mount of its own) and hard-linked to `.lock` (`link` fails if the name exists, so creation is atomic and the
  lock is never visible half-written); a temporary file removed meanwhile is written again. Its holder keeps an
  exclusive `flock` on the file while it runs; the kernel drops it when the process dies. A taker takes a stale
  lock over only while it holds that `flock` itself (so no two takers can act at once) and only when the holder is
  gone (below); it then removes that very file (same inode) and races for the name again with `link`, where one
  process wins.
- s3://: the lock is one object put with `If-None-Match: *` (S3's conditional write: exactly one creator wins);
  a stale one is replaced with `If-Match: <the ETag it was judged on>`, so of two takers one wins and the other
  sees the winner's lock; it is deleted at the end with `If-Match` on the holder's own ETag. The holder rewrites it
  every HEARTBEAT_S (also conditional) so a refusal can say when it was last heard from. After taking the lock the
  endpoint is checked to honour those conditions (a store that ignored them would lock nothing): it is refused
  otherwise. boto3 makes those requests, with the endpoint and credentials the storage's pyarrow filesystem uses.
- gs://: the same with GCS generation preconditions (`ifGenerationMatch=0`, then the observed generation), through
  google-cloud-storage; without that package a sweep on gs:// is refused rather than run unlocked.
- Any other URI scheme: refused (no atomic create known for it).

"Provably gone" (holder_gone): the lock was written on this machine (same host name, and same /etc/machine-id and
pid namespace where both sides record them) and either the machine has rebooted since (same machine id, another
boot id) or no process has the holder's pid any more, or the process that has it started at another time (the pid
was reused). A lock from another host is never taken over automatically, however old: nothing seen from here proves
a process on another machine gone (a paused VM or a network partition looks the same as a dead one); the refusal
names the host, pid and command, and says to delete the lock once that process is known to be gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sweeper.errors import SweeperError
from sweeper.store.files import LOCK_FILE
from sweeper.store.storage import SweepFolder

HEARTBEAT_S = 60.0  # how often the holder of a lock on a URI rewrites it
BUSY_S = 5.0  # how long a taker waits on a lock being taken over by another process before it refuses
RACE_ENV = "SWEEPER_TEST_LOCK_RACE"  # tests only: a folder of barrier files around taking the lock (_race_point)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_first(*paths: str) -> str:
    for p in paths:
        try:
            return Path(p).read_text().strip()
        except OSError:
            continue
    return ""


def _pid_start(pid: int) -> int:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); 0 if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def _pid_ns() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def identity() -> dict[str, Any]:
    """What a lock records of its holder: enough to prove later, from this machine, that it is gone."""
    pid = os.getpid()
    return {
        "pid": pid, "host": socket.gethostname(), "started": time.time(), "argv": sys.argv,
        "machine": _read_first("/etc/machine-id", "/var/lib/dbus/machine-id"),
        "boot": _read_first("/proc/sys/kernel/random/boot_id"), "pidns": _pid_ns(), "pid_start": _pid_start(pid),
        "token": uuid.uuid4().hex,
    }


def holder_gone(holder: dict[str, Any]) -> bool:
    """Whether the process that wrote this lock is provably gone (the module's docstring says when); False when
    in doubt. A lock of an older sweeper (pid and host only) is gone when its host is this one and its pid is not
    running."""
    me = identity()
    pid = int(holder.get("pid") or 0)
    if not pid or holder.get("host") != me["host"]:
        return False
    machine, boot = holder.get("machine") or "", holder.get("boot") or ""
    if machine and me["machine"] and machine != me["machine"]:
        return False  # another machine of the same name
    if boot and me["boot"] and boot != me["boot"]:
        return bool(machine and machine == me["machine"])  # this machine, rebooted since: no process survived
    if holder.get("pidns") and me["pidns"] and holder["pidns"] != me["pidns"]:
        return False  # another pid namespace (a container): its pids mean nothing here
    if not pid_alive(pid):
        return True
    start = int(holder.get("pid_start") or 0)
    return bool(start) and _pid_start(pid) not in (0, start)  # the pid now belongs to a process started later


def _parse(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) and value.get("pid") else None


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(int(seconds), 0)
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def _refusal(sweep: SweepFolder, holder: dict[str, Any], where: str, age: float | None = None) -> SweeperError:
    """The one line a refused launch/resume prints, naming the holder."""
    pid, host = holder.get("pid"), holder.get("host")
    here = host == socket.gethostname()
    on = "" if here else f" on {host}"
    heard = f", lock last written {_ago(age)} ago" if age is not None else ""
    command = " ".join(str(a) for a in holder.get("argv") or [])
    after = "" if here else f"; if it no longer runs there, delete {where}"
    return SweeperError(f"{sweep.location}: sweep {sweep.name!r} is already running (pid {pid}{on}{heard}, "
                        f"command: {command}); wait for it or stop it first{after}")


def _unreadable(sweep: SweepFolder, where: str) -> SweeperError:
    return SweeperError(f"{where}: sweep {sweep.name!r} has a lock that names no process (written by an older "
                        f"sweeper, or cut short); if no sweeper runs this sweep, delete it")


def _race_point(stage: str) -> None:
    """Tests only ($SWEEPER_TEST_LOCK_RACE=FOLDER): before trying to take the lock, say `ready-PID` and wait for
    `go`, so two processes try at the same moment; once it is held, say `held-PID` and wait for `release`."""
    folder = os.environ.get(RACE_ENV)
    if not folder:
        return
    base = Path(folder)
    (base / f"{stage}-{os.getpid()}").touch()
    wait_for = base / ("go" if stage == "ready" else "release")
    deadline = time.monotonic() + 600
    while not wait_for.exists() and time.monotonic() < deadline:
        time.sleep(0.005)


class _Held(Protocol):
    def release(self) -> None: ...


@contextmanager
def locked(sweep: SweepFolder) -> Iterator[None]:
    """Hold the sweep's lock for the duration; refuse (SweeperError) if a process that may still run holds it,
    take it over from one that is provably gone."""
    me = identity()
    _race_point("ready")
    held: _Held = _take_local(sweep, me) if sweep.local else _take_uri(sweep, me)
    try:
        _race_point("held")
        yield
    finally:
        held.release()


# -- local disk ------------------------------------------------------------------------------------------------


@dataclass
class _LocalLock:
    path: Path
    fd: int

    def release(self) -> None:
        try:
            mine, now = os.fstat(self.fd), os.stat(self.path)
            if (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)


def _take_local(sweep: SweepFolder, me: dict[str, Any]) -> _LocalLock:
    folder = sweep.path
    path = folder / LOCK_FILE
    busy_until = time.monotonic() + BUSY_S
    inside = False  # the temporary file goes beside the sweep's folder (a launch clears the folder), else in it
    for _ in range(100):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = (folder if inside else folder.parent) / f".{folder.name}{LOCK_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            fd = _write_whole(tmp, me)
        except OSError as exc:
            if inside or isinstance(exc, FileNotFoundError):
                raise SweeperError(f"{path}: cannot write the sweep's lock: {exc.strerror or exc}") from None
            inside = True  # the folder above the sweep's is not writable: write it in the sweep's own folder
            continue
        won = False
        try:
            while True:
                try:
                    os.link(tmp, path)  # atomic; fails if any lock exists; the lock appears whole
                    won = True
                    return _LocalLock(path, fd)
                except FileExistsError:
                    pass
                if _clear_stale_local(sweep, path) == "busy":
                    if time.monotonic() > busy_until:
                        raise SweeperError(f"{path}: the sweep's lock names a process that is gone but is still held "
                                           f"open by another (one it started?); stop that process, or delete the lock")
                    time.sleep(0.01)
        except FileNotFoundError:
            continue  # our temporary file or the folder was removed meanwhile: write it again
        except OSError as exc:
            if exc.errno == errno.EXDEV and not inside:
                inside = True  # the sweep's folder is a mount of its own: link within it
                continue
            raise SweeperError(f"{path}: cannot create the sweep's lock: {exc.strerror or exc} (sweeper locks a "
                               f"local sweep folder with a hard link; the filesystem must support them)") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if not won:
                os.close(fd)
    raise SweeperError(f"{path}: could not take the sweep's lock: its folder kept changing while we tried")


def _write_whole(tmp: Path, me: dict[str, Any]) -> int:
    """A new file holding the lock's JSON, written and synced, with this process's flock on it: the kernel drops
    the flock when the process dies, which is how a taker knows its holder is gone."""
    import fcntl

    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps(me).encode())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return fd


def _clear_stale_local(sweep: SweepFolder, path: Path) -> str:
    """Look at the lock that stopped us: raise naming its holder if it may still run; remove it if it is stale
    (under its flock, so only one taker acts, and only that very file). "retry": try to create the lock again;
    "busy": another process holds its flock although its holder is gone (another taker in the middle)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "retry"
    try:
        holder = _parse(os.read(fd, 1 << 20))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        if holder is None:
            if free and not _same_file(fd, path):
                return "retry"  # removed (and maybe replaced) while we read it
            raise _unreadable(sweep, str(path))
        if not holder_gone(holder):
            raise _refusal(sweep, holder, str(path))
        if not free:
            return "busy"
        if _same_file(fd, path):
            os.unlink(path)  # that stale lock: under its flock no other taker can have replaced it
        return "retry"
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


# -- object stores -----------------------------------------------------------------------------------------------


@dataclass
class _Seen:
    data: bytes
    version: str  # S3 ETag, GCS generation
    age: float | None  # seconds since it was last written, by the store's clock where it says


class _Store(Protocol):
    """An object with atomic conditional writes: each returns the new version, or None when the condition failed."""

    where: str

    def create(self, data: bytes) -> str | None: ...
    def read(self) -> _Seen | None: ...
    def replace(self, data: bytes, version: str) -> str | None: ...
    def delete(self, version: str) -> None: ...


class _ObjectLock:
    def __init__(self, store: _Store, me: dict[str, Any], version: str) -> None:
        self.store, self.me, self.version = store, me, version
        self.mutex = threading.Lock()
        self.stop = threading.Event()
        self.beat = threading.Thread(target=self._heartbeat, name="sweeper-lock-heartbeat", daemon=True)
        self.beat.start()

    def _heartbeat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with self.mutex:
                body = json.dumps(self.me | {"heartbeat": time.time()}).encode()
                try:
                    version = self.store.replace(body, self.version)
                except Exception as exc:  # noqa: BLE001 - a failed refresh only ages the lock; try again next time
                    print(f"warning: {self.store.where}: could not refresh the sweep's lock: {exc}", file=sys.stderr)
                    continue
                if version is None:
                    print(f"warning: {self.store.where}: the sweep's lock was deleted or replaced by someone else "
                          f"while this process runs the sweep", file=sys.stderr)
                    return
                self.version = version

    def release(self) -> None:
        self.stop.set()
        self.beat.join()
        with self.mutex:
            try:
                self.store.delete(self.version)
            except Exception as exc:  # noqa: BLE001 - never hide the command's own outcome behind this
                print(f"warning: {self.store.where}: could not delete the sweep's lock: {exc}", file=sys.stderr)


def _take_uri(sweep: SweepFolder, me: dict[str, Any]) -> _ObjectLock:
    store = _object_store(sweep)
    body = json.dumps(me | {"heartbeat": time.time()}).encode()
    for _ in range(20):
        version = store.create(body)
        if version is None:
            seen = store.read()
            if seen is None:
                continue  # deleted meanwhile: create again
            holder = _parse(seen.data)
            if holder is None:
                raise _unreadable(sweep, store.where)
            if not holder_gone(holder):
                raise _refusal(sweep, holder, store.where, seen.age)
            version = store.replace(body, seen.version)  # the stale lock as judged, and no other
            if version is None:
                continue  # another taker (or its holder) changed it first: look again
        _check_conditions(store, body, version)
        return _ObjectLock(store, me, version)
    raise SweeperError(f"{store.where}: could not take the sweep's lock (it changed 20 times while we tried)")


def _check_conditions(store: _Store, body: bytes, version: str) -> None:
    """Refuse a store that ignores the conditions (it would lock nothing): writing our own lock again must fail
    both "only if absent" and "only if at another version"."""
    ignored = []
    if store.create(body) is not None:
        ignored.append("only-if-absent")
    if store.replace(body, _other_version(version)) is not None:
        ignored.append("only-if-unchanged")
    if ignored:
        with contextlib.suppress(Exception):
            seen = store.read()
            store.delete(seen.version if seen is not None else version)
        raise SweeperError(f"{store.where}: this object store ignores conditional writes ({', '.join(ignored)}), "
                           f"so sweeper cannot lock a sweep on it; store sweeps on a local/shared folder or on a "
                           f"store that honours them (S3, GCS)")


def _other_version(version: str) -> str:
    if version.isdigit():  # a GCS generation
        return str(int(version) + 1)
    return '"' + ("0" if version.strip('"')[:1] != "0" else "1") * 32 + '"'  # an ETag that is not this one


def _object_store(sweep: SweepFolder) -> _Store:
    scheme = sweep.location.split("://", 1)[0].lower()
    where = sweep.uri(LOCK_FILE)
    if scheme == "s3":
        fs, path = sweep.fs_path(LOCK_FILE)  # pyarrow's own reading of the URI: bucket, key, endpoint, keys
        bucket, _, key = path.partition("/")
        return _S3(where, bucket, key, _s3_options(fs))
    if scheme in ("gs", "gcs"):
        bucket, _, key = where.split("://", 1)[1].partition("?")[0].partition("/")
        return _Gcs(where, bucket, key)
    raise SweeperError(f"{sweep.location}: sweeper cannot lock a sweep on {scheme}:// storage (it needs an atomic "
                       f"create on the store); use a local or shared folder, s3:// or gs://")


def _s3_options(fs: Any) -> dict[str, Any]:
    """The options of the pyarrow S3FileSystem the storage uses (endpoint, credentials, region), from its pickle
    form; {} where it does not give them (boto3 then reads the same environment variables)."""
    try:
        options = fs.__reduce__()[1][0]
        return dict(options) if isinstance(options, dict) else {}
    except (AttributeError, IndexError, TypeError):
        return {}


class _S3:
    def __init__(self, where: str, bucket: str, key: str, options: dict[str, Any]) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise SweeperError(f"{where}: locking a sweep on S3 needs boto3 (pip install boto3)") from None
        self.where, self.bucket, self.key = where, bucket, key
        kwargs: dict[str, Any] = {}
        endpoint = options.get("endpoint_override") or ""
        if endpoint:
            kwargs["endpoint_url"] = endpoint if "://" in endpoint else f"{options.get('scheme') or 'https'}://{endpoint}"
        if options.get("region"):
            kwargs["region_name"] = options["region"]
        if options.get("access_key"):
            kwargs |= {"aws_access_key_id": options["access_key"], "aws_secret_access_key": options.get("secret_key"),
                       "aws_session_token": options.get("session_token") or None}
        config = Config(retries={"mode": "standard"})
        if options.get("anonymous"):
            from botocore import UNSIGNED

            config = config.merge(Config(signature_version=UNSIGNED))
        self.client = boto3.client("s3", config=config, **kwargs)

    @staticmethod
    def _code(exc: Exception) -> tuple[str, int]:
        response = getattr(exc, "response", None) or {}
        return (str(response.get("Error", {}).get("Code", "")),
                int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0))

    def _put(self, data: bytes, **condition: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return str(self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"])
        except ClientError as exc:
            code, status = self._code(exc)
            if status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                return None  # the condition failed, or a concurrent conditional write: the caller looks again
            raise SweeperError(f"{self.where}: cannot write the sweep's lock: {exc}") from None

    def create(self, data: bytes) -> str | None:
        return self._put(data, IfNoneMatch="*")

    def replace(self, data: bytes, version: str) -> str | None:
        return self._put(data, IfMatch=version)

    def read(self) -> _Seen | None:
        from botocore.exceptions import ClientError

        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if self._code(exc)[0] in ("NoSuchKey", "404"):
                return None
            raise SweeperError(f"{self.where}: cannot read the sweep's lock: {exc}") from None
        data = got["Body"].read()
        age = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            from email.utils import parsedate_to_datetime

            now = parsedate_to_datetime(got["ResponseMetadata"]["HTTPHeaders"]["date"])  # the store's own clock
            age = (now - got["LastModified"]).total_seconds()
        return _Seen(data, str(got["ETag"]), age)

    def delete(self, version: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=version)
        except ClientError as exc:
            code, status = self._code(exc)
            if status == 412 or code in ("PreconditionFailed", "NoSuchKey"):
                return  # not ours any more (or gone): leave it
            if status in (400, 501):  # a store without conditional deletes: delete only what still is ours
                seen = self.read()
                if seen is not None and seen.version == version:
                    self.client.delete_object(Bucket=self.bucket, Key=self.key)
                return
            raise


class _Gcs:
    """GCS through google-cloud-storage: generation preconditions (0 = only if absent)."""

    def __init__(self, where: str, bucket: str, key: str) -> None:
        try:
            from google.cloud import storage
        except ImportError:
            raise SweeperError(f"{where}: locking a sweep on GCS needs google-cloud-storage (pip install "
                               f"google-cloud-storage); sweeper does not run a sweep unlocked") from None
        self.where = where
        self.bucket = storage.Client().bucket(bucket)
        self.key = key

    def _put(self, data: bytes, generation: int) -> str | None:
        from google.api_core import exceptions

        blob = self.bucket.blob(self.key)
        try:
            blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
        except (exceptions.PreconditionFailed, exceptions.NotFound, exceptions.Conflict):
            return None
        return str(blob.generation)

    def create(self, data: bytes) -> str | None:
        return self._put(data, 0)

    def replace(self, data: bytes, version: str) -> str | None:
        return self._put(data, int(version))

    def read(self) -> _Seen | None:
        from google.api_core import exceptions

        blob = self.bucket.get_blob(self.key)
        if blob is None:
            return None
        try:
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except (exceptions.PreconditionFailed, exceptions.NotFound):
            return self.read()
        age = time.time() - blob.updated.timestamp() if blob.updated else None
        return _Seen(data, str(blob.generation), age)

    def delete(self, version: str) -> None:
        from google.api_core import exceptions

        with contextlib.suppress(exceptions.PreconditionFailed, exceptions.NotFound):
            self.bucket.blob(self.key).delete(if_generation_match=int(version))


def holder(sweep: SweepFolder) -> dict[str, Any] | None:
    """Who holds the lock ({pid, host, started, argv, ...}), {} if it cannot be read (a lock of an older sweeper
    cut by a crash), None if there is no lock."""
    data = sweep.read_bytes(LOCK_FILE)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
