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

The reports hold measurements only (cells, model, errors), so a re-run that measures the same
leaves them unchanged, byte for byte (they are checked in); Yosys' wall-clock times, which
vary from run to run and machine to machine, are printed beside each row and in total.

With ``--tops``: whole accelerator tops (``fpim synth --whole-top`` of tiny, the mid-size
preset and xc7z020, the last given 40 minutes) against :func:`sim.resources.top_cost`, and
the units of their control and memories (load buffers, output FIFOs, tile walkers) and of
the cores' drain multiplexers (whose fit gives ``DRAIN_MUX_LUT``; a line fit over the tops'
controllers gives ``CONTROLLER_LUT`` and ``CONTROLLER_LUT_PER_BIT``), into
``reports/reference/resource_calibration_tops.md``. Acceptance: DSP, BRAM and LUT RAM
exact, LUT and FF within 10%. Syntheses are cached in ``build/resource_calibration/``
(keyed by Verilog, family and script): the mid top takes Yosys about 11 minutes.

With ``--vector``: the vector unit's components (``hw.vector``: requant, softmax, GELU,
LayerNorm, pos_embed, built by ``hw.vector.unit.build_unit`` as ``fpim synth --vector`` does) over a
sweep of lanes (1-8) and widths on xc7 and xcup, against
:func:`sim.resources.vector_unit_costs`, with the least-squares fits the LUT and FF constants
come from, into ``reports/reference/resource_calibration_vector.md``. Acceptance: DSP, LUT
RAM and BRAM exact, LUT and FF within 10%. Cached like ``--tops``; GELU's 32-stage divider
per lane makes it the slowest (about 4 minutes of Yosys for 4 lanes on a loaded machine).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.lib import fifo

from hw.buffer import RingBuffer
from hw.core import OutputStationaryCore
from hw.generate import generate, top_name
from hw.model import datapath_model, rel_error, top_model
from hw.params import USE_DSP
from hw.pe_fixed import FixedMacPe
from hw.pe_packed import PackedFixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from hw.postproc import PostProcessor
from hw.synth import (
    ToolError,
    emit_verilog,
    summarize,
    synthesize,
    synthesize_component,
    yosys_script,
)
from hw.vector.unit import build_unit
from hw.walker import TileWalker
from quant.fileio import write_atomic
from quant.formats import ActFormat, Scheme, weight_format
from sim.arch import FAMILY_DSP
from sim.config import load_accelerator
from sim.resources import (
    CONTROLLER_LUT,
    CONTROLLER_LUT_PER_BIT,
    DIM_BITS,
    DRAIN_MUX_LUT,
    DRAIN_TREE_ROWS,
    VECTOR_UNITS,
    ZERO,
    MemoryMap,
    UnitCost,
    VectorConfig,
    buffer_depth,
    buffer_logic_cost,
    controller_luts,
    core_cost,
    drain_mux_luts,
    fifo_logic_cost,
    fixed_pe_cost,
    map_memory,
    packed_pe_cost,
    postproc_cost,
    pot_pe_cost,
    ring_count_bits,
    sp2_pe_cost,
    top_cost,
    vector_unit_costs,
    vector_width,
    walker_cost,
)

OUT = Path(__file__).resolve().parent.parent / "reports" / "reference" / \
    "resource_calibration.md"
TOLERANCE = 0.15


def _fixed(w, a, acc, fam):
    return (FixedMacPe(weight_format("fixed", w), ActFormat(a), acc),
            fixed_pe_cost(w, ActFormat(a), acc, FAMILY_DSP[fam]))


def _packed(n, w, a, acc, fam):
    return (PackedFixedMacPe(weight_format("fixed", w), ActFormat(a), acc, n),
            packed_pe_cost(n, w, ActFormat(a), acc, FAMILY_DSP[fam]))


def _sp2(w, a, acc, fam):
    return Sp2Pe(weight_format("sp2", w), ActFormat(a), acc), sp2_pe_cost(w, ActFormat(a), acc)


def _pot(w, a, acc, fam):
    return PotPe(weight_format("pot", w), ActFormat(a), acc), pot_pe_cost(w, ActFormat(a), acc)


