"""The fast default path (issue 27) against the plain PyTorch loop it replaced: the same results up to float rounding.

The plain loop here is the loop as it was written before (loop.py at 8f88131): a contiguous model with relu
before each max-pool, torch's for-loop optimizers, nn.Dropout, per-batch augmentation draws, evaluation in batches
of 2,048 under no_grad with the sums taken in Python. The fast path is the real train_trial: channels_last, fused
optimizers, relu after the max-pool, the dropout mask in logical order, an epoch's augmentation drawn at its start,
evaluation at EVAL_BATCH in inference mode, glibc's thresholds. Same seed, same data.

What "up to rounding" can mean for a training run: the two paths compute each step's arithmetic in another order
(oneDNN's channels_last kernels, the fused Adam), so their weights differ by about 1e-7 after a step, and training
amplifies that as it amplifies any perturbation. It does so smoothly for the study's 4th CNN (its per-batch losses
agree to 1e-7 for ~60 steps, 1e-6 after an epoch of 63 steps, about 1e-3 after two) and abruptly where a max-pool
window holds two values within rounding of each other: the gradient goes to the other one. Measured on the
beyond-like trial below: the weights after 8 steps differ by 1e-8, yet the 9th step's gradients by up to 3e-3
relative (an argmax flipped), and after an epoch its losses by 2e-4 to 3e-3. So:
- every trial's first FIRST_STEPS per-batch losses agree to FAST_RTOL (the same step function, step after step);
- the study's 4th CNN and an MLP agree after a whole epoch (losses to FAST_RTOL, accuracies to one example);
- the trials whose trajectories fork (one-cycle AdamW with augmentation; SGD with momentum 0.9 and batch norm)
  agree after an epoch to FORKED_RTOL in the losses and FORKED_ACC in the accuracies.
Relu after the pool alone is bit for bit the same at every step (test_relu_after_max_pool_is_bit_identical), as is
the dropout mask (test_dropout_drops_the_same_units_in_either_layout) and the augmentation (test_augment.py).
"""

from __future__ import annotations

import math
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from sweeper.run.training import data
from sweeper.run.training.augment import augment, augmenting
from sweeper.run.training.loop import (
    CHECKPOINT_FILE,
    EVAL_BATCH,
    GPU_EVAL_BATCH,
    Tensors,
    allocator_settings,
    eval_batch,
    evaluate,
    fast_layout,
    make_optimizer,
    memory_format,
    set_precision,
    train_trial,
    tune_allocator,
)
from sweeper.run.training.models import Dropout, build_model
from sweeper.run.training.schedules import make_scheduler, per_batch
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec
from tests.conftest import REPO

FAST_RTOL = 1e-5  # losses of the first steps, and of a smooth trial's epoch
FIRST_STEPS = 8
FORKED_RTOL, FORKED_ACC = 0.1, 0.03  # an epoch of a trial whose trajectory forks (see above): seen 4e-2 and 0.008

FOURTH_CNN = dict(model="cnn", conv_layers=2, filters=32, kernel_size=3, dropout=0.2, optimizer="adam", seed=3)
# The beyond winner's kind of trial, narrower (search_spaces/beyond_long.yaml: same padding, pool every 2, a dense
# head, AdamW-like decay, one-cycle, label smoothing, shift + flip).
BEYOND_LIKE = dict(model="cnn", conv_layers=4, filters=[8, 8, 16, 16], kernel_size=3, padding="same", pool_every=2,
                   dense=[32], dropout=0.29, optimizer="adamw", weight_decay=0.01, lr=0.0036, batch_size=64,
                   lr_schedule="onecycle", label_smoothing=0.057, augment_shift=1, augment_flip=True, seed=1)
SGD_BN = dict(model="cnn", conv_layers=2, filters=8, kernel_size=3, batch_norm=True, dropout=0.2, optimizer="sgd",
              lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, seed=2)
