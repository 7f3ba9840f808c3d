"""Progress of a sweep (a Tracker, tracker.py) drawn as a live panel or as plain lines.

While a sweep runs, the Parquet recorder (run/driver/recorder.py) calls a LiveView's hooks from Ray's driver loop:
start(space, folder, rows), trial_started(row), trial_result(row), trial_ended(row, line),
experiment_ended(rows), tick() on every turn of the loop, and close() when the sweep returns. Rows are
trials.parquet rows as the writer holds them. On a terminal LiveView redraws a panel: trials by state, each
running trial's epoch and metric, the best so far, elapsed and estimated time left. With quiet=True, or when
stdout is not a terminal (logs, CI), it prints plain lines instead: one per trial that ends and a progress line
at most every `every_s` seconds. `sweeper status` draws the same panel once from a sweep's files (status.py).
Only rich is imported here.
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sweeper.spec.cost import cost
from sweeper.spec.space import Space
from sweeper.store.state import read_state
from sweeper.store.storage import SweepFolder
from sweeper.store.trials import Ended, ended_of, present
from sweeper.watch.tracker import Tracker, counts_text, duration, use_time_model


def _value(value: Any) -> str:
    if not present(value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _trial_name(row: dict[str, Any]) -> str:
    variant = row.get("variant")
    return f"trial {row['trial_id']}" + (f" ({variant})" if present(variant) else "")


def summary_line(t: Tracker, now: float | None = None) -> str:
    """The progress as one plain line (quiet mode, logs)."""
    rows = t.snapshot()
    c = t.counts(rows)
    ended = sum(n for e, n in c.items() if e.finished)
    text = f"{t.name}: {ended}/{max(t.total, len(rows))} trials ended; {counts_text(c)}"
    best = t.best(rows)
    if best is not None:
        text += f"; best {t.metric}={float(best[t.metric]):.4f} ({_trial_name(best)})"
    text += f"; elapsed {duration(t.elapsed(now))}"
    left = t.left(now)
    if left is not None and t.finished_at is None:
        text += f", about {duration(left)} left"
    return text


def _running_table(t: Tracker, rows: list[dict[str, Any]], max_rows: int) -> RenderableType:
    running = sorted((r for r in rows if ended_of(r) == Ended.RUNNING), key=lambda r: str(r["trial_id"]))
    has_variant = any(present(r.get("variant")) for r in running)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("running trial", no_wrap=True)
    if has_variant:
        table.add_column("variant", overflow="ellipsis", max_width=24)
    for key in t.varied:
        table.add_column(key, overflow="ellipsis", max_width=16)
    table.add_column("epoch", justify="right", no_wrap=True)
    table.add_column(t.metric, justify="right", no_wrap=True)
    for row in running[:max_rows]:
        cells = [str(row["trial_id"])]
        cells += [_value(row.get("variant"))] if has_variant else []
        cells += [_value(row.get(f"param_{k}")) for k in t.varied]
        metric = row.get(t.metric)
        cells += [f"{int(row.get('epochs') or 0)}/{t.budget(row)}",
                  f"{float(metric):.4f}" if metric is not None and present(metric) else "-"]
        table.add_row(*cells)
    if len(running) > max_rows:
        return Group(table, Text(f"... and {len(running) - max_rows} more running"))
    return table


def panel(t: Tracker, now: float | None = None, max_rows: int = 10) -> RenderableType:
    """The live view's frame; `sweeper status` prints one."""
    rows = t.snapshot()
    c = t.counts(rows)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold", no_wrap=True)
    head.add_column()
    timing = f"elapsed {duration(t.elapsed(now))}"
    left = t.left(now)
    if t.finished_at is None:
        timing += f", about {duration(left)} left" if left is not None else ", time left: estimating"
    head.add_row("sweep", f"{t.name}: {t.state}, {timing}")
    shown = (Ended.COMPLETED, Ended.ERROR, Ended.RUNNING, Ended.PENDING)  # listed even at 0; others when they occur
    head.add_row("trials", f"{max(t.total, len(rows))}: {counts_text(c, shown)}")
    done = t.epochs_done(rows)
    if t.cost is not None and t.cost.expected > 0:
        expected = max(t.cost.expected, float(done))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=expected, completed=done, width=24),
                    Text(f"{done} of about {expected:.0f}"))
        head.add_row("trial-epochs", bar)
    else:
        head.add_row("trial-epochs", str(done))
    best = t.best(rows)
    if best is not None:
        head.add_row("best", f"{t.metric} {float(best[t.metric]):.4f}, {_trial_name(best)}")
    for label, note in t.notes:
        head.add_row(label, Text(note))
    if c[Ended.RUNNING]:
        return Group(head, Text(""), _running_table(t, rows, max_rows))
    return head


