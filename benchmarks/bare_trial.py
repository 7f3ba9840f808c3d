"""The bare side of overhead.py: sweeper's trials trained by a plain PyTorch script, no sweeper machinery.

    python benchmarks/bare_trial.py JOB.json OUT.jsonl

JOB.json (overhead.py writes it from the sweep's own YAML): {"data_dir", "data": the YAML's data keys,
"epochs", "threads", "trials": [every TrialParams key of each trial, as sweeper resolves them]}. The trials run
one after another, as a user's script would run them.

Data: sweeper.run.training.data.load with the same data keys, i.e. the same staged files read the same way (numpy) and
split the same way: the very arrays the sweep trains on. Model: sweeper.run.training.models.build_model from
the same params after torch.manual_seed(seed) (the same layers and initial weights). The loop is written out
here and honours every training key: optimizer (sgd|adam), lr, momentum, nesterov, weight_decay, batch_size,
seed (init and shuffling), early_stopping_patience (on val_loss), max_epochs. Each epoch: train on shuffled
batches, evaluate val, take `reported_at` (time.time(), where sweeper takes it), evaluate test after the last
epoch, append one JSON line to OUT.jsonl. Each trial ends with a line {"trial", "wall_s"}: from before its
tensors and model are built to after its last epoch line is written (sweeper's wall_s spans the same).
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import TextIO

import numpy as np
import torch
from torch import nn

from sweeper.run.training import data
from sweeper.run.training.models import build_model
from sweeper.spec.params import TrialParams
from sweeper.spec.schema import DataSpec

EVAL_BATCH = 2048


def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x).unsqueeze(1).float().div_(255.0), torch.from_numpy(y).long()


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    loss, correct = 0.0, 0
    for i in range(0, len(y), EVAL_BATCH):
        logits = model(x[i : i + EVAL_BATCH])
        loss += loss_fn(logits, y[i : i + EVAL_BATCH]).item()
        correct += (logits.argmax(1) == y[i : i + EVAL_BATCH]).sum().item()
    return loss / len(y), correct / len(y)


def optimizer(p: TrialParams, model: nn.Module) -> torch.optim.Optimizer:
    if p.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=p.learning_rate, weight_decay=p.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=p.learning_rate, momentum=p.momentum, nesterov=p.nesterov,
                           weight_decay=p.weight_decay)


def train(trial: int, p: TrialParams, splits: data.Splits, epochs: int, out: TextIO) -> None:
    started = time.time()
    x, y = tensors(splits.x_train, splits.y_train)
    xv, yv = tensors(splits.x_val, splits.y_val)
    xt, yt = tensors(splits.x_test, splits.y_test)
    torch.manual_seed(p.seed)
    model = build_model(p)
    opt = optimizer(p, model)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(p.seed)
    best_val, bad = math.inf, 0
    epochs = min(epochs, p.max_epochs or epochs)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(y), generator=gen)
        total, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        for i in range(0, len(y), p.batch_size):
            idx = order[i : i + p.batch_size]
            logits = model(x[idx])
            loss = loss_fn(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == y[idx]).sum()
        val_loss, val_acc = evaluate(model, xv, yv)
        row = {"trial": trial, "epoch": epoch, "train_loss": total.item() / len(y),
               "train_accuracy": correct.item() / len(y), "val_loss": val_loss, "val_accuracy": val_acc,
               "time_s": time.perf_counter() - start, "reported_at": time.time()}
        best_val, bad = (val_loss, 0) if val_loss < best_val else (best_val, bad + 1)
        early = 0 < p.early_stopping_patience <= bad
        if early or epoch == epochs:
            row["test_loss"], row["test_accuracy"] = evaluate(model, xt, yt)
        out.write(json.dumps(row) + "\n")
        out.flush()
        if early:
            break
    out.write(json.dumps({"trial": trial, "wall_s": time.time() - started}) + "\n")
    out.flush()


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    splits = data.load(job["data_dir"], DataSpec(**job["data"]))
    with open(sys.argv[2], "w") as out:
        for i, keys in enumerate(job["trials"]):
            train(i, TrialParams(**keys), splits, job["epochs"], out)


if __name__ == "__main__":
    main()