def _post(cols, acc, fam):
    """The post-processor as the engine builds it: the output format is a command input."""
    return PostProcessor.for_engine(acc, cols), postproc_cost(cols, acc, FAMILY_DSP[fam])


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
                    f"{s['ff']} / {model.ff:.0f} | {s['dsp']} / {model.dsp} |")
        print(f"{rows[-1]} {res.seconds:.1f} s", flush=True)
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
                    f"{s['dsp']} / {model['dsp']} | {s['carry']} |")
        print(f"{rows[-1]} {res.seconds:.1f} s", flush=True)
    return rows, worst, dsp_exact


# ---- --tops: whole accelerator tops and the units of their control and memories ---------

OUT_TOPS = OUT.with_name("resource_calibration_tops.md")
CACHE = Path(__file__).resolve().parent.parent / "build" / "resource_calibration"
TOPS_TOLERANCE = 0.10
#: Whole tops: (label, preset, Yosys time limit in seconds); xc7z020 takes about 20 minutes.
TOPS = [("tiny", "tiny", 3600.0), ("mid", "configs/rtl/mid.yaml", 3600.0),
        ("xc7z020", "xc7z020", 2400.0)]
# Load buffers (word bits, k_tile): RAM32M, RAM64M, LUT RAM in two depth slices, RAMB18,
# RAMB36, RAMB18 in nine depth slices.
BUFFER_UNITS = [(16, 16), (24, 16), (16, 32), (16, 64), (32, 256), (64, 256), (48, 4608)]
# Output FIFOs (bits, depth as the top builds them): RAM32M, RAM64M, RAMB18.
FIFO_UNITS = [(189, 4), (100, 4), (189, 16), (100, 16), (100, 40), (462, 98)]
WALKER_UNITS = [(4, 16), (16, 256), (12, 4608), (5, 100)]
# Drain multiplexers: a DSP core (fixed-4 PEs, a4, A24; the PEs go to DSP slices, so its
# LUTs are the row select) of these rows x DRAIN_COLS columns; the rows above
# sim.resources.DRAIN_TREE_ROWS give DRAIN_MUX_LUT (least squares).
DRAIN_UNITS = (8, 12, 16, 24, 32, 48, 64)
DRAIN_COLS = 4


def cached_synthesis(label: str, text: str, top: str, family: str, timeout: float) -> dict:
    """Yosys' result for ``text`` from build/resource_calibration (keyed by the Verilog, the
    family and the script), synthesizing it on a miss; a timeout is cached too."""
    marked = len(re.findall(rf'\(\* {USE_DSP} = "yes" \*\)', text))
    script = yosys_script(top, family, marked)
    key = hashlib.sha256("\0".join((text, family, script)).encode()).hexdigest()[:16]
    path = CACHE / f"{label}-{family}-{key}.json"
    if path.exists():
        rec = json.loads(path.read_text())
        if "timeout" not in rec or rec["timeout"] >= timeout:
            return rec
    try:
        res = synthesize(text, top, family, timeout=timeout)
        rec = {"top": top, "family": family, "seconds": round(res.seconds, 1),
               "cells": res.cells, "summary": res.summary, "modules": res.modules}
    except ToolError as exc:
        if "time out" not in str(exc):
            raise
        rec = {"top": top, "family": family, "timeout": timeout}
    write_atomic(path, json.dumps(rec, indent=1, sort_keys=True))
    return rec


def _row(label: str, got: dict, model: UnitCost, mem: MemoryMap | None) -> str:
    s = got["summary"]
    cells = {k: v for k, v in got["cells"].items() if k.startswith("RAM")}
    got_mem = ", ".join(f"{v} {k}" for k, v in sorted(cells.items())) or "flip-flops"
    want_mem = "-" if mem is None else (f"{mem.cells} {mem.cell}" if mem.cells else "flip-flops")
    if mem is None and not cells:  # no memory in the unit
        got_mem = "-"
    return (f"| {label} | {s['lut']} / {model.lut:.0f} | {s['ff']} / {model.ff:.0f} | "
            f"{got_mem} / {want_mem} |")


