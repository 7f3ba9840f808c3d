"""`sweeper export` (a trained trial as model.safetensors + model.json + model.onnx) and `sweeper evaluate` (score
an export on the test split it was measured on)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from sweeper.cli.common import StorageOpt, plain, plain_err, storage_of, user_errors
from sweeper.cli.names import NameArg


@contextmanager
def _code_warnings() -> Iterator[None]:
    """The export's CodeChangedWarning (your model's code differs from its weights') as one `warning:` line each;
    other warnings as Python shows them."""
    from sweeper.run.training.loading import CodeChangedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CodeChangedWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, CodeChangedWarning):
                    plain_err(f"warning: {str(w.message).splitlines()[0]}")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@user_errors
def export(
    name: NameArg,
    out: Annotated[Path, typer.Option("--out", help="Folder to write model.safetensors, model.json, model.onnx.")],
    trial: Annotated[
        str | None, typer.Option("--trial", help="Trial id (default: the best trial that ran to its end).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an export already in --out.")] = False,
    data_dir: Annotated[
        str | None, typer.Option(help="What a data source of your own is given as data_dir, when the sweep has "
                                      "one (it runs again to record the input's shape and classes; default: the "
                                      "sweep's --data-dir).")
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Export a trial's trained model from its last checkpoint: weights, a model card and ONNX (for a model of your
    own, ONNX where the exporter can trace it)."""
    with _code_warnings():
        from sweeper.run.training.export import export as run_export

        content = run_export(storage_of(storage), name, trial, out, overwrite, data_dir)
    metrics = content["metrics"]
    shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()
                      if isinstance(v, float) and k not in ("epochs",) and not k.startswith("train_"))
    plain(f"exported trial {content['trial_id']} of sweep {content['sweep']} to {out} ({shown or 'no metrics'})")
    raw = content.get("raw")
    if isinstance(raw, dict):
        plain(f"note: a raw export (model.json + {raw.get('file')}): {raw.get('why')}; `sweeper evaluate` and "
              "sweeper.load_model cannot score or load it")
    skipped = (content.get("onnx") or {}).get("skipped")
    if skipped:
        plain(f"note: no model.onnx: the ONNX exporter cannot take this model ({skipped}); model.json and "
              "model.safetensors are written")


@user_errors
def evaluate(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="A folder `sweeper export` wrote.")],
    data_dir: Annotated[
        str | None, typer.Option(help="Fashion-MNIST folder (default: $SWEEPER_DATA_DIR, else torchvision "
                                      "downloads); for a data source of your own, what it is given as data_dir.")
    ] = None,
) -> None:
    """Score an exported model on the test split it was trained against (the same subset, if the sweep used one; a
    data source of your own runs again and must give the data the sweep trained on)."""
    with _code_warnings():
        from sweeper.run.training.scoring import evaluate_export

        score = evaluate_export(folder, data_dir)
    plain(f"test_accuracy {score.test_accuracy!r} ({round(score.test_accuracy * score.images)}/{score.images} "
          f"{score.unit}), test_loss {score.test_loss:.6f}")
    if score.recorded is not None:
        # your own loop may compute it in float32: the same to 1e-6 is the same count of images
        same = "the same" if score.recorded == score.test_accuracy else \
            "the same to float32 rounding" if abs(score.recorded - score.test_accuracy) < 1e-6 else "DIFFERENT"
        plain(f"recorded by the trial: test_accuracy {score.recorded!r} ({same})")
