"""A training loop of your own (`trainable:`) whose trials wait at gates a test opens, so a cluster test acts at a
moment it chooses instead of racing the trials' progress.

Each gate is a file under the trial key `gates` (a folder every node of a LocalCluster sees):
- `together: N`: a trial marks itself live (`live/<trial>`), records how many trials it saw live
  (`seen/<trial>-<count>`), and trains only once N trials were live at one moment (`together`, made by the
  one that saw N); it unmarks itself as it ends;
- `hold_at: E`: after reporting epoch E a trial says so (`held/<trial>`) and waits for `release`. Its reports up to
  E-1 have reached Ray by then (ctx holds the newest report until the next one).
Only a trial holds: the rehearsal before the sweep (in the driver, no Ray actor) passes every gate.
"""

from pathlib import Path

LOOP = '''
import time
from pathlib import Path

import ray
import torch
import torch.nn.functional as F
from ray import tune
from torch import nn


def _trial() -> str:
    """This trial's id inside a Ray trial; "" in the rehearsal (the driver's process)."""
    if ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None:
        return tune.get_context().get_trial_id()
    return ""


def _wait(path: Path) -> None:
    while not path.exists():
        time.sleep(0.05)


def _mark(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def train(ctx, *, gates: str = "", together: int = 0, hold_at: int = 0, lr: float = 0.05) -> None:
    trial, gate = _trial(), Path(gates)
    x, y = ctx.data.train
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), ctx.data.num_classes))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    if (state := ctx.restore()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    if trial and together:
        _mark(gate / "live" / trial)
        seen = len(list((gate / "live").iterdir()))
        _mark(gate / "seen" / f"{trial}-{seen}")
        if seen >= together:
            _mark(gate / "together")
        _wait(gate / "together")
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        model.train()
        for start in range(0, len(y), 64):
            loss = F.cross_entropy(model(x[start:start + 64]), y[start:start + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vx, vy = ctx.data.val
            logits = model(vx)
        ctx.report(epoch, val_loss=F.cross_entropy(logits, vy).item(),
                   val_accuracy=(logits.argmax(1) == vy).float().mean().item(),
                   checkpoint={"model": model.state_dict(), "opt": opt.state_dict()})
        if trial and epoch == hold_at:
            _mark(gate / "held" / trial)
            _wait(gate / "release")
    if trial and together:
        (gate / "live" / trial).unlink()
'''

SPACE = """
name: {name}
trainable: gatedloop:train
epochs: {epochs}
scheduler: {{type: fifo}}
resources: {resources}
parameters: {{gates: "{gates}", together: {together}, hold_at: {hold_at}, seed: {{grid: {seeds}}}}}
"""


def write_gated(folder: Path, name: str, gates: Path, *, epochs: int, trials: int, resources: str,
                together: int = 0, hold_at: int = 0) -> Path:
    """The loop as `gatedloop.py` beside a space `<name>.yaml` of `trials` seeds, in `folder`; returns the space."""
    (folder / "gatedloop.py").write_text(LOOP)
    space = folder / f"{name}.yaml"
    space.write_text(SPACE.format(name=name, epochs=epochs, resources=resources, gates=gates, together=together,
                                  hold_at=hold_at, seeds=list(range(trials))))
    return space
