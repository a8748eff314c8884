"""Verilator lint of every shipped preset's generated Verilog: the lint ``fpim rtl --help``
prints (must pass) and ``-Wall`` (warnings counted by kind). Prints a markdown table; with
``--write-docs`` it replaces the table in docs/rtl.md (between the ``lint-counts`` markers),
so the counts there are always the ones this script measured.

    .venv/bin/python bench/rtl_lint.py [--presets tiny xc7z020 ...] [--write-docs]

Generating the large presets takes minutes (xc7z045 about 200 s on this machine).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fpim.commands.rtl import lint_command  # noqa: E402
from hw.generate import generate  # noqa: E402
from quant.fileio import write_atomic  # noqa: E402
from sim.config import load_accelerator, preset_names  # noqa: E402

DOCS = ROOT / "docs" / "rtl.md"
START, END = "<!-- lint-counts:start -->", "<!-- lint-counts:end -->"
WARNING = re.compile(r"^%Warning-([A-Z]+):", re.M)


def lint(preset: str, workdir: Path) -> tuple[bool, Counter[str]]:
    """Whether the ``--help`` lint passes on ``preset``'s Verilog, and ``-Wall``'s warnings
    by kind."""
    text, manifest = generate(load_accelerator(preset))
    path = workdir / f"{manifest['top']}.v"
    path.write_text(text)
    ok = subprocess.run(lint_command(str(path)), capture_output=True, check=False).returncode
    wall = subprocess.run(["verilator", "--lint-only", "-Wall", str(path)], capture_output=True,
                          text=True, check=False)
    return ok == 0, Counter(WARNING.findall(wall.stderr))


def table(results: dict[str, tuple[bool, Counter[str]]]) -> str:
    kinds = sorted({k for _, c in results.values() for k in c})
    head = "| preset | `fpim rtl --help` lint | " + " | ".join(f"`{k}`" for k in kinds) + " |"
    rows = [head, "|---|---|" + "---|" * len(kinds)]
    for name, (ok, counts) in results.items():
        rows.append(f"| `{name}` | {'passes' if ok else 'FAILS'} | "
                    + " | ".join(f"{counts[k]:,}" for k in kinds) + " |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=preset_names())
    ap.add_argument("--write-docs", action="store_true",
                    help=f"replace the table in {DOCS.relative_to(ROOT)}")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {p: lint(p, Path(tmp)) for p in args.presets}
    text = table(results)
    print(" ".join(lint_command("<top>.v")))
    print(text)
    if args.write_docs:
        doc = DOCS.read_text()
        before, rest = doc.split(START, 1)
        _, after = rest.split(END, 1)
        write_atomic(DOCS, f"{before}{START}\n{text}\n{END}{after}")
    return 0 if all(ok for ok, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
