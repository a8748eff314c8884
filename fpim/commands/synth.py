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
from sim.resources import VECTOR_UNITS, VectorConfig, vector_config

EXAMPLES = """examples:
  fpim synth --accel tiny                      # family from the part (xc7 for XC7Z020)
  fpim synth --accel tiny --family xcup --json
  fpim synth --accel tiny --set engine.lut_scheme=pot
  fpim synth --accel tiny --whole-top          # buffers, memories, walkers, controller too
  fpim synth --accel configs/rtl/mid.yaml --whole-top --json   # about 11 minutes
  fpim synth --accel tiny --vector --tokens 17 --features 8    # each vector-unit component
  fpim synth --accel xczu9eg --vector --model deit_base --unit softmax --json
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
    p.add_argument("--vector", action="store_true",
                   help="synthesize the vector unit instead, one component at a time "
                        "(requant, softmax, gelu, layernorm, pos_embed; hw.vector), each next to "
                        "the model's estimate (sim.resources.vector_unit_costs); its rows come "
                        "from --model or --tokens and --features")
    p.add_argument("--unit", action="append", choices=VECTOR_UNITS, default=None,
                   help="with --vector: only this component (repeatable; default: all)")
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="with --vector: a shipped transformer workload (deit_tiny, "
                        "deit_small, deit_base) giving the tokens and features")
    p.add_argument("--tokens", type=int, default=None, metavar="T",
                   help="with --vector: longest softmax row (the row buffer's depth)")
    p.add_argument("--features", type=int, default=None, metavar="D",
                   help="with --vector: features of a LayerNorm token (its coefficients)")
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
    vector = _vector_args(args)
    accel = accelerator(args)
    if args.vector:
        return _run_vector(args, accel, vector(accel))
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


def _vector_args(args: argparse.Namespace):
    """Check the vector options before any work; return a function of the accelerator
    giving its :class:`~sim.resources.VectorConfig` (``--vector``) or None."""
    given = [f"--{k}" for k in ("unit", "model", "tokens", "features")
             if getattr(args, k) is not None]
    if not args.vector:
        if given:
            raise ConfigError(f"{given[0]} must come with --vector, not alone")
        return lambda accel: None
    if args.whole_top:
        raise ConfigError("--vector must not come with --whole-top (the vector unit is "
                          "synthesized on its own)")
    if args.model is not None:
        if args.tokens is not None or args.features is not None:
            raise ConfigError("--vector takes either --model or --tokens and --features, "
                              "not both")
        from sim.vit_search import attention_shape
        from sim.workload import load_shipped

        attn = attention_shape(load_shipped(args.model))
        rows = (attn.tokens, attn.features)
    elif args.tokens is None or args.features is None:
        raise ConfigError("--vector must have --model or both --tokens and --features, not "
                          + ("--tokens alone" if args.tokens is not None else
                             "--features alone" if args.features is not None else "neither"))
    else:
        rows = (args.tokens, args.features)

    def config(accel) -> VectorConfig:
        return vector_config(accel, *rows)
    return config


def _run_vector(args: argparse.Namespace, accel, cfg: VectorConfig) -> int:
    from fpim.flows.synth import synthesize_vector

    units = tuple(dict.fromkeys(args.unit)) if args.unit else VECTOR_UNITS
    rs = synthesize_vector(accel, cfg, units, args.family, args.yosys, progress(args),
                           timeout=args.timeout)
    params = cfg.to_dict()
    if args.json:
        print_json({"accel": accel.name, "vector": params, "units": [
            {"unit": r.unit, "top": r.top, "family": r.family,
             "seconds": round(r.measured.seconds, 2), "measured": r.measured.to_dict(),
             "model": r.model, "comparison": r.comparison} for r in rs]})
        return 0
    print(f"vector unit of {accel.name}: " + ", ".join(f"{k} {v}" for k, v in params.items()))
    cols = ("unit", "resource", "measured", "model", "rel_error")
    rows = [(r.unit, c["resource"], c["measured"], c["model"],
             "-" if c["rel_error"] is None else f"{100 * c['rel_error']:+.1f}%")
            for r in rs for c in r.comparison]
    print_table(cols, rows, args.csv,
                [(r.unit, *(c[k] for k in cols[1:])) for r in rs for c in r.comparison])
    for r in rs:
        print(f"{r.top} on {r.family}: yosys synth_xilinx took {r.measured.seconds:.1f} s; "
              f"LUT RAM cells occupy {r.model['lut_memory']} LUTs (model) besides the logic "
              f"LUTs above")
    return 0