def run_control_units() -> list[str]:
    rows = []
    for width, kt in BUFFER_UNITS:
        mem = map_memory(width, buffer_depth(kt), "transparent")
        text = emit_verilog(RingBuffer(width, kt), "unit")
        got = cached_synthesis(f"buffer-{width}x{kt}", text, "unit", "xc7", 3600.0)
        rows.append(_row(f"load buffer {width} bits, k_tile {kt} ({width} x "
                         f"{buffer_depth(kt)})", got, buffer_logic_cost(mem, kt), mem))
        print(f"{rows[-1]} {got['seconds']:.0f} s", flush=True)
    for width, depth in FIFO_UNITS:
        f = fifo.SyncFIFOBuffered(width=width, depth=depth)
        text = verilog.convert(f, name="unit", emit_src=False, ports=[
            f.w_data, f.w_en, f.w_rdy, f.r_data, f.r_en, f.r_rdy, f.level])
        mem = map_memory(width, depth - 1, "sync")
        got = cached_synthesis(f"fifo-{width}x{depth}", text, "unit", "xc7", 3600.0)
        rows.append(_row(f"output FIFO {width} bits, {depth} entries ({width} x {depth - 1})",
                         got, fifo_logic_cost(mem), mem))
        print(f"{rows[-1]} {got['seconds']:.0f} s", flush=True)
    for cols, kt in WALKER_UNITS:
        text = emit_verilog(TileWalker(cols, kt, DIM_BITS), "unit")
        got = cached_synthesis(f"walker-{cols}x{kt}", text, "unit", "xc7", 3600.0)
        rows.append(_row(f"tile walker, {cols} columns, k_tile {kt}", got,
                         walker_cost(cols, kt), None))
        print(f"{rows[-1]} {got['seconds']:.0f} s", flush=True)
    return rows


def run_drain_units() -> tuple[list[str], str]:
    """The drain-multiplexer units and the least-squares LUTs per row and selected bit of
    those above ``DRAIN_TREE_ROWS`` rows (the source of ``DRAIN_MUX_LUT``)."""
    rows, fit = [], []
    act, acc = ActFormat(4), 24
    for n in DRAIN_UNITS:
        core = OutputStationaryCore(weight_format("fixed", 4), act, acc, n, DRAIN_COLS)
        got = cached_synthesis(f"drain-{n}x{DRAIN_COLS}", emit_verilog(core, "unit"), "unit",
                               "xc7", 3600.0)
        model = core_cost(Scheme.FIXED, n, DRAIN_COLS, 4, act, acc, "DSP48E1")
        per_bit = got["summary"]["lut"] / (DRAIN_COLS * acc)
        rows.append(f"| drain multiplexer, {n} rows x {DRAIN_COLS} columns, A{acc} | "
                    f"{got['summary']['lut']} / {model.lut:.0f} | {got['summary']['ff']} / "
                    f"{model.ff:.0f} | {per_bit:.2f} / {drain_mux_luts(n):.2f} |")
        print(f"{rows[-1]} {got['seconds']:.0f} s", flush=True)
        if n > DRAIN_TREE_ROWS:
            fit.append((n - 1, per_bit))
    slope = sum(x * y for x, y in fit) / sum(x * x for x, _ in fit)
    note = (f"Least squares over the units above {DRAIN_TREE_ROWS} rows: "
            f"{slope:.3f} LUT per row and selected bit (`DRAIN_MUX_LUT` = {DRAIN_MUX_LUT}).")
    print(note, flush=True)
    return rows, note


