"""``fpim search msq``: the SP2 fraction and engine split with the most throughput on a part."""

from __future__ import annotations

import argparse
import shlex

from fpim.commands.options import (
    add_batch,
    add_csv,
    add_json,
    add_msq_search,
    add_progress,
    add_set,
    add_workload,
    check_csv,
    progress,
    refuse_ignored_workload,
    torch_model_shape,
    workload_source,
)
from fpim.output import print_json

EXAMPLES = """examples:
  fpim search msq --part XC7Z020 --bits 4 --model resnet18
  fpim search msq --part XC7Z045 --bits 4 --topology configs/workloads/resnet50.csv --json
  fpim search msq --part XC7Z020 --bits 4 --model resnet18 --save best.yaml
  fpim simulate --model resnet18 --accel best.yaml --mode analytical --sp2-fraction 0.75
  fpim search msq --part configs/xc7z020.yaml --set engine.acc_bits=32 --bits 4 \
                  --model resnet50
  fpim search msq --part my_part.yaml --bits 4 --model mypkg.models:build \\
                  --input-shape 1,3,32,32 --csv engines.csv
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
    m = what.add_parser(
        "msq", help="SP2 fraction and engine split (Mix and Match)",
        description="Every engine is built on a template: a preset YAML given as --part, "
                    "or for a part the shipped preset of that part (the dataclass defaults "
                    "for a part without one). The template gives the memory, clock, vector "
                    "unit, accumulator width, LUT scheme and activation sign; the search "
                    "changes the rows, columns, DSP packing, widths (--bits) and grows buffer "
                    "banks to hold a tile. Every assumption is printed; --save writes the "
                    "recommended design as a preset that fpim simulate reproduces exactly.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("--part", required=True, metavar="NAME_OR_YAML",
                   help="FPGA part (XC7Z020, XC7Z045, XCZU9EG), a YAML file of its fields "
                        "(name, lut, ff, dsp, dsp_type, bram36), or a preset YAML (the "
                        "template itself; --set applies to it)")
    add_set(m)
    m.add_argument("--bits", required=True, type=int, help="weight and activation bits (3..8)")
    add_workload(m, default_model="resnet18")
    add_batch(m)
    add_msq_search(m)
    m.add_argument("--save", metavar="YAML",
                   help="write the recommended design (the faster of the best mixed and the "
                        "best DSP-only engine) as a preset YAML for --accel")
    add_csv(m, "every engine timed (the columns of a search report's engines.csv)")
    add_progress(m)
    add_json(m, "text")
    m.set_defaults(func=run)


def reproduce_command(args: argparse.Namespace, accel: str, fraction: float) -> str:
    """The ``fpim simulate`` command that times ``accel`` on the searched workload at
    ``fraction`` as the search did."""
    argv = ["fpim", "simulate", *workload_source(args).split(" ", 1)]
    if args.gemm:
        argv.append("--gemm")
    if args.input_shape:
        argv += ["--input-shape", ",".join(map(str, args.input_shape))]
    if args.batch:
        argv += ["--batch", str(args.batch)]
    argv += ["--accel", accel, "--mode", "analytical", "--sp2-fraction", repr(fraction)]
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    from fpim.flows.simulate import load_workload
    from quant.errors import ConfigError, check_fraction, check_int_range
    from quant.fileio import check_output, write_atomic
    from sim.report.metrics import engine_rows
    from sim.report.schema import ENGINE_COLUMNS, csv_text
    from sim.search import design_yaml, explore_msq, search_base, search_template, summarize

    if args.artifact or args.topology:
        args.model = None  # the default model gives way to the source given
    if args.artifact:
        raise ConfigError("--artifact applies only to simulate and report (an artifact fixes "
                          "each row's scheme, the MSQ search chooses them), not to search "
                          "msq: give its shapes with --model or --topology")
    refuse_ignored_workload(args)
    lut_cap = check_fraction("lut_cap", args.lut_cap)
    batch = 1 if args.batch is None else check_int_range("batch", args.batch, 1, 1 << 20)
    check_csv(args)
    if args.save is not None:
        check_output(args.save, "save")
    torch_model_shape(args)
    template = search_template(args.part, args.overrides)
    wl, _ = load_workload(template, model=args.model, topology=args.topology,
                          gemm=True if args.gemm else None, input_shape=args.input_shape,
                          batch=batch)
    packings = tuple(args.packing) if args.packing else None
    search_base(wl, template, args.bits, args.ideal_memory, packings)  # refuse before work
    with progress(args)("MSQ search") as report:
        x = explore_msq(wl, template, args.bits, ideal_memory=args.ideal_memory,
                        lut_cap=lut_cap, packings=packings, on_step=report)
    r = summarize(x)
    pick = r["best"] if r["recommended"] == "mixed" else r["dsp_only"]
    if args.save is not None:
        r["simulate_command"] = reproduce_command(args, args.save, pick["sp2_fraction"])
        header = (f"fpim search msq: the recommended {r['recommended']} engine for "
                  f"{r['workload']} on {r['part']} at {r['bits']} bits "
                  f"({pick['cycles']} cycles, LUT {pick['lut']}).\n"
                  f"Reproduce: {r['simulate_command']}")
        write_atomic(args.save, design_yaml(x, header))
    if args.csv is not None:
        write_atomic(args.csv, csv_text(ENGINE_COLUMNS, engine_rows(x)))
    if args.json:
        print_json(r)
        return 0
    _print_text(r, args)
    return 0


def _print_text(r: dict, args: argparse.Namespace) -> None:
    b, d, a = r["best"], r["dsp_only"], r["assumptions"]
    mem = "unlimited DRAM bandwidth" if r["ideal_memory"] else "preset DRAM model"
    print(f"{r['workload']} on {r['part']}, {r['bits']}-bit, {mem}, {r['candidates']} engines, "
          f"batch {a['batch']}")
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
    if not r["mixing_pays"]:
        print(f"verdict: mixing does not pay here: the fastest mixed engine runs at "
              f"{r['speedup']:.2f}x the fastest DSP-only engine; the DSP-only engine is the "
              "recommended design")
    else:
        print("verdict: mixing pays; the mixed engine is the recommended design")
    p = a["part"]
    m = a["memory"]
    bw = ("unlimited" if m["dram_bytes_per_cycle"] is None
          else f"{m['dram_bytes_per_cycle']} B/cycle")
    print(f"assumptions: template {a['template']} ({a['clock_mhz']:g} MHz, vector "
          f"{a['vector_lanes']} lanes); part {p['name']} (LUT {p['lut']}, FF {p['ff']}, "
          f"DSP {p['dsp']} {p['dsp_type']}, BRAM36 {p['bram36']})")
    print(f"  accumulator {a['acc_bits']} bits from the template (the workload needs "
          f"{a['acc_bits_needed']}); {a['lut_scheme']} LUT core; activations "
          f"{'signed' if a['act_signed'] else 'unsigned'}")
    print(f"  engines within {100 * a['lut_cap']:g}% of the LUTs; DSP core: "
          f"{a['dsp_budget']}; packings {a['packings']}; columns {a['cols']}; "
          f"{a['lut_core_sizes_per_engine']} LUT-core sizes each; SP2 fractions 0..1 step "
          f"0.05")
    print(f"  memory: k_tile {m['k_tile']}, DRAM {bw}, latency {m['dram_latency']} cycles; "
          f"{a['buffer_banks']}; timed in {a['mode']}")
    if args.save is not None:
        print(f"saved the recommended design to {args.save}; reproduce: "
              f"{r['simulate_command']}")
