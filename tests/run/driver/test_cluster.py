"""Scale out: cluster.yaml against Ray's own cluster-config validation, and sweeps on real multi-node Ray clusters.

Every cluster here is real: `ray start --head` plus `ray start --address` nodes (sweeper.testing.cluster.LocalCluster),
each with one CPU, its own temp dir under the test's tmp_path and its own token; drivers are `python -m sweeper`
subprocesses joining with `--address`. Everything is torn down by its own process groups, never `ray stop`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.run.driver import cluster
from sweeper.store.storage import Storage
from sweeper.testing.cluster import LocalCluster, LocalNode, free_port
from tests.conftest import REPO, write_idx
from tests.drivers import Driver, wait_until
from tests.run.driver.gates import write_gated

CLUSTER_YAML = REPO / "cluster.yaml"


# -- cluster.yaml -----------------------------------------------------------------------------------------------

def prepared(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does to a config before it touches a cloud: defaults merged, then Ray's schema check."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(config))
    validate_config(config)
    return config


@pytest.fixture(scope="module")
def cluster_config() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_yaml_passes_rays_own_validation(cluster_config: dict[str, Any]) -> None:
    config = prepared(cluster_config)
    nodes = config["available_node_types"]
    head, workers = nodes[config["head_node_type"]], [v for k, v in nodes.items() if k != config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0  # a CPU head
    assert workers and all(w["resources"]["GPU"] >= 1 for w in workers)  # GPU workers ...
    assert all(w["min_workers"] < w["max_workers"] for w in workers)  # ... that the autoscaler adds and removes
    assert config["max_workers"] >= max(w["max_workers"] for w in workers)
    mounts = config["file_mounts"]
    assert any(local.rstrip("/") == "./search_spaces" for local in mounts.values())
    for local in mounts.values():  # every mounted path of the repository exists
        if local.startswith("./"):
            assert (REPO / local).exists(), local
    assert not re.search(r"(?i)(secret|password|aws_access|private_key:\s*\S+\.pem)", CLUSTER_YAML.read_text())


@pytest.mark.parametrize("typo", [
    ("available_node_types", "gpu_worker", "min_worker"),  # a misspelt key
    ("max_worker",),
    ("docker", "imag"),
])
def test_cluster_yaml_typo_fails_validation(cluster_config: dict[str, Any], typo: tuple[str, ...]) -> None:
    import jsonschema

    config = copy.deepcopy(cluster_config)
    target = config
    for key in typo[:-1]:
        target = target[key]
    target[typo[-1]] = 1
    with pytest.raises(jsonschema.ValidationError, match=typo[-1]):
        prepared(config)


def pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {Requirement(r).name: Requirement(r) for r in project["dependencies"]}


def test_cluster_setup_installs_the_versions_pyproject_pins(cluster_config: dict[str, Any]) -> None:
    config = prepared(cluster_config)
    pins = pyproject_requirements()
    python = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    docker = config["docker"]
    images = {docker.get(k) or docker.get("image") for k in ("head_image", "worker_image")}
    for image in images:  # rayproject/ray:<ray version>-py<python>-<cpu|gpu|cuXYZ>
        found = re.fullmatch(r"rayproject/ray(?:-ml)?:(\d+\.\d+\.\d+)-py3(\d+)-\w+", image)
        assert found, f"unexpected image {image}"
        assert Version(found[1]) in pins["ray"].specifier, (image, str(pins["ray"]))
        assert Version(f"3.{found[2]}") in python, (image, str(python))
    assert "gpu" in docker["worker_image"] or "-cu" in docker["worker_image"]

    commands = " ; ".join(config["head_setup_commands"] + config["worker_setup_commands"])
    # sweeper itself is installed from the mounted repository, so pip resolves pyproject.toml's own pins ...
    remote = next(r for r, local in config["file_mounts"].items() if local == "./pyproject.toml")
    root = remote.rsplit("/", 1)[0]
    assert config["file_mounts"][f"{root}/sweeper"] == "./sweeper"
    for setup in (config["head_setup_commands"], config["worker_setup_commands"]):
        assert any(re.search(rf"pip install\b.*\s{re.escape(root)}/?(\s|$)", c) for c in setup), setup
    # ... and anything pinned by hand in the setup must agree with pyproject.toml
    for name, version in re.findall(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([0-9][^\s\"']*)", commands):
        assert name in pins and Version(version) in pins[name].specifier, (name, version, pins.get(name))
    # and the start commands keep Ray's token authentication on, with the token file mounted on every node
    assert "~/.ray/auth_token" in config["file_mounts"]
    for start in config["head_start_ray_commands"] + config["worker_start_ray_commands"]:
        assert "ray stop" in start or "RAY_AUTH_MODE=token" in start


# -- real clusters on this machine --------------------------------------------------------------------------

SPACE = """
name: {name}
epochs: {epochs}
scheduler: {{type: fifo}}
resources: {resources}
parameters: {{model: {model}, optimizer: adam, seed: {{grid: {seeds}}}}}
"""


def write_space(folder: Path, name: str, epochs: int = 2, trials: int = 4, model: str = "logreg",
                resources: str = "{cpu: 1, gpu: 0}") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SPACE.format(name=name, epochs=epochs, model=model, resources=resources,
                                 seeds=list(range(trials))))
    return path


@pytest.fixture(scope="module")
def medium_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 synthetic training images: epochs of about a second, long enough to act mid-trial."""
    return write_idx(tmp_path_factory.mktemp("medium") / "data", n_train=3000, n_test=200)


