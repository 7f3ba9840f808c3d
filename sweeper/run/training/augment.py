"""Training-time data augmentation: random shifts and horizontal flips, per sample, on the trial's device.

One gather does both: each sample's output pixel (i, j) reads its zero-padded input at (i + dy, j' + dx), where
j' is j or 27 - j (flipped), and dy, dx are that sample's offsets in [-shift, shift]. No DataLoader workers and
no Python loop over images. The draws come from the trial's own generator (a CPU torch.Generator whose state
the checkpoint holds), so a trial is reproducible and a resumed one draws what it would have drawn; nothing is
drawn when augmentation is off, so such a trial uses its generator exactly as before augmentation existed.
Evaluation never augments.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def augmenting(shift: int, flip: bool) -> bool:
    return shift > 0 or flip


def augment(x: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """A batch (N, C, H, W) with each image shifted by up to `shift` pixels (zeros fill in) and, with `flip`,
    mirrored left-right with probability 1/2. Labels are unchanged, so the caller keeps its own."""
    if not augmenting(shift, flip):
        return x
    n, _, h, w = x.shape
    if shift > 0:
        offsets = torch.randint(-shift, shift + 1, (2, n), generator=gen).to(x.device)
    else:
        offsets = torch.zeros(2, n, dtype=torch.long, device=x.device)
    cols = torch.arange(w, device=x.device).expand(n, w)
    if flip:
        mirrored = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        cols = torch.where(mirrored[:, None], (w - 1) - cols, cols)
    rows = torch.arange(h, device=x.device).expand(n, h) + shift + offsets[0][:, None]  # (N, H) in padded coords
    cols = cols + shift + offsets[1][:, None]  # (N, W)
    padded = F.pad(x, (shift, shift, shift, shift)) if shift > 0 else x
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
