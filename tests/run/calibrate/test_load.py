"""The calibration's helper pool (run/calibrate/load.py) never waits forever on a helper that is alive but stuck:
one that never says "ready", one that stops reading its input, one that ignores its input's end. Each is killed at
its deadline (short ones here) and the pool goes on with the others.

The stuck helpers are plain `python -c` processes; a real helper beside them shows that the pool still loads with
the ones that work.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import pytest

from sweeper.run.calibrate.load import Load

ARCH = "model=logreg batch_size=32"
SILENT = [sys.executable, "-c", "import sys\nfor _ in sys.stdin: pass"]  # reads, never says ready, exits at EOF
DEAF = [sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"]


def bounded(action: Callable[[], None], limit: float = 60) -> None:
    """Run `action` in a thread; fail (rather than hang the suite) if it has not returned within `limit`."""
    done = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(limit), f"still waiting on a helper after {limit}s: the pool is not bounded"
    if failure:
        raise failure[0]


@pytest.fixture
def pools() -> list[Load]:
    """Pools a test made; their helpers are killed at the end whatever happened."""
    made: list[Load] = []
    yield made  # type: ignore[misc]
    for load in made:
        for h in load.helpers:
            if h.poll() is None:
                h.kill()
            h.wait(timeout=30)


def test_a_helper_that_never_gets_ready_is_killed_and_the_pool_goes_on(pools: list[Load],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    load = Load(2, 1, ready_s=0.5, exit_s=5, command=SILENT)
    pools.append(load)
    load.__enter__()
    bounded(lambda: load.train(ARCH))
    assert all(h.wait(timeout=30) is not None for h in load.helpers)  # killed, not left running
    assert len(load.killed) == 2 and all("did not get ready with model=logreg" in k for k in load.killed)
    assert "killed, the timing goes on with less load" in capsys.readouterr().err
    bounded(lambda: load.__exit__(None, None, None))


def test_a_helper_that_stops_reading_its_input_is_killed(pools: list[Load]) -> None:
    load = Load(1, 1, ready_s=30, write_s=0.5, exit_s=5, command=DEAF)
    pools.append(load)
    load.__enter__()
    helper = load.helpers[0]
    bounded(lambda: load._say(helper, "x" * (1 << 20)))  # more than a pipe holds: only a reader could take it
    assert helper.wait(timeout=30) is not None
    assert load.killed == [f"helper {helper.pid} did not read its input in 0.5s (stuck?)"]
    bounded(lambda: load.train(ARCH))  # a dead helper is skipped, not waited on


def test_a_helper_that_ignores_the_end_of_its_input_is_killed_at_exit(pools: list[Load]) -> None:
    load = Load(1, 1, exit_s=0.5, command=DEAF)
    pools.append(load)
    load.__enter__()
    bounded(lambda: load.__exit__(None, None, None))
    assert load.helpers[0].poll() is not None
    assert load.killed == [f"helper {load.helpers[0].pid} did not exit in 0.5s after its input closed"]


@pytest.mark.e2e  # a real helper trains (torch) beside a stuck one
def test_real_helpers_still_load_beside_a_stuck_one(pools: list[Load]) -> None:
    real = Load(1, 1, ready_s=120, exit_s=30)
    stuck = Load(1, 1, ready_s=0.5, exit_s=5, command=SILENT)
    pools.extend([real, stuck])
    with real, stuck:
        bounded(lambda: (real.train(ARCH), stuck.train(ARCH)) and None, limit=180)
        assert real.helpers[0].poll() is None and real.killed == []  # training ARCH, as load
        assert stuck.helpers[0].wait(timeout=30) is not None and len(stuck.killed) == 1