# Ray notices a dead node after its health checks fail; the defaults (about 30 s) only slow the tests down.
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                   "RAY_health_check_failure_threshold": "3"}
NO_DATA = ("SWEEPER_DATA_DIR", "SWEEPER_CACHE_DIR")  # nodes get neither: data reaches them from the driver


@pytest.fixture(scope="module")
def node_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The nodes' SWEEPER_CACHE_DIR: where sweeper would stage or download data on a node. Must stay empty."""
    return tmp_path_factory.mktemp("node-cache")


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory, node_cache: Path) -> Iterator[LocalCluster]:
    """One real cluster for the module (starting one takes ~10 s): a head with one CPU and one (logical) GPU."""
    with LocalCluster(tmp_path_factory.mktemp("cluster")) as c:
        c.start_head(num_cpus=1, num_gpus=1, drop_env=NO_DATA,
                     extra_env=FAST_NODE_DEATH | {"SWEEPER_CACHE_DIR": str(node_cache)})
        yield c


@pytest.fixture
def two_nodes(shared_cluster: LocalCluster, node_cache: Path) -> tuple[LocalCluster, LocalNode]:
    """The shared cluster and its one-CPU worker node (a fresh one if a test killed the last)."""
    workers = [n for n in shared_cluster.nodes if n.name.startswith("worker") and n.alive()]
    if not workers:
        workers.append(shared_cluster.add_node(num_cpus=1, name="worker", drop_env=NO_DATA,
                                               extra_env={"SWEEPER_CACHE_DIR": str(node_cache)}))
    return shared_cluster, workers[-1]


def run(c: LocalCluster, drivers: list[Driver], *args: str, timeout: float = 240) -> tuple[int, str]:
    driver = Driver(*args, env=c.env())
    drivers.append(driver)
    return driver.wait(timeout)


def launch(c: LocalCluster, drivers: list[Driver], space: Path, runs: Path, data: Path) -> tuple[int, str]:
    return run(c, drivers, "launch", str(space), "--address", c.address, "--storage", str(runs),
               "--data-dir", str(data))


