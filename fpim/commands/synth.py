"""``fpim synth``: Yosys synth_xilinx of a preset's engine datapath or whole top, measured
next to the model."""

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
from quant.errors import ConfigError

EXAMPLES = """examples:
  fpim synth --accel tiny                      # family from the part (xc7 for XC7Z020)
  fpim synth --accel tiny --family xcup --json
  fpim synth --accel tiny --set engine.lut_scheme=pot
  fpim synth --accel tiny --whole-top          # buffers, memories, walkers, controller too
  fpim synth --accel configs/rtl/mid.yaml --whole-top --json   # about 11 minutes
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="synthesize a preset's engine with Yosys and compare with the model",
        description="Run Yosys synth_xilinx on the generated engine datapath (or, with "
                    "--whole-top, the whole accelerator top) and print LUT (by size), FF, "
                    "CARRY, DSP48, BRAM and LUT RAM counts next to the analytical resource "
                    "model's estimate of the same blocks, with relative error.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_accel(p)
    p.add_argument("--family", choices=("xc7", "xcup"), default=None,
                   help="synth_xilinx family (default: from the part's DSP type)")
    p.add_argument("--yosys", default=None, metavar="PATH", help="yosys binary (default: PATH)")
    p.add_argument("--whole-top", action="store_true",
                   help="synthesize the whole accelerator top (datapath, load buffers, "
                        "parameter memories, output FIFO, walkers, controller) and compare "
                        "with the model's whole-top estimate, memories included; the memory "
                        "mapping model follows Yosys' xc7 rules")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up when Yosys takes longer (default: 600 s for the datapath, "
                        "3600 s for the whole top)")
    add_progress(p)
    add_csv(p, "the comparison table")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fpim.flows.synth import synthesize_engine

    check_csv(args)
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout must be a positive number of seconds, not "
                          f"{args.timeout:g}")
    accel = accelerator(args)
    r = synthesize_engine(accel, args.family, args.yosys, progress(args),
                          whole_top=args.whole_top, timeout=args.timeout)
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
    if r.whole_top:
        print(f"block RAM: {summary['ramb36']} RAMB36 + {summary['ramb18']} RAMB18 measured, "
              f"{r.model['ramb36']} + {r.model['ramb18']} model; LUT RAM cells occupy "
              f"{r.model['lut_memory']} LUTs (model) besides the logic LUTs above")
        print("memories (model): " + ", ".join(
            f"{name} {m['width']}x{m['depth']} -> "
            + (f"{m['cells']} {m['cell']}" if m["cells"] else "flip-flops")
            for name, m in r.model["memories"].items()))
    return 0