def _blocks(accel, got: dict) -> list[str]:
    """Per block of the top: measured (Yosys' module sections) / model."""
    top = top_name(accel)
    mods = got["modules"]

    def measured(prefixes: tuple[str, ...]) -> dict:
        cells: dict[str, int] = {}
        for name, c in mods.items():
            short = name[len(top) + 1:] if name.startswith(top + ".") else ""
            if any(short == p or short.startswith(p + ".") for p in prefixes):
                for k, v in c.items():
                    cells[k] = cells.get(k, 0) + v
        return summarize(cells)

    t = top_cost(accel)
    walkers = t.control["walkers"]
    blocks = [
        *((f"datapath: {name} (its PEs included)" if name.endswith("core") else
           f"datapath: {name}", (f"datapath.{name}", f"datapath.{name}_b"), cost)
          for name, cost in t.datapath.items()),  # (_b: column group B's, R3c)
        ("walkers (loader, walker)", ("loader", "walker"), walkers),
        ("w_buf", ("w_buf",), t.control["w_buf"]),
        ("x_buf", ("x_buf",), t.control["x_buf"]),
        ("out_fifo", ("out_fifo",), t.control["out_fifo"]),
        *((("deal walkers (R3c)", ("deal_loader", "deal_walker"), t.control["deal_walkers"]),)
          if "deal_walkers" in t.control else ()),
    ]
    rows = []
    for label, prefixes, model in blocks:
        s = measured(prefixes)
        rows.append(f"| {accel.name} | {label} | {s['lut']} / {model.lut:.0f} | "
                    f"{s['ff']} / {model.ff:.0f} | {s['dsp']} / {model.dsp} |")
    own = summarize(mods.get(top, {}))
    ctl = t.control["controller"] + t.control.get("group_control", ZERO)
    rows.append(f"| {accel.name} | controller (top module) | {own['lut']} / {ctl.lut:.0f} | "
                f"{own['ff']} / {ctl.ff:.0f} | {own['dsp']} / {ctl.dsp} |")
    return rows


def controller_fit(points: list[tuple[int, float]]) -> str:
    """Least squares of the tops' controller LUTs (the top module's, less the model's
    load-size LUTs, shared drain control and column-group fields) over the bits of their
    ring step counters: the source of
    ``CONTROLLER_LUT`` and ``CONTROLLER_LUT_PER_BIT``."""
    if len({x for x, _ in points}) < 2:
        return "Too few tops measured to fit the controller's LUTs."
    slope, base = np.polyfit(*zip(*points, strict=True), 1)
    return (f"Least squares over the tops' controllers (top module LUTs less the model's "
            f"load-size, shared-drain and column-group LUTs, against the bits of the ring "
            f"step counters, "
            f"`ring_count_bits`: {', '.join(f'{x}: {y:.0f}' for x, y in points)}): "
            f"{base:.1f} + {slope:.2f} per bit (`CONTROLLER_LUT` = "
            f"{CONTROLLER_LUT}, `CONTROLLER_LUT_PER_BIT` = {CONTROLLER_LUT_PER_BIT}).")


def run_tops() -> tuple[list[str], list[str], list[str], bool]:
    rows, block_rows, notes, ctl_points = [], [], [], []
    ok = True
    for label, preset, timeout in TOPS:
        accel = load_accelerator(preset)
        text, manifest = generate(accel)
        fam = accel.part.family
        got = cached_synthesis(f"top-{label}", text, manifest["top"], fam, timeout)
        if "timeout" in got:
            notes.append(f"`{accel.name}` ({top_name(accel)}): Yosys did not finish within "
                         f"{got['timeout']:.0f} s on this machine; no measurement.")
            print(notes[-1], flush=True)
            continue
        s, model = got["summary"], top_model(accel)
        errs = {k: rel_error(float(s[k]), float(model[k])) for k in ("lut", "ff")}
        exact = all(s[k] == model[k] for k in ("dsp", "bram36", "ramb36", "ramb18", "lutram"))
        ok &= exact and all(e is not None and abs(e) <= TOPS_TOLERANCE for e in errs.values())
        rows.append(
            f"| {accel.name} | {s['lut']} / {model['lut']} ({pct(errs['lut'])}) | "
            f"{s['ff']} / {model['ff']} ({pct(errs['ff'])}) | {s['dsp']} / {model['dsp']} | "
            f"{s['ramb36']} + {s['ramb18']} / {model['ramb36']} + {model['ramb18']} | "
            f"{s['lutram']} / {model['lutram']} |")
        print(f"{rows[-1]} {got['seconds']:.0f} s", flush=True)
        block_rows += _blocks(accel, got)
        # the top module less what the model puts there besides controller_luts: the
        # load-size multiplies, a shared post-processor's drain control, the group fields
        own = summarize(got["modules"].get(manifest["top"], {}))["lut"]
        kt, gb = accel.memory.k_tile, accel.engine.group_b_cols
        control = top_cost(accel).control
        extra = (control["controller"].lut - controller_luts(kt, gb)
                 + (control["group_control"].lut if "group_control" in control else 0))
        ctl_points.append((ring_count_bits(kt, gb), own - extra))
    notes.append(controller_fit(ctl_points))
    print(notes[-1], flush=True)
    return rows, block_rows, notes, ok


