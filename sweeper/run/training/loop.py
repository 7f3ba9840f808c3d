"""The per-trial loop: train an epoch, evaluate, report, checkpoint, stop early.

`train_trial` is plain PyTorch and takes everything as arguments (tests and benchmarks call it directly);
run/trial.py's `ray_trainable` is what Ray Tune runs: it resolves the trial's params, restores the last
checkpoint, and turns every epoch into `tune.report(metrics, checkpoint=...)`.

A checkpoint (`state.pt`) holds only tensors, numbers, strings and plain containers, so it loads with
`torch.load(..., weights_only=True)` (no pickled classes): the weights, the optimizer's and the scheduler's
state, the shuffling/augmentation generator, torch's RNG (dropout), and the progress as a dict of numbers.
Checkpoints written before that (progress as a pickled `Progress`) still load: that one class is allow-listed.
A trial on a GPU also keeps the CUDA generator's state (`cuda_rng`: its dropout), so it resumes exactly too.

Fast by default, with the results of the plain loop up to float rounding (each checked in tests/run/training):
- the built-in cnn and its input batches in channels_last, oneDNN's (and cuDNN's) own layout: no reorder of
  every activation around every convolution (`fast_layout`); your own model with convolutions too, where its
  forward takes a channels_last batch (tried once on two images); a state_dict of either layout loads into the
  other, and exports are built contiguous;
- relu after a max-pool instead of before, in the built-in cnn (models.py) and in your own model's nn.Sequential
  layers (`relu_after_pool`): bit for bit the same;
- the fused optimizer kernel (Adam, AdamW, SGD) where the device has one (CPU, CUDA): one pass over the weights;
- evaluation at a batch chosen for the device (EVAL_BATCH on a CPU: its activations stay near the cache; whole
  splits on a GPU), in inference mode, the sums kept on the device;
- glibc told to keep freed memory (`tune_allocator`): a step's big buffers are reused instead of being handed back
  to the OS and faulted in again at the next step;
- nothing that makes the host wait for the GPU within an epoch: the loss and accuracy are summed on the device,
  and augmentation draws an epoch's shifts and flips at its start (the same numbers, augment.py).
What changes numerics beyond rounding is the trial's `precision` key, fp32 unless a space says otherwise:
tf32 (TF32 matmuls and convolutions on CUDA, cudnn.benchmark) or bf16 (bfloat16 autocast; cudnn.benchmark).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from sweeper.run.training.augment import Draws, apply, augmenting, draw_epoch
from sweeper.run.training.data import Splits
from sweeper.run.training.models import build_model
from sweeper.run.training.schedules import make_scheduler, per_batch
from sweeper.spec.params import TrialParams
from sweeper.spec.usermodels import UserModel

# Evaluation batch on a CPU: small enough that a batch's activations stay near the cache and under glibc's mmap
# threshold (the 4th CNN's first conv at 128 images: 11 MB, the 5th CNN's 22 MB; at the 2,048 of before, 177 MB and
# 354 MB, faulted in at every batch). Measured per image (CPU time, 1 thread): 4th CNN 52 us at 64 or 128, 66 at
# 256, 98 at 512; 5th CNN 465 at 64 or 128, 675 at 256 and 512.
EVAL_BATCH = 128
GPU_EVAL_BATCH = 16_384  # on a GPU, a whole split at once (Fashion-MNIST's 12,000 validation, 10,000 test images)
CHECKPOINT_FILE = "state.pt"  # in each epoch's checkpoint folder
FUSED_DEVICES = ("cpu", "cuda")  # where torch has fused Adam, AdamW and SGD kernels

# glibc's mallopt: keep freed memory in the process. By default glibc unmaps a freed buffer above its (dynamic) mmap
# threshold and gives back the heap's top beyond its trim threshold, so every training step maps and faults in its
# big activation buffers again (about 2,000 page faults a step for the 4th CNN). Fixed thresholds stop both: blocks
# up to 32 MiB (glibc's largest threshold on 64-bit) come from the heap, and up to 512 MiB of free heap stays.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
ALLOCATOR_SETTINGS = {"M_MMAP_THRESHOLD": (M_MMAP_THRESHOLD, 32 * 2**20),
                      "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 512 * 2**20)}
_allocator: dict[str, int] | None = None


@dataclass
class Tensors:
    """A trial's data on the trial's device: uint8 images scaled to [0, 1] (an (N, H, W) array gains a channel axis,
    so Fashion-MNIST is (N, 1, 28, 28)), any other input as float32. No test split: x_test and y_test are None."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int = 10

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @classmethod
    def from_splits(cls, s: Splits, device: torch.device) -> Tensors:
        return cls(inputs(s.x_train, device), labels(s.y_train, device), inputs(s.x_val, device),
                   labels(s.y_val, device), None if s.x_test is None else inputs(s.x_test, device),
                   None if s.y_test is None else labels(s.y_test, device), s.num_classes)


