"""Search-space loading: the shipped files, expansion, precedence, and one-line errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sweeper.errors import SweeperError
from sweeper.spec.cost import cost
from sweeper.spec.loader import load
from tests.conftest import REPO

SHIPPED = sorted((REPO / "search_spaces").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_spaces_load_and_every_trial_resolves(path: Path) -> None:
    space = load(path)
    assert space.num_trials >= 2
    for point in space.grid_points():
        space.trial_params(point)


def test_shipped_family_spaces_contain_the_study_points() -> None:
    cnn = load(REPO / "search_spaces" / "cnn.yaml")
    fourth = cnn.trial_params({"variant": "2conv-32f-k3", "optimizer": "adam", "dropout": 0.2, "momentum": 0.0})
    assert (fourth.conv_layers, fourth.filters, fourth.kernel_size, fourth.learning_rate) == (2, 32, 3, 0.001)
    mlp = load(REPO / "search_spaces" / "mlp.yaml")
    hidden = {tuple(p["hidden"]) for p in mlp.grid_points()}
    assert {(10,), (256, 128)} <= hidden
    slides = load(REPO / "search_spaces" / "slides.yaml")
    assert slides.references["5th CNN"]["test_accuracy"] == 0.91760
    assert slides.spec.scheduler.type == "fifo"


def test_expansion_counts_variants_grid_and_samples(tmp_path: Path) -> None:
    space = load(write(tmp_path, """
num_samples: 3
variants:
  - {name: a, model: mlp, hidden: [8]}
  - {name: b, model: logreg}
parameters:
  lr: {grid: [0.1, 0.01]}
  dropout: {uniform: [0.0, 0.5]}
"""))
    assert space.num_trials == 2 * 2 * 3
    assert space.grid_points()[0] == {"variant": "a", "lr": 0.1}
    assert [a.kind for a in space.random_axes] == ["uniform"]
    assert space.name == "space"


def test_variant_overrides_literal_parameters(tmp_path: Path) -> None:
    space = load(write(tmp_path, """
variants: [{name: v, model: mlp, hidden: [4], batch_size: 8}]
parameters: {batch_size: 64, optimizer: adam}
"""))
    p = space.trial_params({"variant": "v", "batch_size": 64, "optimizer": "adam"})
    assert (p.batch_size, p.optimizer, p.hidden) == (8, "adam", [4])


def test_expected_epochs_under_asha_are_a_fraction_of_the_full_run(tmp_path: Path) -> None:
    space = load(write(tmp_path, """
