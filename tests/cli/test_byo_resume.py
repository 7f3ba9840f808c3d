"""Your own model and data through a whole sweep's life: launch, kill -9 and resume losing nothing, and the checks
that keep a resumed or extended sweep on the code and data it was launched with.

The user's package is written to a temporary folder beside the search space (resolved from the spec's folder); the
driver is a real `python -m sweeper` subprocess (tests/drivers.py), killed and resumed as a user would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sweeper.store.storage import Storage
from tests.cli.test_bad_inputs import tree
from tests.cli.test_resume import ray_reports
from tests.drivers import REPO, Driver
from tests.raystate import kill_once_named

pytestmark = pytest.mark.e2e

NETS = """\
from typing import Annotated

from pydantic import Field
from torch import nn


def mlp(width: Annotated[int, Field(ge=2)] = 16, depth: int = 1, *, input_shape, num_classes):
    layers, features = [nn.Flatten()], input_shape[0]
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    return nn.Sequential(*layers, nn.Linear(features, num_classes))
"""

DATA = """\
import numpy as np

import sweeper

SHIFT = 0.0


def blobs(rows: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 12)).astype(np.float32) + SHIFT
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    cut = rows * 3 // 4
    return sweeper.Dataset(train=(x[:cut], y[:cut]), test=(x[cut:], y[cut:]), classes=["low", "mid", "high"])
"""

SPACE = """\
name: {name}
epochs: {epochs}
scheduler: {{type: fifo}}
max_concurrent: 2
models: {{mine: {pkg}.nets:mlp}}
data: {{source: {pkg}.data:blobs, args: {{rows: {rows}}}}}
parameters:
  model: mine
  width: {{grid: [16, 32]}}
  depth: {{grid: [1, 2]}}
  optimizer: adam
