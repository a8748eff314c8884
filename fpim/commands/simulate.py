"""``fpim simulate``: time a workload on an accelerator preset (and optionally compute it)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from fpim.output import format_table, print_json, write_atomic
from quant.errors import ConfigError

EXAMPLES = """examples:
  fpim simulate --model resnet50 --accel xc7z020                 # shipped topology, cycle mode
  fpim simulate --topology configs/workloads/deit_base.csv --accel xczu9eg --json
  fpim simulate --model resnet18 --accel xc7z045 --set engine.cols=16 --mode analytical
  fpim simulate --model resnet18 --accel tiny --set memory.dram_bytes_per_cycle=null \\
                --set memory.dram_latency=0 --mode plain      # plain output-stationary count
  fpim simulate --artifact runs/a --accel tiny --functional      # bit-exact outputs too
  fpim simulate --model mypkg.models:build --input-shape 1,3,32,32 --accel xc7z020
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="cycles, stalls, throughput, resources (and bit-exact outputs)",
        description="Simulate a workload on the mixed-scheme GEMM engine: per-layer cycles, "
                    "stall cycles, core utilization, DRAM bytes; totals, latency, FPS, GOPS "
                    "and the resource estimate. Timing rules: docs/timing.md.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--artifact", metavar="DIR", help="quantized artifact directory")
    src.add_argument("--model", metavar="NAME",
                     help="shipped workload (resnet18, resnet50, mobilenet_v2, deit_base) or "
                          "a torch model factory module:function (needs --input-shape)")
    src.add_argument("--topology", metavar="CSV", help="SCALE-Sim topology CSV")
    p.add_argument("--gemm", action="store_true",
                   help="the topology is in SCALE-Sim's GEMM format (default: guess)")
    p.add_argument("--input-shape", metavar="B,C,H,W", help="input shape for a torch model")
    p.add_argument("--accel", required=True, metavar="PRESET_OR_YAML",
                   help="accelerator preset (xc7z020, xc7z045, xczu9eg, tiny) or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset field, e.g. engine.cols=16 (repeatable)")
    p.add_argument("--mode", choices=("cycle", "analytical", "plain"), default="cycle",
                   help="fidelity level (default: cycle)")
    p.add_argument("--sp2-fraction", type=float, default=None, metavar="F",
                   help="fraction of rows on the LUT core for workloads without schemes "
                        "(default: the engine's split lut_rows / (dsp_rows + lut_rows))")
    p.add_argument("--batch", type=int, default=1, help="batch size (artifact/torch model)")
    p.add_argument("--functional", action="store_true",
                   help="also compute every GEMM bit-exactly in numba (random seeded inputs, "
                        "or the artifact's weights) and compare with quant.ref")
    p.add_argument("--seed", type=int, default=0, help="seed of the functional inputs")
    p.add_argument("--max-cycles", type=int, default=None,
                   help="stop the cycle kernel here and report where (default: no limit)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV")
    p.set_defaults(func=run)


def _workload(args: argparse.Namespace, accel: object):
    from sim.ops import from_artifact
    from sim.workload import assign_fraction, load_shipped, read_topology

    art = None
    if args.artifact:
        from quant.artifact import load_artifact

        art = load_artifact(args.artifact)
        wl = from_artifact(art, batch=args.batch)
    elif args.topology:
        wl = read_topology(args.topology, gemm=True if args.gemm else None)
    elif ":" in args.model:
        if not args.input_shape:
            raise ConfigError("--input-shape must be given with a module:function model")
        from sim.torch_workload import from_factory

        shape = tuple(int(s) for s in args.input_shape.split(","))
        wl = from_factory(args.model, shape)
    else:
        wl = load_shipped(args.model)
    e = accel.engine  # type: ignore[attr-defined]
    frac = args.sp2_fraction if args.sp2_fraction is not None else e.lut_rows / e.rows
    return assign_fraction(wl, frac), art


