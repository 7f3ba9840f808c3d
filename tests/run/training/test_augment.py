"""Training-time augmentation: shifts and flips per sample, reproducible, never at evaluation, labels kept."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sweeper.run.training.augment import apply, augment, draw, draw_epoch
from sweeper.run.training.loop import evaluate, train_epoch
from sweeper.spec.params import TrialParams


def images(n: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def shifted(img: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """img (1, 28, 28) moved so that output (i, j) = input (i + dy, j + dx), zeros outside."""
    out = torch.zeros_like(img)
    h, w = img.shape[-2:]
    out[:, max(0, -dy) : min(h, h - dy), max(0, -dx) : min(w, w - dx)] = img[
        :, max(0, dy) : min(h, h + dy), max(0, dx) : min(w, w + dx)]
    return out


def explained(out: torch.Tensor, img: torch.Tensor, shift: int, flip: bool) -> bool:
    """Is `out` some shift of `img` by up to `shift` pixels (of its mirror image too, with flip)?"""
    sources = [img, img.flip(-1)] if flip else [img]
    return any(torch.equal(out, shifted(src, dy, dx)) for src in sources
               for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1))


@pytest.mark.parametrize(("shift", "flip"), [(2, False), (0, True), (1, True)])
def test_each_image_is_shifted_and_or_flipped_on_its_own(shift: int, flip: bool) -> None:
    x = images()
    out = augment(x, shift, flip, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert all(explained(out[i], x[i], shift, flip) for i in range(len(x)))
    assert not torch.equal(out, x)
    changed = [not torch.equal(out[i], x[i]) for i in range(len(x))]
    assert 0 < sum(changed)
    if flip and not shift:  # about half the images are mirrored, the rest left alone
        assert 0 < sum(changed) < len(x)


def test_shifts_differ_between_samples_and_fill_with_zeros() -> None:
    x = torch.ones(64, 1, 28, 28)
    out = augment(x, 3, False, torch.Generator().manual_seed(0))
    blank_rows = (out[:, 0].sum(-1) == 0).sum(-1)  # rows pushed out of the picture, per image
    assert len(set(blank_rows.tolist())) > 1 and blank_rows.max() <= 3


def test_same_generator_state_gives_the_same_augmentation() -> None:
    x = images()
    a = augment(x, 2, True, torch.Generator().manual_seed(5))
    b = augment(x, 2, True, torch.Generator().manual_seed(5))
    c = augment(x, 2, True, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_off_draws_nothing_and_returns_the_batch() -> None:
    x, gen = images(), torch.Generator().manual_seed(3)
    before = gen.get_state()
    assert augment(x, 0, False, gen) is x
    assert torch.equal(gen.get_state(), before)


class Spy(nn.Module):
    """A linear model that keeps every batch it is shown, with the mode it was in."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)
        self.seen: list[tuple[bool, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, x.detach().clone()))
        return self.linear(x.flatten(1))


def batches(p: TrialParams, x: torch.Tensor, y: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The training batches and the evaluation batches a model sees in one epoch + one evaluation."""
    spy = Spy()
    opt = torch.optim.SGD(spy.parameters(), lr=0.01)
    train_epoch(spy, opt, x, y, 8, torch.Generator().manual_seed(0), p)
    evaluate(spy, x, y)
    return [b for t, b in spy.seen if t], [b for t, b in spy.seen if not t]


def test_training_batches_are_augmented_evaluation_batches_never_and_labels_stay_with_their_images() -> None:
    x, y = images(32), torch.arange(32) % 10
    plain_train, plain_eval = batches(TrialParams(), x, y)
    aug_train, aug_eval = batches(TrialParams(augment_shift=2, augment_flip=True), x, y)
    # Evaluation sees the data as it is, augmentation or not.
    assert len(aug_eval) == 1 and torch.equal(aug_eval[0], x) and torch.equal(plain_eval[0], x)
    # Training sees the same images in the same order (the shuffle is drawn first), each one augmented: batch k's
    # image i is a shift/flip of the very image (so the label) it was without augmentation.
    assert len(plain_train) == len(aug_train) == 4
    assert not all(torch.equal(a, b) for a, b in zip(aug_train, plain_train, strict=True))
    for a, b in zip(aug_train, plain_train, strict=True):
        assert all(explained(a[i], b[i], 2, True) for i in range(len(a)))


@pytest.mark.parametrize(("shift", "flip"), [(2, True), (1, False), (0, True)])
def test_an_epochs_draws_at_its_start_are_the_per_batch_draws(shift: int, flip: bool) -> None:
    """draw_epoch gives each batch the numbers per-batch drawing gave it, and leaves the generator where that left
    it; applied slice by slice they augment each batch as `augment` did."""
    sizes = [8, 8, 8, 5]
    x = images(sum(sizes))
    one, epoch = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    per_batch = [augment(x[i : i + n], shift, flip, one) for i, n in zip((0, 8, 16, 24), sizes, strict=True)]
    d = draw_epoch(sizes, shift, flip, epoch)
    assert torch.equal(one.get_state(), epoch.get_state())
    at = 0
    for n, want in zip(sizes, per_batch, strict=True):
        assert torch.equal(apply(x[at : at + n], shift, flip, d[at : at + n]), want)
        at += n
    again = draw(5, shift, flip, torch.Generator().manual_seed(9))
    assert (again.offsets is None) == (shift == 0) and (again.mirrored is None) == (not flip)


def test_training_sees_the_batches_per_batch_augmentation_gave() -> None:
    """train_epoch's batches (the epoch's draws made at its start) are those of the loop as it was: the shuffle,
    then per batch its augmentation from the same generator."""
    x, y = images(30), torch.arange(30) % 10
    p = TrialParams(augment_shift=2, augment_flip=True)
    seen, _ = batches(p, x, y)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(30, generator=gen)
    want = [augment(x[order[i : i + 8]], 2, True, gen) for i in range(0, 30, 8)]
    assert len(seen) == len(want) == 4
    assert all(torch.equal(a, b) for a, b in zip(seen, want, strict=True))
