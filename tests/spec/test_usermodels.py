"""Your own models as the spec sees them (no user code imported here: the keys come as sweep.json records them):
their keys apply only where `model` is theirs, recorded null elsewhere, in the config id, in the cost model."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeper.errors import SweeperError
from sweeper.spec.cost import architecture, trial_architectures
from sweeper.spec.loader import load_text
from sweeper.spec.usermodels import UserModel, code_version, recorded

WIDENET = {"widenet": {"ref": "mypkg.nets:widenet", "keys": {"width": 32, "act": "relu", "dropout": 0.0},
                       "whole": ["width"], "sha256": "ab"}}
SPACE = """
models: {widenet: mypkg.nets:widenet}
parameters:
  model: {grid: [cnn, widenet]}
  width: {grid: [16, 64]}
  dropout: 0.25
  filters: 8
"""


def load(text: str = SPACE, models: dict | None = None):
    return load_text(text, Path("s.yaml"), recorded(WIDENET if models is None else models))


def test_a_user_models_keys_apply_only_where_model_is_it() -> None:
    space = load()
    assert space.grid_points() == [{"model": "cnn"}, {"model": "widenet", "width": 16},
                                   {"model": "widenet", "width": 64}]
    cnn, wide = space.trial_params({"model": "cnn"}), space.trial_params({"model": "widenet", "width": 16})
    assert cnn.recorded()["width"] is None and cnn.recorded()["act"] is None and cnn.recorded()["filters"] == 8
    assert wide.recorded()["width"] == 16 and wide.recorded()["act"] == "relu" and wide.recorded()["filters"] is None
    assert wide.model_keys() == {"dropout": 0.25, "width": 16, "act": "relu"}  # dropout: a family key it declares
    assert not space.applies("width", {"model": "cnn"}) and space.applies("width", {"model": "widenet"})
    assert wide.config_id() != space.trial_params({"model": "widenet", "width": 64}).config_id()
    assert wide.config_id() == space.trial_params({"model": "widenet", "width": 16, "seed": 3}).config_id()


def test_when_may_name_a_user_key_and_the_cost_model_knows_its_architectures() -> None:
    space = load(SPACE + "  act: {choice: [relu, gelu]}\n  lr: {choice: [0.1, 0.01], when: {act: gelu}}\n")
    assert {a.key for a in space.axes} >= {"act", "lr"}
    assert architecture(space.trial_params({"model": "widenet", "width": 16, "act": "gelu"}).recorded()) == \
        "model=widenet act=gelu width=16 batch_size=32"
    archs = trial_architectures(space)
    assert any(a.startswith("model=widenet") for a in archs) and any(a.startswith("model=cnn") for a in archs)


def test_spaces_without_models_are_unchanged_and_readers_without_the_code_refuse_models() -> None:
    plain = load_text("parameters: {model: mlp, hidden: [8]}\n", Path("p.yaml"))
    assert plain.models == {} and plain.trial_params({}).recorded()["hidden"] == [8]
    assert "user" not in plain.trial_params({}).recorded()
    with pytest.raises(SweeperError, match="key 'models': your own code is read by the commands"):
        load_text(SPACE, Path("s.yaml"))


def test_whole_numbered_user_keys_take_randint_not_uniform() -> None:
    with pytest.raises(SweeperError, match="uniform draws fractions but 'width' takes whole numbers"):
        load(SPACE.replace("{grid: [16, 64]}", "{uniform: [16, 64]}"))
    assert load(SPACE.replace("{grid: [16, 64]}", "{randint: [16, 64]}")).axes[1].kind == "randint"


def test_code_version_changes_with_any_models_code() -> None:
    a = {"m": UserModel("m", "p:f", sha256="1")}
    assert code_version({}) is None
    assert code_version(a) == code_version(dict(a)) != code_version({"m": UserModel("m", "p:f", sha256="2")})


def test_extending_a_loops_sweep_refuses_another_loop_or_a_changed_loop_key() -> None:
    """spec/grow.py with your own loop: its keys' defaults are the loop's (a new literal that changes one is
    refused by name, as for sweeper's keys), and another `trainable` or other declared metrics are refused."""
    from sweeper.spec.grow import refused
    from sweeper.spec.loader import load_text
    from sweeper.spec.usermodels import TRAINABLE, recorded

    stored = {TRAINABLE: {"ref": "mine.loop:train", "keys": {"lr": 0.1, "width": 8}, "whole": ["width"]}}
    base = "trainable: mine.loop:train\nmetrics: {val_f1: max}\nmetric: val_f1\nsearch: {type: random}\n"
    old = load_text(base + "parameters: {lr: {loguniform: [0.01, 1.0]}}\n", Path("s.yaml"), recorded(stored))
    same = load_text(base + "parameters: {lr: {loguniform: [0.01, 1.0]}, width: 8}\n", Path("s.yaml"),
                     recorded(stored))
    wider = load_text(base + "parameters: {lr: {loguniform: [0.01, 1.0]}, width: 16}\n", Path("s.yaml"),
                      recorded(stored))
    assert refused(old, same) == [] and refused(old, wider) == ["parameters.width"]
    other = load_text(base.replace("{val_f1: max}", "{val_f1: max, val_auc: max}") +
                      "parameters: {lr: {loguniform: [0.01, 1.0]}}\n", Path("s.yaml"), recorded(stored))
    assert refused(old, other) == ["metrics"]