def inputs(a: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    """A split's x as a trial trains on it (torch.tensor copies: the arrays come read-only, from Ray's object store
    or a memory-mapped file): uint8 images to [0, 1], (N, H, W) with a channel axis; anything else as float32."""
    t = torch.tensor(a).to(device)
    if t.dtype == torch.uint8:
        return (t.unsqueeze(1) if t.ndim == 3 else t).float().div_(255.0)
    return t.float()


def labels(a: Any, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.tensor(a).to(device=device, dtype=torch.long)


@dataclass
class Progress:
    """What a checkpoint must hold besides the weights to continue exactly where a trial stopped (stored as a
    plain dict, `as_dict`; older checkpoints pickled the dataclass itself)."""

    epoch: int = 0
    best_val_loss: float = math.inf
    bad_epochs: int = 0

    def as_dict(self) -> dict[str, int | float]:
        return {"epoch": self.epoch, "best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs}

    @classmethod
    def of(cls, stored: Any) -> Progress:
        """From a checkpoint: a dict (now) or a Progress (checkpoints written before)."""
        if isinstance(stored, Progress):
            return stored
        return cls(int(stored["epoch"]), float(stored["best_val_loss"]), int(stored["bad_epochs"]))


def load_checkpoint(source: Path | Any, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A state.pt (a path or a binary file object), loaded with weights_only=True: no code runs."""
    # checkpoints from before progress became a dict; those from before run/ had rooms name the class's old module
    with torch.serialization.safe_globals([Progress, (Progress, "sweeper.run.trainable.Progress")]):
        state: dict[str, Any] = torch.load(source, map_location=device, weights_only=True)
    return state


def tune_allocator() -> dict[str, int]:
    """Set glibc's malloc thresholds for this process (ALLOCATOR_SETTINGS), once; returns what was set, {} where
    there is no glibc (macOS, musl) or it refused. A trial's worker calls it at its start (run/trial.py), and
    train_epoch does too, so the calibration, which times train_epoch in its own process, times what trials run."""
    global _allocator
    if _allocator is None:
        _allocator = _mallopt()
    return dict(_allocator)


def allocator_settings() -> dict[str, int] | None:
    """What tune_allocator set in this process ({}: nothing could be set), or None when it has not run here."""
    return None if _allocator is None else dict(_allocator)


def _mallopt() -> dict[str, int]:
    if not sys.platform.startswith("linux"):
        return {}
    try:
        libc = ctypes.CDLL(None)  # the process's own C library
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: another libc's mallopt takes other parameters
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return {name: value for name, (param, value) in ALLOCATOR_SETTINGS.items() if mallopt(param, value) == 1}


def memory_format(model: nn.Module) -> torch.memory_format:
    """The layout `model` computes in: channels_last if its first conv weight is stored so, else contiguous."""
    weight = next((m.weight for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and (
            weight.stride(1) < weight.stride(2)):  # a 1-channel weight is contiguous both ways: its strides say
        return torch.channels_last
    return torch.contiguous_format


_PROBED: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # your own models whose layout was decided


def fast_layout(model: nn.Module, p: TrialParams, sample: torch.Tensor | None = None) -> nn.Module:
    """The model in channels_last where it runs so (in place: the same Parameter objects, so an optimizer built
    before still holds them). The built-in cnn always; your own model with a Conv2d once `sample` (a batch of a
    few inputs) has gone through its forward in channels_last without an error, in eval mode, without gradients and
    with torch's RNG put back: a forward that `view`s a tensor it assumes contiguous raises there, and the model
    stays as it is. Decided once per model object, the same way every time (a resumed trial decides alike)."""
    if memory_format(model) == torch.channels_last:
        return model
    if p.model == "cnn":
        model.to(memory_format=torch.channels_last)
    elif sample is not None and sample.dim() == 4 and model not in _PROBED:
        _PROBED.add(model)
        relu_after_pool(model)
        if any(isinstance(m, nn.Conv2d) for m in model.modules()) and not _channels_last_runs(model, sample):
            model.to(memory_format=torch.contiguous_format)
    return model


def relu_after_pool(model: nn.Module) -> int:
    """In every nn.Sequential of `model`, an nn.ReLU directly followed by an nn.MaxPool2d (both exactly those
    classes, the pool giving no indices) swaps places with it: relu and max commute, so outputs and gradients are
    bit for bit the same (models.py's note, test_relu_after_max_pool_is_bit_identical), with the relu on a
    quarter of the values, as the built-in cnn does. Neither has parameters, so the state_dict's keys stay.
    Returns how many pairs were swapped."""
    swapped = 0
    for seq in [m for m in model.modules() if type(m) is nn.Sequential]:
        names = list(seq._modules)
        i = 0
        while i < len(names) - 1:
            first, second = seq._modules[names[i]], seq._modules[names[i + 1]]
            if type(first) is nn.ReLU and type(second) is nn.MaxPool2d and not second.return_indices:
                seq._modules[names[i]], seq._modules[names[i + 1]] = second, first
                swapped += 1
                i += 2
            else:
                i += 1
    return swapped


def _channels_last_runs(model: nn.Module, sample: torch.Tensor) -> bool:
    """Put `model` in channels_last; whether its forward takes a channels_last batch."""
    training = model.training
    model.to(memory_format=torch.channels_last)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            model(sample.contiguous(memory_format=torch.channels_last))
        return True
    except Exception:  # noqa: BLE001 - any failure keeps the layout the model was written for
        return False
    finally:
        model.train(training)


def _as(x: torch.Tensor, fmt: torch.memory_format) -> torch.Tensor:
    return x.contiguous(memory_format=fmt) if fmt == torch.channels_last and x.dim() == 4 else x


def set_precision(precision: str, device: torch.device) -> None:
    """The process-wide switches of a trial's `precision` on CUDA (a reused worker's next trial sets them again):
    fp32: IEEE float32 matmuls and convolutions (torch's default lets cuDNN use TF32), deterministic cuDNN
    algorithms, no benchmark; tf32 and bf16: TF32 and cudnn.benchmark (its fastest algorithm per shape, found by
    trying them). A CPU has nothing to set: bf16 is autocast (`autocast`), TF32 does not exist there."""
    if device.type != "cuda":
        return
    fast = precision != "fp32"
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9's API; the old flags may not be mixed with it
        matmul.fp32_precision = "tf32" if fast else "ieee"
        cudnn.conv.fp32_precision = "tf32" if fast else "ieee"  # type: ignore[attr-defined]
    else:  # pragma: no cover - older torch
        matmul.allow_tf32 = cudnn.allow_tf32 = fast
    cudnn.benchmark = fast
    cudnn.deterministic = not fast


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast for precision bf16 (the loss is still computed in float32), else nothing."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def eval_batch(device: torch.device) -> int:
    return GPU_EVAL_BATCH if device.type == "cuda" else EVAL_BATCH


def make_optimizer(p: TrialParams, model: nn.Module) -> torch.optim.Optimizer:
    """The trial's optimizer, its fused kernel where the weights' device has one (the same update as torch's
    for-loop version up to float rounding)."""
    params = list(model.parameters())
    fused = True if params and params[0].device.type in FUSED_DEVICES else None
    if p.optimizer == "adam":
        return torch.optim.Adam(params, lr=p.learning_rate, weight_decay=p.weight_decay, fused=fused)
    if p.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=p.learning_rate, weight_decay=p.weight_decay, fused=fused)
    return torch.optim.SGD(
        params, lr=p.learning_rate, momentum=p.momentum, nesterov=p.nesterov,
        weight_decay=p.weight_decay, fused=fused,
    )


def _state_like_params(opt: torch.optim.Optimizer) -> None:
    """After loading an optimizer's state: each state tensor of a weight's shape in that weight's layout (a checkpoint
    of a contiguous model, e.g. from before channels_last, resumes in a channels_last one at full speed)."""
    for group in opt.param_groups:
        for param in group["params"]:
            state = opt.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param).copy_(value)


def train_epoch(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, batch_size: int,
    gen: torch.Generator, p: TrialParams | None = None, batch_step: LRScheduler | None = None,
) -> tuple[float, float]:
    """One pass over shuffled training data; mean batch loss and accuracy (as Keras reports them).

    From `p`: label smoothing of the loss, augmentation of each batch (the epoch's draws from `gen` after the
    shuffle) and the precision; `batch_step`: a scheduler stepped after every batch (onecycle). With batch norm, a
    last batch of one image is left out (batch statistics need two); without it every image counts, as always. A
    built-in cnn is put in channels_last first if it is not yet (train_trial does that before building the
    optimizer; the calibration hands over a model as built)."""
    tune_allocator()
    p = p or TrialParams()
    fast_layout(model, p, x[:2])
    fmt = memory_format(model)
    model.train()
    loss_fn = nn.CrossEntropyLoss(label_smoothing=p.label_smoothing)
    device = y.device
    order = torch.randperm(len(y), generator=gen).to(device)
    starts = [s for s in range(0, len(y), batch_size) if not (p.batch_norm and min(batch_size, len(y) - s) == 1)]
    n = sum(min(batch_size, len(y) - s) for s in starts)
    draws: Draws | None = None
    if augmenting(p.augment_shift, p.augment_flip):
        sizes = [min(batch_size, len(y) - s) for s in starts]
        draws = draw_epoch(sizes, p.augment_shift, p.augment_flip, gen).to(device)
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    done = 0  # images of the batches before this one: where its draws start
    for start in starts:
        idx = order[start : start + batch_size]
        xb, yb = x[idx], y[idx]
        if draws is not None:
            xb = apply(xb, p.augment_shift, p.augment_flip, draws[done : done + len(idx)])
        done += len(idx)
        with autocast(p.precision, device):
            logits = model(_as(xb, fmt))
            loss = loss_fn(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if batch_step is not None:
            batch_step.step()
        total_loss += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
    return total_loss.item() / n, correct.item() / n


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: str = "fp32") -> tuple[float, float]:
    """Mean loss and accuracy over a whole split: plain cross-entropy (no label smoothing), no augmentation; in
    batches of `eval_batch(device)`, in the model's layout, the sums on the device until the end."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    device, fmt, size = y.device, memory_format(model), eval_batch(y.device)
    total_loss = torch.zeros((), device=device, dtype=torch.float64)  # as the Python float it was
    correct = torch.zeros((), device=device, dtype=torch.long)
    with torch.inference_mode():
        for start in range(0, len(y), size):
            xb, yb = x[start : start + size], y[start : start + size]
            with autocast(precision, device):
                logits = model(_as(xb, fmt))
                total_loss += loss_fn(logits.float(), yb).double()
            correct += (logits.argmax(1) == yb).sum()
    return total_loss.item() / len(y), correct.item() / len(y)


Reporter = Callable[[dict[str, Any], Callable[[Path], None]], None]


def train_trial(
    p: TrialParams, data: Tensors, epochs: int, report: Reporter, restore_from: Path | None = None,
    models: Mapping[str, UserModel] | None = None,
) -> dict[str, Any]:
    """Train for up to `epochs`, calling `report(metrics, save)` after each epoch.

    `save(dir)` writes a checkpoint into dir; `restore_from` (a dir `save` wrote) continues a trial; `models`: the
    space's own models (a trial of one is built by its factory). The last report has `finished=True` and the test
    metrics (none without a test split); returns that report.
    """
    tune_allocator()
    torch.manual_seed(p.seed)
    device = data.y_train.device
    set_precision(p.precision, device)
    model = fast_layout(build_model(p, data.input_shape, data.num_classes, models).to(device), p, data.x_train[:2])
    opt = make_optimizer(p, model)
    epochs = min(epochs, p.max_epochs or epochs)  # the trial's budget: its schedule spans it
    sched = make_scheduler(p, opt, epochs, math.ceil(len(data.y_train) / p.batch_size))
    gen = torch.Generator().manual_seed(p.seed)
    progress = Progress()
    restored_from = 0
    if restore_from is not None:
        state = load_checkpoint(restore_from / CHECKPOINT_FILE, device)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        _state_like_params(opt)
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"].cpu())  # map_location put every tensor on the trial's device
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        progress = Progress.of(state["progress"])
        restored_from = progress.epoch

    def save(folder: Path) -> None:
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                 "torch_rng": torch.get_rng_state(), "progress": progress.as_dict()}
        if device.type == "cuda":  # the GPU's dropout draws from the CUDA generator
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        if sched is not None:
            state["scheduler"] = sched.state_dict()
        torch.save(state, folder / CHECKPOINT_FILE)

    metrics: dict[str, Any] = {}
    while progress.epoch < epochs:
        started = time.perf_counter()
        lr = opt.param_groups[0]["lr"]  # at the epoch's start (onecycle moves it every batch)
        train_loss, train_acc = train_epoch(model, opt, data.x_train, data.y_train, p.batch_size, gen, p,
                                            sched if per_batch(p) else None)
        if sched is not None and not per_batch(p):
            sched.step()
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"train loss is {train_loss} at epoch {progress.epoch + 1}")
        val_loss, val_acc = evaluate(model, data.x_val, data.y_val, p.precision)
        progress.epoch += 1
        metrics = {
            "epoch": progress.epoch, "train_loss": train_loss, "train_accuracy": train_acc,
            "val_loss": val_loss, "val_accuracy": val_acc, "time_s": time.perf_counter() - started,
            "restored_from": restored_from, "reported_at": time.time(), "lr": lr,
        }
        if val_loss < progress.best_val_loss:
            progress.best_val_loss, progress.bad_epochs = val_loss, 0
        else:
            progress.bad_epochs += 1
        early = 0 < p.early_stopping_patience <= progress.bad_epochs
        if early or progress.epoch >= epochs:
            if data.x_test is not None and data.y_test is not None:
                test = evaluate(model, data.x_test, data.y_test, p.precision)
                metrics |= dict(zip(("test_loss", "test_accuracy"), test, strict=True))
            metrics |= {"finished": True, "early_stopped": early}
        report(metrics, save)
        if early:
            break
    return metrics
