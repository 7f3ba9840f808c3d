"""The bad-input corpus for your own training loop (`trainable: module:function`, called as `train(ctx, **params)`):
real user modules written to a temporary folder, refused through the real CLI before anything starts (exit 2, an
error naming the space file, the key and the rule, no traceback, nothing written under --storage).

Two layers refuse: the space (finding and importing the loop, its signature, the YAML's keys and values against
it, `metrics:`), then the rehearsal before start (run/training/rehearsal.py: the loop stopped after epoch 1 and
restarted from that checkpoint), where each broken rule is a line of its own. The data is a 48-row source of the
case's own package, so a rehearsal takes milliseconds.

Each case's package has a name of its own (`pkg_loop_<case>`): the CLI runs in this process, where an imported module
stays imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeper.cli import app
from tests.cli.test_bad_inputs import tree

runner = CliRunner()

DATA = """\
import numpy as np
import sweeper

def load():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("f4")
    y = (x[:, 0] > 0).astype("i8")
    return sweeper.Dataset(train=(x[:32], y[:32]), val=(x[32:40], y[32:40]), test=(x[40:], y[40:]))
"""

# A loop that keeps every rule: each rehearsal case below breaks one (or, where said, two) of them.
GOOD_LOOP = """\
import torch

def train(ctx, *, lr: float = 0.1, width: int = 4):
    w = torch.zeros(width)
    if (state := ctx.restore()) is not None:
        w = state["w"]
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        w = w + lr
        ctx.report(epoch, val_loss=1.0 / epoch, val_f1=float(w.mean()), checkpoint={"w": w})
    ctx.finish(test_f1=0.5)