MLP = dict(model="mlp", hidden=[64, 32], dropout=0.2, optimizer="sgd", lr=0.1, seed=1)
CASES = {"4th CNN": FOURTH_CNN, "beyond-like": BEYOND_LIKE, "sgd + batch norm": SGD_BN, "mlp": MLP}
SMOOTH = {"4th CNN", "mlp"}


@pytest.fixture(scope="module")
def subset(real_data: Path) -> Tensors:
    """2,000 real training images, 500 validation, 500 test."""
    splits = data.load(real_data, DataSpec(train_subset=2000, val_subset=500, test_subset=500))
    return Tensors.from_splits(splits, torch.device("cpu"))


@pytest.fixture
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the plain loop, as it was ------------------------------------------------------------------------------------


def plain_model(p: TrialParams) -> nn.Module:
    """The built-in model as it was built: relu before every pool, torch's own nn.Dropout, contiguous."""
    net = build_model(p)
    layers = list(net.children())
    out: list[nn.Module] = []
    for layer in layers:
        if isinstance(layer, nn.ReLU) and out and isinstance(out[-1], nn.MaxPool2d):
            out.insert(len(out) - 1, layer)  # back before the pool
        else:
            out.append(nn.Dropout(layer.p) if isinstance(layer, Dropout) else layer)
    return nn.Sequential(*out)


def plain_optimizer(p: TrialParams, model: nn.Module) -> torch.optim.Optimizer:
    if p.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=p.learning_rate, momentum=p.momentum, nesterov=p.nesterov,
                           weight_decay=p.weight_decay)


