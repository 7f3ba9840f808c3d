"""The bad-input corpus: every way a user can get a command wrong, through the real CLI.

Each case must give exit code 2 and exactly one line on stderr ("error: ...") that names the file, key or value
and the rule broken; nothing on stdout, no traceback, and nothing written to storage (its tree, file contents
included, is the same before and after; a storage folder that did not exist still does not).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from sweeper.spec.loader import load_text
from sweeper.store.files import SPEC_FILE, STATE_FILE, TRIALS_FILE
from sweeper.store.state import new_state
from tests.conftest import write_idx

runner = CliRunner()
GOOD = "epochs: 1\nscheduler: {type: fifo}\nparameters: {model: logreg}\n"


@dataclass
class Case:
    id: str
    args: list[str]  # after `sweeper`; {space} {data} {tmp} {storage} are filled in
    message: str  # must appear in the one error line
    space: str | bytes | None = None  # written to {space} (tmp/space.yaml)
    setup: Callable[[Path], None] | None = None  # builds files under tmp (data folders, fake sweeps)
    storage: bool = True  # append --storage {storage}


def yaml_case(id: str, text: str, message: str) -> Case:
    return Case(id, ["launch", "{space}", "--data-dir", "{data}"], message, space=text)


YAML = [
    yaml_case("malformed-yaml", "metric: val_accuracy\n  epochs: [", "malformed YAML at line 2"),
    yaml_case("unclosed-quote", 'name: "cnn\nepochs: 3\n', "malformed YAML"),
    yaml_case("not-a-mapping", "- just\n- a list\n", "a search space is a YAML mapping of keys, but got a list"),
    yaml_case("empty-file", "", "a search space is a YAML mapping of keys"),
    yaml_case("unknown-top-key", "epoch: 3\n", "key 'epoch': unknown key (did you mean 'epochs'?)"),
    yaml_case("unknown-scheduler-key", "scheduler: {grace: 1}\n",
              "key 'scheduler.grace': unknown key (did you mean 'grace_period'?)"),
    yaml_case("unknown-resources-key", "resources: {cpus: 2}\n",
              "key 'resources.cpus': unknown key (did you mean 'cpu'?)"),
    yaml_case("unknown-parameter", "parameters: {learning_rate: 0.1}\n",
              "key 'parameters.learning_rate': unknown parameter (did you mean 'lr'?)"),
    yaml_case("unknown-variant-key", "variants: [{name: a, hiden: [3]}]\n",
              "key 'variants[0].hiden': unknown key (did you mean 'hidden'?)"),
    yaml_case("unknown-domain", "parameters: {lr: {gird: [0.1]}}\n", "(did you mean 'grid'?)"),
    yaml_case("two-domains", "parameters: {lr: {grid: [0.1], choice: [0.2]}}\n",
              "a search domain is exactly one of grid, choice, uniform, loguniform, randint, but got grid, choice"),
    yaml_case("epochs-not-a-number", "epochs: three\n", "key 'epochs': Input should be a valid integer"),
    yaml_case("seed-not-a-number", "seed: abc\n", "key 'seed': Input should be a valid integer"),
    yaml_case("name-not-a-string", "name: 5\n", "key 'name': Input should be a valid string (got 5)"),
    yaml_case("variants-not-a-list", "variants: {name: a}\n", "key 'variants': Input should be a valid list"),
    yaml_case("parameters-null", "parameters: null\n", "key 'parameters': Input should be a valid dictionary"),
    yaml_case("variant-not-a-mapping", "variants: [5]\n", "key 'variants.0': Input should be a valid dictionary"),
    yaml_case("epochs-zero", "epochs: 0\n", "key 'epochs': Input should be greater than 0 (got 0)"),
    yaml_case("epochs-negative", "epochs: -3\n", "key 'epochs': Input should be greater than 0 (got -3)"),
    yaml_case("cpu-zero", "resources: {cpu: 0}\n", "key 'resources.cpu': Input should be greater than 0"),
    yaml_case("cpu-negative", "resources: {cpu: -1}\n", "key 'resources.cpu': Input should be greater than 0"),
    yaml_case("gpu-negative", "resources: {gpu: -1}\n", "key 'resources.gpu': Input should be greater than or equal"),
    yaml_case("batch-size-zero", "parameters: {batch_size: 0}\n", "key 'parameters.batch_size': Input should be"),
    yaml_case("batch-size-negative", "parameters: {batch_size: -32}\n", "(got -32)"),
    yaml_case("num-samples-zero", "num_samples: 0\n", "key 'num_samples': Input should be greater than 0"),
    yaml_case("max-concurrent-zero", "max_concurrent: 0\n", "key 'max_concurrent': Input should be greater than 0"),
    yaml_case("grace-period-zero", "scheduler: {grace_period: 0}\n", "key 'scheduler.grace_period'"),
    yaml_case("reduction-factor-one", "scheduler: {reduction_factor: 1}\n", "key 'scheduler.reduction_factor'"),
    yaml_case("unknown-scheduler", "scheduler: {type: hyperband}\n", "key 'scheduler.type': Input should be"),
    yaml_case("unknown-metric", "metric: accuracy\n",
              "key 'metric': must be one of train_loss, train_accuracy, val_loss, val_accuracy"),
    yaml_case("mode-contradicts-metric", "metric: val_loss\nmode: max\n",
              "mode must be 'min' for metric 'val_loss', but got 'max'"),
    yaml_case("val-fraction-one", "data: {val_fraction: 1.0}\n", "key 'data.val_fraction'"),
    yaml_case("train-subset-negative", "data: {train_subset: -5}\n", "key 'data.train_subset'"),
    yaml_case("bad-sweep-name", "name: ../escape\n", "key 'name': String should match pattern"),
    yaml_case("loguniform-low-above-high", "parameters: {lr: {loguniform: [0.1, 0.001]}}\n",
              "`low <= high` must hold, but got (low=0.1, high=0.001)"),
    yaml_case("randint-low-above-high", "parameters: {filters: {randint: [64, 8]}}\n",
              "`low <= high` must hold, but got (low=64, high=8)"),
    yaml_case("uniform-low-above-high", "parameters: {dropout: {uniform: [0.5, 0.1]}}\n", "`low <= high` must hold"),
    yaml_case("loguniform-zero-low", "parameters: {lr: {loguniform: [0, 0.1]}}\n",
              "`low > 0` must hold for loguniform, but got low=0"),
    yaml_case("randint-floats", "parameters: {filters: {randint: [1.5, 3]}}\n", "must be [low, high] integers"),
    yaml_case("randint-one-bound", "parameters: {filters: {randint: [8]}}\n", "must be [low, high] integers"),
    yaml_case("uniform-out-of-range", "parameters: {dropout: {uniform: [0.0, 1.5]}}\n",
              "key 'parameters.dropout.uniform.dropout': Input should be less than 1"),
    yaml_case("empty-grid", "parameters: {filters: {grid: []}}\n",
              "key 'parameters.filters.grid': must be a non-empty list, but got []"),
    yaml_case("grid-not-a-list", "parameters: {lr: {grid: 0.1}}\n", "must be a non-empty list, but got 0.1"),
    yaml_case("duplicate-grid-values", "parameters: {filters: {grid: [8, 8]}}\n", "values must be distinct"),
    yaml_case("unknown-model", "parameters: {model: resnet}\n",
              "key 'parameters.model': unknown model 'resnet'; models are logreg, mlp, cnn and the names under "
              "`models:`"),
    yaml_case("unknown-optimizer", "parameters: {optimizer: rmsprop}\n",
              "key 'parameters.optimizer': Input should be 'sgd', 'adam' or 'adamw' (got 'rmsprop')"),
    yaml_case("unknown-model-in-variant", "variants: [{name: a, model: resnet}]\n", "key 'variants[0].model'"),
    yaml_case("unknown-padding", "parameters: {padding: full}\n", "key 'parameters.padding'"),
    yaml_case("hidden-zero-units", "parameters: {model: mlp, hidden: {grid: [[256], [0]]}}\n",
              "Input should be greater than 0 (got 0)"),
    yaml_case("dense-negative", "parameters: {dense: [-1]}\n", "key 'parameters.dense.0'"),
    yaml_case("nesterov-with-adam", "parameters: {optimizer: adam, nesterov: true}\n",
              "nesterov needs optimizer sgd and momentum > 0"),
    yaml_case("cnn-too-deep", "parameters: {model: cnn, conv_layers: 4, kernel_size: 2}\n",
              "4 conv layers with pooling every 1 shrink the 28x28 input below 2x2 before pool after conv layer 4"),
    yaml_case("cnn-too-deep-for-kernel", "parameters: {model: cnn, conv_layers: 5, kernel_size: 3}\n",
              "kernel_size 3 is larger than the 1x1 feature map at conv layer 4"),
    yaml_case("cnn-too-deep-in-choice", "parameters: {model: cnn, conv_layers: {choice: [2, 6]}}\n",
              "trial {'conv_layers': 6}"),
    yaml_case("kernel-larger-than-input", "parameters: {model: cnn, kernel_size: {grid: [3, 30]}}\n",
              "kernel_size 30 is larger than the 28x28 feature map at conv layer 1"),
    yaml_case("kernel-larger-than-feature-map", "parameters: {model: cnn, conv_layers: 3, kernel_size: 5}\n",
              "kernel_size 5 is larger than the 4x4 feature map at conv layer 3"),
    yaml_case("duplicate-variant-names", "variants: [{name: a}, {name: a}]\n",
              "variant names must be unique, 'a' repeats"),
    yaml_case("variant-without-name", "variants: [{model: mlp}]\n", "every variant needs a non-empty name"),
    yaml_case("variant-fixes-searched-key", "variants: [{name: a, lr: 0.1}]\nparameters: {lr: {grid: [0.1, 0.2]}}\n",
              "search it in one place only"),
    yaml_case("reference-unknown-metric", "variants: [{name: a, reference: {test_acc: 0.9}}]\n",
              "unknown metric (did you mean 'test_accuracy'?)"),
    yaml_case("reference-not-a-number", "variants: [{name: a, reference: {test_accuracy: high}}]\n",
              "must be a number, but got 'high'"),
    yaml_case("max-epochs-above-epochs", "epochs: 5\nvariants: [{name: a, max_epochs: 10}]\n",
              "max_epochs 10 exceeds the sweep's epochs 5"),
    yaml_case("not-utf8", b"epochs: \xff\xfe\n", "cannot read search space"),
    Case("space-file-missing", ["launch", "{tmp}/nope.yaml"], "nope.yaml: cannot read search space"),
    Case("space-file-is-a-folder", ["launch", "{tmp}"], "cannot read search space: Is a directory"),
]

# Search types, conditional keys (`when`) and repeats (README "Search spaces").
SEARCH = [
    yaml_case("search-type-unknown", "search: {type: bayes}\n",
              "key 'search.type': Input should be 'grid', 'random' or 'tpe'"),
    yaml_case("search-unknown-key", "search: {typ: tpe}\n", "key 'search.typ': unknown key (did you mean 'type'?)"),
    yaml_case("startup-trials-without-tpe", "search: {startup_trials: 3}\n",
              "key 'search': startup_trials is for search type tpe only, but the type is 'grid'"),
    yaml_case("repeats-zero", "repeats: 0\n", "key 'repeats': Input should be greater than 0"),
    yaml_case("repeats-with-a-seed-axis", "repeats: 2\nparameters: {seed: {grid: [0, 1]}}\n",
              "key 'repeats': repeats 2 trains every configuration with seeds 0..1, but parameters.seed sets the seed"),
    yaml_case("variant-repeats-zero", "variants: [{name: a, repeats: 0}]\n",
              "key 'variants[0].repeats': seeds for this variant, a whole number >= 1, but got 0"),
    yaml_case("variant-repeats-under-tpe", "search: {type: tpe}\nvariants: [{name: a, repeats: 2}]\n",
              "key 'variants[0].repeats': a variant's own repeats need search type grid"),
    yaml_case("grid-under-tpe", "search: {type: tpe}\nparameters: {lr: {grid: [0.1, 0.2]}}\n",
              "key 'parameters.lr.grid': search type 'tpe' draws every axis, so a grid is never exhausted; use "
              "choice: [0.1, 0.2]"),
    yaml_case("grid-under-random", "search: {type: random}\nparameters: {filters: {grid: [8]}}\n",
              "key 'parameters.filters.grid': search type 'random' draws every axis"),
    yaml_case("when-on-a-literal", "parameters: {momentum: {when: {optimizer: sgd}}}\n",
              "key 'parameters.momentum': `when` needs a search domain"),
    yaml_case("when-unknown-key", "parameters: {momentum: {choice: [0.9], when: {optimiser: sgd}}}\n",
              "key 'parameters.momentum.when.optimiser': unknown key (did you mean 'optimizer'?)"),
    yaml_case("when-value-never-taken", "parameters: {momentum: {choice: [0.9], when: {optimizer: rmsprop}}}\n",
              "key 'parameters.momentum.when.optimizer': 'optimizer' never takes 'rmsprop' in this space"),
    yaml_case("when-cycle", "parameters: {momentum: {choice: [0.0, 0.9], when: {lr: 0.1}}, "
              "lr: {choice: [0.1], when: {momentum: 0.9}}}\n", "conditions form a cycle: momentum -> lr -> momentum"),
    yaml_case("when-on-model", "parameters: {model: {grid: [mlp, cnn], when: {optimizer: sgd}}}\n",
              "key 'parameters.model.when': the model family cannot be conditional"),
    yaml_case("when-not-a-mapping", "parameters: {momentum: {choice: [0.9], when: sgd}}\n",
              "key 'parameters.momentum.when': a mapping of key -> value or list of values, but got 'sgd'"),
    yaml_case("grid-when-on-a-drawn-key",
              "parameters: {optimizer: {choice: [sgd, adam]}, momentum: {grid: [0.0, 0.9], when: {optimizer: sgd}}}\n",
              "a grid axis may only depend on literals, variants and grid axes, but 'optimizer' is drawn at random"),
]


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


RESOURCES = [
    yaml_case("cpu-above-machine", "resources: {cpu: 100000.5}\nparameters: {model: logreg}\n",
              "key 'resources.cpu': 100000.5 CPUs per trial, but"),
    yaml_case("gpu-above-machine", "resources: {gpu: 64.5}\nparameters: {model: logreg}\n",
              "key 'resources.gpu': 64.5 GPUs per trial, but"),
    yaml_case("fractional-gpu-above-what-exists", "resources: {gpu: GPUS}\nparameters: {model: logreg}\n",
              "GPUs per trial, but"),
]

OPTIONS = [
    Case("bad-name-option", ["launch", "{space}", "--name", "../x"], "--name '../x': a sweep name is", space=GOOD),
    Case("resume-and-overwrite", ["launch", "{space}", "--resume", "--overwrite"],
         "--resume and --overwrite: choose one", space=GOOD),
    Case("max-failures-negative", ["launch", "{space}", "--max-failures", "-1"],
         "Invalid value for '--max-failures': Input should be greater than or equal to 0", space=GOOD),
    Case("max-failures-not-a-number", ["launch", "{space}", "--max-failures", "many"],
         "Invalid value for '--max-failures'", space=GOOD),
    Case("unknown-option", ["launch", "{space}", "--nmae", "x"], "No such option: --nmae", space=GOOD),
    Case("missing-argument", ["launch"], "Missing argument 'SPACE.yaml'", storage=False),
    Case("unknown-command", ["lauch", "x.yaml"], "No such command 'lauch'. Did you mean 'launch'?", storage=False),
    Case("resume-errored-bad", ["resume", "x", "--errored", "retry"],
         "Invalid value for '--errored': Value error, 'retry' is not one of 'resume', 'restart', 'leave'"),
    Case("report-bad-format", ["report", "x", "--format", "pdf"], "Invalid value for '--format'"),
]


def _data(tmp: Path, change: Callable[[Path], None]) -> None:
    folder = write_idx(tmp / "data", n_train=60, n_test=20)
    change(folder)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _short_idx(folder: Path) -> None:
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x01\x00\x00\x00\x3c" + b"\x01" * 10)  # header says 60 labels, 10 follow


def data_case(id: str, change: Callable[[Path], None], message: str) -> Case:
    return Case(id, ["launch", "{space}", "--data-dir", "{tmp}/data"], message, space=GOOD,
                setup=lambda tmp: _data(tmp, change))


DATA = [
    Case("data-dir-missing", ["launch", "{space}", "--data-dir", "{tmp}/no-such-data"],
         "no-such-data: data folder does not exist or is not a folder", space=GOOD),
    Case("data-dir-is-a-file", ["launch", "{space}", "--data-dir", "{space}"],
         "data folder does not exist or is not a folder", space=GOOD),
    data_case("data-dir-empty", lambda f: [p.unlink() for p in f.iterdir()],
              "data folder must hold the four Fashion-MNIST files"),
    data_case("data-file-missing", lambda f: (f / "t10k-labels-idx1-ubyte.gz").unlink(),
              "missing t10k-labels-idx1-ubyte.gz"),
    data_case("data-gz-corrupted", lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all"),
              "train-images-idx3-ubyte.gz: cannot read data file"),
    data_case("data-gz-truncated", lambda f: _truncate(f / "train-labels-idx1-ubyte.gz"),
              "train-labels-idx1-ubyte.gz: cannot read data file"),
    data_case("data-idx-wrong-kind", lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(
        (f / "train-labels-idx1-ubyte.gz").read_bytes()), "not an IDX images file: magic number 2049"),
    data_case("data-idx-truncated", _short_idx, "truncated or padded IDX labels file: 18 bytes, header says 68"),
]


def _file(tmp: Path) -> None:
    (tmp / "afile").write_text("a regular file\n")


STORAGE = [
    Case("storage-parent-is-a-file", ["launch", "{space}", "--storage", "{tmp}/afile/runs"],
         "afile is a file, so no folder can be created under it", space=GOOD, setup=_file, storage=False),
    Case("storage-is-a-file", ["launch", "{space}", "--storage", "{tmp}/afile"],
         "is a file, not a folder", space=GOOD, setup=_file, storage=False),
    Case("storage-not-writable", ["launch", "{space}", "--storage", "/proc/sweeper-test-runs"],
         "--storage /proc/sweeper-test-runs: cannot create folders in /proc", space=GOOD, storage=False),
    Case("list-storage-missing", ["list", "--storage", "{tmp}/nowhere"], "nowhere: does not exist", storage=False),
    Case("list-storage-is-a-file", ["list", "--storage", "{tmp}/afile"], "afile: is not a folder",
         setup=_file, storage=False),
    Case("status-empty-storage", ["status"], "holds no sweeps", setup=lambda t: (t / "runs").mkdir()),
]


def fake_sweep(tmp: Path, name: str = "old", text: str = GOOD, sweep_json: str | None = None,
               trials: bytes | None = None) -> None:
    """A finished sweep's bookkeeping files as launch writes them (no Ray needed to be refused)."""
    folder = tmp / "runs" / name
    folder.mkdir(parents=True)
    (folder / SPEC_FILE).write_text(text)
    space = load_text(text, tmp / f"{name}.yaml")
    run_state = new_state(space, None) | {"state": "finished"}
    (folder / STATE_FILE).write_text(sweep_json if sweep_json is not None else json.dumps(run_state))
    if trials is not None:
        (folder / TRIALS_FILE).write_bytes(trials)