class LiveView:
    """The progress hooks the recorder calls; draws a live panel on a terminal, plain lines otherwise."""

    def __init__(self, console: Console, quiet: bool = False, every_s: float = 30.0, max_rows: int = 10,
                 live: bool | None = None, show_output: bool = False) -> None:
        self.console = console
        self.live = (not quiet and console.is_terminal) if live is None else live
        self.every_s, self.max_rows = every_s, max_rows
        self.show_output = show_output  # --verbose: let Ray's prints through the live panel
        self.tracker: Tracker | None = None
        self._live: Live | None = None
        self._last_line = time.monotonic()

    def _plain(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def frame(self) -> RenderableType:
        return panel(self.tracker, max_rows=self.max_rows) if self.tracker else Text("")

    def start(self, space: Space, folder: SweepFolder, rows: list[dict[str, Any]]) -> None:
        c = cost(space)
        varied = tuple(a.key for a in space.axes)
        t = Tracker(name=space.name, metric=space.spec.metric, mode=space.spec.mode, total=space.num_trials,
                    epochs=space.spec.epochs, varied=varied, cost=c)
        use_time_model(t, space, read_state(folder) or {})
        for row in rows:
            t.update(row)
        self.tracker = t
        self._last_line = time.monotonic()
        ended = sum(1 for r in rows if ended_of(r).finished)
        plan = f"sweep {t.name}: {t.total} trials, at most {c.full} trial-epochs"
        if c.asha:
            plan += f", about {c.expected:.0f} expected under ASHA"
        # before anything runs: what, how long, and how to stop without losing anything
        left = t.left()
        lines = [plan + (f"; {ended} trials already ended" if ended else "")]
        lines += [f"expected to take about {duration(left)} more on this machine"] if left and left >= 1 else []
        lines.append(f"Ctrl-C stops it, state saved; `sweeper resume {t.name}` goes on")
        for line in lines:
            if self.live:  # wrapped to the terminal, as the panel below
                self.console.print(line, markup=False, highlight=False)
            else:
                self._plain(line)
        if self.live:
            self._live = Live(console=self.console, get_renderable=self.frame, refresh_per_second=2,
                              redirect_stdout=self.show_output, redirect_stderr=self.show_output)
            self._live.start()

    def refresh(self) -> None:
        """Redraw the panel now (it also redraws itself twice a second); nothing in plain mode."""
        if self._live is not None:
            self._live.refresh()

    def _heartbeat(self) -> None:
        if not self.live and self.tracker and time.monotonic() - self._last_line >= self.every_s:
            self._last_line = time.monotonic()
            self._plain("progress: " + summary_line(self.tracker))

    def tick(self) -> None:
        """Called on every turn of Ray's driver loop."""
        self._heartbeat()

    def trial_started(self, row: dict[str, Any]) -> None:
        if self.tracker:
            self.tracker.update(row)
        self._heartbeat()

    def trial_result(self, row: dict[str, Any]) -> None:
        if self.tracker:
            self.tracker.update(row, result=True)
        self._heartbeat()

    def trial_ended(self, row: dict[str, Any], line: str) -> None:
        if self.tracker is None:
            self._plain(line)
            return
        self.tracker.update(row)
        ended = sum(n for e, n in self.tracker.counts().items() if e.finished)
        text = f"[{ended}/{max(self.tracker.total, ended)}] {line}"
        if self.live:  # above the panel, folded to the console's width
            self.console.print(text, markup=False, highlight=False, overflow="fold")
        else:  # one line per trial, whatever its length: logs stay greppable
            self._plain(text)

    def experiment_ended(self, rows: list[dict[str, Any]]) -> None:
        if self.tracker is None:
            return
        for row in rows:
            self.tracker.update(row)
        c = self.tracker.counts()
        self.tracker.state = "finished" if all(e.finished for e, n in c.items() if n) else "interrupted"
        self.tracker.finished_at = time.time()

    def close(self) -> None:
        if self.tracker is not None and self.tracker.finished_at is None:  # the sweep raised: Ray never ended it
            self.tracker.finished_at, self.tracker.state = time.time(), "failed"
        if self._live is not None:
            self._live.stop()
            self._live = None
        elif self.tracker is not None:
            self._plain("progress: " + summary_line(self.tracker))