def plain_epoch(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, p: TrialParams,
                gen: torch.Generator, sched: Any) -> tuple[float, float, list[float]]:
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=p.label_smoothing)
    order = torch.randperm(len(y), generator=gen)
    total, correct, n, losses = torch.zeros(()), torch.zeros((), dtype=torch.long), len(y), []
    for start in range(0, len(y), p.batch_size):
        idx = order[start : start + p.batch_size]
        if p.batch_norm and len(idx) == 1:
            n -= 1
            continue
        xb, yb = x[idx], y[idx]
        if augmenting(p.augment_shift, p.augment_flip):
            xb = augment(xb, p.augment_shift, p.augment_flip, gen)
        logits = model(xb)
        loss = loss_fn(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None and per_batch(p):
            sched.step()
        losses.append(loss.item())
        total += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    return total.item() / n, correct.item() / n, losses


@torch.no_grad()
def plain_evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total, correct = 0.0, 0
    for start in range(0, len(y), 2048):
        logits = model(x[start : start + 2048])
        total += loss_fn(logits, y[start : start + 2048]).item()
        correct += (logits.argmax(1) == y[start : start + 2048]).sum().item()
    return total / len(y), correct / len(y)


Results = list[tuple[float, ...]]  # (train_loss, train_acc, val_loss, val_acc) per epoch, then (test_loss, test_acc)


def plain_trial(p: TrialParams, t: Tensors, epochs: int) -> tuple[Results, list[float]]:
    """The plain loop's results and its per-batch training losses."""
    torch.manual_seed(p.seed)
    model = plain_model(p)
    opt = plain_optimizer(p, model)
    sched = make_scheduler(p, opt, epochs, math.ceil(len(t.y_train) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)
    out: Results = []
    steps: list[float] = []
    for _ in range(epochs):
        train_loss, train_acc, losses = plain_epoch(model, opt, t.x_train, t.y_train, p, gen, sched)
        steps += losses
        if sched is not None and not per_batch(p):
            sched.step()
        out.append((train_loss, train_acc, *plain_evaluate(model, t.x_val, t.y_val)))
    assert t.x_test is not None and t.y_test is not None
    out.append(plain_evaluate(model, t.x_test, t.y_test))
    return out, steps


class StepLosses:
    """Records every training batch's loss (a mean-reduced CrossEntropyLoss call) while active."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.orig = nn.CrossEntropyLoss.forward

    def __enter__(self) -> StepLosses:
        orig, losses = self.orig, self.losses

        def forward(loss_fn: nn.CrossEntropyLoss, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            out = orig(loss_fn, logits, target)
            if loss_fn.reduction == "mean":
                losses.append(out.item())
            return out

        nn.CrossEntropyLoss.forward = forward  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, *exc: Any) -> None:
        nn.CrossEntropyLoss.forward = self.orig  # type: ignore[method-assign]


def fast_trial(p: TrialParams, t: Tensors, epochs: int,
               restore_from: Path | None = None) -> tuple[Results, list[float]]:
    reports: list[dict[str, Any]] = []
    with StepLosses() as steps:
        train_trial(p, t, epochs, lambda metrics, save: reports.append(metrics), restore_from=restore_from)
    out: Results = [(r["train_loss"], r["train_accuracy"], r["val_loss"], r["val_accuracy"]) for r in reports]
    return [*out, (reports[-1]["test_loss"], reports[-1]["test_accuracy"])], steps.losses


def assert_same(fast: Results, plain: Results, sizes: tuple[int, ...], rtol: float = FAST_RTOL,
                acc: float | None = None) -> None:
    """Losses to `rtol`, accuracies to `acc` (None: one example of their split; `sizes`: train, val, test)."""
    assert len(fast) == len(plain)
    for got, want in zip(fast, plain, strict=True):
        losses, splits = ((0,), sizes[2:]) if len(got) == 2 else ((0, 2), (sizes[0], sizes[1]))
        accuracies = iter(splits)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            if i in losses:
                assert g == pytest.approx(w, rel=rtol), (fast, plain)
            else:
                assert abs(g - w) <= (acc if acc is not None else 1 / next(accuracies)) + 1e-12, (fast, plain)


def sizes(t: Tensors) -> tuple[int, ...]:
    assert t.y_test is not None
    return len(t.y_train), len(t.y_val), len(t.y_test)


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_path_gives_the_plain_loops_results_up_to_rounding(
    case: str, subset: Tensors, one_thread: None, tmp_path: Path
) -> None:
    p = TrialParams(**CASES[case])
    fast, fast_steps = fast_trial(p, subset, 1)
    plain, plain_steps = plain_trial(p, subset, 1)
    assert len(fast_steps) == len(plain_steps) == math.ceil(len(subset.y_train) / p.batch_size)
    assert fast_steps[:FIRST_STEPS] == pytest.approx(plain_steps[:FIRST_STEPS], rel=FAST_RTOL)
    if case in SMOOTH:
        assert_same(fast, plain, sizes(subset))
    else:
        assert_same(fast, plain, sizes(subset), FORKED_RTOL, FORKED_ACC)


def test_the_fast_path_is_what_a_trial_runs(subset: Tensors) -> None:
    """A built-in cnn trains in channels_last with a fused optimizer; an mlp with a fused one; evaluation's batch
    is the device's."""
    seen: dict[str, Any] = {}
    p = TrialParams(**FOURTH_CNN)
    orig_step = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: Any, **kwargs: Any) -> Any:
        seen["fused"] = self.param_groups[0]["fused"]
        seen["format"] = [q.is_contiguous(memory_format=torch.channels_last) for q in self.param_groups[0]["params"]
                          if q.dim() == 4]
        return orig_step(self, *args, **kwargs)

    torch.optim.Adam.step = spy  # type: ignore[method-assign]
    try:
        train_trial(p.model_copy(update={"max_epochs": 1}), subset, 1, lambda metrics, save: None)
    finally:
        torch.optim.Adam.step = orig_step  # type: ignore[method-assign]
    assert seen["fused"] is True and seen["format"] == [True, True]
    assert make_optimizer(TrialParams(**MLP), build_model(TrialParams(**MLP))).param_groups[0]["fused"] is True
    assert (eval_batch(torch.device("cpu")), eval_batch(torch.device("cuda"))) == (EVAL_BATCH, GPU_EVAL_BATCH)
    assert EVAL_BATCH <= 256 and GPU_EVAL_BATCH >= 12_000  # the study's validation split in one go on a GPU
    model = build_model(p)
    assert memory_format(model) == torch.contiguous_format  # built contiguous (exports are); the loop converts


def test_evaluation_batch_does_not_change_the_result(subset: Tensors) -> None:
    torch.manual_seed(0)
    model = build_model(TrialParams(**FOURTH_CNN))
    loss, acc = evaluate(model, subset.x_val, subset.y_val)
    plain_loss, plain_acc = plain_evaluate(model, subset.x_val, subset.y_val)
    assert acc == plain_acc and loss == pytest.approx(plain_loss, rel=1e-6)
    model.to(memory_format=torch.channels_last)
    assert evaluate(model, subset.x_val, subset.y_val) == pytest.approx((loss, acc), rel=1e-6)


# -- checkpoints of either layout ----------------------------------------------------------------------------------


def test_state_dicts_load_across_layouts_and_the_old_layer_order() -> None:
    """A channels_last model's state_dict loads into a contiguous one and back, and into the model as it was built
    before relu moved after the pool (the same keys: neither layer has parameters); the outputs agree."""
    p = TrialParams(**FOURTH_CNN)
    torch.manual_seed(0)
    fast = build_model(p).to(memory_format=torch.channels_last)
    plain = plain_model(p)
    assert list(fast.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(fast.state_dict())
    x = torch.rand(8, 1, 28, 28)
    fast.eval()
    plain.eval()
    assert torch.allclose(fast(x), plain(x), rtol=1e-5, atol=1e-6)
    again = build_model(p).to(memory_format=torch.channels_last)
    again.load_state_dict(plain.state_dict())
    assert memory_format(again) == torch.channels_last  # loading copies into the model's own layout
    assert torch.equal(again.eval()(x), fast(x))


def test_an_old_contiguous_checkpoint_resumes_on_the_fast_path(subset: Tensors, tmp_path: Path) -> None:
    """A checkpoint the plain loop wrote (contiguous weights, for-loop Adam's state) resumes: the optimizer's state
    takes the weights' layout, and the resumed epoch's steps are the plain loop's next ones up to rounding (the
    epoch as a whole to a forked trial's tolerance: the 4th CNN's second epoch drifts by about 1e-4, see above)."""
    p = TrialParams(**FOURTH_CNN)
    torch.manual_seed(p.seed)
    model = plain_model(p)
    opt = plain_optimizer(p, model)
    gen = torch.Generator().manual_seed(p.seed)
    plain_epoch(model, opt, subset.x_train, subset.y_train, p, gen, None)
    val = plain_evaluate(model, subset.x_val, subset.y_val)
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
             "torch_rng": torch.get_rng_state(), "progress": {"epoch": 1, "best_val_loss": val[0], "bad_epochs": 0}}
    (tmp_path / "old").mkdir()
    torch.save(state, tmp_path / "old" / CHECKPOINT_FILE)
    train_loss, train_acc, plain_steps = plain_epoch(model, opt, subset.x_train, subset.y_train, p, gen, None)
    want = (train_loss, train_acc, *plain_evaluate(model, subset.x_val, subset.y_val))
    layouts = []
    orig = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: Any, **kwargs: Any) -> Any:
        layouts.append({id(q): self.state[q]["exp_avg"].stride() == q.stride() for q in self.param_groups[0]["params"]})
        return orig(self, *args, **kwargs)

    torch.optim.Adam.step = spy  # type: ignore[method-assign]
    try:
        fast, fast_steps = fast_trial(p, subset, 2, restore_from=tmp_path / "old")
    finally:
        torch.optim.Adam.step = orig  # type: ignore[method-assign]
    assert all(layouts[0].values())  # the old state took the channels_last weights' layout before the first step
    assert fast_steps[:FIRST_STEPS] == pytest.approx(plain_steps[:FIRST_STEPS], rel=FAST_RTOL)
    assert_same(fast[:1], [want], sizes(subset), FORKED_RTOL, FORKED_ACC)