def test_two_node_sweep_runs_trials_on_both_nodes_data_through_the_object_store(
    tmp_path: Path, tiny_data: Path, two_nodes: tuple[LocalCluster, LocalNode], node_cache: Path,
    drivers: list[Driver],
) -> None:
    c, worker = two_nodes
    space = write_space(tmp_path, "two", epochs=2, trials=2)  # one CPU each: one trial per node, at once
    code, out = launch(c, drivers, space, tmp_path / "runs", tiny_data)
    assert code == 0, out
    trials = pd.read_parquet(tmp_path / "runs" / "two" / "trials.parquet")
    assert len(trials) == 2 and set(trials.state) == {"TERMINATED"} and (trials.epochs == 2).all()
    ran_on = {node.split(":")[1] for node in trials.node}
    assert ran_on == {c.nodes[0].node_id()[:8], worker.node_id()[:8]}  # the head and the worker
    assert list(node_cache.iterdir()) == []  # no node staged or downloaded data: it came from the driver
    assert not list((tmp_path / "runs").glob(f"**/{cluster.PROBE_PREFIX}*"))  # the storage check cleaned up


def test_fractional_gpus_pack_four_trials_on_one_gpu_each_falling_back_to_cpu_without_cuda(
    tmp_path: Path, medium_data: Path, two_nodes: tuple[LocalCluster, LocalNode], drivers: list[Driver]
) -> None:
    """The head advertises one GPU (there is no CUDA here): gpu 0.25 runs four trials on it at once, never a
    fifth though its CPU would allow five; Ray gives each trial GPU 0, and without CUDA the trial uses the CPU.
    Each trial marks itself live and trains only once four were live together (tests/run/driver/gates.py): had
    Ray run fewer at once, the sweep would never end; had it run a fifth, that one would have seen five."""
    c, _ = two_nodes
    gates = tmp_path / "gates"
    space = write_gated(tmp_path, "gpu", gates, epochs=2, trials=5, resources="{cpu: 0.2, gpu: 0.25}", together=4)
    code, out = launch(c, drivers, space, tmp_path / "runs", medium_data)
    assert code == 0, out
    folder = tmp_path / "runs" / "gpu"
    trials = pd.read_parquet(folder / "trials.parquet")
    assert len(trials) == 5 and set(trials.state) == {"TERMINATED"} and (trials.epochs == 2).all()
    assert {node.split(":")[1] for node in trials.node} == {c.nodes[0].node_id()[:8]}  # the GPU node only
    seen = {name.rsplit("-", 1)[0]: int(name.rsplit("-", 1)[1]) for name in os.listdir(gates / "seen")}
    assert sorted(seen) == sorted(trials.trial_id), seen  # each trial's count of live trials, itself included
    assert max(seen.values()) == 4, seen  # four at once, never a fifth
    devices = {json.loads(line)["device"] for log in folder.glob("*/result.json")  # Ray's own log of each report
               for line in log.read_text().splitlines() if line.strip()}
    assert devices == {"cpu"}


