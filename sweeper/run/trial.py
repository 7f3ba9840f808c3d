"""What Ray Tune runs for one trial, in a module that imports neither torch nor Ray at the top.

The driver names `ray_trainable` to Ray (tune.with_parameters pickles it by reference), so importing this module
must stay cheap: the driver of a sweep imports torch only where it must (to time an architecture the calibration
cache lacks, to download Fashion-MNIST through torchvision, to check and rehearse your own code; a test holds a
warm launch of built-in models to none). The trial's worker process imports run/training (torch) when the
function first runs there.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeper.run.history import History
from sweeper.run.training.data import Splits
from sweeper.spec.cost import threads
from sweeper.spec.space import Space


class UserCodeError(RuntimeError):
    """An exception inside your own code (a model's factory or forward), as one line naming your file and line."""


def _free_previous() -> None:
    """A reused worker drops what the previous trial left (its model, optimizer, data) and hands the GPU's cached
    memory back before the next trial (wandb#1247: memory leaking from one run into the next)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def ray_trainable(config: dict[str, Any], *, splits: Splits, space: Space, epochs: int, cpus: float) -> None:
    """What Ray Tune runs for one trial (wrapped with tune.with_parameters / with_resources)."""
    import ray
    import torch
    from ray import tune

    from sweeper.run.training.loop import Tensors, train_trial, tune_allocator

    tune_allocator()  # glibc keeps freed memory in this process: no page faults for every step's buffers
    _free_previous()
    torch.set_num_threads(threads(cpus))  # the cost model's rule: calibration times the same
    p = space.trial_params(config)
    use_gpu = bool(ray.get_gpu_ids()) and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    ctx = ray.get_runtime_context()
    node = f"{ray.util.get_node_ip_address()}:{ctx.get_node_id()[:8]}"
    data = Tensors.from_splits(splits, device)
    history = History(tune.get_context().get_trial_id())

    def report(metrics: dict[str, Any], save: Callable[[Path], None] | None) -> None:
        metrics = {**metrics, "node": node, "device": str(device)}
        history.add(metrics)
        if save is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            save(Path(folder))
            history.write(Path(folder))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    def run(tensors: Tensors, restore_from: Path | None) -> None:
        if space.trainable is not None:
            from sweeper.run.training.ownloop import run_own_loop

            run_own_loop(space, p, tensors, epochs, report, restore_from, splits.classes)
        else:
            train_trial(p, tensors, epochs, report, restore_from=restore_from, models=space.models)

    checkpoint = tune.get_checkpoint()
    try:
        if checkpoint is None:
            run(data, None)
        else:
            with checkpoint.as_directory() as folder:
                history.restore(Path(folder))
                run(data, Path(folder))
    except Exception as exc:
        own = space.trainable or space.models.get(p.model)
        if own is None or type(exc).__module__.startswith("ray"):
            raise
        from sweeper.run.training.usercode import describe_error

        raise UserCodeError(describe_error(exc, own.roots)) from exc
    finally:
        del data
        _free_previous()
