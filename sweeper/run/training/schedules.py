"""Learning-rate schedules (`lr_schedule`) over a trial's own epoch budget.

- none: the optimizer's learning rate throughout (no scheduler, as before the key existed);
- cosine: CosineAnnealingLR(T_max = budget), stepped after every epoch: epoch e (from 0) trains at
  lr * (1 + cos(pi * e / budget)) / 2, annealing to 0 at the budget;
- onecycle: OneCycleLR(max_lr = lr, total_steps = budget x batches per epoch), stepped after every batch (torch's
  defaults: 30% warm-up from lr/25, cosine annealing to lr/25e4); learning rate only, the optimizer's momentum
  and betas stay as configured (cycle_momentum off);
- step: StepLR(lr_step_size, lr_gamma), stepped after every epoch.

The budget is what the trial may run (`epochs`, or its smaller `max_epochs`), not what ASHA lets it run: a trial
stopped early was on the same schedule as the one that went on. The scheduler's state is in every checkpoint, so
a resumed trial continues the schedule exactly.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR

from sweeper.spec.params import TrialParams

PER_BATCH = {"onecycle"}  # stepped after every batch; the others after every epoch


def make_scheduler(p: TrialParams, opt: torch.optim.Optimizer, budget: int, batches: int) -> LRScheduler | None:
    """The trial's scheduler on `opt` (None for `none`); `budget` epochs of `batches` batches each."""
    if p.lr_schedule == "cosine":
        return CosineAnnealingLR(opt, T_max=budget)
    if p.lr_schedule == "onecycle":
        return OneCycleLR(opt, max_lr=p.learning_rate, total_steps=budget * batches, cycle_momentum=False)
    if p.lr_schedule == "step":
        return StepLR(opt, step_size=p.lr_step_size, gamma=p.lr_gamma)
    return None


def per_batch(p: TrialParams) -> bool:
    return p.lr_schedule in PER_BATCH
