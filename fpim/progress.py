"""Progress of a command's long steps, on stderr. A flow takes a :data:`Progress` from its
command and never prints: ``with progress("step") as report: ... report(done, total)``.
:func:`silent` shows nothing; :func:`bars` draws a tqdm bar that also refreshes its elapsed
time every second, so a step with no counts of its own (a Yosys or Verilator run) is not
silent while it runs. The command picks one with ``--progress/--no-progress``
(:func:`fpim.commands.options.add_progress`)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

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
def bars(step: str) -> Iterator[Report]:
    """A tqdm bar on stderr for ``step``, removed when it ends."""
    from tqdm import tqdm

    bar = tqdm(desc=step, file=sys.stderr, leave=False, dynamic_ncols=True)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            bar.refresh()

    def report(done: int, total: int) -> None:
        bar.total = total or None
        bar.n = done
        bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield report
    finally:
        stop.set()
        ticker.join()
        bar.close()
