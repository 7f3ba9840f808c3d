"""A rehearsal of your own loop before a sweep starts: the first planned trial on a few batches, stopped after epoch
1 as a scheduler would stop it, then restarted from that checkpoint with a budget of 2.

It must report the sweep's metric at every epoch, report epochs in order (epoch 2 after the restart, not epoch 1
again: the bug Keras Tuner and Syne Tune users hit), call ctx.restore() when restarted, leave a checkpoint that
loads with `torch.load(weights_only=True)`, and not raise. Each broken rule is its own line of the error (exit 2,
nothing written). Its seconds per sample give the dry run's and the launch's time estimate.

Plain PyTorch in the driver's process, like the check that builds your models; the random streams and torch's
thread count are put back afterwards.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweeper.errors import SweeperError
from sweeper.run.training.context import CHECKPOINT_FILE, LoopContractError, TrialContext, rng_states, set_rng_states
from sweeper.run.training.data import Splits
from sweeper.run.training.loop import Tensors
from sweeper.run.training.ownloop import loop_function, run_own_loop
from sweeper.run.training.usercode import describe_error
from sweeper.spec.cost import threads
from sweeper.spec.loader import reachable_configs
from sweeper.spec.space import Space

ROWS = {"train": 256, "val": 128, "test": 128}  # a few batches of each split


class Stopped(BaseException):
    """What the rehearsal raises at the report it stops the loop at (a BaseException: a loop's `except Exception`
    does not swallow it, as it cannot swallow Ray's stop)."""


@dataclass
class Rehearsal:
    """What the rehearsal saw: each broken rule, notes, and the seconds per sample of an epoch."""

    broken: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds_per_sample: float = 0.0

    def epoch_seconds(self, splits: Splits) -> float:
        """An epoch over the whole train and validation splits at the rehearsal's pace."""
        return self.seconds_per_sample * (len(splits.y_train) + len(splits.y_val))


def few(splits: Splits) -> Splits:
    """The first rows of each split: a few batches."""
    def cut(a: np.ndarray | None, n: int) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a[:n])

    return Splits(cut(splits.x_train, ROWS["train"]), cut(splits.y_train, ROWS["train"]),  # type: ignore[arg-type]
                  cut(splits.x_val, ROWS["val"]), cut(splits.y_val, ROWS["val"]),  # type: ignore[arg-type]
                  cut(splits.x_test, ROWS["test"]), cut(splits.y_test, ROWS["test"]), splits.classes)


def _run(space: Space, config: dict[str, Any], data: Tensors, classes: Any, fn: Callable[..., Any],
         results: list[dict[str, Any]], folder: Path, restore_from: Path | None,
         stop_after: int | None) -> TrialContext:
    """One run of the loop (budget 2), its results into `results`, each checkpoint into `folder`."""
    def send(result: dict[str, Any], save: Callable[[Path], None] | None) -> None:
        results.append(result | {"checkpoint": save is not None})
        if save is not None:
            save(folder)
        if stop_after is not None and result["epoch"] >= stop_after:
            raise Stopped

    p = space.trial_params(config)
    return run_own_loop(space, p, data, 2, send, restore_from, classes, fn)


def _check_checkpoint(path: Path) -> str | None:
    """Why the checkpoint at `path` does not load with weights_only=True (None: it does)."""
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch names the object it refused
        lines = [ln.strip() for ln in str(exc).splitlines() if "GLOBAL" in ln or "Unsupported" in ln]
        return (lines[0] if lines else str(exc).splitlines()[0])[:300]
    return None


def rehearse(space: Space, splits: Splits) -> Rehearsal:
    """Run the rehearsal (see the module's text) of `space`'s loop on the first rows of `splits`."""
    out = Rehearsal()
    own = space.trainable
    assert own is not None
    fn = loop_function(space)
    config = (reachable_configs(space) or [{}])[0]
    data = Tensors.from_splits(few(splits), torch.device("cpu"))
    saved_rng, saved_threads = rng_states(torch.Generator()), torch.get_num_threads()
    torch.set_num_threads(threads(space.spec.resources.cpu))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            first, second = Path(tmp, "1"), Path(tmp, "2")
            first.mkdir()
            second.mkdir()
            one: list[dict[str, Any]] = []
            if not _step(out, own.roots, "the first run (budget 2, stopped after epoch 1)",
                         lambda: _run(space, config, data, splits.classes, fn, one, first, None, 1)):
                return out
            if not one:
                out.broken.append("the first run reported no epoch (call ctx.report(epoch, ...) once per epoch)")
                return out
            checkpoint = first / CHECKPOINT_FILE
            if not one[0]["checkpoint"]:
                out.notes.append("epoch 1 was reported without a checkpoint: an interrupted trial starts over on "
                                 "resume, and `sweeper export` has no weights to export")
            elif (why := _check_checkpoint(checkpoint)) is not None:
                out.broken.append(f"the checkpoint of epoch 1 does not load with torch.load(weights_only=True): {why}; "
                                  "keep to tensors, numbers, strings and plain lists/dicts (a state_dict())")
                return out
            two: list[dict[str, Any]] = []
            ctx: list[TrialContext] = []
            restart = first if one[0]["checkpoint"] else None
            if not _step(out, own.roots, "the restart from epoch 1's checkpoint (budget 2)",
                         lambda: ctx.append(_run(space, config, data, splits.classes, fn, two, second, restart, None))):
                return out
            if restart is not None and ctx and not ctx[0].restored:
                out.broken.append("restarted from epoch 1's checkpoint, the loop never called ctx.restore(): a resumed "
                                  "trial would go on from fresh weights")
            epochs = [r["epoch"] for r in two]
            wanted = [2] if restart is not None else [1, 2]
            if epochs[: len(wanted)] != wanted:
                out.broken.append(f"after the restart the loop reported epochs {epochs}, expected {wanted}")
            times = [r["time_s"] for r in (*one, *two) if isinstance(r.get("time_s"), float)]
            rows = len(data.y_train) + len(data.y_val)
            out.seconds_per_sample = min(times) / rows if times else 0.0
    finally:
        set_rng_states(saved_rng, torch.Generator())
        torch.set_num_threads(saved_threads)
    return out


def _step(out: Rehearsal, roots: tuple[str, ...], what: str, call: Callable[[], Any]) -> bool:
    """Run one part of the rehearsal; an error in the loop becomes a broken rule naming its file and line."""
    try:
        call()
    except Stopped:
        return True
    except LoopContractError as exc:
        out.broken.append(f"{what}: {describe_error(exc, roots)}")
        return False
    except Exception as exc:  # noqa: BLE001 - your loop's own error, as one line with its file and line
        out.broken.append(f"{what} raised {describe_error(exc, roots)}")
        return False
    return True


def check_loop(space: Space, splits: Splits) -> Rehearsal:
    """The rehearsal, its broken rules as the one error (a line each) that stops a sweep before it starts."""
    seen = rehearse(space, splits)
    if seen.broken:
        ref = space.trainable.ref if space.trainable is not None else "trainable"
        raise SweeperError("\n".join(f"{space.path}: key 'trainable': {ref} rehearsal: {b}" for b in seen.broken))
    return seen
