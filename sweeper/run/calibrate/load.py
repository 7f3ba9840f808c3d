"""The other trials of a sweep, for calibration: trials that run at once share the machine (its cores, caches and
memory bandwidth, and on many virtual machines one physical core's two hardware threads), so an epoch may take
longer with two trials at once than alone: timed alone, the calibration put slides.yaml's CNN epochs at about 2/3
of what they took two at a time on this project's 2-core machine. The calibration (epochs.py) therefore times an
architecture while helper processes train the same one, as many as the other trials at once.

A helper (`python -m sweeper.run.calibrate.load THREADS`) reads one architecture key per line on stdin, trains it on
random batches until the next line comes, and prints "ready" once it has built and warmed up each. It exits when
its stdin closes, so helpers never outlive the process that started them, even one that was killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sweeper.spec.params import PARAM_KEYS, TrialParams
from sweeper.spec.usermodels import UserModel, key_models

if TYPE_CHECKING:
    from torch import nn

WARMUP = 3  # a helper says "ready" after this many batches
FASHION = ((1, 28, 28), 10)


@dataclass(frozen=True)
class Workload:
    """What an architecture is timed on: the data's input shape and classes, and the space's own models (an
    architecture key names a model and its keys; a user model's factory builds it)."""

    shape: tuple[int, ...] = FASHION[0]
    k: int = FASHION[1]
    models: dict[str, UserModel] = field(default_factory=dict)

    def params(self, arch: str) -> TrialParams:
        """TrialParams of an architecture key (other keys at their defaults)."""
        return params_of(arch, self.models)

    def build(self, p: TrialParams) -> nn.Module:
        from sweeper.run.training.models import build_model

        return build_model(p, self.shape, self.k, self.models)

    def cache_part(self, arch: str) -> list[Any]:
        """What the cache key adds for this workload ([] for Fashion-MNIST and built-ins: keys stay as before)."""
        model = self.models.get(arch.split(" ")[0].removeprefix("model="))
        extra: list[Any] = [] if (self.shape, self.k) == FASHION else [list(self.shape), self.k]
        return extra + ([model.ref, model.sha256] if model is not None else [])

    def line(self, arch: str) -> str:
        """What a helper process reads: the architecture and how to build it."""
        return json.dumps({"arch": arch, "shape": list(self.shape), "k": self.k,
                           "models": {n: m.as_json() for n, m in self.models.items()}})

    @classmethod
    def of_line(cls, line: str) -> tuple[Workload, str]:
        raw = json.loads(line)
        models = {n: UserModel.of_json(n, m) for n, m in raw["models"].items()}
        return cls(tuple(raw["shape"]), int(raw["k"]), models), str(raw["arch"])


def params_of(arch: str, models: dict[str, UserModel] | None = None) -> TrialParams:
    """TrialParams of an architecture key (other keys at their defaults); a user model's keys go to `user`."""
    values: dict[str, Any] = {}
    for part in arch.split(" "):
        key, text = part.split("=", 1)
        try:
            values[key] = json.loads(text.replace("False", "false").replace("True", "true"))
        except ValueError:
            values[key] = text
    if not models:
        return TrialParams.model_validate(values)
    user = {k: values.pop(k) for k in list(values) if k not in PARAM_KEYS}
    from sweeper.spec.params import KEY_MODELS

    return TrialParams.model_validate(values | {"user": user}).in_space(key_models(KEY_MODELS, models))


class Load:
    """`n` helper processes with `n_threads` torch threads each; `train(arch)` switches them all to `arch` and
    returns once each is training it. A helper that failed to start or died is left out: the calibration then
    measures with less load, never hangs."""

    def __init__(self, n: int, n_threads: int, workload: Workload | None = None) -> None:
        self.n, self.n_threads = n, n_threads
        self.workload = workload or Workload()
        self.helpers: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Load:
        cmd = [sys.executable, "-m", "sweeper.run.calibrate.load", str(self.n_threads)]
        self.helpers = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                         text=True) for _ in range(self.n)]
        return self

    def train(self, arch: str) -> None:
        for h in self.helpers:
            self._say(h, self.workload.line(arch))
        for h in self.helpers:
            if h.poll() is None and h.stdout is not None and h.stdout.readline().strip() != "ready":
                h.kill()  # it could not train this architecture: no load from it

    @staticmethod
    def _say(h: subprocess.Popen[str], line: str) -> None:
        try:
            if h.stdin is not None and h.poll() is None:
                h.stdin.write(line + "\n")
                h.stdin.flush()
        except OSError:  # died meanwhile: train() skips it
            pass

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for h in self.helpers:
            try:
                if h.stdin is not None:
                    h.stdin.close()  # EOF: the helper exits
            except OSError:
                pass
        for h in self.helpers:
            try:
                h.wait(timeout=10)
            except subprocess.TimeoutExpired:
                h.kill()
                h.wait()


def main(n_threads: int) -> None:
    """A helper's loop: train the architecture named last on stdin, one random batch after another."""
    import torch
    from torch import nn

    from sweeper.run.training.loop import make_optimizer

    torch.set_num_threads(n_threads)
    wanted: list[str] = []
    changed = threading.Event()

    def read() -> None:
        for line in sys.stdin:
            wanted.append(line.strip())
            changed.set()
        os._exit(0)  # stdin closed: the parent is done (or dead)

    threading.Thread(target=read, daemon=True).start()
    loss_fn = nn.CrossEntropyLoss()
    while True:
        changed.wait()
        changed.clear()
        workload, arch = Workload.of_line(wanted[-1])
        p = workload.params(arch)
        try:
            model = workload.build(p)
        except Exception:  # noqa: BLE001 - a model this helper cannot build: no load from it
            os._exit(1)
        opt = make_optimizer(p, model)
        x, y = torch.rand(p.batch_size, *workload.shape), torch.randint(0, workload.k, (p.batch_size,))
        model.train()
        for i in range(10**9):
            if i == WARMUP:
                print("ready", flush=True)
            if changed.is_set():
                break
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()


if __name__ == "__main__":
    main(int(sys.argv[1]))
