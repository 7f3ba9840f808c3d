"""`sweeper export` (a trained trial as model.safetensors + model.json + model.onnx) and `sweeper evaluate` (score
an export on the test split it was measured on)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sweeper.cli.common import StorageOpt, plain, storage_of, user_errors
from sweeper.cli.names import NameArg


@user_errors
def export(
    name: NameArg,
    out: Annotated[Path, typer.Option("--out", help="Folder to write model.safetensors, model.json, model.onnx.")],
    trial: Annotated[
        str | None, typer.Option("--trial", help="Trial id (default: the best trial that ran to its end).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an export already in --out.")] = False,
    storage: StorageOpt = None,
) -> None:
    """Export a trial's trained model from its last checkpoint: weights, a model card and ONNX."""
    from sweeper.run.training.export import export as run_export

    content = run_export(storage_of(storage), name, trial, out, overwrite)
    metrics = content["metrics"]
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k.endswith("accuracy") and v is not None)
    plain(f"exported trial {content['trial_id']} of sweep {content['sweep']} to {out} ({shown})")


@user_errors
def evaluate(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A folder `sweeper export` wrote.")],
    data_dir: Annotated[
        str | None, typer.Option(help="Fashion-MNIST folder (default: $SWEEPER_DATA_DIR, else torchvision downloads).")
    ] = None,
) -> None:
    """Score an exported model on the test split it was trained against (the same subset, if the sweep used one)."""
    from sweeper.run.training.export import evaluate_export

    score = evaluate_export(folder, data_dir)
    plain(f"test_accuracy {score.test_accuracy!r} ({round(score.test_accuracy * score.images)}/{score.images} "
          f"images), test_loss {score.test_loss:.6f}")
    if score.recorded is not None:
        same = "the same" if score.recorded == score.test_accuracy else "DIFFERENT"
        plain(f"recorded by the trial: test_accuracy {score.recorded!r} ({same})")
