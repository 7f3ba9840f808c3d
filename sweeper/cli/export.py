"""`sweeper export` (a trained trial as model.safetensors + model.json + model.onnx) and `sweeper evaluate` (score
an export on the test split it was measured on)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sweeper.cli.common import StorageOpt, plain, plain_err, storage_of, user_errors
from sweeper.cli.names import NameArg

if TYPE_CHECKING:
    from sweeper.run.training.scoring import Score


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


def agreement(score: Score) -> str:
    """How the export's test accuracy compares with the trial's own, in examples: the same count (your own loop
    may compute the ratio in float32: the same to 1e-6 is the same count); a few apart is float rounding (another
    thread count or memory layout than the trial's can tip an example whose two best logits tie to rounding);
    more is a different model or different data."""
    assert score.recorded is not None
    apart = round(abs(score.recorded - score.test_accuracy) * score.images)
    if apart == 0:
        return "the same"
    if apart <= max(1, score.images // 1000):
        return (f"{apart} of {score.images} {score.unit} apart: float rounding, as another thread count or memory "
                "layout than the trial's can tip an example whose two best logits nearly tie")
    return f"DIFFERENT: {apart} of {score.images} {score.unit} apart"


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
        plain(f"recorded by the trial: test_accuracy {score.recorded!r} ({agreement(score)})")
