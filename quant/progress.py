"""Progress off a terminal: how often a long step reports (:data:`PERIOD`) and
:class:`PeriodicLines`, a stderr sink that turns a tqdm bar's in-place refreshes into one
line per refresh, for logs and pipes (``tqdm(file=PeriodicLines(), mininterval=PERIOD)``)."""

from __future__ import annotations

import sys

#: Seconds between two progress lines: no step runs longer than this without a word.
PERIOD = 10.0


class PeriodicLines:
    """A text sink for tqdm: each refresh (``\\r`` + status) becomes one line on stderr;
    blank refreshes (a bar clearing itself) print nothing."""

    def write(self, text: str) -> int:
        line = text.replace("\r", "").strip()
        if line:
            sys.stderr.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()