"""

SPACE = """\
epochs: 2
trainable: PKG.loop:train
metrics: {val_f1: max}
metric: val_f1
data: {source: PKG.data:load}
parameters: {lr: 0.1}
"""

LAUNCH = ["launch", "{space}"]
DRY_RUN = ["launch", "{space}", "--dry-run"]


@dataclass
class LoopCase:
    id: str
    loop: str | None  # PKG/loop.py's text (None: no package at all)
    lines: list[tuple[str, ...]]  # the error's lines, each as parts it must hold (PKG and {tmp} filled in)
    space: str = SPACE
    args: list[str] = field(default_factory=lambda: list(LAUNCH))
    at: int | None = None  # a rehearsal error raised in the loop: the line of PKG/loop.py it must name

    @property
    def pkg(self) -> str:
        return "pkg_loop_" + self.id.replace("-", "_")


def space_with(**changes: str | None) -> str:
    """SPACE with the top-level keys in `changes` replaced (None: dropped), the others added at the end."""
    out = []
    for line in SPACE.splitlines():
        key = line.split(":", 1)[0]
        if key not in changes:
            out.append(line)
        elif (value := changes.pop(key)) is not None:
            out.append(f"{key}: {value}")
    out += [f"{k}: {v}" for k, v in changes.items() if v is not None]
    return "\n".join(out) + "\n"


def loop(body: str) -> str:
    """PKG/loop.py: `import torch`, a blank line, then `body` (its first line is the file's line 3)."""
    return "import torch\n\n" + body


def one(*parts: str) -> list[tuple[str, ...]]:
    return [parts]


RULE = "key 'trainable': PKG.loop:train rehearsal: "
FIRST = RULE + "the first run (budget 2, stopped after epoch 1)"
RESTART = RULE + "the restart from epoch 1's checkpoint (budget 2)"


def first_report_refused(name: str, report: str, error: str) -> LoopCase:
    """A dry run's case whose loop calls `ctx.report(epoch, <report>)` each epoch (PKG/loop.py's line 5) and the
    rehearsal's first run refuses epoch 1's report with `error`."""
    body = ("def train(ctx, *, lr: float = 0.1):\n"
            "    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):\n"
            f"        ctx.report(epoch, {report})\n")
    return LoopCase(name, loop(body), one(FIRST + ": ", "ctx.report(epoch=1): " + error), args=list(DRY_RUN), at=5)


CASES = [
    # finding and importing the loop
    LoopCase("missing-module", None, one("key 'trainable': cannot import 'PKG.loop': no module named 'PKG'")),
    LoopCase("syntax-error", "import torch\n\ndef train(ctx, *, lr: float = 0.1:\n    pass\n",
             one("key 'trainable': importing 'PKG.loop' failed: {tmp}/PKG/loop.py:3: SyntaxError: ")),
    LoopCase("missing-function", "def trian(ctx, *, lr: float = 0.1):\n    pass\n",
             one("key 'trainable': 'PKG.loop' has no 'train' (did you mean 'trian'?)")),
    LoopCase("not-callable", "train = {'lr': 0.1}\n", one("key 'trainable': PKG.loop:train is a dict, not a function")),
    # the loop's signature
    LoopCase("no-ctx", "def train(*, lr: float = 0.1):\n    pass\n",
             one("key 'trainable': PKG.loop:train must take the context first, as train(ctx, **params)")),
    LoopCase("ctx-with-default", "def train(ctx=None, *, lr: float = 0.1):\n    pass\n",
             one("key 'trainable': PKG.loop:train must take the context first, as train(ctx, **params)")),
    LoopCase("no-default", "def train(ctx, *, lr: float):\n    pass\n",
             one("key 'trainable': parameter 'lr' of PKG.loop:train has no default")),
    LoopCase("seed-param", "def train(ctx, *, lr: float = 0.1, seed: int = 0):\n    pass\n",
             one("key 'trainable': parameter 'seed' of PKG.loop:train clashes with sweeper's training key 'seed'")),
    LoopCase("max-epochs-param", "def train(ctx, *, lr: float = 0.1, max_epochs: int = 3):\n    pass\n",
             one("parameter 'max_epochs' of PKG.loop:train clashes with sweeper's training key 'max_epochs'"),
             args=list(DRY_RUN)),
    # the YAML's keys and values against the loop
    LoopCase("unknown-key", GOOD_LOOP, one("key 'parameters.widht': unknown parameter (did you mean 'width'?)"),
             space_with(parameters="{lr: 0.1, widht: 3}")),
    LoopCase("training-key-not-declared", GOOD_LOOP,
             one("key 'parameters.optimizer': with `trainable:` only the parameters of PKG.loop:train apply",
                 "declare 'optimizer' there as a keyword parameter with a default"),
             space_with(parameters="{lr: 0.1, optimizer: adam}")),
    LoopCase("value-against-annotation", GOOD_LOOP,
             one("key 'parameters': Input should be a valid integer (got 2.5; 'width' of PKG.loop:train)"),
             space_with(parameters="{lr: 0.1, width: 2.5}")),
    LoopCase("grid-value-against-annotation", GOOD_LOOP,
             one("key 'parameters.width.grid': Input should be a valid integer (got 2.5; 'width' of PKG.loop:train)"),
             space_with(parameters="{lr: 0.1, width: {grid: [2, 2.5]}}"), list(DRY_RUN)),
    # metrics:
    LoopCase("metric-not-declared", GOOD_LOOP,
             one("key 'metric': must be one of train_loss, train_accuracy, val_loss, val_accuracy or a name under "
                 "`metrics:`", "but got 'val_f1'"), space_with(metrics=None)),
    LoopCase("declared-test-metric", GOOD_LOOP, one("'test_f1': a test_ metric is the final score"),
             space_with(metrics="{test_f1: max}", metric="val_loss")),
    LoopCase("declared-reserved-name", GOOD_LOOP, one("'epoch' is a column sweeper or Ray Tune writes itself"),
             space_with(metrics="{epoch: max}", metric="val_loss")),
    LoopCase("declared-standard-name", GOOD_LOOP, one("'val_accuracy' is a standard metric"),
             space_with(metrics="{val_accuracy: max}", metric="val_loss"), list(DRY_RUN)),
    LoopCase("declared-bad-mode", GOOD_LOOP, one("key 'metrics.val_f1'", "'min' or 'max'"),
             space_with(metrics="{val_f1: up}")),
    LoopCase("metrics-without-trainable", None,
             one("your own metrics are reported by your own loop; add `trainable: module:function`"),
             "epochs: 2\nmetrics: {val_f1: max}\nmetric: val_f1\nparameters: {model: logreg}\n"),
    LoopCase("mode-contradicts-declared", GOOD_LOOP, one("mode must be 'max' for metric 'val_f1', but got 'min'"),
             space_with(mode="min")),
    # the rehearsal: each broken rule a line of its own, naming the rule
    first_report_refused("never-reports-the-metric", "val_loss=1.0",
                         "the sweep's metric 'val_f1' is missing (reported: val_loss)"),
    LoopCase("epoch-1-again-after-restart", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    w = torch.zeros(2)\n"
        "    if (state := ctx.restore()) is not None:\n"
        "        w = state['w']\n"
        "    for epoch in range(1, ctx.epochs + 1):\n"
        "        ctx.report(epoch, val_f1=0.5, checkpoint={'w': w})\n"),
        one(RESTART + ": ", "ctx.report(epoch=1): epochs are reported in order, one per call; after epoch 1 the "
            "next is 2 (restored from epoch 1: go on at ctx.restored_epoch + 1)"), at=8),
    first_report_refused("undeclared-metric", "val_f1=0.5, val_auc=0.7",
                         "'val_auc' is neither a standard metric nor declared under `metrics:`"),
    LoopCase("never-restores", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    w = torch.zeros(2)\n"
        "    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):\n"
        "        ctx.report(epoch, val_f1=0.5, checkpoint={'w': w})\n"),
        one(RULE + "restarted from epoch 1's checkpoint, the loop never called ctx.restore(): a resumed trial would "
            "go on from fresh weights"), args=list(DRY_RUN)),
    LoopCase("restart-neither-restores-nor-reports", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    if ctx.restored_epoch:\n"
        "        return\n"
        "    for epoch in range(1, ctx.epochs + 1):\n"
        "        ctx.report(epoch, val_f1=0.5, checkpoint={'w': torch.zeros(2)})\n"),
        [(RULE + "restarted from epoch 1's checkpoint, the loop never called ctx.restore()",),
         (RULE + "after the restart the loop reported epochs [1], expected [2]",)], args=list(DRY_RUN)),
    LoopCase("checkpoint-not-weights-only", loop(
        "class State:\n"
        "    def __init__(self, w):\n"
        "        self.w = w\n\n\n"
        "def train(ctx, *, lr: float = 0.1):\n"
        "    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):\n"
        "        ctx.report(epoch, val_f1=0.5, checkpoint={'state': State(torch.zeros(2))})\n"),
        one(RULE + "the checkpoint of epoch 1 does not load with torch.load(weights_only=True): ", "PKG.loop.State",
            "keep to tensors, numbers, strings and plain lists/dicts (a state_dict())")),
    LoopCase("raises-in-the-loop", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    x, y = ctx.data.train\n"
        "    if lr > 0:\n"
        "        raise RuntimeError(f'diverged at lr={lr}')\n"),
        one(FIRST + " raised {tmp}/PKG/loop.py:6: RuntimeError: diverged at lr=0.1"), at=6),
    LoopCase("returns-without-reporting", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    return None\n"),
        one(FIRST + ": ", "the loop ended without reporting an epoch: call ctx.report(epoch, ...) once per epoch"),
        args=list(DRY_RUN)),
    LoopCase("finish-with-no-final-score", loop(
        "def train(ctx, *, lr: float = 0.1):\n"
        "    w = torch.zeros(2)\n"
        "    if (state := ctx.restore()) is not None:\n"
        "        w = state['w']\n"
        "    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):\n"
        "        ctx.report(epoch, val_f1=0.5, checkpoint={'w': w})\n"
        "    ctx.finish(val_f1=0.9)\n"),
        one(RESTART + ": ", "ctx.finish(): 'val_f1' is not a final score (it may report test_loss, test_accuracy, "
            "test_f1)"), args=list(DRY_RUN), at=9),
]
REHEARSALS = [c for c in CASES if any("rehearsal: " in part for line in c.lines for part in line)]


