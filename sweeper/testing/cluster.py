"""`LocalCluster`: a real multi-node Ray cluster on this machine, for tests, benchmarks and trying `--address`.

It starts nodes the way one is started on many machines (`ray start --head`, then `ray start --address HEAD`
per node), each node in its own process group with its own temp dir, and tears it down by exactly those
processes (never `ray stop`, which stops every Ray on the machine). Token authentication stays on.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