BROKEN_PARQUET = b"PAR1 this is not really parquet"
CHANGED = GOOD.replace("epochs: 1", "epochs: 2")

SWEEPS = [
    Case("resume-unknown-sweep", ["resume", "nope"], "sweep 'nope': no such sweep under --storage",
         setup=fake_sweep),
    Case("report-unknown-sweep", ["report", "nope"], "sweep 'nope': no results", setup=fake_sweep),
    Case("status-unknown-sweep", ["status", "nope"], "sweep 'nope': no such sweep under --storage",
         setup=fake_sweep),
    Case("report-corrupted-parquet", ["report", "old"], "trials.parquet: not a readable Parquet file",
         setup=lambda t: fake_sweep(t, trials=BROKEN_PARQUET)),
    Case("status-corrupted-parquet", ["status", "old"], "trials.parquet: not a readable Parquet file",
         setup=lambda t: fake_sweep(t, trials=BROKEN_PARQUET)),
    Case("status-corrupted-sweep-json", ["status", "old"], "sweep.json: unreadable sweep state",
         setup=lambda t: fake_sweep(t, sweep_json="{not json")),
    Case("resume-corrupted-sweep-json", ["resume", "old"], "sweep.json: unreadable sweep state",
         setup=lambda t: fake_sweep(t, sweep_json="{not json")),
    Case("launch-over-existing-sweep", ["launch", "{tmp}/old.yaml"], "sweep 'old' already exists",
         setup=lambda t: (fake_sweep(t), (t / "old.yaml").write_text(GOOD))),
    Case("launch-resume-with-changed-space", ["launch", "{tmp}/old.yaml", "--resume"],
         "differs from the search space sweep 'old' was launched with in epochs",
         setup=lambda t: (fake_sweep(t), (t / "old.yaml").write_text(CHANGED))),
    Case("resume-with-changed-space", ["resume", "old", "--space", "{tmp}/changed.yaml"],
         "changed.yaml: differs from the search space sweep 'old' was launched with in epochs",
         setup=lambda t: (fake_sweep(t), (t / "changed.yaml").write_text(CHANGED))),
]

