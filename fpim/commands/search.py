"""``fpim search msq``: the SP2 fraction and engine split with the most throughput on a part."""

from __future__ import annotations

import argparse

from fpim.commands.options import add_json, add_msq_search, add_progress, progress
from fpim.output import print_json

EXAMPLES = """examples:
  fpim search msq --part XC7Z020 --bits 4 --model resnet18
  fpim search msq --part XC7Z045 --bits 4 --topology configs/workloads/resnet50.csv --json
  fpim search msq --part XC7Z020 --bits 4 --model resnet18 --ideal-memory
  fpim search msq --part XC7Z020 --bits 4 --packing 1     # unpacked DSPs only
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search an MSQ ratio and engine split for a part",
        description="Design searches. 'msq': choose the SP2 fraction and the DSP/LUT engine "
                    "split that maximize throughput within a part's LUT/DSP/BRAM budget "
                    "(analytical mode) and report the speedup over a DSP-only engine.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_subparsers(dest="search", metavar="SEARCH", required=True)
    m = what.add_parser("msq", help="SP2 fraction and engine split (Mix and Match)",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--part", required=True, help="FPGA part: XC7Z020, XC7Z045 or XCZU9EG")
    m.add_argument("--bits", required=True, type=int, help="weight and activation bits (3..8)")
    src = m.add_mutually_exclusive_group()
    src.add_argument("--model", default="resnet18",
                     help="shipped workload name (default: resnet18)")
    src.add_argument("--topology", metavar="CSV", help="SCALE-Sim topology CSV")
    add_msq_search(m)
    add_progress(m)
    add_json(m, "text")
    m.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from quant.errors import check_fraction
    from sim.search import search_msq
    from sim.workload import load_shipped, read_topology

    wl = read_topology(args.topology) if args.topology else load_shipped(args.model)
    lut_cap = check_fraction("lut_cap", args.lut_cap)
    with progress(args)("MSQ search") as report:
        r = search_msq(wl, args.part, args.bits, ideal_memory=args.ideal_memory,
                       lut_cap=lut_cap, packings=tuple(args.packing) if args.packing else None,
                       on_step=report)
    if args.json:
        print_json(r)
        return 0
    b, d = r["best"], r["dsp_only"]
    mem = "unlimited DRAM bandwidth" if r["ideal_memory"] else "preset DRAM model"
    print(f"{r['workload']} on {r['part']}, {r['bits']}-bit, {mem}, {r['candidates']} engines")
    print(f"best mixed: dsp_rows={b['dsp_rows']} lut_rows={b['lut_rows']} cols={b['cols']} "
          f"packing={b['dsp_packing']} sp2_fraction={b['sp2_fraction']:.2f}: {b['cycles']} "
          f"cycles, {b['fps']:.2f} FPS (LUT {b['lut']}, DSP {b['dsp']}, BRAM36 {b['bram36']})")
    print(f"DSP only:   dsp_rows={d['dsp_rows']} cols={d['cols']} packing={d['dsp_packing']}: "
          f"{d['cycles']} cycles, {d['fps']:.2f} FPS (LUT {d['lut']}, DSP {d['dsp']}, "
          f"BRAM36 {d['bram36']})")
    print(f"speedup over DSP-only: {r['speedup']:.2f}x (compute only {r['compute_speedup']:.2f}x)"
          f"; paper: {r['paper_speedup']}")
    if len(r["by_packing"]) > 1:
        print("  over the best DSP-only engine with packing "
              + ", ".join(f"{k}: {v['speedup']:.2f}x (compute {v['compute_speedup']:.2f}x)"
                          for k, v in r["by_packing"].items()))
    return 0