def main_tops(out: Path) -> int:
    t0 = time.perf_counter()
    unit_rows = run_control_units()
    drain_rows, drain_note = run_drain_units()
    top_rows, block_rows, notes, ok = run_tops()
    total = time.perf_counter() - t0
    verdict = (f"Acceptance (DSP, BRAM and LUT RAM exact, LUT and FF within "
               f"{100 * TOPS_TOLERANCE:.0f}% for every top measured): "
               f"{'met' if ok else 'NOT met'}.")
    text = [
        "# Resource-model calibration: whole accelerator tops",
        "",
        "Generated by `.venv/bin/python bench/resource_calibration.py --tops` (Yosys 0.23 "
        "`synth_xilinx -family xc7 -noiopad` as `hw.synth` runs it, hierarchy kept; results "
        "cached in `build/resource_calibration/`; the syntheses' times are printed, not "
        "kept here, as they vary from run to run). Cells: measured / model "
        "(`sim.resources.top_cost`, the model `estimate_resources` uses). LUT counts "
        "LUT1-6 and INV cells (logic); LUT RAM counts RAM32M/RAM64M/... cells, each of "
        "which occupies 4 LUTs of the part besides those; BRAM as RAMB36 + RAMB18 cells.",
        "",
        "## Units: load buffers, output FIFOs, tile walkers",
        "",
        "The sources of the buffer, FIFO and walker constants of `sim.resources` "
        "(`buffer_logic_cost`, `fifo_logic_cost`, `walker_cost`) and checks of the memory "
        "mapping (`map_memory`).",
        "",
        "| unit | LUT | FF | memory cells |",
        "|---|---|---|---|",
        *unit_rows,
        "",
        "## Units: drain multiplexers",
        "",
        "A core's row select (`hw.core`; `sim.resources.drain_mux_luts`): DSP cores whose "
        "PEs map to DSP slices alone, so their LUTs are the multiplexer's. The source of "
        "`DRAIN_MUX_LUT`.",
        "",
        "| unit | LUT | FF | LUT per selected bit |",
        "|---|---|---|---|",
        *drain_rows,
        "",
        drain_note,
        "",
        "## Whole tops (`fpim synth --whole-top`)",
        "",
        "| top | LUT | FF | DSP48 | RAMB36 + RAMB18 | LUT RAM |",
        "|---|---|---|---|---|---|",
        *top_rows,
        "",
        *[f"- {n}" for n in notes],
        *([""] if notes else []),
        "### By block (Yosys' module sections)",
        "",
        "| top | block | LUT | FF | DSP48 |",
        "|---|---|---|---|---|",
        *block_rows,
        "",
        verdict,
        "",
    ]
    write_atomic(out, "\n".join(text))
    print(f"{verdict} ({total:.0f} s)")
    return 0 if ok else 1


OUT_VECTOR = OUT.with_name("resource_calibration_vector.md")
VECTOR_TOLERANCE = 0.10
#: Vector-unit components (hw.vector): (unit, lanes, acc_bits, x bits (signed), tokens,
#: features, family). The constants of sim.resources' VEC_LUT and VEC_FF are fitted on the
#: xc7 rows of up to 4 lanes; the 8-lane and xcup rows check them.
VECTOR_SWEEP = [
    *[("requant", n, 24, 8, 17, 8, "xc7") for n in (1, 2, 4, 8)],
    ("requant", 2, 32, 8, 17, 8, "xc7"), ("requant", 2, 24, 8, 17, 8, "xcup"),
    *[("softmax", n, 24, 8, 17, 8, "xc7") for n in (1, 2, 4)],
    ("softmax", 2, 32, 8, 64, 8, "xc7"), ("softmax", 2, 24, 8, 17, 8, "xcup"),
    ("softmax", 8, 24, 8, 197, 8, "xc7"),
    *[("gelu", n, 24, 8, 17, 8, "xc7") for n in (1, 2, 4)],
    ("gelu", 1, 24, 4, 17, 8, "xc7"), ("gelu", 1, 24, 8, 17, 8, "xcup"),
    *[("layernorm", n, 24, 8, 17, 32, "xc7") for n in (1, 2, 4)],
    ("layernorm", 2, 24, 4, 17, 64, "xc7"), ("layernorm", 2, 24, 8, 17, 32, "xcup"),
    ("layernorm", 8, 24, 8, 17, 64, "xc7"),
    *[("pos_embed", n, 24, 8, 17, 8, "xc7") for n in (1, 2, 4)],
    ("pos_embed", 2, 24, 4, 17, 8, "xc7"), ("pos_embed", 2, 24, 8, 17, 8, "xcup"),
    ("pos_embed", 8, 24, 8, 17, 8, "xc7"),
]