def _functional(wl, art, accel, seed: int) -> dict:
    from quant import ref
    from quant.formats import Scheme
    from sim import functional as F
    from sim.workload import GemmOp

    e = accel.engine
    rng = np.random.default_rng(seed)
    if art is not None:
        from quant.infer import run_artifact

        codes = rng.integers(art.input.fmt.qmin, art.input.fmt.qmax + 1,
                             (1, *art.input.shape))
        t = time.perf_counter()
        got = F.run_artifact(art, codes, accel)
        dt = time.perf_counter() - t
        want = run_artifact(art, codes, return_values=True)
        bad = [n for n in want if not np.array_equal(got[n], want[n])]
        return {"bit_exact": not bad, "mismatched": bad, "layers_checked": len(want),
                "seconds": dt}
    fmt = e.act_format
    macs = 0
    sim_s = 0.0
    bad = []
    for o in wl.ops:
        if not isinstance(o, GemmOp):
            continue
        for a, b, count in o.splits:
            rows = F.random_rows(rng, o.m, o.k, e.weight_bits, b, e.lut_core_scheme
                                 if b else Scheme.SP2)
            x = rng.integers(fmt.qmin, fmt.qmax + 1, (o.k, o.n))
            w_int = F.int_weights(rows)
            t = time.perf_counter()
            y = F.gemm(rows, x, fmt, e.acc_bits, w_int=w_int)
            sim_s += time.perf_counter() - t
            macs += o.m * o.n * o.k
            if not np.array_equal(y, ref.gemm(rows, x, fmt, e.acc_bits)):
                bad.append(o.name)
            del a, count  # one group per split is computed: identical groups add nothing
    return {"bit_exact": not bad, "mismatched": bad, "macs_computed": macs,
            "seconds": sim_s, "gmacs_per_s": macs / sim_s / 1e9 if sim_s else 0.0}


def run(args: argparse.Namespace) -> int:
    from sim.config import load_accelerator
    from sim.engine import simulate

    if args.batch < 1:
        raise ConfigError(f"batch must be a positive integer, not {args.batch}")
    accel = load_accelerator(args.accel, args.overrides)
    wl, art = _workload(args, accel)
    if art is not None:
        from sim.functional import check_artifact

        check_artifact(art, accel)
    result = simulate(wl, accel, args.mode, max_cycles=args.max_cycles)
    data = result.to_dict()
    if args.functional:
        data["functional"] = _functional(wl, art, accel, args.seed)
    if args.csv:
        write_atomic(args.csv, result.to_csv())
    if args.json:
        print_json(data)
    else:
        rows = [(la.name, la.op, la.m, la.n, la.k, la.groups, la.rows_fixed, la.rows_lut,
                 la.cycles, la.stall_cycles, f"{la.util_dsp:.2f}", f"{la.util_lut:.2f}")
                for la in result.layers]
        print(format_table(("layer", "op", "M", "N", "K", "groups", "fixed", "lut", "cycles",
                            "stall", "u_dsp", "u_lut"), rows))
        t = result.totals()
        r = data["resources"]
        print(f"\n{wl.name} on {accel.name} ({args.mode} mode, {accel.clock_mhz:g} MHz): "
              f"{t['total_cycles']} cycles ({t['stall_cycles']} stall), "
              f"{t['latency_ms']:.3f} ms, {t['fps']:.2f} FPS, {t['gops']:.1f} GOPS, "
              f"{t['gops_per_dsp']:.3f} GOPS/DSP")
        print(f"resources (estimate): LUT {r['lut']}/{accel.part.lut}, FF {r['ff']}/"
              f"{accel.part.ff}, DSP {r['dsp']}/{accel.part.dsp}, BRAM36 {r['bram36']}/"
              f"{accel.part.bram36}")
        if args.functional:
            f = data["functional"]
            rate = f" at {f['gmacs_per_s']:.2f} GMAC/s" if "gmacs_per_s" in f else ""
            print(f"functional: {'bit-exact' if f['bit_exact'] else 'MISMATCH'} against "
                  f"quant.ref{rate}")
    if args.functional and not data["functional"]["bit_exact"]:
        return 1
    return 0
