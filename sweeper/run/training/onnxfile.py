"""A model as model.onnx (the TorchScript-based exporter, a dynamic batch axis, output "logits"): a /1 export's
with input "image" (N, 1, 28, 28); a /2 export's with input "input" (N, *shape), best effort (what the exporter
refuses or cannot trace faithfully is left out, and why is one line), the exporter's C++ log kept off the
terminal."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from sweeper.spec.params import IMAGE_SIDE


def export_onnx(model: nn.Module, path: Path) -> None:
    """The model as ONNX: input "image" (N, 1, 28, 28) float32, output "logits" (N, 10), N dynamic."""
    example = torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE)
    with warnings.catch_warnings():  # the TorchScript-based exporter is a choice (the dynamo one fails here)
        warnings.simplefilter("ignore", DeprecationWarning)
        _to_onnx(model, example, path, "image")


def export_onnx_2(model: nn.Module, shape: tuple[int, ...], path: Path) -> str | None:
    """A /2 export's model as ONNX: input "input" (N, *shape) float32, output "logits" (N, K), N dynamic. Best
    effort: returns why it was left out (one line), or None. An exporter error, and a forward the tracer says it
    could not record faithfully (Python numbers or numpy taken from a tensor, data-dependent control flow: the
    ONNX graph would compute something else), leave it out."""
    example = torch.zeros(2, *shape)
    try:
        with warnings.catch_warnings(record=True) as caught, _quiet_fds():
            warnings.simplefilter("always")
            _to_onnx(model, example, path, "input")
    except Exception as exc:  # noqa: BLE001 - whatever the exporter refuses, one line of it
        path.unlink(missing_ok=True)
        return _one_line(exc)
    finally:
        _onnx_log_off()
    tracer = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)
              and "safely ignore" not in str(w.message)]
    if tracer:
        path.unlink(missing_ok=True)
        first = str(tracer[0].message).splitlines()[0].split(". ")[0].rstrip(".")
        return f"the tracer could not record the forward faithfully: {first}"
    return None


def _to_onnx(model: nn.Module, example: torch.Tensor, path: Path, input_name: str) -> None:
    """torch's TorchScript-based exporter: input `input_name`, output "logits", both with a dynamic batch axis."""
    torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, input_names=[input_name],
                      output_names=["logits"], dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _onnx_log_off() -> None:
    """torch's legacy exporter turns its C++ log on and leaves it on (setup_onnx_logging tests the function, not its
    result): off again, so a later failed export prints no graph."""
    off = getattr(torch._C, "_jit_set_onnx_log_enabled", None)
    if off is not None:
        off(False)


@contextmanager
def _quiet_fds() -> Iterator[None]:
    """stdout and stderr (the file descriptors: the exporter's C++ log writes there, e.g. a whole graph when it
    fails) to /dev/null for a while."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    saved: list[tuple[int, int]] = []
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        for fd in (1, 2):
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(null, fd)
            except OSError:
                pass
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