# -- the layer order and the dropout mask -------------------------------------------------------------------------


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_relu_after_max_pool_is_bit_identical(batch_norm: bool, layout: str) -> None:
    """conv -> (norm) -> pool -> relu against conv -> (norm) -> relu -> pool: the same outputs and the same gradients,
    bit for bit, in either layout."""
    p = TrialParams(model="cnn", conv_layers=2, filters=16, kernel_size=3, dense=[32], batch_norm=batch_norm)
    torch.manual_seed(0)
    swapped = build_model(p)
    plain = plain_model(p)
    plain.load_state_dict(swapped.state_dict())
    assert [type(m) for m in swapped.children()] != [type(m) for m in plain.children()]
    if layout == "channels_last":
        swapped.to(memory_format=torch.channels_last)
        plain.to(memory_format=torch.channels_last)
    x = torch.randn(16, 1, 28, 28)
    outs = []
    for net in (swapped, plain):
        out = net(x)
        out.square().sum().backward()
        outs.append(out)
    assert torch.equal(outs[0], outs[1])
    for (name, a), b in zip(swapped.named_parameters(), plain.parameters(), strict=True):
        assert a.grad is not None and b.grad is not None
        assert torch.equal(a.grad, b.grad), name


def test_average_pooling_keeps_relu_before_the_pool() -> None:
    layers = list(build_model(TrialParams(model="cnn", conv_layers=2, filters=4, pooling="avg")).children())
    kinds = [type(m).__name__ for m in layers]
    assert kinds[:3] == ["Conv2d", "ReLU", "AvgPool2d"]


