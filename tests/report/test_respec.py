"""`report --format yaml`: the rows a report shows, written as spec variants that load and train exactly the
configurations the trials ran (every key that applied, but seed), through the real CLI on a sweep written with
the real ResultsWriter."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec.loader import load_text
from tests.report.writing import Planned, write_sweep

SPEC = """\
name: wide
metric: val_accuracy
epochs: 3
search: {type: random}
num_samples: 4
parameters:
  model: cnn
  kernel_size: 3
  padding: same
  optimizer: {choice: [adam, sgd]}
  momentum: {choice: [0.9], when: {optimizer: sgd}}
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  dropout: {uniform: [0.0, 0.5]}
variants:
  - {name: two, conv_layers: 2, filters: [16, 32], pool_every: 1}
  - {name: three, conv_layers: 3, filters: [16, 32, 64], pool_every: 1}
"""
PLAN = [  # val accuracy ends at .90, .85, .95, .80: the top 2 are trials 2 (sgd, three) and 0 (adam, two)
    ("two", {"optimizer": "adam", "lr": 0.00123456789, "dropout": 0.25, "seed": 0}, 0.90),
    ("three", {"optimizer": "adam", "lr": 0.01, "dropout": 0.1, "seed": 0}, 0.85),
    ("three", {"optimizer": "sgd", "momentum": 0.9, "lr": 0.0456, "dropout": 0.3, "seed": 0}, 0.95),
    ("two", {"optimizer": "sgd", "momentum": 0.9, "lr": 0.002, "dropout": 0.0, "seed": 0}, 0.80),
]
runner = CliRunner()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("respec")
    write_sweep(root, "wide", SPEC, [Planned(keys, [v - 0.1, v], variant) for variant, keys, v in PLAN])
    return root


def test_top_trials_become_variants_that_train_the_same_configurations(runs: Path) -> None:
    result = runner.invoke(app, ["report", "wide", "--storage", str(runs), "--sort-by", "val_accuracy", "--top", "2",
                                 "--format", "yaml"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("# 2 trials as `sweeper report wide --sort-by val_accuracy --top 2` showed them")
    assert "  # trial wide/wide_00002: val_accuracy 0.9500 after 2 epochs\n  - name: three-00002\n" in text
    assert "    filters: [16, 32, 64]\n" in text and "seed:" not in text
    assert "momentum" not in text.split("variants:")[0]  # not shared: the Adam trial recorded it as null
    again = load_text("name: again\nepochs: 3\nrepeats: 2\n" + text, Path("again.yaml"))
    source = load_text(SPEC, Path("wide.yaml"))
    for (variant, keys, _), name in zip([PLAN[2], PLAN[0]], ["three-00002", "two-00000"], strict=True):
        ran = source.trial_params({"variant": variant, **keys})
        copy = again.trial_params({"variant": name})
        applied = {k: v for k, v in ran.recorded().items() if v is not None and k != "seed"}
        assert {k: copy.recorded()[k] for k in applied} == applied  # momentum of Adam: null there, unused here
        assert copy.learning_rate == ran.learning_rate  # every digit of a sampled float survives
    assert again.num_trials == 4  # 2 variants x repeats 2


def test_replicates_make_one_variant(tmp_path: Path) -> None:
    keys = {"optimizer": "adam", "lr": 0.001, "dropout": 0.2}
    write_sweep(tmp_path, "reps", SPEC, [Planned({**keys, "seed": s}, [0.9 + s / 100], "two") for s in range(3)])
    result = runner.invoke(app, ["report", "reps", "--storage", str(tmp_path), "--format", "yaml"])
    assert result.exit_code == 0, result.output
    body = result.stdout.split("variants:\n")[1]
    assert body.count("  - name: ") == 1 and body.count("  # trial reps/") == 3
    assert body.startswith("  # trial reps/reps_00002: val_accuracy 0.9200")  # best first, named after it
    assert "  - name: two-00002\n" in body


def test_group_by_is_refused(runs: Path) -> None:
    result = runner.invoke(app, ["report", "wide", "--storage", str(runs), "--group-by", "variant",
                                 "--format", "yaml"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --format yaml: writes trials as spec variants, so it takes no --group-by"