"""


def write_user_code(folder: Path, pkg: str) -> None:
    (folder / pkg).mkdir(parents=True, exist_ok=True)
    (folder / pkg / "__init__.py").write_text("")
    (folder / pkg / "nets.py").write_text(NETS)
    (folder / pkg / "data.py").write_text(DATA)


def test_kill_9_then_resume_a_user_model_on_user_data_loses_nothing(tmp_path: Path, drivers: list[Driver]) -> None:
    write_user_code(tmp_path, "killpkg")
    (tmp_path / "kill.yaml").write_text(SPACE.format(name="ukill", epochs=5, pkg="killpkg", rows=40_000))
    runs, folder = tmp_path / "runs", tmp_path / "runs" / "ukill"
    driver = Driver("launch", str(tmp_path / "kill.yaml"), "--storage", str(runs))
    drivers.append(driver)
    named = kill_once_named(driver, Storage.parse(str(runs)).folder("ukill"))

    resumed = Driver("resume", "ukill", "--storage", str(runs))
    drivers.append(resumed)
    code, out = resumed.wait(timeout=400)
    assert code == 0, out

    trials = pd.read_parquet(folder / "trials.parquet")
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert len(trials) == 4 and set(trials.state) == {"TERMINATED"}
    assert epochs.groupby("trial_id").epoch.apply(list).to_dict() == {t: [1, 2, 3, 4, 5] for t in trials.trial_id}
    assert sorted(zip(trials.param_width, trials.param_depth, strict=True)) == [(16, 1), (16, 2), (32, 1), (32, 2)]
    assert trials.test_accuracy.between(0.5, 1.0).all()  # learnt the blobs, scored on the source's own test split
    assert trials.code.nunique() == 1 and trials.code.notna().all()
    restored = trials.set_index("trial_id").restored_from
    for trial_id, epoch in named.items():  # went on from (at least) the checkpoint Ray's state named at the kill
        assert restored[trial_id] >= epoch, (trial_id, epoch, restored)
    logged = {(r["trial_id"], r["epoch"]) for r in ray_reports(folder)}
    assert logged <= set(zip(epochs.trial_id, epochs.epoch, strict=True))
    sweep = json.loads((folder / "sweep.json").read_text())
    assert sweep["models"]["mine"]["ref"] == "killpkg.nets:mlp" and len(sweep["code_versions"]) == 1
    assert len(sweep["data_fingerprint"]) == 64


@pytest.fixture()
def finished(tmp_path: Path, drivers: list[Driver]) -> tuple[Path, Path]:
    write_user_code(tmp_path, "donepkg")
    (tmp_path / "done.yaml").write_text(SPACE.format(name="udone", epochs=1, pkg="donepkg", rows=400))
    runs = tmp_path / "runs"
    driver = Driver("launch", str(tmp_path / "done.yaml"), "--storage", str(runs))
    drivers.append(driver)
    code, out = driver.wait()
    assert code == 0, out
    return tmp_path, runs


def test_changed_code_is_refused_naming_the_file_unless_accepted_and_trials_say_which_version_ran(
    finished: tuple[Path, Path], drivers: list[Driver]
) -> None:
    tmp, runs = finished
    (tmp / "donepkg" / "nets.py").write_text(NETS + "\n# tuned\n")
    before = tree(runs)

    code, out = Driver("resume", "udone", "--storage", str(runs)).wait()
    assert code == 2 and "your code changed since this sweep ran: donepkg.nets:mlp (donepkg/nets.py)" in out, out
    assert "--accept-changed-code" in out and len(out.strip().splitlines()) == 1
    assert tree(runs) == before  # nothing written

    grown = (tmp / "done.yaml").read_text().replace("grid: [1, 2]", "grid: [1, 2, 3]")
    (tmp / "grown.yaml").write_text(grown)
    extended = Driver("extend", "udone", "--space", str(tmp / "grown.yaml"), "--storage", str(runs),
                      "--accept-changed-code")
    drivers.append(extended)
    code, out = extended.wait()
    assert code == 0, out
    trials = pd.read_parquet(runs / "udone" / "trials.parquet")
    versions = json.loads((runs / "udone" / "sweep.json").read_text())["code_versions"]
    assert len(trials) == 6 and len(versions) == 2
    assert trials.groupby("code").size().to_dict() == {versions[0]: 4, versions[1]: 2}
    assert set(trials[trials.code == versions[1]].param_depth) == {3}


def test_changed_data_is_refused_before_anything_is_written(finished: tuple[Path, Path]) -> None:
    tmp, runs = finished
    (tmp / "donepkg" / "data.py").write_text(DATA.replace("SHIFT = 0.0", "SHIFT = 0.5"))
    before = tree(runs)
    code, out = Driver("resume", "udone", "--storage", str(runs)).wait()
    assert code == 2, out
    assert "the data from donepkg.data:blobs differs from the data this sweep was launched with" in out, out
    assert tree(runs) == before


def test_a_source_without_test_split_leaves_test_columns_null_and_the_report_says_so(
    tmp_path: Path, drivers: list[Driver]
) -> None:
    write_user_code(tmp_path, "notestpkg")
    data = DATA.replace(", test=(x[cut:], y[cut:])", "")
    (tmp_path / "notestpkg" / "data.py").write_text(data)
    (tmp_path / "nt.yaml").write_text(SPACE.format(name="unotest", epochs=1, pkg="notestpkg", rows=400)
                                      .replace("grid: [1, 2]", "grid: [1]"))
    runs = tmp_path / "runs"
    driver = Driver("launch", str(tmp_path / "nt.yaml"), "--storage", str(runs))
    drivers.append(driver)
    code, out = driver.wait()
    assert code == 0, out
    trials = pd.read_parquet(runs / "unotest" / "trials.parquet")
    assert len(trials) == 2 and trials.test_accuracy.isna().all() and trials.val_accuracy.notna().all()
    code, out = Driver("report", "unotest", "--storage", str(runs)).wait()
    assert code == 0, out
    assert "its data source notestpkg.data:blobs gives no test split, so there are no test scores" in \
        " ".join(out.split()), out


def test_resume_from_another_directory_finds_the_code_and_data_where_launch_found_them(
    tmp_path: Path, drivers: list[Driver]
) -> None:
    write_user_code(tmp_path, "farpkg")
    (tmp_path / "far.yaml").write_text(SPACE.format(name="ufar", epochs=1, pkg="farpkg", rows=400)
                                       .replace("grid: [1, 2]", "grid: [1]"))
    runs = tmp_path / "runs"
    relative = os.path.relpath(tmp_path / "far.yaml", REPO)  # as a user types it: sweep.json keeps it relative
    launched = Driver("launch", relative, "--storage", str(runs))
    drivers.append(launched)
    code, out = launched.wait()
    assert code == 0, out
    assert json.loads((runs / "ufar" / "sweep.json").read_text())["space_file"] == relative
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = Driver("resume", "ufar", "--storage", str(runs), cwd=elsewhere)
    drivers.append(resumed)
    code, out = resumed.wait()
    assert code == 0, out  # the factory and the data source resolve from the folders recorded at launch