def test_dropout_drops_the_same_units_in_either_layout() -> None:
    x = torch.randn(4, 8, 6, 6)
    drop = Dropout(0.3)
    torch.manual_seed(5)
    reference = nn.Dropout(0.3)(x)  # torch's own, on a contiguous input
    torch.manual_seed(5)
    assert torch.equal(drop(x.contiguous(memory_format=torch.channels_last)), reference)
    torch.manual_seed(5)
    assert torch.equal(drop(x), reference)
    drop.eval()
    assert drop(x) is x or torch.equal(drop(x), x)


# -- precision: fp32 by default, bf16 and tf32 opt-in and recorded ---------------------------------------------------


def test_precision_is_fp32_unless_asked_and_is_recorded(tmp_path: Path) -> None:
    from sweeper.spec.cost import architecture, row_architecture
    from sweeper.spec.loader import load_text

    assert TrialParams().precision == "fp32" and TrialParams().recorded()["precision"] == "fp32"
    assert TrialParams(precision="bf16").recorded()["precision"] == "bf16"
    with pytest.raises(ValueError):
        TrialParams(precision="fp16")
    # A configuration keeps the config_id its trials were recorded with before the key existed (computed by the code
    # at 8f88131), so a resumed or extended sweep's replicates still group; bf16 is another configuration.
    assert TrialParams(model="cnn", filters=32, optimizer="adam", seed=1).config_id() == "1760491d8a"
    assert TrialParams().config_id() == "41de73c787"
    assert TrialParams(precision="bf16").config_id() != "41de73c787"
    fp32 = TrialParams(**FOURTH_CNN).recorded()
    bf16 = TrialParams(**FOURTH_CNN, precision="bf16").recorded()
    assert "precision" not in architecture(fp32)  # every fp32 architecture keeps the key it had
    assert architecture(bf16) == architecture(fp32) + " precision=bf16"  # timed apart: bf16 runs faster
    assert row_architecture({f"param_{k}": v for k, v in bf16.items()}).endswith("precision=bf16")
    assert architecture({"model": "mine", "width": 8, "precision": "tf32"}) == (
        "model=mine width=8 batch_size=32 precision=tf32")
    space = load_text("epochs: 1\nparameters: {model: logreg, precision: {choice: [fp32, bf16]}}\n",
                      tmp_path / "space.yaml")
    assert {space.trial_params({"precision": v}).recorded()["precision"] for v in ("fp32", "bf16")} == {
        "fp32", "bf16"}


