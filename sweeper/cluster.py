"""Running on an existing Ray cluster: storage every node can reach, and real clusters on one machine.

`check_storage` runs after the driver joined a cluster and before anything is written to the sweep folder:
a storage path on a disk that some node cannot see would scatter checkpoints and trial logs over node-local
disks, so it is refused with one line naming the nodes that cannot see it. URIs (`s3://`, `gs://`, any pyarrow
filesystem) are reached by every node through the network and pass unchecked.

`LocalCluster` starts a real multi-node Ray cluster on this machine the way one is started on many machines
(`ray start --head`, then `ray start --address HEAD` per node), each node in its own process group with its own
temp dir, and tears it down by exactly those processes (never `ray stop`, which stops every Ray on the
machine). The tests and benchmarks/scaleout.py use it; so can anyone trying `--address` without a cloud account.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError
from sweeper.results import is_uri

CHECK_TIMEOUT_S = 60.0
PROBE_PREFIX = ".sweeper-storage-check-"


# -- joining a cluster ----------------------------------------------------------------------------------------

def joins_existing(address: str | None) -> bool:
    """Whether the driver runs on an existing cluster (rather than a Ray it starts itself, in-process)."""
    import ray

    return bool(address or os.environ.get("RAY_ADDRESS")) or ray.is_initialized()


def join(address: str | None, storage: str, init: Callable[[str | None], None]) -> None:
    """On an existing cluster, connect (`init`) and refuse storage some node cannot see, before any write.

    A Ray the driver starts itself, in-process, is this machine alone: nothing to check, and starting it
    waits until the sweep's lock is taken."""
    if not joins_existing(address):
        return
    if address:
        check_reachable(address)
    try:
        init(address)
    except SweeperError as exc:
        raise SweeperError(f"{exc}{_auth_hint()}") from None
    check_storage(storage)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when nothing listens at HOST:PORT (Ray itself retries for minutes)."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SweeperError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise SweeperError(
            f"--address {address}: nothing answers at {host}:{port} ({exc.strerror or exc}); start the cluster "
            f"first (`ray up cluster.yaml`, or `ray start --head --port {port}` on that host)"
        ) from None


def _auth_hint() -> str:
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return ("; a cluster with token authentication (Ray's default for `ray start --head`) also needs "
                "RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token")
    return "; check that RAY_AUTH_TOKEN (or ~/.ray/auth_token) holds this cluster's token"


def node_label(node_id: str, ip: str) -> str:
    """How trials.parquet's `node` column names a node (the trainable's `ip:nodeid8`)."""
    return f"{ip}:{node_id[:8]}"


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def _client_mode() -> bool:
    try:
        from ray.util.client import ray as client

        return bool(client.is_connected())
    except ImportError:  # pragma: no cover - ray[client] absent
        return False


def _runs_trials(node: dict[str, Any]) -> bool:
    resources = node.get("Resources") or {}
    return resources.get("CPU", 0) > 0 or resources.get("GPU", 0) > 0


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "ceph", "glusterfs", "beegfs",
                       "9p", "afs", "virtiofs", "efs")


def network_filesystem(path: Path, mounts: str = "/proc/mounts") -> bool:
    """Whether `path` lies on a network filesystem (NFS, CIFS, Lustre, a FUSE mount such as s3fs or gcsfuse)."""
    try:
        table = Path(mounts).read_text().splitlines()
    except OSError:
        return False
    best, fstype = "", ""
    for line in table:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = str(path) == point or str(path).startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, fstype = point, fields[2]
    return fstype in NETWORK_FILESYSTEMS or fstype.startswith("fuse.") or fstype.startswith("nfs")


