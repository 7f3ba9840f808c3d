"""Your own models: `models: {name: module:function}` read into the space, their YAML values checked against the
factories' annotations, and every reachable architecture built once at the data's shape before anything starts.

A factory is called as `factory(**its keys, input_shape=(C, H, W) or (F,), num_classes=K)` and returns an
`nn.Module` giving (N, K) logits. Its keyword parameters with defaults are the model's trial keys (a built-in
family key such as `dropout` too, when it declares one); one named like a training key (lr, optimizer, ...) is
refused. Reading signatures needs no torch; `check_forward` imports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError
from sweeper.run.training.usercode import Signature, code_hash, describe_error, resolve, roots_of, signature
from sweeper.spec.loader import load, load_text, reachable_configs
from sweeper.spec.params import TRAINING_KEYS, TrialParams
from sweeper.spec.space import Space
from sweeper.spec.usermodels import FACTORY_RESERVED, LOOP_KEYS, TRAINABLE, ModelResolver, UserModel


def read_models(wanted: Mapping[str, str], roots: tuple[str, ...], where: str,
                signatures: dict[str, Signature] | None = None) -> dict[str, UserModel]:
    """Import each factory of `models:` and read its keys (their validators into `signatures`)."""
    out = {}
    for name, ref in wanted.items():
        loop = name == TRAINABLE
        what = f"{where}: key 'trainable'" if loop else f"{where}: key 'models.{name}'"
        fn = resolve(ref, roots, what)
        if loop:  # train(ctx, **params): sweeper's training keys are its own if it declares them
            sig = signature(fn, ref, what, (), refused=LOOP_KEYS, context=True)
        else:
            sig = signature(fn, ref, what, FACTORY_RESERVED, refused=TRAINING_KEYS)
        sha, files, _ = code_hash(ref)
        out[name] = UserModel(name, ref, sig.defaults, sig.whole, sha, files, roots)
        if signatures is not None:
            signatures[name] = sig
    return out


def _values(space: Space) -> Iterable[tuple[str, str, Any]]:
    """(where, key, value) of every value the space gives a key: literals, listed values and ranges, variants."""
    for key, value in space.literals.items():
        yield "parameters", key, value
    for axis in space.axes:
        for value in axis.values:
            yield f"parameters.{axis.key}.{axis.kind}", axis.key, value
    for i, (_, values) in enumerate(space.variants.items()):
        for key, value in values.items():
            yield f"variants[{i}]", key, value


def check_values(space: Space, signatures: Mapping[str, Signature]) -> None:
    """Every YAML value of a user model's key, against each factory's annotation that declares the key."""
    for where, key, value in _values(space):
        for name, sig in signatures.items():
            if key in sig.adapters and (refusal := sig.check(key, value)) is not None:
                owner = f"of {space.trainable.ref}" if name == TRAINABLE and space.trainable else \
                    f"of model {name!r}, {space.models[name].ref}"
                raise SweeperError(f"{space.path}: key {where!r}: {refusal} (got {value!r}; {key!r} {owner})")


def resolver(space_path: Path, signatures: dict[str, Signature], first: tuple[str, ...] = ()) -> ModelResolver:
    """What spec/loader.py asks for a space's `models:`: the factories imported (from the folders in `first`, the
    spec's folder, the working directory, the installed packages) and read."""
    roots = tuple(dict.fromkeys((*first, *roots_of(space_path))))

    def resolve_models(wanted: Mapping[str, str]) -> Mapping[str, UserModel]:
        return read_models(wanted, roots, str(space_path), signatures)

    return resolve_models


def load_space(path: str | Path, text: str | None = None, roots: tuple[str, ...] = ()) -> Space:
    """A search space with its own models read and their values checked: from the file `path`, or from `text` (a
    sweep's spec.yaml, named `path` in errors). Its models are looked up in `roots` first (where they were found
    at launch), then in the folder `path` is in and the working directory."""
    path = Path(path)
    signatures: dict[str, Signature] = {}
    models = resolver(path, signatures, roots)
    space = load(path, models) if text is None else load_text(text, path, models)
    check_values(space, signatures)
    return space


CPU_CHECK_PARAMS = 20_000_000  # up to this many parameters (80 MB) the check runs on the CPU, else on the meta device


def check_forward(space: Space, input_shape: tuple[int, ...], num_classes: int) -> dict[str, int]:
    """Build every reachable architecture once at the data's shape and check it gives (N, num_classes); returns each
    architecture's parameter count. Built-in models are checked too when the data is not Fashion-MNIST.

    Each is first built on the meta device (no memory, no time) to count its parameters; a model of up to
    CPU_CHECK_PARAMS then runs a forward pass of two samples on the CPU (milliseconds; any op works there), a bigger
    one on the meta device (no memory; the first such pass imports torch's symbolic shape machinery, about a
    second)."""
    import torch

    from sweeper.run.training.models import build_model  # torch: only a space with your own code or data gets here

    def forward(p: TrialParams, device: str) -> tuple[Any, int]:
        with torch.device(device), torch.no_grad():
            model = build_model(p, input_shape, num_classes, space.models)
            return model.eval()(torch.zeros(2, *input_shape)), sum(t.numel() for t in model.parameters())

    counts: dict[str, int] = {}
    for config in reachable_configs(space):
        p = space.trial_params(config)
        key = repr((p.model, sorted(p.model_keys().items())))
        if (p.model not in space.models and (space.data_source is None or space.trainable is not None)) \
                or key in counts:
            continue  # built-in models on Fashion-MNIST were checked long ago; your loop builds its own
        shown = {k: v for k, v in config.items() if k != "seed"}
        try:
            with torch.device("meta"):
                size = sum(t.numel() for t in build_model(p, input_shape, num_classes, space.models).parameters())
        except Exception:  # noqa: BLE001 - an init the meta device cannot run: the CPU decides below
            size = 0
        try:
            out, counts[key] = forward(p, "cpu" if size <= CPU_CHECK_PARAMS else "meta")
        except Exception as exc:  # noqa: BLE001 - the user's code: reported as one line
            raise SweeperError(f"{space.path}: trial {shown}: model {p.model!r} cannot be built for input "
                               f"{tuple(input_shape)}: {describe_error(exc, _roots(space, p))}") from None
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, num_classes):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise SweeperError(f"{space.path}: trial {shown}: model {p.model!r}: forward on (2, "
                               f"{', '.join(map(str, input_shape))}) gives {got}, expected (2, {num_classes})")
    return counts


def _roots(space: Space, p: TrialParams) -> tuple[str, ...]:
    model = space.models.get(p.model)
    return model.roots if model is not None else roots_of(space.path)
