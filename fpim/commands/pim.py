"""``fpim pim``: run quantized models on processing-in-memory macros."""

from __future__ import annotations

import argparse

from fpim.output import format_table, print_json

EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7        # cycles, energy
  fpim pim simulate --artifact runs/a --macro my_macro.yaml --json
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --noise-lsb 0.5 --seed 1
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --out runs/pim   # PIM-QAT
"""

EVAL_EXAMPLES = """examples:
  fpim pim eval --artifact runs/a --macro sram512x128_adc7
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --noise-lsb 1.0 --seed 3 --json
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --adc-bits 4 --group-size 64

Accuracy on the test split of the artifact's dataset (meta "data"; --data to override),
integer inference with every conv/linear GEMM on the PIM kernel (sim.pim.pim_gemm), next
to the digital integer accuracy of the same artifact.
"""

SIM_EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7 --batch 8 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pim", help="processing-in-memory: macro cost simulation",
        description="Map a quantized artifact onto PIM crossbar macros (quant/pim.py defines "
                    "the arithmetic, sim/pim.py the macro and its cost model).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pim_sub = p.add_subparsers(dest="pim_command", metavar="PIM_COMMAND", required=True,
                               parser_class=type(p))
    s = pim_sub.add_parser(
        "simulate", help="cycles, conversions and energy per layer and in total",
        description="Cycles, ADC conversions, energy and latency of every conv/linear layer "
                    "of an artifact on a chip of PIM macros, and the totals per inference.",
        epilog=SIM_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--artifact", required=True, metavar="DIR", help="quantized artifact")
    s.add_argument("--macro", required=True, metavar="PRESET_OR_YAML",
                   help="PIM macro preset (configs/pim/*.yaml, e.g. sram512x128_adc7) or file")
    s.add_argument("--batch", type=int, default=1, help="inputs per inference (default 1)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run_simulate)

    e = pim_sub.add_parser(
        "eval", help="accuracy of an artifact deployed on the PIM macro model",
        description="Integer inference of an artifact with every conv/linear GEMM computed "
                    "by the PIM kernel (groups, ADC, non-linearity, seeded thermal noise, "
                    "digital shift-add); prints PIM and digital test accuracy.",
        epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--artifact", required=True, metavar="DIR", help="quantized artifact")
    _macro_args(e)
    e.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    e.add_argument("--data", default=None,
                   help="dataset (digits, cifar10, folder); default: the artifact's meta")
    e.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate the first N test images only")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")
    e.set_defaults(func=run_eval)


def run_simulate(args: argparse.Namespace) -> int:
    from quant.artifact import load_artifact
    from quant.errors import check_int_range
    from sim.pim import layer_cost, load_macro

    batch = check_int_range("batch", args.batch, 1, 1 << 20)
    macro = load_macro(args.macro)
    art = load_artifact(args.artifact)
    costs = []
    for layer in art.gemm_layers():
        m, k, n = layer.gemm_dims
        w_bits = max(2, layer.rows.max_abs_int().bit_length() + 1)
        x_fmt = art.value(layer.inputs[0]).fmt
        costs.append(layer_cost(macro, layer.name, m, k, n * batch, w_bits, x_fmt.bits,
                                x_fmt.signed))
    total_cycles = sum(c.cycles for c in costs)
    totals = {
        "cycles": total_cycles,
        "conversions": sum(c.conversions for c in costs),
        "energy_uj": sum(c.energy_uj for c in costs),
        "latency_us": total_cycles / macro.clock_mhz,
        "area_mm2": macro.macros * macro.area_mm2,
        "batch": batch,
    }
    if args.json:
        print_json({"macro": macro.to_dict(), "layers": [c.__dict__ for c in costs],
                    "totals": totals})
        return 0
    a = macro.arith
    print(f"macro {macro.name}: {macro.macros} x {macro.rows}x{macro.cols}, {a.scheme}, "
          f"group {a.group_size}, {a.adc_bits}-bit ADC x {macro.adcs}, "
          f"{macro.clock_mhz:g} MHz{' (approximation)' if macro.approximation else ''}")
    rows = [(c.name, c.m, c.k, c.n, c.tiles, c.passes, c.replication, c.conversions, c.cycles,
             f"{c.energy_uj:.3f}") for c in costs]
    print(format_table(("layer", "M", "K", "N", "tiles", "passes", "copies", "conversions",
                        "cycles", "energy_uJ"), rows))
    print(f"total: {totals['cycles']} cycles = {totals['latency_us']:.1f} us per batch of "
          f"{batch}, {totals['conversions']} conversions, {totals['energy_uj']:.3f} uJ, "
          f"area {totals['area_mm2']:.2f} mm^2")
    return 0


def _macro_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--macro", required=True, metavar="PRESET_OR_YAML",
                   help="PIM macro preset (configs/pim/*.yaml, e.g. sram512x128_adc7) or file")
    p.add_argument("--scheme", default=None,
                   help="override the decomposition scheme (native, differential, bit_serial)")
    p.add_argument("--cell-bits", type=int, default=None, help="override cell bits")
    p.add_argument("--adc-bits", type=int, default=None, help="override the ADC bits")
    p.add_argument("--group-size", type=int, default=None,
                   help="override the rows summed per conversion (at most the macro rows)")
    p.add_argument("--range-fraction", type=float, default=None,
                   help="override the fraction of the worst-case group sum the ADC covers")
    p.add_argument("--nonlinearity", type=float, default=None,
                   help="override the transfer-curve beta, [0, 1)")
    p.add_argument("--noise-lsb", type=float, default=None,
                   help="thermal noise sigma in ADC LSB, >= 0 (default: the preset's)")


def macro_from_args(args: argparse.Namespace):
    """The preset with the command-line overrides applied (validated like the preset)."""
    from dataclasses import replace

    from sim.pim import load_macro

    macro = load_macro(args.macro)
    changes = {k: getattr(args, k) for k in ("scheme", "cell_bits", "adc_bits", "group_size",
                                            "range_fraction", "nonlinearity", "noise_lsb")
               if getattr(args, k) is not None}
    return replace(macro, arith=macro.arith.with_(**changes)) if changes else macro


def run_eval(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from quant.artifact import load_artifact
    from quant.data import load_dataset
    from quant.errors import check_int_range
    from quant.infer import run_artifact
    from quant.pim_deploy import run_artifact_pim

    macro = macro_from_args(args)
    art = load_artifact(args.artifact)
    name = args.data or art.meta.get("data") or "digits"
    data = load_dataset(name, args.data_dir)
    x, y = data.x_test, data.y_test
    if args.limit is not None:
        n = check_int_range("limit", args.limit, 1, len(y))
        x, y = x[:n], y[:n]
    t0 = time.perf_counter()
    pim_pred = np.argmax(run_artifact_pim(art, x, macro.arith, seed=args.seed), axis=1)
    seconds = time.perf_counter() - t0
    dig_pred = np.argmax(run_artifact(art, x), axis=1)
    result = {
        "artifact": str(args.artifact), "macro": macro.name, "arith": macro.arith.__dict__,
        "data": name, "images": len(y), "seed": args.seed,
        "pim_accuracy": round(100.0 * float(np.mean(pim_pred == y)), 4),
        "digital_accuracy": round(100.0 * float(np.mean(dig_pred == y)), 4),
        "agreement": round(100.0 * float(np.mean(pim_pred == dig_pred)), 4),
        "pim_seconds": round(seconds, 2),
    }
    if args.json:
        print_json(result)
        return 0
    a = macro.arith
    print(f"macro {macro.name}: {a.scheme}, group {a.group_size}, {a.cell_bits}-bit cells, "
          f"{a.adc_bits}-bit ADC, range {a.range_fraction:g}, beta {a.nonlinearity:g}, "
          f"noise {a.noise_lsb:g} LSB, seed {args.seed}")
    print(f"{name} test, {len(y)} images: PIM {result['pim_accuracy']:.2f}%, digital "
          f"{result['digital_accuracy']:.2f}%, agreement {result['agreement']:.1f}% "
          f"({seconds:.1f} s on the PIM kernel)")
    return 0