def _read_marker(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


def check_storage(storage: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Refuse (SweeperError) a local storage path that some node of the connected cluster cannot see.

    The driver writes a marker into a temporary folder under `storage`, and a tiny task pinned to each alive
    node looks for it; the folder is removed again whatever the answer. A one-node cluster the driver runs on
    needs no check (the node is this machine), unless that node runs no trials (a head with CPU 0 waiting for
    autoscaled workers): then only a network filesystem will do. A Ray Client (`ray://`) driver is always checked.
    """
    if is_uri(storage):
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    root = Path(storage.removeprefix("file://")).expanduser().resolve()
    if len(nodes) == 1 and not _runs_trials(nodes[0]) and not network_filesystem(root):
        raise SweeperError(
            f"--storage {storage}: {root} is on this machine's own disk, but this cluster's only node runs no "
            f"trials (no CPU or GPU), so its trials will run on nodes that join later and cannot see it: "
            f"use a URI every node reaches (s3://BUCKET/runs, gs://BUCKET/runs) or a shared mount (NFS, EFS, "
            f"Filestore) at the same path on every node"
        )
    if len(nodes) < 2 and not _client_mode():
        return
    created = [p for p in (root, *root.parents) if not p.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=PROBE_PREFIX, dir=root))
    except OSError as exc:
        raise SweeperError(f"--storage {storage}: cannot write there: {exc.strerror or exc}") from None
    token = secrets.token_hex(16)
    marker = probe / "marker"
    marker.write_text(token)
    try:
        sees = ray.remote(num_cpus=0, max_retries=0)(_read_marker)
        refs = [
            sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
                str(marker), token)
            for n in nodes
        ]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        blind = []
        for node, ref in zip(nodes, refs, strict=True):
            seen = False
            if ref in ready:
                try:
                    seen = bool(ray.get(ref))
                except Exception:  # noqa: BLE001 - a node that died or failed the task cannot see it either
                    seen = False
            if not seen:
                blind.append(node_label(node["NodeID"], node["NodeManagerAddress"]))
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    if blind:
        for path in created:  # refused: remove the folders only this check made
            try:
                path.rmdir()
            except OSError:
                break
        raise SweeperError(
            f"--storage {storage}: {root} is a folder on this machine that {len(blind)} of the cluster's "
            f"{len(nodes)} nodes cannot see ({', '.join(blind)}); trials on those nodes could not save "
            f"checkpoints or results there: use a URI every node reaches (s3://BUCKET/runs, gs://BUCKET/runs) "
            f"or a shared mount (NFS, EFS, Filestore) at the same path on every node"
        )


# -- a real multi-node cluster on one machine ---------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _has_ray_client() -> bool:
    from ray._private.utils import get_ray_client_dependency_error

    return get_ray_client_dependency_error() is None


def _leftovers(session: int, text: str) -> list[int]:
    """What a node left behind: processes of its session (`session` = the pid its `ray start` was given with
    start_new_session) or whose command line names `text` (its own temp dir). Never this process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        sid = int(stat.rsplit(")", 1)[1].split()[3])  # fields after "(comm)": state ppid pgrp session
        if sid == session or f"{text}/" in cmdline or f"{text} " in cmdline:  # node1 is not node10
            pids.append(int(entry.name))
    return pids


@dataclass
class LocalNode:
    """One `ray start --block` process (and everything it spawned) in its own process group."""

    name: str
    proc: subprocess.Popen
    temp_dir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def node_id(self) -> str:
        """Ray's id of this node, from its raylet's command line."""
        for pid in _leftovers(self.proc.pid, str(self.temp_dir)):
            try:
                args = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"/raylet"):
                for arg in args:
                    if arg.startswith(b"--node_id="):
                        return arg.split(b"=", 1)[1].decode()
        raise RuntimeError(f"ray node {self.name}: no raylet found")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill this node's process group, then any process still naming its temp dir (its own, nothing else)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
            for pid in _leftovers(self.proc.pid, str(self.temp_dir)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@dataclass
class LocalCluster:
    """A real Ray cluster of several nodes on this machine, each started like a node of a real cluster.

    Token authentication stays on: the cluster gets its own token, passed to every node and (via `env`) to
    every driver as RAY_AUTH_MODE=token + RAY_AUTH_TOKEN, so nothing reads or writes ~/.ray/auth_token.
    """

    root: Path
    node_ip: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    nodes: list[LocalNode] = field(default_factory=list)
    port: int = 0
    _link: Path | None = None

    @property
    def address(self) -> str:
        return f"{self.node_ip}:{self.port}"

    def env(self, drop: tuple[str, ...] = ()) -> dict[str, str]:
        """The environment for a node or a driver of this cluster."""
        env = {k: v for k, v in os.environ.items() if k not in drop and k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH")}
        return env | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token, "RAY_USAGE_STATS_ENABLED": "0"}

    def _temp_root(self, name: str) -> Path:
        """Where the nodes' temp dirs go: `root`, reached through a short symlink when `root`'s path is too
        long for the Unix sockets Ray puts there (107 bytes, 70 of them Ray's own `/session_.../sockets/...`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        if len(f"{self.root}/{name}") <= 107 - 70:
            return self.root
        if self._link is None:
            self._link = Path(tempfile.mkdtemp(prefix="sweeper-ray-")) / "c"
            self._link.symlink_to(self.root.resolve(), target_is_directory=True)
        return self._link

    def _start(self, name: str, args: list[str], env: dict[str, str], timeout_s: float,
               prefix: tuple[str, ...] = ()) -> LocalNode:
        temp_dir = self._temp_root(name) / name
        temp_dir.mkdir(parents=True, exist_ok=True)
        log = self.root / f"{name}.log"
        ray_cli = Path(sys.executable).with_name("ray")
        command = [*prefix, str(ray_cli) if ray_cli.exists() else "ray", "start", "--block", "--disable-usage-stats",
                   f"--temp-dir={temp_dir}", f"--node-ip-address={self.node_ip}",
                   f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                   *args]
        with open(log, "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        node = LocalNode(name, proc, temp_dir, log)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout_s
        while "Ray runtime started" not in node.output():
            if not node.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start; its output:\n{node.output()[-3000:]}")
            time.sleep(0.2)
        return node

    def start_head(self, num_cpus: int = 1, num_gpus: int = 0, timeout_s: float = 90,
                   drop_env: tuple[str, ...] = (), extra_env: dict[str, str] | None = None) -> LocalNode:
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        args = ["--head", f"--port={self.port}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
                "--include-dashboard=false"]
        if _has_ray_client():  # else the head starts no client server (it would take port 10001)
            args.append(f"--ray-client-server-port={free_port()}")
        return self._start("head", args, self.env(drop_env) | (extra_env or {}), timeout_s)

    def add_node(self, num_cpus: int = 1, num_gpus: int = 0, timeout_s: float = 90,
                 drop_env: tuple[str, ...] = (), extra_env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = (), name: str = "node") -> LocalNode:
        """Another node joining the head; `prefix` wraps its `ray start` (e.g. in `unshare`)."""
        if not self.port:
            raise RuntimeError("start_head() first")
        args = [f"--address={self.address}", f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}"]
        env = self.env(drop_env) | (extra_env or {})
        return self._start(f"{name}{len(self.nodes)}", args, env, timeout_s, prefix)

    def shutdown(self) -> None:
        """Stop every node this cluster started (workers first), by their own process groups and temp dirs."""
        for node in reversed(self.nodes):
            node.kill(signal.SIGKILL)
        self.nodes.clear()
        if self._link is not None:
            shutil.rmtree(self._link.parent, ignore_errors=True)  # the symlink and its folder, not its target
            self._link = None

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
