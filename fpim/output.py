"""Shared output helpers for the CLI: JSON to stdout and aligned text tables."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence

from quant.fileio import write_atomic


def print_json(data: object) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Right-aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table_csv(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """The table as CSV: a header line of ``headers``, then one line per row (None empty)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(headers)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return out.getvalue()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                csv_path: str | None = None, raw: Sequence[Sequence[object]] | None = None
                ) -> None:
    """Print the table; with ``csv_path``, also write it there as CSV (atomically), from
    ``raw`` (unformatted values, default ``rows``)."""
    print(format_table(headers, rows))
    if csv_path is not None:
        write_atomic(csv_path, table_csv(headers, rows if raw is None else raw))

