"""Training-time data augmentation: random shifts and horizontal flips, per sample, on the trial's device.

One gather does both: each sample's output pixel (i, j) reads its zero-padded input at (i + dy, j' + dx), where
j' is j or 27 - j (flipped), and dy, dx are that sample's offsets in [-shift, shift]. No DataLoader workers and
no Python loop over images. The draws come from the trial's own generator (a CPU torch.Generator whose state
the checkpoint holds), so a trial is reproducible and a resumed one draws what it would have drawn; nothing is
drawn when augmentation is off, so such a trial uses its generator exactly as before augmentation existed.
Evaluation never augments.

A training epoch draws all its batches' shifts and flips at its start (`draw_epoch`) and moves them to the device
in one copy, so a trial on a GPU does not wait for a host-to-device copy at every step. The numbers are the very
ones per-batch drawing gave (each batch's offsets, then its flips, batch after batch, from the same generator), and
the generator ends the epoch in the same state: results and checkpoints are those of drawing per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn import functional as F


def augmenting(shift: int, flip: bool) -> bool:
    return shift > 0 or flip


@dataclass(frozen=True)
class Draws:
    """Per sample: its (row, column) offsets in [-shift, shift], (2, N) long (None without shift), and whether it is
    mirrored, (N,) bool (None without flip)."""

    offsets: torch.Tensor | None
    mirrored: torch.Tensor | None

    def __getitem__(self, part: slice) -> Draws:
        return Draws(None if self.offsets is None else self.offsets[:, part],
                     None if self.mirrored is None else self.mirrored[part])

    def to(self, device: torch.device) -> Draws:
        return Draws(None if self.offsets is None else self.offsets.to(device),
                     None if self.mirrored is None else self.mirrored.to(device))


def draw(n: int, shift: int, flip: bool, gen: torch.Generator) -> Draws:
    """One batch's draws for `n` images, on the generator's (CPU) device: offsets first, then flips."""
    offsets = torch.randint(-shift, shift + 1, (2, n), generator=gen) if shift > 0 else None
    mirrored = torch.rand(n, generator=gen) < 0.5 if flip else None
    return Draws(offsets, mirrored)


def draw_epoch(sizes: Sequence[int], shift: int, flip: bool, gen: torch.Generator) -> Draws:
    """The draws of an epoch's batches of these sizes, in order, as one Draws (batch k's are the slice of its
    images): the numbers `draw` gives batch after batch, the generator left where that leaves it."""
    each = [draw(n, shift, flip, gen) for n in sizes]
    return Draws(torch.cat([d.offsets for d in each if d.offsets is not None], 1) if shift > 0 and each else None,
                 torch.cat([d.mirrored for d in each if d.mirrored is not None]) if flip and each else None)


def apply(x: torch.Tensor, shift: int, flip: bool, d: Draws) -> torch.Tensor:
    """A batch (N, C, H, W) shifted and flipped as the draws `d` (on x's device) say."""
    n, _, h, w = x.shape
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip and d.mirrored is not None:
        cols = torch.where(d.mirrored[:, None], (w - 1) - cols, cols)
    rows = torch.arange(h, device=x.device).expand(n, h) + shift
    cols = cols + shift
    if shift > 0 and d.offsets is not None:
        rows = rows + d.offsets[0][:, None]  # (N, H) in padded coords
        cols = cols + d.offsets[1][:, None]  # (N, W)
    padded = F.pad(x, (shift, shift, shift, shift)) if shift > 0 else x
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def augment(x: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """A batch (N, C, H, W) with each image shifted by up to `shift` pixels (zeros fill in) and, with `flip`,
    mirrored left-right with probability 1/2. Labels are unchanged, so the caller keeps its own."""
    if not augmenting(shift, flip):
        return x
    return apply(x, shift, flip, draw(len(x), shift, flip, gen).to(x.device))
