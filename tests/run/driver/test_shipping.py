"""Your own code on every node: source trees shipped through Ray's runtime_env, checked on each node before anything
is written, and a package too big to ship refused before anything starts.

The cluster is real (sweeper.testing.cluster.LocalCluster): a head and a worker node, each with one CPU; the worker
runs in a mount namespace of its own with an empty tmpfs over the folder the user's code is in, as a machine that
never had that folder, and with SWEEPER_TEST_NODE=worker in its processes' environment. Drivers are subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.errors import SweeperError
from sweeper.run.driver import shipping
from sweeper.run.training import usercode
from sweeper.run.training.factories import load_space
from sweeper.testing.cluster import LocalCluster, LocalNode
from tests.conftest import REPO
from tests.drivers import Driver

NETS = """\
import os

{extra}

def build(width: int = 8, *, input_shape, num_classes):
    from torch import nn

    features = 1
    for n in input_shape:
        features *= n
    return nn.Sequential(nn.Flatten(), nn.Linear(features, width), nn.ReLU(), nn.Linear(width, num_classes))
"""
ONLY_HERE = 'if os.environ.get("SWEEPER_TEST_NODE") == "worker":\n    raise RuntimeError("not on this node")'
SPACE = """\
name: {name}
epochs: 1
scheduler: {{type: fifo}}
resources: {{cpu: 1, gpu: 0}}
models: {{mine: {pkg}.nets:build}}
parameters: {{model: mine, optimizer: adam, seed: {{grid: [0, 1]}}}}
"""
NO_DATA = ("SWEEPER_DATA_DIR", "SWEEPER_CACHE_DIR")  # nodes get neither: data reaches them from the driver


def write_package(folder: Path, pkg: str, extra: str = "", name: str | None = None) -> Path:
    """`folder/pkg` (nets.py with `extra` at import) and the space `folder/<name>.yaml` naming `pkg.nets:build`."""
    (folder / pkg).mkdir(parents=True)
    (folder / pkg / "__init__.py").write_text("")
    (folder / pkg / "nets.py").write_text(NETS.format(extra=extra))
    space = folder / f"{name or pkg}.yaml"
    space.write_text(SPACE.format(name=name or pkg, pkg=pkg))
    return space


# -- what ships, and the size limit (no Ray started) -------------------------------------------------------------

def test_source_trees_ship_installed_packages_and_sweeper_do_not(tmp_path: Path) -> None:
    (tmp_path / "solo_ship_mod.py").write_text("def f(): pass\n")
    (tmp_path / "ship_pkg_a").mkdir()
    (tmp_path / "ship_pkg_a" / "__init__.py").write_text("")
    (tmp_path / "ship_pkg_a" / "nets.py").write_text("def f(): pass\n")
    (tmp_path / "ship_ns_b" / "inner").mkdir(parents=True)  # a namespace package: no __init__.py
    (tmp_path / "ship_ns_b" / "inner" / "m.py").write_text("def f(): pass\n")
    roots = (str(tmp_path),)
    try:
        assert shipping.trees_of(shipping.Code("solo_ship_mod:f", roots)) == [tmp_path / "solo_ship_mod.py"]
        assert shipping.trees_of(shipping.Code("ship_pkg_a.nets:f", roots)) == [tmp_path / "ship_pkg_a"]
        assert shipping.trees_of(shipping.Code("ship_ns_b.inner.m:f", roots)) == [tmp_path / "ship_ns_b"]
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("solo_ship_mod", "ship_pkg_a", "ship_ns_b")]:
            del sys.modules[name]
    assert shipping.trees_of(shipping.Code("pydantic:validate_call", roots)) == []  # in site-packages
    assert shipping.trees_of(shipping.Code("json:loads", roots)) == []  # the standard library
    assert shipping.trees_of(shipping.Code("sweeper.run.training.usercode:resolve", roots)) == []  # every node has it


def test_data_and_caches_are_left_out_and_a_package_over_rays_limit_is_refused(tmp_path: Path) -> None:
    space_file = write_package(tmp_path, "bigship")
    pkg = tmp_path / "bigship"
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "nets.cpython-311.pyc").write_bytes(b"x" * 1000)
    (pkg / "weights.pt").touch()
    os.truncate(pkg / "weights.pt", 2**30)  # 1 GiB checkpoint (sparse): left out, so it does not count
    (pkg / "vocab.txt").write_text("a b c\n")
    space = load_space(space_file)
    try:
        env = shipping.runtime_env(space)
        assert env["py_modules"] == [str(pkg)] and "*.pt" in env["excludes"] and "__pycache__/" in env["excludes"]
        assert sorted(name for _, name in shipping.contents(pkg)) == [
            "bigship/__init__.py", "bigship/nets.py", "bigship/vocab.txt"]

        (pkg / "tables").mkdir()
        for i in range(60):  # 60 x 9 MiB (sparse): 540 MiB, over Ray's 512 MiB
            (pkg / "tables" / f"t{i:02}.bin").touch()
            os.truncate(pkg / "tables" / f"t{i:02}.bin", 9 * 2**20 + i)
        with pytest.raises(SweeperError) as error:
            shipping.runtime_env(space)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "bigship"]:
            del sys.modules[name]
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"bigship.nets:build: {pkg} is 540.")
    assert "over Ray's upload limit of 512.0 MiB" in message
    assert "(largest files: bigship/tables/t59.bin 9.0 MiB, bigship/tables/t58.bin 9.0 MiB" in message
    assert ".rayignore" in message and "weights.pt" not in message


def test_launch_refuses_a_package_too_big_to_ship_before_anything_starts(
    tmp_path: Path, tiny_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    space = write_package(tmp_path, "toobigship")
    (tmp_path / "toobigship" / "lookup.json").write_text("0" * 5000)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: started.append(kwargs))
    monkeypatch.setattr(shipping, "UPLOAD_LIMIT_BYTES", 4096)
    try:
        result = CliRunner().invoke(app, ["launch", str(space), "--storage", str(tmp_path / "runs"),
                                          "--data-dir", str(tiny_data)])
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "toobigship"]:
            del sys.modules[name]
    assert result.exit_code == 2, result.output
    error = result.stderr.strip()
    assert error.startswith(f"error: toobigship.nets:build: {tmp_path / 'toobigship'} is ") and "\n" not in error
    assert "over Ray's upload limit of 0.0 MiB (largest files: toobigship/lookup.json 0.0 MiB" in error
    assert started == [] and not (tmp_path / "runs").exists()


def test_the_check_costs_next_to_nothing_on_this_machine_alone(tmp_path: Path, ray_session: Any) -> None:
    """One node, the driver's own (the in-process Ray here): the driver's import of a moment ago is the answer,
    no worker is started."""
    space = load_space(write_package(tmp_path, "localshippkg"))
    try:
        started = time.perf_counter()
        seen = shipping.check_nodes(space)
        took = time.perf_counter() - started
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "localshippkg"]:
            del sys.modules[name]
    assert seen == {} and took < 0.5, took


# -- on a real cluster of two nodes ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, LocalNode, Path]]:
    """A head and a worker that cannot see `hidden` (an empty tmpfs over it in its own mount namespace)."""
    root = tmp_path_factory.mktemp("ship")
    hidden = root / "hidden"
    hidden.mkdir()
    own_disk = ("unshare", "--mount", "--propagation", "private",
                *(() if os.geteuid() == 0 else ("--user", "--map-root-user")),
                "sh", "-c", 'mount -t tmpfs sweeper-node-code "$0" && exec "$@"', str(hidden))
    cache = root / "node-cache"
    with LocalCluster(root / "c") as c:
        c.start_head(num_cpus=1, drop_env=NO_DATA, extra_env={"SWEEPER_CACHE_DIR": str(cache)})
        worker = c.add_node(num_cpus=1, name="worker", prefix=own_disk, drop_env=NO_DATA,
                            extra_env={"SWEEPER_CACHE_DIR": str(cache), "SWEEPER_TEST_NODE": "worker"})
        yield c, worker, hidden


CHECK = """\
import json, sys, time
from pathlib import Path
from sweeper.errors import SweeperError
from sweeper.run.driver import shipping
from sweeper.run.driver.startup import init_ray
from sweeper.run.training.factories import load_space