def test_bf16_autocasts_training_and_evaluation_and_fp32_never(subset: Tensors) -> None:
    dtypes: dict[str, set[torch.dtype]] = {}
    for precision in ("fp32", "bf16"):
        p = TrialParams(**FOURTH_CNN, precision=precision, max_epochs=1)
        seen: set[torch.dtype] = set()
        orig = nn.Conv2d.forward

        def spy(self: nn.Conv2d, x: torch.Tensor, seen: set[torch.dtype] = seen, orig: Any = orig) -> torch.Tensor:
            out = orig(self, x)
            seen.add(out.dtype)
            return out

        nn.Conv2d.forward = spy  # type: ignore[method-assign, assignment]
        try:
            last = train_trial(p, subset, 1, lambda metrics, save: None)
        finally:
            nn.Conv2d.forward = orig  # type: ignore[method-assign]
        dtypes[precision] = seen
        assert last["val_accuracy"] > 0.5  # both learn
    assert dtypes == {"fp32": {torch.float32}, "bf16": {torch.bfloat16}}


def test_cuda_switches_follow_the_precision() -> None:
    """set_precision's switches (settable without a GPU): fp32 is IEEE and deterministic, tf32/bf16 TF32 and
    benchmark; a CPU trial touches nothing."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    before = (cudnn.benchmark, cudnn.deterministic, matmul.fp32_precision, conv.fp32_precision)
    try:
        set_precision("tf32", torch.device("cpu"))
        assert (cudnn.benchmark, cudnn.deterministic, matmul.fp32_precision, conv.fp32_precision) == before
        set_precision("bf16", torch.device("cuda"))
        assert (cudnn.benchmark, cudnn.deterministic, matmul.fp32_precision, conv.fp32_precision) == (
            True, False, "tf32", "tf32")
        set_precision("fp32", torch.device("cuda"))
        assert (cudnn.benchmark, cudnn.deterministic, matmul.fp32_precision, conv.fp32_precision) == (
            False, True, "ieee", "ieee")
    finally:
        cudnn.benchmark, cudnn.deterministic = before[:2]
        matmul.fp32_precision, conv.fp32_precision = before[2:]


# A CUDA trial's kill/resume exactness (its dropout stream from the checkpoint's cuda_rng) needs a GPU: it is step 1
# of benchmarks/gpu_check.sh, which a machine with one runs; the suite has no test that would only skip here.


# -- the allocator ---------------------------------------------------------------------------------------------


FAULTS = """
import resource, sys, torch
from sweeper.run.training.loop import allocator_settings, train_epoch, tune_allocator, make_optimizer, fast_layout
from sweeper.run.training.models import build_model
from sweeper.spec.params import TrialParams
torch.set_num_threads(1)
if sys.argv[1] == "tuned":
    tune_allocator()
