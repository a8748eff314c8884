"""``fpim pim``: run quantized models on processing-in-memory macros."""

from __future__ import annotations

import argparse

from fpim.output import format_table, print_json

EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7        # cycles, energy
  fpim pim simulate --artifact runs/a --macro my_macro.yaml --json
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