TPE_SPACE = "epochs: 1\nsearch: {type: tpe}\nparameters: {model: logreg, lr: {loguniform: [0.001, 0.1]}}\n"

# `sweeper extend` and `launch --warm-start`.
GROW = [
    Case("extend-without-space", ["extend", "old"], "Missing option '--space'", setup=fake_sweep),
    Case("extend-unknown-sweep", ["extend", "nope", "--space", "{space}"],
         "sweep 'nope': no such sweep under --storage", space=GOOD, setup=fake_sweep),
    Case("extend-bad-space", ["extend", "old", "--space", "{space}"], "key 'epoch': unknown key", space="epoch: 3\n",
         setup=fake_sweep),
    Case("extend-changes-epochs", ["extend", "old", "--space", "{tmp}/changed.yaml"],
         "changed.yaml: extending sweep 'old' would change the trials it ran in epochs; extend only adds trials",
         setup=lambda t: (fake_sweep(t), (t / "changed.yaml").write_text(CHANGED))),
    Case("extend-changes-a-literal", ["extend", "old", "--space", "{space}"],
         "would change the trials it ran in parameters.model", space=GOOD.replace("logreg", "mlp"), setup=fake_sweep),
    Case("extend-shrinks-the-grid", ["extend", "old", "--space", "{space}"],
         "would change the trials it ran in parameters.lr.grid",
         space=GOOD.replace("model: logreg", "model: logreg, lr: {grid: [0.1]}"),
         setup=lambda t: fake_sweep(t, text=GOOD.replace("model: logreg", "model: logreg, lr: {grid: [0.1, 0.2]}"))),
    Case("extend-changes-the-search-type", ["extend", "old", "--space", "{space}"],
         "would change the trials it ran in search.type", space=TPE_SPACE,
         setup=lambda t: fake_sweep(t, text=TPE_SPACE.replace("search: {type: tpe}", "search: {type: random}"))),
    Case("extend-max-failures-negative", ["extend", "old", "--space", "{space}", "--max-failures", "-1"],
         "Invalid value for '--max-failures': Input should be greater than or equal to 0", space=GOOD,
         setup=fake_sweep),
    Case("warm-start-without-tpe", ["launch", "{space}", "--warm-start", "old"],
         "--warm-start old: only search type tpe learns from earlier trials", space=GOOD, setup=fake_sweep),
    Case("warm-start-unknown-sweep", ["launch", "{space}", "--warm-start", "nope"],
         "sweep 'nope': no such sweep under --storage", space=TPE_SPACE, setup=fake_sweep),
    Case("warm-start-sweep-without-trials", ["launch", "{space}", "--warm-start", "old"],
         "--warm-start old: sweep 'old' has no trial that ended yet", space=TPE_SPACE, setup=fake_sweep),
]