def run_vector() -> tuple[list[str], dict[str, tuple[float, str]], bool, list[tuple]]:
    """Each VECTOR_SWEEP component against :func:`sim.resources.vector_unit_costs`; also
    returns (row, config, measured summary) for :func:`fit_vector`."""
    rows, worst, exact, got_all = [], {"lut": (0.0, ""), "ff": (0.0, "")}, True, []
    for row in VECTOR_SWEEP:
        unit, lanes, acc, xb, tokens, features, fam = row
        cfg = VectorConfig(lanes, acc, ActFormat(xb, True), tokens, features)
        text = emit_verilog(build_unit(unit, cfg), "unit")
        got = cached_synthesis(f"vec-{unit}-{lanes}-{acc}-{xb}-{tokens}-{features}", text,
                               "unit", fam, 3600.0)
        label = f"{unit} {lanes} lanes, A{acc}, x{xb}, T{tokens}, D{features}"
        if "timeout" in got:
            rows.append(f"| {label} | {fam} | Yosys timed out | | | | | |")
            exact = False
            continue
        s, t = got["summary"], vector_unit_costs(cfg, FAMILY_DSP[fam])[unit]
        got_all.append((row, cfg, s))
        errs = {k: rel_error(float(s[k]), float(getattr(t, k))) for k in ("lut", "ff")}
        for k, e in errs.items():
            if e is None or abs(e) > abs(worst[k][0]):
                worst[k] = (e if e is not None else float("inf"), f"{label}, {fam}")
        # memories: exact on xc7 (map_memory follows its rules); xcup maps LUT RAM to
        # RAM32M16 cells (8 LUTs, 14 bits wide), which the model does not know
        exact &= s["dsp"] == t.dsp and (fam != "xc7" or (s["lutram"] == t.lutram
                                                         and s["bram36"] == t.bram36))
        rows.append(f"| {label} | {fam} | {s['lut']} / {t.lut} ({pct(errs['lut'])}) | "
                    f"{s['ff']} / {t.ff} ({pct(errs['ff'])}) | {s['dsp']} / {t.dsp} | "
                    f"{s['lutram']} / {t.lutram} | {s['bram36']} / {t.bram36} | "
                    f"{got['seconds']:.0f} |")
        print(rows[-1], flush=True)
    return rows, worst, exact, got_all


def fit_vector(got_all: list[tuple]) -> list[str]:
    """Least-squares LUT and FF constants of each component, ``lanes (lane + lane_w w) +
    shared``, from the xc7 syntheses of at most 4 lanes (what VEC_LUT and VEC_FF hold,
    rounded); FF without a memory kept in flip-flops."""
    import numpy as np

    out = []
    for unit in VECTOR_UNITS:
        xs, ys = [], {"lut": [], "ff": []}
        for (u, lanes, *_, fam), cfg, s in got_all:
            if u != unit or fam != "xc7" or lanes > 4:
                continue
            w = vector_width(unit, cfg)
            xs.append([lanes, lanes * w, 1.0])
            mem = vector_unit_costs(cfg, FAMILY_DSP[fam])[unit].memories.get(unit)
            mem_ff = mem.width * mem.depth if mem is not None and mem.kind == "ff" else 0
            ys["lut"].append(s["lut"])
            ys["ff"].append(s["ff"] - mem_ff)
        for k in ("lut", "ff"):
            coef = np.linalg.lstsq(np.array(xs), np.array(ys[k], float), rcond=None)[0]
            out.append(f"{unit} {k}: lane {coef[0]:.2f}, lane_w {coef[1]:.3f}, shared "
                       f"{coef[2]:.1f} (from {len(xs)} syntheses)")
    return out