def write_case(tmp_path: Path, case: LoopCase) -> Path:
    """The case's package (its loop and the tiny data source) and its space file under tmp_path."""
    if case.loop is not None:
        files = {"PKG/__init__.py": "", "PKG/data.py": DATA, "PKG/loop.py": case.loop}
        for name, text in files.items():
            path = tmp_path / name.replace("PKG", case.pkg)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    space = tmp_path / "space.yaml"
    space.write_text(case.space.replace("PKG", case.pkg))
    return space


def refuse(tmp_path: Path, case: LoopCase) -> list[str]:
    """Run the case's command; check what every refusal keeps to; return the error's lines."""
    space = write_case(tmp_path, case)
    args = [str(space) if a == "{space}" else a for a in case.args] + ["--storage", str(tmp_path / "runs")]
    before = tree(tmp_path / "runs")
    listed = sorted(os.listdir(tmp_path))

    result = runner.invoke(app, args)

    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (args, result.stdout, result.stderr, result.exception)
    assert lines and lines[0].startswith("error: "), result.stderr
    assert all(str(space) in line for line in lines), result.stderr  # every line names the space file
    assert "Traceback" not in result.stdout + result.stderr and result.stdout == ""
    assert tree(tmp_path / "runs") == before == {}
    assert sorted(os.listdir(tmp_path)) == listed
    return lines