epochs: 27
scheduler: {type: asha, grace_period: 1, reduction_factor: 3}
parameters: {model: logreg, lr: {grid: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}}
"""))
    c = cost(space)
    assert c.asha and c.full == 9 * 27
    # rungs 1, 3, 9: more than a synchronous halving's 9 x 1 + 3 x 2 + 1 x 6 + 1 x 18 (Ray's rule passes the
    # first trials to arrive), far less than the full run
    assert 9 + 6 + 6 + 18 < c.expected < c.full / 2


BAD = [
    ("metric: val_accuracy\n  epochs: [", "malformed YAML"),
    ("- just\n- a list\n", "a search space is a YAML mapping"),
    ("epoch: 3\n", "unknown key (did you mean 'epochs'?)"),
    ("epochs: 0\n", "key 'epochs': Input should be greater than 0"),
    ("epochs: three\n", "key 'epochs'"),
    ("scheduler: {type: hyperband}\n", "key 'scheduler.type'"),
    ("scheduler: {grace: 1}\n", "unknown key (did you mean 'grace_period'?)"),
    ("scheduler: {reduction_factor: 1}\n", "key 'scheduler.reduction_factor'"),
    ("resources: {cpu: 0}\n", "key 'resources.cpu'"),
    ("resources: {gpu: -1}\n", "key 'resources.gpu'"),
    ("metric: val_accuracy\nmode: min\n", "mode must be 'max' for metric 'val_accuracy'"),
    ("metric: accuracy\n", "key 'metric'"),
    ("num_samples: 0\n", "key 'num_samples'"),
    ("data: {train_subset: -5}\n", "key 'data.train_subset'"),
    ("parameters: {learning_rate: 0.1}\n", "unknown parameter (did you mean 'lr'?)"),
    ("parameters: {model: resnet}\n", "key 'parameters.model'"),
    ("parameters: {optimizer: rmsprop}\n", "key 'parameters.optimizer'"),
    ("parameters: {lr: {loguniform: [0.1, 0.001]}}\n", "`low <= high` must hold, but got (low=0.1, high=0.001)"),
    ("parameters: {lr: {loguniform: [0, 0.1]}}\n", "`low > 0` must hold for loguniform"),
    ("parameters: {filters: {grid: []}}\n", "must be a non-empty list"),
    ("parameters: {filters: {grid: [8, 8]}}\n", "values must be distinct"),
    ("parameters: {filters: {randint: [8]}}\n", "must be [low, high] integers"),
    ("parameters: {lr: {gird: [0.1]}}\n", "(did you mean 'grid'?)"),
    ("parameters: {dropout: {uniform: [0.0, 1.5]}}\n", "key 'parameters.dropout.uniform.dropout'"),
    ("parameters: {batch_size: 0}\n", "key 'parameters.batch_size'"),
    ("parameters: {model: cnn, conv_layers: 5, kernel_size: 3}\n", "feature map"),
    ("parameters: {model: cnn, kernel_size: {grid: [3, 30]}}\n", "larger than the 28x28 feature map"),
    ("parameters: {model: cnn, conv_layers: {choice: [2, 6]}}\n", "feature map"),
    ("variants: [{model: mlp}]\n", "every variant needs a non-empty name"),
    ("variants: [{name: a}, {name: a}]\n", "variant names must be unique"),
    ("variants: [{name: a, hiden: [3]}]\n", "unknown key (did you mean 'hidden'?)"),
    ("variants: [{name: a, lr: 0.1}]\nparameters: {lr: {grid: [0.1, 0.2]}}\n", "search it in one place only"),
    ("variants: [{name: a, reference: {test_acc: 0.9}}]\n", "unknown metric (did you mean 'test_accuracy'?)"),
    ("epochs: 5\nvariants: [{name: a, max_epochs: 10}]\n", "max_epochs 10 exceeds the sweep's epochs 5"),
    ("name: ../escape\n", "key 'name'"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_space_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SweeperError) as exc:
        load(path)
    line = str(exc.value)
    assert "\n" not in line
    assert line.startswith(str(path))
    assert message in line


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match="cannot read search space"):
        load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 3\nepochs: 4\n", "key 'epochs' appears twice at line 2"),
        ("", "the file is empty"),
        ("epochs: true\n", "key 'epochs': Input should be a valid integer (got True)"),
        ("resources: {cpu: '2'}\n", "key 'resources.cpu'"),
        ("parameters: {batch_size: 32.0}\n", "key 'parameters.batch_size'"),
        ("parameters: {model: mlp, hidden: [8, true]}\n", "key 'parameters.hidden.1'"),
        ("parameters: {filters: {uniform: [8, 64]}}\n", "'filters' takes whole numbers; use randint"),
        ("parameters: {nesterov: true, momentum: {choice: [0.0, 0.9]}}\n", "nesterov needs optimizer sgd"),
        ("epochs: 5\nparameters: {max_epochs: {randint: [2, 9]}}\n", "max_epochs 9 exceeds the sweep's epochs 5"),
    ],
)
def test_strict_types_duplicates_and_reachable_draws_are_checked(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SweeperError, match=re.escape(message)):
        load(write(tmp_path, text))


def test_cross_key_rules_see_the_searched_values(tmp_path: Path) -> None:
    space = load(write(tmp_path, "parameters: {nesterov: true, momentum: {grid: [0.5, 0.9]}}\n"))
    assert space.num_trials == 2


def test_exponent_floats_read_as_numbers(tmp_path: Path) -> None:
    space = load(write(tmp_path, "parameters: {lr: 1e-3, weight_decay: {loguniform: [1e-6, 1e-3]}}\n"))
    assert space.literals["lr"] == 0.001 and space.axes[0].values == [1e-6, 1e-3]
