"""An export scored on the test split its model card names (`evaluate_export`, behind `sweeper evaluate`): the same
test subset as the sweep's; a /2 export's data loaded again (your data source run again) and checked to be the data
the model was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweeper.errors import SweeperError
from sweeper.run.training import data, sources
from sweeper.run.training.card import CARD_FILE, FORMAT, read_card, roots_then_cwd
from sweeper.run.training.loading import load_model
from sweeper.run.training.loop import evaluate, inputs, labels
from sweeper.spec.schema import DataSpec


@dataclass(frozen=True)
class Score:
    test_loss: float
    test_accuracy: float
    images: int  # examples scored
    recorded: float | None  # the trial's own test accuracy, from model.json
    unit: str = "images"  # what an example is: images (C, H, W), else samples


def evaluate_export(path: str | Path, data_dir: str | None) -> Score:
    """Score an export on the test split its model.json names (the same test subset as the sweep's). A /2 export's
    data is loaded again as the card's data spec says (your data source run again) and must be the data the sweep
    trained on (its fingerprint)."""
    content = read_card(path)
    model = load_model(path)
    file = Path(path) / CARD_FILE
    try:
        spec = DataSpec.model_validate(content["data"])
    except ValidationError as exc:
        raise SweeperError(f"{file}: key 'data': {exc.errors()[0]['msg']}") from None
    recorded = (content.get("metrics") or {}).get("test_accuracy")
    recorded = recorded if isinstance(recorded, int | float) and not isinstance(recorded, bool) else None
    splits = data.load(data_dir, spec) if content["format"] == FORMAT else _data_2(file, content, spec, data_dir)
    x, y = inputs(splits.x_test), labels(splits.y_test)
    loss, accuracy = evaluate(model, x, y)
    return Score(loss, accuracy, len(y), recorded, "images" if x.ndim == 4 else "samples")


def _data_2(file: Path, content: dict[str, Any], spec: DataSpec, data_dir: str | None) -> data.Splits:
    """A /2 export's data, loaded again: it must have a test split, the fingerprint the card records, and examples
    of the shape the model takes."""
    splits = sources.load(data_dir, spec, roots_then_cwd(content.get("data_roots", [])), str(file))
    shown = spec.source or "Fashion-MNIST"
    if splits.x_test is None or splits.y_test is None:
        raise SweeperError(f"{file}: the data source {shown} gives no test split, so there is nothing to score the "
                           "model on")
    then = content.get("data_fingerprint")
    if isinstance(then, str) and then:
        now = sources.fingerprint(splits)
        if now != then:
            raise SweeperError(f"{file}: the data {shown} gives now differs from the data the model was trained on "
                               f"(fingerprint {then[:12]} then, {now[:12]} now); restore it (or --data-dir) to "
                               "score the model")
    shape = tuple(content["input"]["shape"])
    if splits.input_shape != shape:
        raise SweeperError(f"{file}: the data {shown} gives examples of shape {splits.input_shape}, but the model "
                           f"takes {shape}")
    return splits