import sweeper.run.training.loop as loop
loop._allocator = loop._allocator if sys.argv[1] == "tuned" else {}  # {}: train_epoch sets nothing
p = TrialParams(model="cnn", filters=32, optimizer="adam", batch_size=32)
model = fast_layout(build_model(p), p)
opt = make_optimizer(p, model)
gen = torch.Generator().manual_seed(0)
x, y = torch.rand(640, 1, 28, 28), torch.randint(0, 10, (640,))
train_epoch(model, opt, x, y, 32, gen, p)  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
train_epoch(model, opt, x, y, 32, gen, p)
print(allocator_settings(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


def faults_per_step(mode: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout.strip()
    settings, faults = out.rsplit(" ", 1)
    return settings, float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_the_allocator_keeps_a_steps_buffers_mapped() -> None:
    """In a fresh process: tune_allocator sets glibc's thresholds and says so; a training step then faults in (next
    to) no pages, where glibc's defaults fault in the step's buffers again at every step."""
    settings, tuned = faults_per_step("tuned")
    assert settings == "{'M_MMAP_THRESHOLD': 33554432, 'M_TRIM_THRESHOLD': 536870912}"
    plain_settings, plain = faults_per_step("plain")
    assert plain_settings == "{}"
    assert tuned < 50 and plain > 4 * max(tuned, 10), (tuned, plain)


def test_tune_allocator_is_idempotent_and_observable() -> None:
    first = tune_allocator()
    assert allocator_settings() == first == tune_allocator()
    if sys.platform.startswith("linux"):
        assert set(first) == {"M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD"}
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0


USER_NETS = '''
import torch
from torch import nn


class Viewing(nn.Module):
    """A forward that `view`s a conv output, as many hand-written models do: only a contiguous tensor allows it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.out = nn.Conv2d(1, 8, 3), nn.Linear(8 * 26 * 26, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        return self.out(h.view(h.size(0), -1))


def viewing(*, input_shape, num_classes):
    return Viewing()


def flat(dropout: float = 0.2, *, input_shape, num_classes):
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout), nn.Flatten(),
                         nn.Linear(8 * 13 * 13, num_classes))
'''


@pytest.mark.parametrize(("name", "expected"), [("flat", True), ("viewing", False)])
def test_your_own_conv_model_trains_in_channels_last_where_its_forward_takes_it(
    name: str, expected: bool, subset: Tensors, tmp_path: Path
) -> None:
    """Your own model with convolutions gets the built-in's layout when its forward accepts a channels_last batch
    (nn.Flatten reshapes any layout); one that `view`s a conv output keeps the layout it was written for, and
    trains. The try leaves torch's RNG and the model's mode as they were."""
    from sweeper.spec.usermodels import UserModel

    (tmp_path / "nets_for_layout.py").write_text(USER_NETS)
    models = {name: UserModel(name, f"nets_for_layout:{name}", roots=(str(tmp_path),))}
    p = TrialParams(model=name, optimizer="adam", seed=3, max_epochs=1)
    seen: list[bool] = []
    orig_step = torch.optim.Adam.step

    def spy(self: torch.optim.Adam, *args: Any, **kwargs: Any) -> Any:
        seen.append(all(q.is_contiguous(memory_format=torch.channels_last) and q.stride(1) < q.stride(2)
                        for q in self.param_groups[0]["params"] if q.dim() == 4))
        return orig_step(self, *args, **kwargs)

    reports: list[dict[str, Any]] = []
    torch.optim.Adam.step = spy  # type: ignore[method-assign]
    try:
        train_trial(p, subset, 1, lambda metrics, save: reports.append(metrics), models=models)
    finally:
        torch.optim.Adam.step = orig_step  # type: ignore[method-assign]
    assert set(seen) == {expected} and math.isfinite(reports[-1]["val_loss"])

    model = build_model(p, subset.input_shape, subset.num_classes, models).train()
    rng = torch.get_rng_state()
    fast_layout(model, p, subset.x_train[:2])
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert (memory_format(model) == torch.channels_last) is expected


def test_your_own_sequential_gets_relu_after_its_max_pools_bit_for_bit() -> None:
    """relu_after_pool swaps every nn.ReLU that directly precedes an nn.MaxPool2d in an nn.Sequential (nested ones
    too): the forward's output and every gradient are bit for bit those of the model as written, and the
    state_dict's keys stay (exports rebuild the model as written and load them)."""
    import copy

    from sweeper.run.training.loop import relu_after_pool

    torch.manual_seed(0)
    inner = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    written = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2, padding=1), inner,
                            nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.LazyLinear(10))
    x = torch.randn(16, 1, 28, 28)
    written(x)  # the lazy layer takes its shape
    swapped = copy.deepcopy(written)
    assert relu_after_pool(swapped) == 2  # not the relu before the average pool: those do not commute
    assert [type(m).__name__ for m in swapped[:3]] == ["Conv2d", "MaxPool2d", "ReLU"]
    assert list(swapped.state_dict()) == list(written.state_dict())
    outputs = []
    for model in (written, swapped):
        out = model(x)
        out.square().sum().backward()
        outputs.append((out, [q.grad for q in model.parameters()]))
    assert torch.equal(outputs[0][0], outputs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(outputs[0][1], outputs[1][1], strict=True))