def test_loop_corpus_is_distinct() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 25
    assert len(REHEARSALS) >= 9 and sum(c.args == LAUNCH for c in REHEARSALS) >= 3  # some through a real launch


def test_the_corpus_good_loop_passes_a_dry_run(tmp_path: Path) -> None:
    """The base every case breaks in one place: a dry run accepts it (rehearsal included) and writes nothing."""
    case = LoopCase("good", GOOD_LOOP, [], space_with(parameters="{lr: 0.1, width: {grid: [2, 3]}}"))
    space = write_case(tmp_path, case)

    result = runner.invoke(app, ["launch", str(space), "--dry-run", "--storage", str(tmp_path / "runs")])

    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "2 trials" in " ".join(result.stdout.split()) and result.stderr == ""
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_user_loop_is_refused_exit_2_nothing_written(tmp_path: Path, case: LoopCase) -> None:
    lines = refuse(tmp_path, case)

    assert len(lines) == len(case.lines), lines  # one line; in a rehearsal, one per broken rule
    for line, parts in zip(lines, case.lines, strict=True):
        for part in parts:
            assert part.replace("PKG", case.pkg).replace("{tmp}", str(tmp_path)) in line, (part, line)


RAISED = [c for c in CASES if c.at is not None]


@pytest.mark.parametrize("case", RAISED, ids=[c.id for c in RAISED])
def test_rehearsal_error_names_the_loops_own_line(tmp_path: Path, case: LoopCase) -> None:
    """An error raised where the loop calls the context (or by the loop itself) names the user's file and line, as
    LoopContractError promises ("the trial ends in ERROR naming your file and line"): never sweeper's own
    context.py, wherever sweeper lives (here a checkout inside the working directory, as when the examples are run
    from the repository root)."""
    case = replace(case, id=f"{case.id}-at")  # a package of its own: the corpus test imported the case's already
    lines = refuse(tmp_path, case)

    where = f"{tmp_path}/{case.pkg}/loop.py:{case.at}: "
    assert len(lines) == 1 and where in lines[0], (where, lines)
    assert "sweeper/run/training/context.py" not in lines[0], lines[0]