# Trial keys beyond the study (README "Trial keys") and `sweeper export` / `sweeper evaluate`.
BEYOND = [
    yaml_case("filters-list-length", "parameters: {model: cnn, conv_layers: 3, padding: same, filters: [32, 64]}\n",
              "filters [32, 64] has 2 entries but conv_layers is 3; a list gives one per conv layer"),
    yaml_case("filters-list-length-in-choice",
              "parameters: {model: cnn, padding: same, filters: {choice: [[8, 16], [8, 16, 32]]}}\n",
              "trial {'filters': [8, 16, 32]}: filters [8, 16, 32] has 3 entries but conv_layers is 2"),
    yaml_case("filters-empty-list", "parameters: {filters: []}\n",
              "key 'parameters.filters': must be a positive integer, or a non-empty list of them"),
    yaml_case("filters-zero-in-list", "parameters: {filters: [32, 0]}\n", "(got [32, 0])"),
    yaml_case("batch-norm-not-a-bool", "parameters: {batch_norm: yes please}\n", "key 'parameters.batch_norm'"),
    yaml_case("unknown-lr-schedule", "parameters: {lr_schedule: exponential}\n",
              "key 'parameters.lr_schedule': Input should be 'none', 'cosine', 'onecycle' or 'step'"),
    yaml_case("lr-gamma-above-one", "parameters: {lr_gamma: 2.0}\n",
              "key 'parameters.lr_gamma': Input should be less than or equal to 1"),
    yaml_case("lr-step-size-zero", "parameters: {lr_step_size: 0}\n", "key 'parameters.lr_step_size'"),
    yaml_case("label-smoothing-one", "parameters: {label_smoothing: {uniform: [0.0, 1.0]}}\n",
              "key 'parameters.label_smoothing.uniform.label_smoothing': Input should be less than 1"),
    yaml_case("augment-shift-negative", "parameters: {augment_shift: -1}\n",
              "key 'parameters.augment_shift': Input should be greater than or equal to 0 (got -1)"),
    yaml_case("augment-shift-uniform", "parameters: {augment_shift: {uniform: [0, 2]}}\n",
              "uniform draws fractions but 'augment_shift' takes whole numbers; use randint"),
    yaml_case("augment-flip-not-a-bool", "variants: [{name: a, augment_flip: 1}]\n", "key 'variants[0].augment_flip'"),
]


