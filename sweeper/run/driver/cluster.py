"""Running on an existing Ray cluster: joining it, and refusing storage that some node cannot see.

`check_visible` runs after the driver joined a cluster and before anything is written to the sweep folder
(shipping.py's `check_nodes` then asks the same nodes about your own code):
a storage path on a disk that some node cannot see would scatter checkpoints and trial logs over node-local
disks, so it is refused with one line naming the nodes that cannot see it. URIs (`s3://`, `gs://`, any pyarrow
filesystem) are reached by every node through the network and pass unchecked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError
from sweeper.store.storage import Storage

CHECK_TIMEOUT_S = 60.0
PROBE_PREFIX = ".sweeper-storage-check-"


# -- joining a cluster ----------------------------------------------------------------------------------------

def joins_existing(address: str | None) -> bool:
    """Whether the driver runs on an existing cluster (rather than a Ray it starts itself, in-process)."""
    import ray

    return bool(address or os.environ.get("RAY_ADDRESS")) or ray.is_initialized()


def join(address: str | None, storage: Storage, init: Callable[[str | None], None]) -> None:
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
    check_visible(storage)


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


def client_mode() -> bool:
    """Whether this driver is a Ray Client (`ray://`): then it may run on no node of the cluster."""
    try:
        from ray.util.client import ray as client

        return bool(client.is_connected())
    except ImportError:  # pragma: no cover - ray[client] absent
        return False


def runs_trials(node: dict[str, Any]) -> bool:
    """Whether a node of `ray.nodes()` takes trials (has a CPU or a GPU)."""
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


def check_visible(storage: Storage, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Refuse (SweeperError) a local storage path that some node of the connected cluster cannot see.

    The driver writes a marker into a temporary folder under `storage`, and a tiny task pinned to each alive
    node looks for it; the folder is removed again whatever the answer. A one-node cluster the driver runs on
    needs no check (the node is this machine), unless that node runs no trials (a head with CPU 0 waiting for
    autoscaled workers): then only a network filesystem will do. A Ray Client (`ray://`) driver is always checked.
    """
    if not storage.local:
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    root = storage.path.resolve()
    if len(nodes) == 1 and not runs_trials(nodes[0]) and not network_filesystem(root):
        raise SweeperError(
            f"--storage {storage}: {root} is on this machine's own disk, but this cluster's only node runs no "
            f"trials (no CPU or GPU), so its trials will run on nodes that join later and cannot see it: "
            f"use a URI every node reaches (s3://BUCKET/runs, gs://BUCKET/runs) or a shared mount (NFS, EFS, "
            f"Filestore) at the same path on every node"
        )
    if len(nodes) < 2 and not client_mode():
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