space = load_space(Path(sys.argv[1]))
init_ray(sys.argv[2], space=space)
try:
    started = time.perf_counter()
    seen = shipping.check_nodes(space)
    print(json.dumps({"seen": seen, "seconds": time.perf_counter() - started}))
except SweeperError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def check_on(c: LocalCluster, space: Path) -> dict[str, Any]:
    """Join the cluster with `space`'s code shipped (startup.init_ray) and run the check, in a driver process."""
    out = subprocess.run([sys.executable, "-c", CHECK, str(space), c.address], env=c.env(), cwd=REPO,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def label(node: LocalNode, text: Any) -> str:
    """How the check names `node` (`ip:nodeid8`, as trials.parquet's `node` column: Ray's idea of the IP), as
    found in `text` (a string, or the labels)."""
    found = re.findall(rf"[0-9.]+:{node.node_id()[:8]}", text if isinstance(text, str) else " ".join(text))
    assert len(set(found)) == 1, (found, text)
    return str(found[0])


def launch_on(
    c: LocalCluster, space: Path, runs: Path, data: Path, drivers: list[Driver], timeout: float
) -> tuple[int, str]:
    """`sweeper launch` of `space` on the cluster, its data from `data` and its sweep under `runs`, in a driver
    subprocess: its exit code and its output."""
    driver = Driver("launch", str(space), "--address", c.address, "--storage", str(runs), "--data-dir", str(data),
                    env=c.env())
    drivers.append(driver)
    return driver.wait(timeout)


def trials_on_both_nodes(c: LocalCluster, worker: LocalNode, runs: Path, name: str) -> pd.DataFrame:
    """The trials of the sweep `name` under `runs`: two, both ended, one on the head and one on the worker."""
    trials = pd.read_parquet(runs / name / "trials.parquet")
    assert len(trials) == 2 and set(trials.state) == {"TERMINATED"}, trials
    assert {n.split(":")[1] for n in trials.node} == {c.nodes[0].node_id()[:8], worker.node_id()[:8]}
    return trials


@pytest.mark.e2e
def test_a_source_tree_reaches_a_node_that_cannot_see_it_and_the_check_passes(
    cluster: tuple[LocalCluster, LocalNode, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, worker, hidden = cluster
    space = write_package(hidden, "shippedpkg")
    monkeypatch.syspath_prepend(str(hidden))
    try:
        expected, _, _ = usercode.code_hash("shippedpkg.nets:build")
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "shippedpkg"]:
            del sys.modules[name]
    answer = check_on(c, space)
    seen = answer["seen"]
    head, there = label(c.nodes[0], seen), label(worker, seen)
    assert len(seen) == 2, answer
    for node in seen.values():
        assert node["shippedpkg.nets"][0] == expected
    # the head imports the folder itself (its roots come first); the worker, which cannot see it, Ray's copy
    assert seen[head]["shippedpkg.nets"][1] == str(hidden / "shippedpkg" / "nets.py")
    shipped = seen[there]["shippedpkg.nets"][1]
    assert "/runtime_resources/py_modules_files/" in shipped and shipped.endswith("/shippedpkg/nets.py")


@pytest.mark.e2e
def test_a_node_that_cannot_import_a_module_is_named(cluster: tuple[LocalCluster, LocalNode, Path]) -> None:
    c, worker, hidden = cluster
    # imports a module that is in the spec's folder (a root: found on the head) but not in the shipped package
    (hidden / "helper_only_here.py").write_text("X = 1\n")
    space = write_package(hidden, "needshelper", extra="import helper_only_here")
    error = check_on(c, space)["error"]
    assert error == (f"needshelper.nets: 1 of the cluster's 2 nodes cannot import it ({label(worker, error)}: "
                     "ModuleNotFoundError: No module named 'helper_only_here'); install what it imports there")


@pytest.mark.e2e
def test_a_renamed_copy_of_a_shipped_package_is_told_apart_from_a_missing_one(
    cluster: tuple[LocalCluster, LocalNode, Path]
) -> None:
    """Ray names a shipped folder by its files, not its name (packaging.get_uri_for_directory): the same files
    under another name get the first one's package on the nodes, which the check catches and explains."""
    c, worker, hidden = cluster
    assert "error" not in check_on(c, write_package(hidden, "twin_a", extra="# twins"))
    error = check_on(c, write_package(hidden, "twin_b", extra="# twins"))["error"]
    assert error.startswith(f"twin_b.nets: 1 of the cluster's 2 nodes cannot import it ({label(worker, error)}: "
                            "ModuleNotFoundError: No module named 'twin_b'); Ray gave those nodes another package")


@pytest.mark.e2e
def test_launch_on_a_node_that_refuses_the_code_exits_2_naming_it_and_writes_nothing(
    tmp_path: Path, tiny_data: Path, cluster: tuple[LocalCluster, LocalNode, Path], drivers: list[Driver]
) -> None:
    c, worker, hidden = cluster
    space = write_package(hidden, "refusedpkg", extra=ONLY_HERE)
    runs = tmp_path / "runs"
    code, out = launch_on(c, space, runs, tiny_data, drivers, 240)
    assert code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    node = label(worker, out)
    assert errors == [f"error: refusedpkg.nets: 1 of the cluster's 2 nodes cannot import it ({node}: "
                      "RuntimeError: not on this node); install what it imports there"], out
    assert c.nodes[0].node_id()[:8] not in errors[0]
    assert not (runs / "refusedpkg").exists()  # no sweep folder, spec, lock or sweep.json


@pytest.mark.e2e
def test_a_sweep_of_your_own_model_trains_on_a_node_that_never_had_its_code(
    tmp_path: Path, tiny_data: Path, cluster: tuple[LocalCluster, LocalNode, Path], drivers: list[Driver]
) -> None:
    c, worker, hidden = cluster
    space = write_package(hidden, "trainedpkg", extra="# trainedpkg's own")
    runs = tmp_path / "runs"
    code, out = launch_on(c, space, runs, tiny_data, drivers, 300)
    assert code == 0, out
    trials_on_both_nodes(c, worker, runs, "trainedpkg")


LOOP = """\
import torch
import torch.nn.functional as F
from torch import nn


def train(ctx, *, width: int = 8):
    x, y = ctx.data.train
    k = ctx.data.num_classes
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), width), nn.ReLU(), nn.Linear(width, k))
    opt = torch.optim.Adam(model.parameters())
    if (state := ctx.restore()) is not None:
        model.load_state_dict(state["model"])
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            val = F.cross_entropy(model(ctx.data.val[0]), ctx.data.val[1]).item()
        ctx.report(epoch, train_loss=loss.item(), val_loss=val, checkpoint={"model": model.state_dict()})
"""


@pytest.mark.e2e
def test_a_sweep_of_your_own_loop_trains_on_a_node_that_never_had_its_code(
    tmp_path: Path, tiny_data: Path, cluster: tuple[LocalCluster, LocalNode, Path], drivers: list[Driver]
) -> None:
    c, worker, hidden = cluster
    (hidden / "looppkg").mkdir()
    (hidden / "looppkg" / "__init__.py").write_text("")
    (hidden / "looppkg" / "loop.py").write_text(LOOP)
    space = hidden / "looppkg.yaml"
    space.write_text("name: looppkg\ntrainable: looppkg.loop:train\nmetric: val_loss\nepochs: 2\n"
                     "scheduler: {type: fifo}\nresources: {cpu: 1, gpu: 0}\nparameters: {seed: {grid: [0, 1]}}\n")
    runs = tmp_path / "runs"
    code, out = launch_on(c, space, runs, tiny_data, drivers, 300)
    assert code == 0, out
    trials = trials_on_both_nodes(c, worker, runs, "looppkg")
    assert (trials.epochs == 2).all() and trials.val_loss.notna().all(), trials
