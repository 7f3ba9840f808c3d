"""The other trials of a sweep, for calibration: trials that run at once share the machine (its cores, caches and
memory bandwidth, and on many virtual machines one physical core's two hardware threads), so an epoch may take
longer with two trials at once than alone: timed alone, the calibration put slides.yaml's CNN epochs at about 2/3
of what they took two at a time on this project's 2-core machine. The calibration (epochs.py) therefore times an
architecture while helper processes train the same one, as many as the other trials at once.

A helper (`python -m sweeper.run.calibrate.load THREADS`) reads one architecture key per line on stdin, trains it on
random batches until the next line comes, and prints "ready" once it has built and warmed up each. It exits when
its stdin closes, so helpers never outlive the process that started them, even one that was killed.

Every wait on a helper is bounded (Load's `ready_s`, `write_s`, `exit_s`): a helper that is alive but stuck (it
never says "ready", stops reading its stdin, or ignores its closing) is killed at the deadline, with a warning on
stderr, and the calibration goes on with the load of the others.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sweeper.spec.params import PARAM_KEYS, TrialParams
from sweeper.spec.usermodels import UserModel, key_models

if TYPE_CHECKING:
    from torch import nn

WARMUP = 3  # a helper says "ready" after this many batches
READY_S = 180.0  # at most this long for each helper to build an architecture and say "ready"
WRITE_S = 10.0  # for a helper to take a line on its stdin
EXIT_S = 10.0  # for a helper to exit once its stdin is closed
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
    returns once each is training it. A helper that failed to start, died, or is stuck past a deadline (`ready_s`
    to say "ready", `write_s` to take a line, `exit_s` to exit at the end) is killed and left out: the calibration
    then measures with less load, never hangs. `command`: a helper's command line (tests give a stuck one)."""

    def __init__(self, n: int, n_threads: int, workload: Workload | None = None, *, ready_s: float = READY_S,
                 write_s: float = WRITE_S, exit_s: float = EXIT_S, command: Sequence[str] | None = None) -> None:
        self.n, self.n_threads = n, n_threads
        self.workload = workload or Workload()
        self.ready_s, self.write_s, self.exit_s = ready_s, write_s, exit_s
        self.command = list(command or [sys.executable, "-m", "sweeper.run.calibrate.load", str(n_threads)])
        self.helpers: list[subprocess.Popen[str]] = []
        self.lines: dict[int, queue.Queue[str | None]] = {}  # each helper's stdout lines; None at its end
        self.killed: list[str] = []  # why each helper left out was killed

    def __enter__(self) -> Load:
        for _ in range(self.n):
            h = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
            if h.stdin is not None:
                os.set_blocking(h.stdin.fileno(), False)  # writes wait in _say, up to write_s, never forever
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=self._read, args=(h, lines), daemon=True).start()
            self.helpers.append(h)
            self.lines[h.pid] = lines
        return self

    @staticmethod
    def _read(h: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        try:
            if h.stdout is not None:
                for line in h.stdout:
                    lines.put(line.strip())
        except (OSError, ValueError):  # closed under us
            pass
        lines.put(None)

    def _kill(self, h: subprocess.Popen[str], why: str) -> None:
        if h.poll() is None:
            self.killed.append(f"helper {h.pid} {why}")
            print(f"calibration: load helper {h.pid} {why}; killed, the timing goes on with less load",
                  file=sys.stderr)
            h.kill()

    def train(self, arch: str) -> None:
        for h in self.helpers:
            self._say(h, self.workload.line(arch))
        deadline = time.monotonic() + self.ready_s
        for h in self.helpers:
            if h.poll() is not None:
                continue
            try:
                said = self.lines[h.pid].get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                self._kill(h, f"did not get ready with {arch} in {self.ready_s:g}s (stuck?)")
                continue
            if said != "ready":
                h.kill()  # it could not train this architecture: no load from it

    def _say(self, h: subprocess.Popen[str], line: str) -> None:
        """Write a line to a helper's stdin, waiting at most write_s for it to take it."""
        if h.stdin is None or h.poll() is not None:
            return
        data, fd = (line + "\n").encode(), h.stdin.fileno()
        deadline = time.monotonic() + self.write_s
        try:
            while data:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    self._kill(h, f"did not read its input in {self.write_s:g}s (stuck?)")
                    return
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue
        except OSError:  # died meanwhile: train() skips it
            pass

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for h in self.helpers:
            try:
                if h.stdin is not None:
                    h.stdin.close()  # EOF: the helper exits
            except OSError:
                pass
        deadline = time.monotonic() + self.exit_s
        for h in self.helpers:
            try:
                h.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                self._kill(h, f"did not exit in {self.exit_s:g}s after its input closed")
                try:
                    h.wait(timeout=self.exit_s)
                except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed but not reaped: leave it
                    pass


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
