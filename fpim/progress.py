"""Progress of a command's long steps, on stderr. A flow takes a :data:`Progress` from its
command and never prints: ``with progress("step") as report: ... report(done, total)``.
:func:`silent` shows nothing; :func:`bars` draws a tqdm bar that also refreshes its elapsed
time every second, so a step with no counts of its own (a Yosys or Verilator run) is not
silent while it runs; :func:`lines` (for a log file or a pipe) prints one line every
:data:`~quant.progress.PERIOD` seconds while a step runs, so no step is silent for longer.
The command picks one with ``--progress/--no-progress``
(:func:`fpim.commands.options.add_progress`)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from quant.progress import PERIOD

#: ``report(done, total)``: how far a step has come (``total`` 0 when it has no counts).
Report = Callable[[int, int], None]
#: ``progress(step)``: a context in which the step named ``step`` runs and reports.
Progress = Callable[[str], AbstractContextManager[Report]]


def _ignore(done: int, total: int) -> None:
    """A :data:`Report` that shows nothing."""


@contextmanager
def silent(step: str) -> Iterator[Report]:
    """Run ``step`` without showing anything."""
    yield _ignore


@contextmanager
def _every(period: float, tick: Callable[[], None]) -> Iterator[None]:
    """Call ``tick`` every ``period`` seconds (from a thread) until the block ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period):
            tick()

    ticker = threading.Thread(target=loop, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


@contextmanager
def bars(step: str) -> Iterator[Report]:
    """A tqdm bar on stderr for ``step``, removed when it ends."""
    from tqdm import tqdm

    bar = tqdm(desc=step, file=sys.stderr, leave=False, dynamic_ncols=True)

    def report(done: int, total: int) -> None:
        bar.total = total or None
        bar.n = done
        bar.refresh()

    try:
        with _every(1.0, bar.refresh):
            yield report
    finally:
        bar.close()


@contextmanager
def lines(step: str) -> Iterator[Report]:
    """One line on stderr every :data:`~quant.progress.PERIOD` seconds while ``step`` runs
    (how far it has come and for how long); nothing for a step that ends sooner."""
    state = [0, 0]
    start = time.monotonic()

    def tick() -> None:
        done, total = state
        where = f"{done}/{total}" if total else "running"
        sys.stderr.write(f"{step}: {where} ({time.monotonic() - start:.0f} s)\n")
        sys.stderr.flush()

    def report(done: int, total: int) -> None:
        state[:] = [done, total]

    with _every(PERIOD, tick):
        yield report
