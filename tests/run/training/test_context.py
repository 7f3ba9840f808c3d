"""Your own loop's context without Ray: run_own_loop and TrialContext called directly with loops of this module
(named by the spaces below as `tests.run.training.test_context:<loop>`), and a recording `send` as the rehearsal's.

Exact resume is the point of the RNG envelope: a run stopped after epoch 2 (the send raising a BaseException, as
the rehearsal's Stopped and Ray's stop do) and restarted from epoch 2's checkpoint must report epochs 3 and 4 bit
for bit as the uninterrupted run, with torch (dropout), ctx.generator (randperm), numpy and random all drawn from.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sweeper.run.training.context import CHECKPOINT_FILE, LoopContractError, LoopData, TrialContext
from sweeper.run.training.data import Splits
from sweeper.run.training.factories import load_space
from sweeper.run.training.loop import Tensors
from sweeper.run.training.ownloop import run_own_loop
from sweeper.run.training.rehearsal import Stopped, rehearse
from sweeper.spec.space import Space

EPOCHS = 4
DRAWS = ("draw_torch", "draw_generator", "draw_numpy", "draw_python")  # declared: one per random stream


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tensors of a few dozen rows on one torch thread: two contend with everything else on a shared machine (eight
    times slower here). The count is put back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the loops ---------------------------------------------------------------------------------------------------------

def rng_loop(ctx: Any, *, lr: float = 0.05, width: int = 16, dropout: float = 0.3) -> None:
    """A small MLP trained with dropout (torch's stream), shuffled by ctx.generator, its inputs jittered by numpy and
    its loss scaled by random; each stream's own draw reported too, so a stream not restored shows by name."""
    x, y = ctx.data.train
    model = nn.Sequential(nn.Linear(x.shape[1], width), nn.ReLU(), nn.Dropout(dropout),
                          nn.Linear(width, ctx.data.num_classes))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    if (state := ctx.restore()) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        model.train()
        order = torch.randperm(len(y), generator=ctx.generator)
        total = 0.0
        for start in range(0, len(y), 8):
            idx = order[start:start + 8]
            jitter = torch.from_numpy(np.random.normal(0.0, 0.05, size=tuple(x[idx].shape)).astype(np.float32))
            loss = F.cross_entropy(model(x[idx] + jitter), y[idx]) * (1.0 + 0.1 * random.random())
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(ctx.data.val[0])
        draws = {"draw_torch": torch.rand(1).item(), "draw_generator": torch.rand(1, generator=ctx.generator).item(),
                 "draw_numpy": float(np.random.random()), "draw_python": random.random()}
        ctx.report(epoch, train_loss=total / len(y), val_loss=F.cross_entropy(logits, ctx.data.val[1]).item(),
                   val_accuracy=(logits.argmax(1) == ctx.data.val[1]).float().mean().item(), **draws,
                   checkpoint={"model": model.state_dict(), "opt": opt.state_dict()})
    assert ctx.data.test is not None
    with torch.no_grad():
        logits = model(ctx.data.test[0])
    ctx.finish(test_loss=F.cross_entropy(logits, ctx.data.test[1]).item(),
               test_accuracy=(logits.argmax(1) == ctx.data.test[1]).float().mean().item())


def patient_loop(ctx: Any, *, patience: int = 2) -> None:
    """Stops early after epoch `patience` (its own rule), then reports its test score."""
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        ctx.report(epoch, val_loss=1.0 / epoch, val_accuracy=0.5, checkpoint={"epoch": epoch})
        if epoch == patience:
            ctx.stop_early("no better for a while")
            break
    ctx.finish(test_accuracy=0.25)


def unfinished_loop(ctx: Any, *, until: int = 0) -> None:
    """Reports epochs up to `until` (0: the whole budget) and returns without ctx.finish."""
    for epoch in range(1, (until or ctx.epochs) + 1):
        ctx.report(epoch, val_loss=1.0 / epoch, val_accuracy=0.5)


def tensor_loop(ctx: Any, *, lr: float = 0.1) -> None:
    """Keeps the rules with a checkpoint of one tensor (the rehearsal's good loop)."""
    w = torch.zeros(3)
    if (state := ctx.restore()) is not None:
        w = state["w"]
    for epoch in range(ctx.restored_epoch + 1, ctx.epochs + 1):
        w = w + lr * torch.rand(3)
        ctx.report(epoch, val_loss=float(w.sum()), val_accuracy=0.5, checkpoint={"w": w})
    ctx.finish(test_accuracy=0.5)


# -- helpers -----------------------------------------------------------------------------------------------------------

def space_of(tmp_path: Path, loop: str, metric: str = "val_loss", metrics: str = "",
             parameters: str = "{}") -> Space:
    path = tmp_path / f"{loop}.yaml"
    path.write_text(f"epochs: {EPOCHS}\ntrainable: tests.run.training.test_context:{loop}\nmetric: {metric}\n"
                    f"{metrics}parameters: {parameters}\n")
    return load_space(path)


def rng_space(tmp_path: Path) -> Space:
    return space_of(tmp_path, "rng_loop", metrics=f"metrics: {{{', '.join(f'{d}: max' for d in DRAWS)}}}\n",
                    parameters="{lr: 0.05}")


def tensors(seed: int = 0) -> Tensors:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return Tensors(x[:48], y[:48], x[48:72], y[48:72], x[72:], y[72:], num_classes=2)


def splits_of(data: Tensors) -> Splits:
    assert data.x_test is not None and data.y_test is not None
    def array(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.numpy())

    return Splits(array(data.x_train), array(data.y_train), array(data.x_val), array(data.y_val),
                  array(data.x_test), array(data.y_test))


class Recorder:
    """A `send`: every result in order, each checkpoint saved into a folder of its epoch; `stop_after`: raise
    Stopped (a BaseException) once that epoch is sent, as the rehearsal stops a loop."""

    def __init__(self, root: Path, stop_after: int | None = None) -> None:
        self.root, self.stop_after = root, stop_after
        self.results: list[dict[str, Any]] = []
        self.saved: dict[int, Path] = {}

    def __call__(self, result: dict[str, Any], save: Callable[[Path], None] | None) -> None:
        self.results.append(result)
        if save is not None:
            folder = self.root / f"epoch{result['epoch']}"
            folder.mkdir(parents=True, exist_ok=True)
            save(folder)
            self.saved[result["epoch"]] = folder
        if self.stop_after is not None and result["epoch"] >= self.stop_after:
            raise Stopped


def run(space: Space, root: Path, stop_after: int | None = None, restore_from: Path | None = None,
        data: Tensors | None = None, epochs: int = EPOCHS) -> tuple[Recorder, TrialContext | None]:
    sent = Recorder(root, stop_after)
    try:
        ctx = run_own_loop(space, space.trial_params({}), data or tensors(), epochs, sent, restore_from)
    except Stopped:
        return sent, None
    return sent, ctx


def scores(result: dict[str, Any]) -> dict[str, Any]:
    """A result less what differs between runs by nature (the clock, where it was restored from)."""
    return {k: v for k, v in result.items() if k not in ("time_s", "reported_at", "restored_from")}


def bare(send: Callable[[dict[str, Any], Callable[[Path], None] | None], None], epochs: int = 3,
         metric: str = "val_f1", restore_from: Path | None = None) -> TrialContext:
    """A TrialContext of its own (no loop around it), declaring val_f1."""
    data = tensors()
    loop_data = LoopData((data.x_train, data.y_train), (data.x_val, data.y_val), None, data.input_shape, 2)
    return TrialContext(data=loop_data, device=torch.device("cpu"), epochs=epochs, seed=0, metric=metric,
                        declared={"val_f1": "max"}, send=send, restore_from=restore_from)


# -- (a) exact resume --------------------------------------------------------------------------------------------------

def test_a_restart_from_epoch_2_reports_epochs_3_and_4_exactly_as_the_uninterrupted_run(tmp_path: Path) -> None:
    space = rng_space(tmp_path)
    whole, _ = run(space, tmp_path / "whole")
    assert [r["epoch"] for r in whole.results] == [1, 2, 3, 4]

    first, ctx = run(space, tmp_path / "first", stop_after=2)
    assert ctx is None and [r["epoch"] for r in first.results] == [1, 2]
    assert [scores(r) for r in first.results] == [scores(r) for r in whole.results[:2]]  # same seed, same start
    # the streams elsewhere in the process moved on meanwhile: a restart must not depend on where they are
    torch.rand(100), np.random.random(100), random.random()

    resumed, ctx = run(space, tmp_path / "resumed", restore_from=first.saved[2])

    assert ctx is not None and ctx.restored and ctx.restored_epoch == 2
    assert [r["epoch"] for r in resumed.results] == [3, 4]
    assert all(r["restored_from"] == 2 for r in resumed.results)
    for got, want in zip(resumed.results, whole.results[2:], strict=True):
        assert set(got) == set(want)
        for name in scores(want):  # float equality: every stream went on where it stopped
            assert got[name] == want[name], (got["epoch"], name, got[name], want[name])
    assert {*DRAWS, "train_loss", "val_loss", "val_accuracy", "test_loss", "test_accuracy"} <= set(whole.results[-1])


def test_a_restart_without_the_rng_envelope_would_differ(tmp_path: Path) -> None:
    """The control for the exact-resume test: epoch 3 from fresh streams is not epoch 3 of the uninterrupted run
    (its draws are not constants that any restart would repeat)."""
    space = rng_space(tmp_path)
    whole, _ = run(space, tmp_path / "whole")
    fresh, _ = run(space, tmp_path / "fresh", stop_after=1)

    assert all(fresh.results[0][d] != whole.results[2][d] for d in DRAWS)
    assert len({r["draw_numpy"] for r in whole.results}) == EPOCHS


# -- (b) the final report ----------------------------------------------------------------------------------------------

def test_b_the_budgets_last_epoch_is_held_until_finish_and_carries_the_final_scores(tmp_path: Path) -> None:
    sent: list[tuple[dict[str, Any], bool]] = []
    ctx = bare(lambda r, save: sent.append((r, save is not None)), epochs=3)
    for epoch in (1, 2, 3):
        ctx.report(epoch, val_f1=0.1 * epoch, val_loss=1.0, checkpoint={"epoch": epoch})

    assert [r["epoch"] for r, _ in sent] == [1, 2]  # epoch 3 waits for the final scores
    ctx.finish(test_f1=0.7, test_accuracy=0.8, test_loss=0.5)

    assert [r["epoch"] for r, _ in sent] == [1, 2, 3]
    last, saved = sent[-1]
    assert saved and last["finished"] is True and last["early_stopped"] is False
    assert (last["val_f1"], last["test_f1"], last["test_accuracy"], last["test_loss"]) == (0.1 * 3, 0.7, 0.8, 0.5)
    assert all("finished" not in r and not any(k.startswith("test_") for k in r) for r, _ in sent[:-1])
    ctx.close()  # after finish: nothing more
    assert len(sent) == 3


def test_b_run_own_loop_ends_on_the_budgets_last_epoch_with_the_test_scores(tmp_path: Path) -> None:
    sent, ctx = run(rng_space(tmp_path), tmp_path / "runs")

    assert ctx is not None and ctx.finished
    last = sent.results[-1]
    assert last["epoch"] == EPOCHS and last["finished"] is True and last["early_stopped"] is False
    assert isinstance(last["test_loss"], float) and 0.0 <= last["test_accuracy"] <= 1.0
    assert sorted(sent.saved) == [1, 2, 3, 4]  # the held epoch's checkpoint goes out with it
    assert sum("finished" in r for r in sent.results) == 1


def test_b_a_trials_own_max_epochs_lowers_the_budget(tmp_path: Path) -> None:
    space = space_of(tmp_path, "tensor_loop", parameters="{max_epochs: 2}")
    sent, ctx = run(space, tmp_path / "runs")

    assert ctx is not None and ctx.epochs == 2
    assert [r["epoch"] for r in sent.results] == [1, 2] and sent.results[-1]["finished"] is True
    assert sent.results[-1]["early_stopped"] is False


# -- (c) stop_early --------------------------------------------------------------------------------------------------

def test_c_stop_early_ends_finished_and_early_stopped_with_the_test_scores(tmp_path: Path) -> None:
    sent, ctx = run(space_of(tmp_path, "patient_loop"), tmp_path / "runs")

    assert ctx is not None and ctx.finished
    assert [r["epoch"] for r in sent.results] == [1, 2, 2]  # the end repeats the last epoch's metrics
    end = sent.results[-1]
    assert end["finished"] is True and end["early_stopped"] is True and end["test_accuracy"] == 0.25
    assert end["val_loss"] == sent.results[1]["val_loss"] == 0.5
    assert "finished" not in sent.results[1]


# -- (d) no finish ---------------------------------------------------------------------------------------------------

def test_d_a_loop_that_returns_without_finish_still_ends_finished(tmp_path: Path) -> None:
    sent, ctx = run(space_of(tmp_path, "unfinished_loop"), tmp_path / "runs")

    assert ctx is not None and ctx.finished
    assert [r["epoch"] for r in sent.results] == [1, 2, 3, 4]
    end = sent.results[-1]
    assert end["finished"] is True and end["early_stopped"] is False
    assert not any(k.startswith("test_") for k in end)


def test_d_a_loop_that_returns_early_without_finish_ends_early_stopped(tmp_path: Path) -> None:
    sent, ctx = run(space_of(tmp_path, "unfinished_loop", parameters="{until: 2}"), tmp_path / "runs")

    assert ctx is not None and ctx.finished
    assert [r["epoch"] for r in sent.results] == [1, 2, 2]
    assert sent.results[-1]["finished"] is True and sent.results[-1]["early_stopped"] is True


# -- (e) the contract --------------------------------------------------------------------------------------------------

def _report(ctx: TrialContext, epoch: Any, **metrics: Any) -> None:
    ctx.report(epoch, **({"val_f1": 0.5} | metrics))


def _twice(c: TrialContext) -> None:
    _report(c, 1)
    _report(c, 1)


def _beyond(c: TrialContext) -> None:
    for epoch in (1, 2, 3, 4):
        _report(c, epoch)


def _finish_twice(c: TrialContext) -> None:
    _report(c, 1)
    c.finish()
    c.finish()


def _report_after_finish(c: TrialContext) -> None:
    _report(c, 1)
    c.finish()
    _report(c, 2)


def _finish_val(c: TrialContext) -> None:
    _report(c, 1)
    c.finish(val_f1=0.3)


CONTRACT: list[tuple[str, Callable[[TrialContext], object], str]] = [
    ("epoch-skipped", lambda c: _report(c, 2),
     "ctx.report(epoch=2): epochs are reported in order, one per call; after the start the next is 1"),
    ("epoch-repeated", _twice, "ctx.report(epoch=1): epochs are reported in order, one per call; after epoch 1 the "
                               "next is 2"),
    ("epoch-not-int", lambda c: _report(c, 1.0), "epochs are reported in order"),
    ("epoch-bool", lambda c: _report(c, True), "epochs are reported in order"),
    ("beyond-budget", _beyond, "ctx.report(epoch=4): beyond this trial's budget, ctx.epochs=3"),
    ("unknown-metric", lambda c: _report(c, 1, val_auc=0.9),
     "'val_auc' is neither a standard metric nor declared under `metrics:` (it may report train_loss, "
     "train_accuracy, val_loss, val_accuracy, val_f1)"),
    ("test-metric-per-epoch", lambda c: _report(c, 1, test_f1=0.9), "'test_f1' is neither a standard metric"),
    ("missing-metric", lambda c: c.report(1, val_loss=0.3),
     "ctx.report(epoch=1): the sweep's metric 'val_f1' is missing (reported: val_loss)"),
    ("not-a-number", lambda c: _report(c, 1, val_loss="low"), "val_loss='low' is not a number"),
    ("checkpoint-not-a-dict", lambda c: c.report(1, val_f1=0.5, checkpoint=[torch.zeros(1)]),  # type: ignore[arg-type]
     "checkpoint must be a dict (of tensors, numbers, strings), not list"),
    ("finish-twice", _finish_twice, "ctx.finish(): called twice"),
    ("report-after-finish", _report_after_finish, "ctx.report(epoch=2): called after ctx.finish()"),
    ("finish-not-a-final-score", _finish_val,
     "ctx.finish(): 'val_f1' is not a final score (it may report test_loss, test_accuracy, test_f1)"),
    ("ended-without-reporting", lambda c: c.close(), "the loop ended without reporting an epoch"),
]


@pytest.mark.parametrize(("act", "message"), [(a, m) for _, a, m in CONTRACT], ids=[i for i, _, _ in CONTRACT])
def test_e_a_broken_rule_raises_loop_contract_error(act: Callable[[TrialContext], object], message: str) -> None:
    sent: list[dict[str, Any]] = []
    ctx = bare(lambda r, save: sent.append(r), epochs=3)

    with pytest.raises(LoopContractError) as raised:
        act(ctx)

    assert message in str(raised.value), str(raised.value)


def test_e_a_refused_report_sends_nothing_and_moves_no_epoch() -> None:
    sent: list[dict[str, Any]] = []
    ctx = bare(lambda r, save: sent.append(r), epochs=3)
    for bad in ({"val_auc": 0.1}, {"val_loss": 0.2, "val_f1": "x"}):
        with pytest.raises(LoopContractError):
            ctx.report(1, **({"val_f1": 0.5} | bad))
    assert sent == [] and ctx.last_epoch == 0

    ctx.report(1, val_f1=0.5)  # the same epoch, now right
    assert [r["epoch"] for r in sent] == [1]


def test_e_a_restarted_loop_must_go_on_at_restored_epoch_plus_one(tmp_path: Path) -> None:
    ctx = bare(lambda r, save: save(tmp_path) if save else None)
    ctx.report(1, val_f1=0.5, checkpoint={"w": torch.ones(2)})
    again = bare(lambda r, save: None, restore_from=tmp_path)

    with pytest.raises(LoopContractError, match=r"after epoch 1 the next is 2 \(restored from epoch 1: go on at "
                                                r"ctx.restored_epoch \+ 1\)"):
        again.report(1, val_f1=0.5)


# -- (f) the checkpoint file -----------------------------------------------------------------------------------------

def test_f_the_checkpoint_loads_weights_only_with_the_users_dict_and_sweepers_envelope(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []

    def send(result: dict[str, Any], save: Callable[[Path], None] | None) -> None:
        sent.append(result)
        assert save is not None
        save(tmp_path)

    ctx = bare(send)
    w = torch.arange(3.0)
    ctx.report(1, val_f1=0.5, val_loss=torch.tensor(0.25), checkpoint={"w": w, "step": 7, "name": "mlp",
                                                                       "hist": [1.0, 2.0], "opt": {"lr": 0.1}})
    w.add_(100.0)  # the loop goes on changing its tensors: the checkpoint is what they were at the report

    saved = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)

    assert set(saved) == {"user", "sweeper"}
    user = saved["user"]
    assert torch.equal(user["w"], torch.arange(3.0))
    assert (user["step"], user["name"], user["hist"], user["opt"]) == (7, "mlp", [1.0, 2.0], {"lr": 0.1})
    envelope = saved["sweeper"]
    assert set(envelope) == {"epoch", "rng", "metrics"} and envelope["epoch"] == 1
    assert {"torch", "generator", "numpy", "python"} <= set(envelope["rng"])
    assert envelope["metrics"]["val_f1"] == 0.5 and envelope["metrics"]["val_loss"] == 0.25
    assert sent[0]["val_loss"] == 0.25 and isinstance(sent[0]["val_loss"], float)

    restored = bare(lambda r, save: None, restore_from=tmp_path)
    assert restored.restored_epoch == 1 and not restored.restored
    back = restored.restore()
    assert back is not None and restored.restored and torch.equal(back["w"], torch.arange(3.0))


def test_f_a_restart_from_a_folder_without_a_checkpoint_starts_fresh(tmp_path: Path) -> None:
    ctx = bare(lambda r, save: None, restore_from=tmp_path)

    assert ctx.restore() is None and ctx.restored_epoch == 0 and not ctx.restored


# -- (g) the rehearsal -------------------------------------------------------------------------------------------------

def test_g_rehearse_a_good_loop_breaks_no_rule_and_gives_its_pace(tmp_path: Path) -> None:
    space = rng_space(tmp_path)

    def draws() -> tuple[list[float], list[float], float]:
        return torch.rand(3).tolist(), np.random.random(3).tolist(), random.random()

    def seed() -> None:
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)

    seed()
    expected = draws()
    seed()
    torch.set_num_threads(3)  # not the trial's one thread (resources.cpu 1): the rehearsal puts this back

    seen = rehearse(space, splits_of(tensors()))

    assert seen.broken == [] and seen.notes == []
    assert seen.seconds_per_sample > 0
    assert draws() == expected and torch.get_num_threads() == 3  # the streams and the thread count put back


def test_g_rehearse_notes_a_loop_without_checkpoints(tmp_path: Path) -> None:
    seen = rehearse(space_of(tmp_path, "unfinished_loop"), splits_of(tensors()))

    assert seen.broken == [] and seen.seconds_per_sample > 0
    assert len(seen.notes) == 1 and "epoch 1 was reported without a checkpoint" in seen.notes[0]