def _export_folder(tmp: Path, weights: bytes | None = None, card: str | None = None) -> None:
    folder = tmp / "exp"
    folder.mkdir()
    (folder / "model.json").write_text(card if card is not None else json.dumps(
        {"format": "sweeper-model/1", "params": {"model": "logreg"}, "data": {}}))
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)


EXPORT = [
    Case("export-unknown-sweep", ["export", "nope", "--out", "{tmp}/out"], "sweep 'nope': no such sweep",
         setup=fake_sweep),
    Case("export-unknown-trial", ["export", "old", "--trial", "abc_00001", "--out", "{tmp}/out"],
         "--trial abc_00001: sweep 'old' has no such trial", setup=fake_sweep),
    Case("export-nothing-finished", ["export", "old", "--out", "{tmp}/out"],
         "sweep 'old': no trial that ran to its end has a checkpoint", setup=fake_sweep),
    Case("export-out-not-empty", ["export", "old", "--out", "{tmp}/full"],
         "full: folder is not empty; pass --overwrite",
         setup=lambda t: (fake_sweep(t), (t / "full").mkdir(), (t / "full" / "notes.txt").write_text("mine"))),
    Case("export-out-is-a-file", ["export", "old", "--out", "{tmp}/afile"], "afile: is a file, not a folder",
         setup=lambda t: (fake_sweep(t), _file(t))),
    Case("export-without-out", ["export", "old"], "Missing option '--out'", setup=fake_sweep),
    Case("evaluate-not-an-export", ["evaluate", "{tmp}"], "not an export folder: no model.json", storage=False),
    Case("evaluate-missing-folder", ["evaluate", "{tmp}/nope"], "nope: not an export folder (no such folder)",
         storage=False),
    Case("evaluate-corrupt-card", ["evaluate", "{tmp}/exp"], "model.json: not a readable model card", storage=False,
         setup=lambda t: _export_folder(t, card="{not json")),
    Case("evaluate-missing-weights", ["evaluate", "{tmp}/exp"], "not an export folder: no model.safetensors",
         storage=False, setup=_export_folder),
    Case("evaluate-corrupt-weights", ["evaluate", "{tmp}/exp"], "model.safetensors: not a readable safetensors file",
         storage=False, setup=lambda t: _export_folder(t, weights=b"garbage, not safetensors")),
]

