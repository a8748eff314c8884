"""``fpim rtl``: write a preset's Verilog and manifest (deterministic) into a directory."""

from __future__ import annotations

import argparse
import json

from fpim.commands.options import accelerator, add_accel
from quant.fileio import check_output, write_atomic

#: The lint every shipped preset's Verilog passes (tests/hw/test_rtl.py, bench/rtl_lint.py).
#: WIDTH: Amaranth leaves operand widths to Verilog's context rules; CASEINCOMPLETE: a core
#: whose rows are not a power of two has a drain multiplexer whose unused select values fall
#: to the default assigned before the case (zero), values the controller never selects.
#: docs/rtl.md lists what -Wall adds.
LINT = ("verilator", "--lint-only", "-Wno-WIDTH", "-Wno-CASEINCOMPLETE")


def lint_command(verilog: str) -> list[str]:
    """The lint of a generated Verilog file, as ``fpim rtl --help`` prints it."""
    return [*LINT, verilog]


EXAMPLES = f"""examples:
  fpim rtl --accel tiny --out rtl                  # rtl/fpim_tiny.v + rtl/fpim_tiny.json
  fpim rtl --accel tiny --set engine.cols=8 --out build/rtl
  {' '.join(lint_command('rtl/fpim_tiny.v'))}
                                                   # lint as the tests do (docs/rtl.md)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rtl", help="emit Verilog of an accelerator preset's GEMM accelerator",
        description="Generate the accelerator top (DSP core, LUT core, post-processors, "
                    "double-buffered load buffers, output buffer, GEMM controller, stream "
                    "ports; docs/rtl.md) of an "
                    "accelerator preset with Amaranth and write <top>.v and <top>.json (a "
                    "manifest: parameters, ports, the bit layout of every stream payload "
                    "(payload_layouts: field, lsb, width, signed), generator versions, input "
                    "hash). The output has no timestamps or absolute paths.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_accel(p)
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hw.generate import generate, top_name

    accel = accelerator(args)
    out = check_output(args.out, "out", directory=True)
    top = top_name(accel)
    for suffix in (".v", ".json"):
        check_output(out / f"{top}{suffix}", "out")
    text, manifest = generate(accel)
    write_atomic(out / f"{top}.v", text)
    write_atomic(out / f"{top}.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out / f'{top}.v'} ({len(text.splitlines())} lines) and "
          f"{out / f'{top}.json'}")
    return 0
