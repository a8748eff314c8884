"""``fpim synth``: Yosys synth_xilinx of a preset's engine, measured next to the model."""

from __future__ import annotations

import argparse

from fpim.output import format_table, print_json
from sim.config import load_accelerator

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
    p.add_argument("--accel", required=True, metavar="PRESET_OR_YAML",
                   help="accelerator preset (e.g. tiny) or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. engine.cols=8 (repeatable)")
    p.add_argument("--family", choices=("xc7", "xcup"), default=None,
                   help="synth_xilinx family (default: from the part's DSP type)")
    p.add_argument("--yosys", default=None, metavar="PATH", help="yosys binary (default: PATH)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hw.generate import generate
    from hw.model import compare, datapath_model
    from hw.synth import synthesize

    accel = load_accelerator(args.accel, args.overrides)
    family = args.family or accel.part.family
    text, manifest = generate(accel, datapath_only=True)
    res = synthesize(text, manifest["top"], family, yosys=args.yosys)
    model = datapath_model(accel)
    rows = compare(res.summary, model)
    if args.json:
        print_json({"accel": accel.name, "top": manifest["top"], "family": family,
                    "seconds": round(res.seconds, 2), "scope": manifest["scope"],
                    "measured": res.to_dict(), "model": model, "comparison": rows})
        return 0
    print(f"{manifest['top']} on {family}: yosys synth_xilinx took {res.seconds:.1f} s")
    print(f"scope: {manifest['scope']}")
    print(format_table(("resource", "measured", "model", "rel. error"),
                       [(r["resource"], r["measured"], r["model"],
                         "-" if r["rel_error"] is None else f"{100 * r['rel_error']:+.1f}%")
                        for r in rows]))
    by = res.summary["lut_by_size"]
    print("LUTs by size: " + ", ".join(f"{k} {v}" for k, v in by.items()))
    print(f"CARRY {res.summary['carry']}, MUXF7 {res.summary['muxf7']}, "
          f"MUXF8 {res.summary['muxf8']}")
    return 0
