"""One worker of the Optuna side of peer_optuna.py and search.py: a process that joins a shared study and trains
trials until the study's trial budget is spent.

    python benchmarks/optuna_worker.py JOB.json WORKER OUT.jsonl

JOB.json: {"space": the sweep's YAML, "journal": a JournalStorage file, "study", "seed", "startup", "budget",
"grace", "reduction", "threads", "data_dir"}. The study: TPESampler(seed + 1000 x WORKER, n_startup_trials
startup) (distinct seeds, or two workers would draw the same random points), SuccessiveHalvingPruner(min_resource
grace, reduction_factor reduction). Worker 0 enqueues each variant first (as sweeper's TPE evaluates them first);
the others wait until it has. Each trial draws the variant, then every axis of the YAML whose `when` holds, in
sweeper's order (sweeper.run.search.searcher.SpaceSampler, the define-by-run function sweeper's TPE uses); its
params are the YAML's (sweeper.spec.loader), its data the YAML's subset (sweeper.run.training.data.load), and it
is trained by sweeper.run.training.loop.train_trial, the loop sweeper's own trials run. Every epoch appends a JSON line
{"worker", "trial", "epoch", "val_accuracy", "reported_at"} to OUT.jsonl.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import optuna
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeper.run.search.searcher import SpaceSampler
from sweeper.run.training import data
from sweeper.run.training.loop import Tensors, train_trial
from sweeper.spec import loader


def main() -> None:
    with open(sys.argv[1]) as f:
        job = json.load(f)
    worker, out = int(sys.argv[2]), open(sys.argv[3], "w")
    torch.set_num_threads(job["threads"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = loader.load(job["space"])
    study = optuna.create_study(
        study_name=job["study"], storage=JournalStorage(JournalFileBackend(job["journal"])), direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=job["seed"] + 1000 * worker, n_startup_trials=job["startup"]),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=job["grace"], reduction_factor=job["reduction"]),
    )
    if worker == 0:
        for variant in space.variants:
            study.enqueue_trial({"variant": variant})
    draw = SpaceSampler(space)
    tensors = Tensors.from_splits(data.load(job["data_dir"], space.spec.data), torch.device("cpu"))
    deadline = time.monotonic() + 120
    while len(study.get_trials(deepcopy=False)) < len(space.variants) and time.monotonic() < deadline:
        time.sleep(0.05)  # worker 0 has not enqueued the variants yet

    def objective(trial: optuna.Trial) -> float:
        if trial.number >= job["budget"]:  # the shared budget is spent
            trial.study.stop()
            raise optuna.TrialPruned()
        config = draw(trial)

        def report(metrics: dict[str, Any], save: Any) -> None:
            out.write(json.dumps({"worker": worker, "trial": trial.number, "epoch": metrics["epoch"],
                                  "val_accuracy": metrics["val_accuracy"], "reported_at": metrics["reported_at"]})
                      + "\n")
            out.flush()
            trial.report(metrics["val_accuracy"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        return train_trial(space.trial_params(config), tensors, space.spec.epochs, report)["val_accuracy"]

    study.optimize(objective)
    out.close()


if __name__ == "__main__":
    main()