def main_vector(out: Path) -> int:
    t0 = time.perf_counter()
    rows, worst, exact, got_all = run_vector()
    fits = fit_vector(got_all)
    print("\n".join(fits))
    total = time.perf_counter() - t0
    ok = exact and all(abs(v) <= VECTOR_TOLERANCE for v, _ in worst.values())
    verdict = (f"Worst model error: LUT {pct(worst['lut'][0])} ({worst['lut'][1]}), FF "
               f"{pct(worst['ff'][0])} ({worst['ff'][1]}); DSP "
               f"{'exact' if exact else 'NOT exact'} in every row, LUT RAM and BRAM in every "
               f"xc7 row. Acceptance (DSP exact, LUT and FF within "
               f"{100 * VECTOR_TOLERANCE:.0f}%): {'met' if ok else 'NOT met'}.")
    text = [
        "# Resource-model calibration: the vector unit",
        "",
        "Generated by `.venv/bin/python bench/resource_calibration.py --vector` (Yosys 0.23 "
        "`synth_xilinx -noiopad` as `hw.synth` runs it, family per row; results cached in "
        f"`build/resource_calibration/`; {total:.0f} s for this report, the syntheses' own "
        "times in the last column). Each component of `hw.vector` synthesized alone "
        "(`hw.vector.unit.build_unit`, what `fpim synth --vector` synthesizes): `A` the "
        "accumulator bits of requant's and softmax's input, `x` GELU's, LayerNorm's and "
        "pos_embed's signed input bits, `T` softmax's longest row, `D` LayerNorm's longest "
        "token. Cells: "
        "measured / model (`sim.resources.vector_unit_costs`, the model the simulator and "
        "the searches use; error relative to measured). LUT counts LUT1-6 and INV cells "
        "(logic); LUT RAM the RAM32M/RAM64M cells (4 LUTs of the part each).",
        "",
        "The LUT and FF constants (`VEC_LUT`, `VEC_FF`) are least-squares fits on the xc7 "
        "rows of at most 4 lanes; the 8-lane and xcup rows check them (the xcup LayerNorm "
        "row's FF gives `VEC_FF_DSP48E2`, measured on it alone). The memories follow "
        "Yosys' xc7 rules (`map_memory`); on xcup Yosys maps LUT RAM to RAM32M16 cells (8 "
        "LUTs, 14 bits wide) instead of RAM32M (4 LUTs, 6 bits), so the xcup rows' LUT RAM "
        "cells differ (the LUTs they occupy within about 10%).",
        "",
        "| component | family | LUT | FF | DSP48 | LUT RAM | BRAM36 | synth s |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Least-squares fits of `lanes (lane + lane_w w) + shared` on those rows (`w` from "
        "`sim.resources.vector_width`; FF without a memory kept in flip-flops):",
        "",
        *[f"- {f}" for f in fits],
        "",
        verdict,
        "",
    ]
    write_atomic(out, "\n".join(text))
    print(verdict)
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--units", action=argparse.BooleanOptionalAction, default=True,
                    help="also synthesize the single units (default: yes)")
    ap.add_argument("--tops", action="store_true",
                    help="whole accelerator tops (tiny, mid, xc7z020) and the units of their "
                         "buffers, FIFO and walkers instead, into "
                         "resource_calibration_tops.md")
    ap.add_argument("--vector", action="store_true",
                    help="the vector unit's components (hw.vector) over a sweep of lanes and "
                         "widths instead, into resource_calibration_vector.md")
    args = ap.parse_args()
    if args.vector:
        return main_vector(args.out if args.out != OUT else OUT_VECTOR)
    if args.tops:
        return main_tops(args.out if args.out != OUT else OUT_TOPS)
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
        "width, `hw.synth`; family per row; the syntheses' times are printed, not kept "
        "here, as they vary from run to run). Cells: measured "
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
            "| unit | family | LUT | FF | DSP |",
            "|---|---|---|---|---|",
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
        "| engine | LUT | FF | DSP48 | CARRY |",
        "|---|---|---|---|---|",
        *sweep_rows,
        "",
        verdict,
        "",
    ]
    write_atomic(args.out, "\n".join(text))
    print(f"{verdict} ({total:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