def test_storage_a_node_cannot_see_is_refused_and_nothing_is_written(
    tmp_path: Path, tiny_data: Path, shared_cluster: LocalCluster, drivers: list[Driver]
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    # A node with its own disk at that path: a private mount namespace with an empty tmpfs over `disk`.
    # No CPUs: it takes no trials of later tests, yet answers the storage check (which needs none).
    own_disk = ("unshare", "--mount", "--propagation", "private",
                *(() if os.geteuid() == 0 else ("--user", "--map-root-user")),
                "sh", "-c", 'mount -t tmpfs sweeper-node-disk "$0" && exec "$@"', str(disk))
    blind = shared_cluster.add_node(num_cpus=0, name="blind", prefix=own_disk)
    space = write_space(tmp_path, "local", epochs=1, trials=2)
    runs = disk / "runs"  # does not exist yet: the driver creates it for the check

    code, out = launch(shared_cluster, drivers, space, runs, tiny_data)
    assert code == 2, out
    error = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(error) == 1, out
    nodes = len([n for n in shared_cluster.nodes if n.alive()])
    assert f"--storage {runs}:" in error[0] and f"1 of the cluster's {nodes} nodes cannot see" in error[0]
    assert f":{blind.node_id()[:8]}" in error[0] and shared_cluster.nodes[0].node_id()[:8] not in error[0]
    assert "s3://" in error[0] and "gs://" in error[0] and "shared mount" in error[0]
    assert list(disk.iterdir()) == []  # no storage folder, sweep folder, lock or marker left behind


def test_uri_storage_is_not_probed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node reaches a URI: check_visible returns before asking Ray about nodes or starting a task, and
    writes nothing (a URI mistaken for a local path would become folders `s3:/some-bucket/runs` here)."""
    import ray

    asked: list[str] = []

    def nodes() -> list[dict[str, Any]]:
        asked.append("alive_nodes")
        raise LookupError("the cluster's nodes were asked for")

    def remote(*args: Any, **kwargs: Any) -> Any:
        asked.append("ray.remote")
        raise LookupError("a task was started")

    monkeypatch.setattr(cluster, "alive_nodes", nodes)
    monkeypatch.setattr(ray, "remote", remote)
    monkeypatch.chdir(tmp_path)
    for uri in ("s3://some-bucket/runs", "gs://some-bucket/runs"):
        assert cluster.check_visible(Storage.parse(uri)) is None
    assert asked == [] and list(tmp_path.iterdir()) == []
    with pytest.raises(LookupError, match="nodes were asked for"):  # a local path is checked against the nodes
        cluster.check_visible(Storage.parse(str(tmp_path / "runs")))
    assert asked == ["alive_nodes"]


def test_a_cpu_less_head_alone_refuses_its_own_disk_until_workers_join(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cluster.yaml's head runs no trials: they go to workers the autoscaler adds later, which no marker can ask."""
    head = {"NodeID": "ab" * 28, "NodeManagerAddress": "10.0.0.1", "Alive": True, "Resources": {"CPU": 0.0}}
    monkeypatch.setattr(cluster, "alive_nodes", lambda: [head])
    storage = Storage.parse(str(tmp_path / "runs"))
    with pytest.raises(SweeperError, match=r"only node runs no trials .* \(s3://BUCKET/runs"):
        cluster.check_visible(storage)
    assert not (tmp_path / "runs").exists()
    monkeypatch.setattr(cluster, "network_filesystem", lambda path: True)  # e.g. an NFS mount: fine
    cluster.check_visible(storage)
    monkeypatch.setattr(cluster, "alive_nodes", lambda: [head | {"Resources": {"CPU": 8.0}}])
    monkeypatch.setattr(cluster, "network_filesystem", lambda path: False)
    cluster.check_visible(storage)  # a one-node cluster that runs trials is this machine


def test_network_filesystems_are_told_from_local_disks(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("overlay / overlay rw 0 0\n10.0.0.9:/export /mnt/shared nfs4 rw 0 0\n"
                      "s3fs /mnt/bucket fuse.s3fs rw 0 0\n/dev/sdb1 /mnt/shared/local ext4 rw 0 0\n")
    assert cluster.network_filesystem(Path("/mnt/shared/runs"), str(mounts))
    assert cluster.network_filesystem(Path("/mnt/bucket/runs"), str(mounts))
    assert not cluster.network_filesystem(Path("/mnt/shared/local/runs"), str(mounts))  # the longest match wins
    assert not cluster.network_filesystem(Path("/mnt/sharedx"), str(mounts))
    assert not cluster.network_filesystem(Path("/home/me/runs"), str(mounts))


def test_an_address_where_nothing_listens_fails_fast_in_one_line(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused before Ray is asked to connect (Ray itself would retry for minutes), and nothing written."""
    import ray

    connects: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: connects.append(kwargs))
    space = write_space(tmp_path, "nowhere", epochs=1, trials=1)
    port = free_port()
    result = CliRunner().invoke(app, ["launch", str(space), "--address", f"127.0.0.1:{port}",
                                      "--storage", str(tmp_path / "runs"), "--data-dir", str(tiny_data)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"error: --address 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port} (Connection refused); start the "
        f"cluster first (`ray up cluster.yaml`, or `ray start --head --port {port}` on that host)")
    assert connects == [] and not (tmp_path / "runs").exists()
    result = CliRunner().invoke(app, ["launch", str(space), "--address", "nohost", "--data-dir", str(tiny_data)])
    assert result.exit_code == 2 and "expected auto, HOST:PORT or ray://HOST:PORT" in result.stderr


@pytest.mark.parametrize(("mode", "hint"), [(None, "needs RAY_AUTH_MODE=token"), ("token", "check that RAY_AUTH")])
def test_a_refused_connection_names_token_authentication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str | None, hint: str
) -> None:
    def refused(address: str | None) -> None:
        raise SweeperError(f"--address {address}: cannot connect to Ray: Failed to connect to Ray cluster")

    if mode is None:
        monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    else:
        monkeypatch.setenv("RAY_AUTH_MODE", mode)
    with socket.create_server(("127.0.0.1", 0)) as listening:  # something answers, but Ray refuses
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        with pytest.raises(SweeperError, match=f"cannot connect to Ray: .*; .*{hint}") as error:
            cluster.join(address, Storage.parse(str(tmp_path)), refused)
    assert "\n" not in str(error.value)


def running_on(folder: Path, node_id8: str) -> str | None:
    """A trial RUNNING on that node with at least one epoch recorded, if there is one yet."""
    trials = pd.read_parquet(folder / "trials.parquet")
    if "node" not in trials:
        return None
    here = trials[(trials.state == "RUNNING") & trials.node.fillna("").str.endswith(f":{node_id8}")
                  & (trials.epochs >= 1)]
    return None if here.empty else str(here.trial_id.iloc[0])


def test_killing_a_worker_node_mid_sweep_loses_no_trial(
    tmp_path: Path, medium_data: Path, two_nodes: tuple[LocalCluster, LocalNode], drivers: list[Driver]
) -> None:
    """Two trials, one per node, each holding after epoch 2 (tests/run/driver/gates.py) until the test has killed
    the worker node: the trial there cannot have finished first. It is recorded as failed; the resume finishes it
    from its checkpoint on the node that is left."""
    c, worker = two_nodes
    gates = tmp_path / "gates"
    space = write_gated(tmp_path, "kill", gates, epochs=3, trials=2, resources="{cpu: 1, gpu: 0}", hold_at=2)
    runs = tmp_path / "runs"
    folder = runs / "kill"
    driver = Driver("launch", str(space), "--address", c.address, "--storage", str(runs),
                    "--data-dir", str(medium_data), env=c.env())
    drivers.append(driver)
    worker_id = worker.node_id()[:8]

    def held_on_worker() -> str | None:
        victim = running_on(folder, worker_id)
        return victim if victim is not None and (gates / "held" / victim).exists() else None

    victim = wait_until(f"a trial on {worker_id} held after epoch 2", held_on_worker, driver)
    worker.kill()  # the node dies: its raylet, its Ray workers, the trial held there
    (gates / "release").touch()  # the trial on the head goes on

    code, out = driver.wait()
    trials = pd.read_parquet(folder / "trials.parquet").set_index("trial_id")
    assert len(trials) == 2, out
    assert set(trials.state) == {"TERMINATED", "ERROR"}, trials
    assert trials.loc[victim, "state"] == "ERROR"  # recorded as failed, with the reason:
    assert "actor" in trials.loc[victim, "error"], trials  # e.g. "the actor's node was terminated unexpectedly"
    assert code == 1 and "1 of 2 trials failed" in out, out

    # nothing lost: resumed on the surviving node, the failed trial goes on from its last checkpoint
    code, out = run(c, drivers, "resume", "kill", "--storage", str(runs), "--address", c.address,
                    "--errored", "resume")
    assert code == 0, out
    trials = pd.read_parquet(folder / "trials.parquet").set_index("trial_id")
    assert set(trials.state) == {"TERMINATED"} and (trials.epochs == 3).all(), trials
    assert trials.loc[victim, "restored_from"] >= 1
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert sorted(epochs[epochs.trial_id == victim].epoch) == [1, 2, 3]