CORPUS = YAML + SEARCH + RESOURCES + OPTIONS + DATA + STORAGE + SWEEPS + GROW + BEYOND + EXPORT


def tree(root: Path) -> dict[str, str]:
    """Every path under root with a digest of its content: what 'nothing written' compares."""
    if not root.exists():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "/"
    return out


def test_corpus_is_large_and_distinct() -> None:
    assert len(CORPUS) >= 40
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path: Path, tiny_data: Path, case: Case) -> None:
    fill = {"{tmp}": str(tmp_path), "{data}": str(tiny_data), "{space}": str(tmp_path / "space.yaml"),
            "{storage}": str(tmp_path / "runs")}
    if case.space is not None:
        text = case.space
        if isinstance(text, str) and "GPUS" in text:
            text = text.replace("GPUS", f"{_gpu_count() + 0.5}")
        path = tmp_path / "space.yaml"
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    if case.setup is not None:
        case.setup(tmp_path)
    args = list(case.args)
    for key, value in fill.items():
        args = [a.replace(key, value) for a in args]
    if case.storage:
        args += ["--storage", str(tmp_path / "runs")]
    storages = [tmp_path / "runs", tmp_path / "afile", Path("/proc/sweeper-test-runs")]
    before = {str(s): tree(s) for s in storages}
    cwd_before = sorted(os.listdir(tmp_path))

    result = runner.invoke(app, args)

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.stdout, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr and result.stdout == ""
    assert {str(s): tree(s) for s in storages} == before
    assert sorted(os.listdir(tmp_path)) == cwd_before
