"""``fpim synth``: Yosys synth_xilinx of a preset's engine, measured next to the model."""

from __future__ import annotations

import argparse

from fpim.commands.options import (
    accelerator,
    add_accel,
    add_csv,
    add_json,
    add_progress,
    check_csv,
    progress,
)
from fpim.output import print_json, print_table

EXAMPLES = """examples:
  fpim synth --accel tiny                      # family from the part (xc7 for XC7Z020)
  fpim synth --accel tiny --family xcup --json
  fpim synth --accel tiny --set engine.lut_scheme=pot
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="synthesize a preset's engine with Yosys and compare with the model",
        description="Run Yosys synth_xilinx on the generated engine datapath and print LUT "
                    "(by size), FF, CARRY, DSP48 and BRAM counts next to the analytical "
                    "resource model's estimate of the same blocks, with relative error.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_accel(p)
    p.add_argument("--family", choices=("xc7", "xcup"), default=None,
                   help="synth_xilinx family (default: from the part's DSP type)")
    p.add_argument("--yosys", default=None, metavar="PATH", help="yosys binary (default: PATH)")
    add_progress(p)
    add_csv(p, "the comparison table")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fpim.flows.synth import synthesize_engine

    check_csv(args)
    accel = accelerator(args)
    r = synthesize_engine(accel, args.family, args.yosys, progress(args))
    if args.json:
        print_json({"accel": accel.name, "top": r.top, "family": r.family,
                    "seconds": round(r.measured.seconds, 2), "scope": r.scope,
                    "measured": r.measured.to_dict(), "model": r.model,
                    "comparison": r.comparison})
        return 0
    print(f"{r.top} on {r.family}: yosys synth_xilinx took {r.measured.seconds:.1f} s")
    print(f"scope: {r.scope}")
    cols = ("resource", "measured", "model", "rel_error")
    print_table(cols, [(c["resource"], c["measured"], c["model"],
                        "-" if c["rel_error"] is None else f"{100 * c['rel_error']:+.1f}%")
                       for c in r.comparison], args.csv,
                [tuple(c[k] for k in cols) for c in r.comparison])
    summary = r.measured.summary
    print("LUTs by size: " + ", ".join(f"{k} {v}" for k, v in summary["lut_by_size"].items()))
    print(f"CARRY {summary['carry']}, MUXF7 {summary['muxf7']}, MUXF8 {summary['muxf8']}")
    return 0
