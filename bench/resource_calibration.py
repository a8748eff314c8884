"""Resource-model calibration: Yosys synth_xilinx of engine datapaths vs sim.resources.

Two parts, both printed and written to ``reports/reference/resource_calibration.md``:

1. **Units**: single PEs, packed groups and post-processors synthesized alone, next to the
   model's unit cost (:mod:`sim.resources`: ``fixed_pe_cost``, ``packed_pe_cost``,
   ``sp2_pe_cost``, ``pot_pe_cost``, ``postproc_cost``). The model's fitted constants come
   from these rows (the module docstring of :mod:`sim.resources` says which).
2. **Sweep**: whole engine datapaths (``fpim synth``'s ``generate(accel,
   datapath_only=True)``: both cores, skew registers, drain multiplexers, post-processors)
   for engine configurations covering both cores, 4- and 8-bit weights, packing 1/2/4 and
   two array sizes, against :func:`hw.model.datapath_model`. Acceptance: DSP exact, LUT and
   FF within 15% for every configuration; the worst case is printed last.

    .venv/bin/python bench/resource_calibration.py [--out PATH] [--units/--no-units]

One Yosys at a time; 8-12 minutes on a shared 2-core machine (30 syntheses).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hw.generate import generate, top_name
from hw.model import datapath_model, rel_error
from hw.pe_fixed import FixedMacPe
from hw.pe_packed import PackedFixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from hw.postproc import PostProcessor
from hw.synth import synthesize, synthesize_component
from quant.formats import ActFormat, weight_format
from sim.config import load_accelerator
from sim.resources import (
    fixed_pe_cost,
    packed_pe_cost,
    postproc_cost,
    pot_pe_cost,
    sp2_pe_cost,
)

OUT = Path(__file__).resolve().parent.parent / "reports" / "reference" / \
    "resource_calibration.md"
DSP_TYPE = {"xc7": "DSP48E1", "xcup": "DSP48E2"}
TOLERANCE = 0.15


def _fixed(w, a, acc, fam):
    return (FixedMacPe(weight_format("fixed", w), ActFormat(a), acc),
            fixed_pe_cost(w, ActFormat(a), acc, DSP_TYPE[fam]))


def _packed(n, w, a, acc, fam):
    return (PackedFixedMacPe(weight_format("fixed", w), ActFormat(a), acc, n),
            packed_pe_cost(n, w, ActFormat(a), acc, DSP_TYPE[fam]))


def _sp2(w, a, acc, fam):
    return Sp2Pe(weight_format("sp2", w), ActFormat(a), acc), sp2_pe_cost(w, ActFormat(a), acc)


def _pot(w, a, acc, fam):
    return PotPe(weight_format("pot", w), ActFormat(a), acc), pot_pe_cost(w, ActFormat(a), acc)


def _post(cols, acc, fam):
    """The post-processor as the engine builds it: the output format is a command input."""
    return PostProcessor.for_engine(acc, cols), postproc_cost(cols, acc, DSP_TYPE[fam])


# (label, builder, args (..., family)); the family is the last argument.
UNITS = [
    ("fixed-4 a4 A24", _fixed, (4, 4, 24, "xc7")),
    ("fixed-4 a4 A32", _fixed, (4, 4, 32, "xc7")),
    ("fixed-4 a4 A24", _fixed, (4, 4, 24, "xcup")),
    ("fixed-3 a4 A24", _fixed, (3, 4, 24, "xc7")),
    ("fixed-8 a8 A32", _fixed, (8, 8, 32, "xc7")),
    ("fixed-8 a8 A32", _fixed, (8, 8, 32, "xcup")),
    ("pair fixed-4 a4 A24", _packed, (2, 4, 4, 24, "xc7")),
    ("pair fixed-8 a8 A24", _packed, (2, 8, 8, 24, "xc7")),
    ("pair fixed-8 a8 A32", _packed, (2, 8, 8, 32, "xc7")),
    ("pair fixed-6 a6 A32", _packed, (2, 6, 6, 32, "xc7")),
    ("triple fixed-4 a4 A24", _packed, (3, 4, 4, 24, "xcup")),
    ("quad fixed-4 a4 A24", _packed, (4, 4, 4, 24, "xcup")),
    ("sp2-4 a4 A24", _sp2, (4, 4, 24, "xc7")),
    ("sp2-6 a6 A32", _sp2, (6, 6, 32, "xc7")),
    ("sp2-8 a8 A32", _sp2, (8, 8, 32, "xc7")),
    ("pot-4 a4 A24", _pot, (4, 4, 24, "xc7")),
    ("pot-5 a8 A32", _pot, (5, 8, 32, "xc7")),
    ("pot-3 a4 A24", _pot, (3, 4, 24, "xc7")),
    ("post 1 lane A24", _post, (1, 24, "xc7")),
    ("post 2 lanes A24", _post, (2, 24, "xc7")),
    ("post 4 lanes A24", _post, (4, 24, "xc7")),
    ("post 1 lane A32", _post, (1, 32, "xc7")),
    ("post 2 lanes A32", _post, (2, 32, "xc7")),
]

# (part, dsp_rows, lut_rows, cols, bits, acc_bits, packing, lut_scheme)
SWEEP = [
    ("XC7Z020", 2, 2, 4, 4, 24, 1, "sp2"),
    ("XC7Z020", 4, 4, 4, 4, 24, 1, "sp2"),
    ("XC7Z020", 2, 2, 4, 8, 32, 1, "sp2"),
    ("XCZU9EG", 2, 2, 4, 8, 32, 1, "sp2"),
    ("XC7Z020", 4, 2, 2, 8, 32, 2, "sp2"),
    ("XC7Z020", 3, 3, 6, 4, 24, 2, "sp2"),
    ("XC7Z020", 4, 2, 4, 4, 24, 2, "pot"),
    ("XCZU9EG", 4, 2, 4, 4, 24, 4, "pot"),
]


def sweep_accel(part, dsp_rows, lut_rows, cols, bits, acc_bits, packing, lut_scheme):
    over = [f"part={part}", f"engine.dsp_rows={dsp_rows}", f"engine.lut_rows={lut_rows}",
            f"engine.cols={cols}", f"engine.weight_bits={bits}", f"engine.act_bits={bits}",
            f"engine.acc_bits={acc_bits}", f"engine.dsp_packing={packing}",
            f"engine.lut_scheme={lut_scheme}"]
    over += [f"memory.{b}_bank_kib=4" for b in ("weight", "act", "out")]
    return load_accelerator("tiny", over)


def pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def run_units() -> list[str]:
    rows = []
    for label, build, args in UNITS:
        dut, model = build(*args)
        res = synthesize_component(dut, "unit", args[-1])
        s = res.summary
        rows.append(f"| {label} | {args[-1]} | {s['lut']} / {model.lut:.0f} | "
                    f"{s['ff']} / {model.ff:.0f} | {s['dsp']} / {model.dsp} | "
                    f"{res.seconds:.1f} |")
        print(rows[-1], flush=True)
    return rows


def run_sweep() -> tuple[list[str], dict[str, tuple[float, str]], bool]:
    rows = []
    worst: dict[str, tuple[float, str]] = {"lut": (0.0, ""), "ff": (0.0, "")}
    dsp_exact = True
    for cfg in SWEEP:
        accel = sweep_accel(*cfg)
        _, dr, lr, cols, bits, acc, pack, scheme = cfg
        label = (f"{accel.part.family} D{dr}+L{lr} x{cols} fixed/{scheme}-{bits} a{bits} "
                 f"A{acc} P{pack}")
        text, _ = generate(accel, datapath_only=True)
        res = synthesize(text, top_name(accel), accel.part.family)
        s, model = res.summary, datapath_model(accel)
        errs = {k: rel_error(float(s[k]), float(model[k])) for k in ("lut", "ff")}
        for k, v in errs.items():
            if v is not None and abs(v) >= abs(worst[k][0]):
                worst[k] = (v, label)
        dsp_exact &= s["dsp"] == model["dsp"]
        rows.append(f"| {label} | {s['lut']} / {model['lut']} ({pct(errs['lut'])}) | "
                    f"{s['ff']} / {model['ff']} ({pct(errs['ff'])}) | "
                    f"{s['dsp']} / {model['dsp']} | {s['carry']} | {res.seconds:.1f} |")
        print(rows[-1], flush=True)
    return rows, worst, dsp_exact


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--units", action=argparse.BooleanOptionalAction, default=True,
                    help="also synthesize the single units (default: yes)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    unit_rows = run_units() if args.units else []
    sweep_rows, worst, dsp_exact = run_sweep()
    total = time.perf_counter() - t0
    ok = dsp_exact and all(abs(v) <= TOLERANCE for v, _ in worst.values())
    verdict = (f"Worst model error over the sweep: LUT {pct(worst['lut'][0])} "
               f"({worst['lut'][1]}), FF {pct(worst['ff'][0])} ({worst['ff'][1]}); DSP "
               f"{'exact' if dsp_exact else 'NOT exact'} in every configuration. "
               f"Acceptance (DSP exact, LUT and FF within {100 * TOLERANCE:.0f}%): "
               f"{'met' if ok else 'NOT met'}.")
    text = [
        "# Resource-model calibration",
        "",
        "Generated by `.venv/bin/python bench/resource_calibration.py` (Yosys "
        "`synth_xilinx -noiopad` with `use_dsp`-marked products mapped to DSP slices at any "
        f"width, `hw.synth`; family per row; {total:.0f} s in total). Cells: measured "
        "/ model (model error relative to measured). LUT counts LUT1-6 and INV cells; FF "
        "counts FDRE/FDSE/FDCE/FDPE.",
        "",
    ]
    if unit_rows:
        text += [
            "## Units (the sources of the fitted constants in `sim.resources`)",
            "",
            "Each unit synthesized alone (`a` activation bits, unsigned; `A` accumulator "
            "bits). Which rows each constant was fitted on is in the `sim.resources` "
            "docstring; the others check the formula.",
            "",
            "| unit | family | LUT | FF | DSP | synth s |",
            "|---|---|---|---|---|---|",
            *unit_rows,
            "",
        ]
    text += [
        "## Sweep: engine datapaths vs `hw.model.datapath_model`",
        "",
        "`generate(accel, datapath_only=True)` (what `fpim synth` synthesizes): DSP core of "
        "`D` fixed rows (`P` PEs per DSP slice), LUT core of `L` SP2/PoT rows, the shared "
        "columns, and one post-processor per core (16-bit multiplier, shifts 0..31).",
        "",
        "| engine | LUT | FF | DSP48 | CARRY | synth s |",
        "|---|---|---|---|---|---|",
        *sweep_rows,
        "",
        verdict,
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(text))
    print(verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
