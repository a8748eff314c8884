"""Column groups (sim.timing rule R3c) on a preset: what dealing buys and what it costs.

Issue 21's last line was a layer's geometry: on an output-stationary array whose rows
share one weight stream, a 7x7 layer (N = 49 output pixels) on the XC7Z020's 12 columns
takes ``ceil(49 / 12) = 5`` column tiles per row step and fills 49 of their 60 column slots.
With column group B (``engine.group_b_cols``) the last columns take a second weight stream
and the host deals each row step's positions out between the groups (R3c), so both stay
busy. This script runs the simulator (``fpim simulate``'s cycle mode) on each model for the
preset as shipped (XC7Z020: 7 + 5 columns, one post-processor for both cores) and with
every group B width given (0: one group), and prints per run the MAC
utilisation, FPS, the compute-bound layers under 90 % and the lowest, the dealt layers, and
the resource model's LUT, FF and BRAM36 of the whole top (``sim.resources``) against the
part, with whether it fits at all (``sim.resources.fit_violations``). The simulator and the
RTL agree on dealt GEMMs cycle for cycle (tests/hw/test_accel.py, the tiny_groups suites);
the model's group terms are fitted on the tiny and XC7Z020 tops with column groups.

``--synth W`` also synthesizes the whole top with ``W`` columns in group B (Yosys 0.23
``synth_xilinx`` through ``fpim.flows.synth.synthesize_engine``, as ``fpim synth
--whole-top``, which refuses an engine the model says does not fit; about 16 minutes for
XC7Z020) and prints its cells against the model's.

``--ring`` synthesizes the weight ring of a grouped engine alone (``hw.buffer.BankedRing``,
one word per K step of every row), as built (each bank in ``sim.resources.bank_pieces``'
power-of-two pieces) and with each bank one memory (its block RAM sliced in depth, a read
multiplexer inside every bank), against the model's cost (about 3.5 minutes each on
XC7Z020's 256 x 4608 banks).

Run: ``.venv/bin/python bench/column_groups.py [--accel xc7z020] [--models resnet50
resnet18] [--widths 0 3 4 6] [--synth 5] [--ring]``. Prints measured figures only; nothing
here is a test.
"""

from __future__ import annotations

import argparse
import dataclasses

from fpim.flows.simulate import load_workload, simulate
from fpim.flows.synth import synthesize_engine
from hw.buffer import BankedRing
from hw.synth import synthesize_component
from sim.config import load_accelerator
from sim.resources import (
    bank_memories,
    bank_pieces,
    banked_logic_cost,
    estimate_resources,
    fit_violations,
    map_memory,
)
from sim.timing import GemmShape, gemm_tiling


def dealt_layers(accel, wl) -> int:
    """Layers whose GEMMs the host deals (R3c)."""
    e, mem = accel.engine, accel.memory
    n = 0
    for op in wl.ops:
        for a, b, _ in getattr(op, "splits", None) or ():
            t = gemm_tiling(GemmShape(a, b, op.n, op.k), e.dsp_rows, e.lut_rows, e.cols,
                            mem.k_tile, e.weight_bits, e.act_bits, group_b=e.group_b_cols,
                            bw=mem.dram_bytes_per_cycle, lat=mem.dram_latency,
                            shared=e.shared_post)
            if t.dealt:
                n += 1
                break
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accel", default="xc7z020")
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet18"])
    ap.add_argument("--widths", nargs="+", type=int, default=[0, 3, 4, 6],
                    help="group B widths to try beside the preset's own (0: one group)")
    ap.add_argument("--synth", type=int, metavar="W",
                    help="synthesize the whole top with W columns in group B (Yosys)")
    ap.add_argument("--ring", action="store_true",
                    help="synthesize the banked weight ring alone, in pieces and whole (Yosys)")
    args = ap.parse_args()
    base = load_accelerator(args.accel)
    part = base.part
    print(f"{args.accel}: {base.engine.dsp_rows}+{base.engine.lut_rows} rows x "
          f"{base.engine.cols} columns; part {part.name}: {part.lut:,} LUT, {part.ff:,} FF, "
          f"{part.bram36:g} BRAM36")
    for width in [base.engine.group_b_cols, *args.widths]:
        accel = dataclasses.replace(base, engine=dataclasses.replace(base.engine,
                                                                     group_b_cols=width))
        est = estimate_resources(accel)
        bad = fit_violations(accel, est)
        groups = (f"{accel.engine.cols - width} + {width}" if width else "one group")
        print(f"  columns {groups}: model {est.lut:,} LUT ({est.lut / part.lut:.1%}), "
              f"{est.ff:,} FF, {est.bram36:g} BRAM36 ({est.bram36 / part.bram36:.1%})"
              + ("" if not bad else f"; does NOT fit: {'; '.join(bad)}"))
        for model in args.models:
            wl, _ = load_workload(accel, model=model)
            r = simulate(accel, wl).result
            compute = [la for la in r.to_dict()["layers"] if la["bound"] == "compute"]
            low = [la for la in compute if la["mac_util"] < 0.9]
            print(f"    {model}: MAC utilisation {r.mac_util():.1%}, {r.fps:.2f} FPS, "
                  f"{r.total_cycles:,} cycles ({r.stall_cycles:,} stall); compute-bound layers "
                  f"{len(compute) - len(low)} / {len(compute)} >= 90 %, lowest "
                  f"{min(la['mac_util'] for la in compute):.1%}; "
                  f"{dealt_layers(accel, wl)} layers dealt")
    if args.synth is not None:
        accel = dataclasses.replace(base, engine=dataclasses.replace(
            base.engine, group_b_cols=args.synth))
        syn = synthesize_engine(accel, whole_top=True, timeout=4 * 3600)
        m = syn.measured.summary
        print(f"  Yosys, group B of {args.synth} columns ({syn.measured.seconds:.0f} s): "
              f"{m['lut']:,} LUT + {m['lutram']} LUT RAM cells, {m['ff']:,} FF, {m['dsp']} DSP, "
              f"{m['bram36']:g} BRAM36")
        for row in syn.comparison:
            print(f"    {row['resource']}: measured {row['measured']:,}, model {row['model']:,} "
                  f"({row['rel_error']:+.1%})")
    if args.ring:
        ring_synthesis(base)


def ring_synthesis(accel) -> None:
    """The banked weight ring alone: in bank_pieces' pieces and as three whole banks."""
    e, kt = accel.engine, accel.memory.k_tile
    width = e.rows * e.weight_bits
    for pieces in (bank_pieces(width, kt), (kt,)):
        ring = BankedRing(width, kt, pieces)
        r = synthesize_component(ring, "banked_ring", timeout=3600)
        m = r.summary
        maps = [map_memory(*mem) for mem in bank_memories(width, kt, pieces).values()]
        model = banked_logic_cost(maps, kt)
        print(f"  weight ring {width} x 3 x {kt} in pieces {pieces} ({r.seconds:.0f} s): "
              f"{m['lut']:,} LUT, {m['ff']:,} FF, {m['bram36']:g} BRAM36; model "
              f"{model.lut:,.0f} LUT, {model.ff:,.0f} FF, "
              f"{sum(x.bram36 for x in maps):g} BRAM36")


if __name__ == "__main__":
    main()
