"""The context your own training loop is called with: `train(ctx, **params)` (`trainable:` in a search space).

    def train(ctx, *, lr: float = 1e-3, width: int = 64) -> None:
        x, y = ctx.data.train                       # tensors on ctx.device; ctx.data.val, ctx.data.test alike
        model = Net(ctx.data.input_shape, width, ctx.data.num_classes).to(ctx.device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        if (state := ctx.restore()) is not None:    # after building: the RNG states come back with it
            model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
        for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
            ...
            ctx.report(epoch, val_loss=..., val_f1=..., checkpoint={"model": model.state_dict(), "opt": ...})
        ctx.finish(test_f1=...)

`report` is where the scheduler decides (ASHA stops the trial there: user code never asks whether to stop). A
checkpoint is a dict of tensors, numbers, strings and plain containers, saved as state.pt beside sweeper's own
envelope (the epoch, the RNG states of torch, CUDA, numpy, random and `ctx.generator`, the last metrics), so it
loads with `torch.load(weights_only=True)` and a resumed trial continues its random stream where it stopped.

The report of the budget's last epoch is held until `finish` (or the loop's return), so it carries the final
scores; `stop_early` ends the trial as early-stopped (the loop's own patience rule). Plain PyTorch: what sends a
result (Ray's tune.report in a trial, a recorder in the rehearsal) is the `send` callable it is given.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sweeper.spec.metrics import Mode, epoch_metrics, final_metrics

CHECKPOINT_FILE = "state.pt"  # in each reported epoch's checkpoint folder (as sweeper's own loop's)
Send = Callable[[dict[str, Any], Callable[[Path], None] | None], None]  # a result, and what saves its checkpoint


class LoopContractError(ValueError):
    """Your loop broke a rule of the context (an epoch out of order, an unknown metric, the sweep's metric missing):
    the trial ends in ERROR naming your file and line."""


@dataclass(frozen=True)
class LoopData:
    """`ctx.data`: the splits as (x, y) tensors on the trial's device (test None without a test split)."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor] | None
    input_shape: tuple[int, ...]
    num_classes: int
    classes: tuple[str, ...] | None = None


def seed_everything(seed: int) -> None:
    """torch (CPU and CUDA), numpy and random, as a trial of your own loop starts."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def rng_states(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream a loop may draw from, as tensors and numbers (weights_only-loadable)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(), "generator": generator.get_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(keys).astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": python_gauss},
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(saved: Mapping[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(saved["torch"])
    generator.set_state(saved["generator"])
    n = saved["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = saved["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
    if "cuda" in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def _number(name: str, value: Any, where: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise LoopContractError(f"{where}: {name}={value!r} is not a number")
    return float(value)


def _only(names: Iterable[str], allowed: tuple[str, ...], where: str, what: str) -> None:
    """Refuse the metric names of a call (`where`) that are not `allowed`: each `what`, and what it may report."""
    unknown = sorted(set(names) - set(allowed))
    if unknown:
        raise LoopContractError(f"{where}: {', '.join(map(repr, unknown))} {what} (it may report {', '.join(allowed)})")


class TrialContext:
    """What `train(ctx, **params)` gets (see the module's text)."""

    def __init__(self, *, data: LoopData, device: torch.device, epochs: int, seed: int, metric: str,
                 declared: Mapping[str, Mode], send: Send, restore_from: Path | None = None,
                 build: Callable[[], nn.Module] | None = None) -> None:
        self.data, self.device, self.epochs, self.seed = data, device, epochs, seed
        self.metric, self.declared = metric, dict(declared)
        self.generator = torch.Generator().manual_seed(seed)
        self._send, self._build = send, build
        self._saved: dict[str, Any] | None = None
        self.restored_epoch = 0
        self.restored = False  # whether the loop asked for its checkpoint (the rehearsal checks it does)
        self._last_metrics: dict[str, Any] = {}
        if restore_from is not None and (restore_from / CHECKPOINT_FILE).is_file():
            self._saved = torch.load(restore_from / CHECKPOINT_FILE, map_location=device, weights_only=True)
            envelope = self._saved["sweeper"]
            self.restored_epoch = int(envelope["epoch"])
            self._last_metrics = dict(envelope.get("metrics") or {})
        self.last_epoch = self.restored_epoch
        self._held: tuple[dict[str, Any], bytes | None] | None = None
        self._early = False
        self.finished = False
        self._clock = time.perf_counter()

    # -- what a loop calls ----------------------------------------------------------------------------------------

    def restore(self) -> dict[str, Any] | None:
        """The checkpoint dict of the last reported epoch (None: a fresh trial); the random streams go back to
        where they were at that report, so call it after building your model and optimizer."""
        if self._saved is None:
            return None
        self.restored = True
        set_rng_states(self._saved["sweeper"]["rng"], self.generator)
        user: dict[str, Any] = self._saved["user"]
        return user

    def build_model(self) -> nn.Module:
        """The trial's model from the factory its `model` key names under `models:`, on ctx.device (a model so built
        and saved as checkpoint["model"] is what `sweeper export` rebuilds)."""
        if self._build is None:
            raise LoopContractError("ctx.build_model(): the space has no `models:` factory to build from")
        return self._build().to(self.device)

    def report(self, epoch: int, checkpoint: Mapping[str, Any] | None = None, **metrics: Any) -> None:
        """One epoch's metrics (the sweep's metric among them) and optionally its checkpoint; the scheduler decides
        here whether the trial goes on."""
        where = f"ctx.report(epoch={epoch!r})"
        if self.finished:
            raise LoopContractError(f"{where}: called after ctx.finish()")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch != self.last_epoch + 1:
            after = f"epoch {self.last_epoch}" if self.last_epoch else "the start"
            hint = f" (restored from epoch {self.restored_epoch}: go on at ctx.restored_epoch + 1)" \
                if self.restored_epoch else ""
            raise LoopContractError(f"{where}: epochs are reported in order, one per call; after {after} the next "
                                    f"is {self.last_epoch + 1}{hint}")
        if epoch > self.epochs:
            raise LoopContractError(f"{where}: beyond this trial's budget, ctx.epochs={self.epochs}")
        allowed = epoch_metrics(self.declared)
        _only(metrics, allowed, where, "is neither a standard metric nor declared under `metrics:`")
        if self.metric not in metrics:
            raise LoopContractError(f"{where}: the sweep's metric {self.metric!r} is missing (reported: "
                                    f"{', '.join(metrics) or 'nothing'})")
        if checkpoint is not None and not isinstance(checkpoint, Mapping):
            raise LoopContractError(f"{where}: checkpoint must be a dict (of tensors, numbers, strings), "
                                    f"not {type(checkpoint).__name__}")
        now = time.perf_counter()
        result = {name: _number(name, value, where) for name, value in metrics.items()}
        result |= {"epoch": epoch, "time_s": now - self._clock, "restored_from": self.restored_epoch,
                   "reported_at": time.time()}
        self._clock = now
        self.last_epoch = epoch
        blob = None if checkpoint is None else self._serialise(checkpoint, epoch, result)
        self._last_metrics = {k: v for k, v in result.items() if k in allowed}
        if epoch == self.epochs:  # the budget's last: sent with the final scores
            self._held = (result, blob)
        else:
            self._emit(result, blob)

    def stop_early(self, reason: str = "") -> None:
        """End this trial here as early-stopped (your own patience rule); then return (or call finish)."""
        self._early = True

    def finish(self, **test_metrics: Any) -> None:
        """The final scores on the test split (test_loss, test_accuracy, a declared val_ metric's test_ counterpart):
        reported once, at the end, never used to select."""
        where = "ctx.finish()"
        if self.finished:
            raise LoopContractError(f"{where}: called twice")
        _only(test_metrics, final_metrics(self.declared), where, "is not a final score")
        self._finalise({k: _number(k, v, where) for k, v in test_metrics.items()})

    # -- what sweeper calls ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """After the loop returned: a trial that did not call finish ends with what it reported."""
        if not self.finished:
            self._finalise({})

    def _finalise(self, scores: dict[str, float]) -> None:
        if self._held is None and self.last_epoch == self.restored_epoch and not self._last_metrics:
            raise LoopContractError("the loop ended without reporting an epoch: call ctx.report(epoch, ...) once per "
                                    "epoch")
        early = self._early or self.last_epoch < self.epochs
        flags = {"finished": True, "early_stopped": early, **scores}
        if self._held is not None:
            result, blob = self._held
            self._emit(result | flags, blob)
        else:  # the last report went out already (stopped early): its metrics again, with the end
            self._emit({**self._last_metrics, "epoch": self.last_epoch, "restored_from": self.restored_epoch,
                        "reported_at": time.time(), **flags}, None)
        self._held = None
        self.finished = True

    def _serialise(self, checkpoint: Mapping[str, Any], epoch: int, result: dict[str, Any]) -> bytes:
        """The checkpoint as state.pt's bytes, now (the loop goes on changing its tensors)."""
        envelope = {"epoch": epoch, "rng": rng_states(self.generator),
                    "metrics": {k: v for k, v in result.items() if isinstance(v, float)}}
        buffer = io.BytesIO()
        torch.save({"user": dict(checkpoint), "sweeper": envelope}, buffer)
        return buffer.getvalue()

    def _emit(self, result: dict[str, Any], blob: bytes | None) -> None:
        def save(folder: Path) -> None:
            assert blob is not None
            (folder / CHECKPOINT_FILE).write_bytes(blob)

        self._send(result, None if blob is None else save)
