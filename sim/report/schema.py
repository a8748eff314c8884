"""The columns of every CSV file and the keys of every ``summary.json`` a report holds.

Each is declared once here, with its type and meaning; docs/report.md repeats these tables
for readers and ``tests/test_report.py`` checks that the two agree and that written files
follow them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One CSV column or JSON key: ``kind`` is ``int``, ``float``, ``str`` or ``object``
    (JSON only: a nested object or list, or null)."""

    name: str
    kind: type
    doc: str


def _cols(*spec: tuple[str, type, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


#: ``layers.csv``: one row per layer of a run, in execution order. The first seventeen are
#: ``sim.results.LayerResult`` (the layers of ``fpim simulate --json``), the rest derived.
LAYER_COLUMNS = _cols(
    ("name", str, "layer name"),
    ("op", str, "conv, linear, matmul or gemm on the engine; a vector op otherwise"),
    ("m", int, "GEMM rows (output channels) of one group; 0 for a vector op"),
    ("n", int, "GEMM columns (output positions); 0 for a vector op"),
    ("k", int, "reduction length; 0 for a vector op"),
    ("groups", int, "identical GEMMs (depthwise channels, attention heads)"),
    ("rows_fixed", int, "rows on the DSP core (fixed point), over all groups"),
    ("rows_lut", int, "rows on the LUT core (SP2/PoT), over all groups"),
    ("cycles", int, "cycles of the layer: compute_cycles + stall_cycles"),
    ("compute_cycles", int, "cycles without memory stalls (timing rule R4); a vector op's "
                            "cycles (R10)"),
    ("stall_cycles", int, "cycles waiting for DRAM (R8)"),
    ("util_dsp", float, "DSP core: MACs over its PE-cycles in this layer, 0..1"),
    ("util_lut", float, "LUT core: MACs over its PE-cycles in this layer, 0..1"),
    ("macs", int, "multiply-accumulates"),
    ("dram_bytes", int, "DRAM bytes read (R5) and written back (R9)"),
    ("hidden_cycles", int, "a vector op's cycles overlapped by the engine (R16), not in "
                           "cycles; else 0"),
    ("shape_cycles", int, "the fewest cycles the array's shape allows: the output tiles at K "
                          "cycles each (sim.timing.shape_cycles); 0 for a vector op"),
    ("unit", str, "engine (a GEMM) or vector (the vector unit)"),
    ("dram_read_bytes", int, "DRAM bytes read: dram_bytes less the write-back of R9"),
    ("ops_per_byte", float, "operational intensity: 2 macs / dram_read_bytes; empty without "
                            "reads"),
    ("gops", float, "achieved 1e9 operations (2 per MAC) per second at the clock"),
    ("mac_util", float, "macs over the whole engine's PE-cycles (rows x cols x cycles), 0..1"),
    ("shape_cap", float, "the MAC utilisation the array's shape allows: macs over the PEs "
                         "times shape_cycles, 0..1; 0 for a vector op"),
)

#: ``pim_layers.csv`` (with ``--macro``): ``sim.pim.PimLayerCost`` of every conv/linear layer.
PIM_COLUMNS = _cols(
    ("name", str, "layer name"),
    ("m", int, "output channels"),
    ("k", int, "reduction length"),
    ("n", int, "output positions times the batch"),
    ("tiles", int, "macro tiles the weights occupy"),
    ("passes", int, "rounds of tiles when the layer needs more tiles than macros, "
                       "each after rewriting the weights; else 1"),
    ("replication", int, "copies of the layer over the macros, splitting the "
                            "activation vectors (1 with several passes)"),
    ("conversions", int, "ADC conversions"),
    ("cycles", int, "macro cycles"),
    ("energy_uj", float, "energy, microjoules"),
    ("latency_us", float, "latency, microseconds"),
)

#: ``engines.csv`` of an MSQ search report: one row per engine the search timed.
ENGINE_COLUMNS = _cols(
    ("engine", int, "index of the engine (fractions.csv refers to it)"),
    ("kind", str, "mixed (DSP and LUT cores) or dsp_only"),
    ("dsp_rows", int, "DSP core rows"),
    ("lut_rows", int, "LUT core rows"),
    ("cols", int, "columns"),
    ("dsp_packing", int, "PEs per DSP slice"),
    ("sp2_fraction", float, "the engine's fastest fraction of rows on the LUT core"),
    ("cycles", int, "cycles at that fraction (analytical mode)"),
    ("compute_cycles", int, "compute cycles at that fraction"),
    ("fps", float, "images per second at that fraction (batch 1)"),
    ("lut", int, "LUTs (resource model)"),
    ("dsp", int, "DSP slices (resource model)"),
    ("bram36", float, "BRAM36 blocks (resource model; a RAMB18 is half of one)"),
    ("k_tile", int, "load block depth (memory.k_tile) the engine's buffers fit"),
    ("pareto", int, "1 if no other engine is as fast with no more LUTs and DSPs and better "
                    "in one of the three, else 0"),
)

#: ``fractions.csv`` of an MSQ search report: every (mixed engine, SP2 fraction) timed.
FRACTION_COLUMNS = _cols(
    ("engine", int, "index into engines.csv"),
    ("sp2_fraction", float, "fraction of every layer's rows on the LUT core"),
    ("cycles", int, "cycles (analytical mode)"),
    ("fps", float, "images per second (batch 1)"),
)

#: ``summary.json`` of a run report (``fpim report --artifact|--model|--topology``).
RUN_SUMMARY = _cols(
    ("schema", str, "report-run/1"),
    ("command", str, "the fpim command that wrote the report"),
    ("simulation", object, "what fpim simulate --json prints for the same run (keys in "
                           "SIMULATION_KEYS)"),
    ("ceilings", object, "roofline ceilings: compute_gops (2 x PEs x clock) and "
                         "dram_read_gbytes_per_s (null for unlimited bandwidth)"),
    ("synth", object, "with --synth: top, family, scope, measured (Yosys cells), model "
                      "(datapath estimate) and comparison rows; else null"),
    ("verify", object, "with --verify: top, passed, failed, artifact_skipped and the cases "
                       "(name, description, cycles_sim, cycles_rtl, outputs_equal, passed); "
                       "else null"),
    ("pim", object, "with --pim: the macro, per-layer costs and totals of fpim pim "
                    "simulate --json; else null"),
    ("pim_accuracy", object, "with --pim-accuracy: macro, data, images, seed, "
                             "digital_accuracy (%) and points, each adc_bits, noise_lsb and "
                             "pim_accuracy (%); else null"),
    ("files", object, "the report's other files, sorted"),
)

#: Keys of ``simulation`` in a run summary (``sim.results.RunResult.to_dict``).
SIMULATION_KEYS = _cols(
    ("workload", str, "workload name"),
    ("accelerator", str, "accelerator preset name"),
    ("mode", str, "cycle, analytical or plain"),
    ("clock_mhz", float, "engine clock, MHz"),
    ("batch", int, "images per run (every figure below covers the whole batch)"),
    ("total_cycles", int, "cycles of the whole run"),
    ("compute_cycles", int, "cycles without stalls"),
    ("stall_cycles", int, "stall cycles"),
    ("engine_cycles", int, "cycles of the GEMM layers (compute and stall)"),
    ("vector_cycles", int, "cycles of the vector ops the engine does not hide"),
    ("hidden_vector_cycles", int, "vector cycles overlapped by the engine (R16)"),
    ("macs", int, "multiply-accumulates"),
    ("latency_ms", float, "total_cycles at the clock, milliseconds (the whole batch)"),
    ("fps", float, "images per second: batch / latency"),
    ("gops", float, "1e9 operations per second"),
    ("gops_per_dsp", float, "gops per DSP slice used"),
    ("gops_per_klut", float, "gops per thousand LUTs of the resource estimate"),
    ("mac_util", float, "macs over the whole engine's PE-cycles, 0..1"),
    ("dram_bytes", int, "DRAM bytes read and written"),
    ("resources", object, "the resource model's lut (LUT RAM included), ff, dsp, bram36, "
                          "lutram cells and their LUTs, note, per-PE costs and the part's "
                          "budget"),
    ("layers", object, "one object per layer: the first seventeen columns of layers.csv, "
                       "its mac_util, bound (compute, dram or vector: the roofline verdict), "
                       "of_roofline and shape_cap"),
    ("config", object, "the full effective configuration: accel (the preset with every "
                       "override applied), workload source, batch, derived sp2_fraction, "
                       "mode, max_cycles, functional, seed"),
)

#: ``summary.json`` of an MSQ search report (``fpim report --search msq``).
MSQ_SUMMARY = _cols(
    ("schema", str, "report-msq/1"),
    ("command", str, "the fpim command that wrote the report"),
    ("accelerator", str, "the preset whose part, memory, clock and vector unit the engines "
                         "use"),
    ("search", object, "what fpim search msq --json prints for the same search"),
    ("files", object, "the report's other files, sorted"),
)


def csv_text(columns: tuple[Column, ...], rows: Iterable[Mapping[str, object]]) -> str:
    """CSV with a header of ``columns`` and one line per row (floats exact: their repr;
    None empty)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([c.name for c in columns])
    for row in rows:
        cells = []
        for c in columns:
            v = row[c.name]
            cells.append("" if v is None else repr(float(v)) if c.kind is float else str(v))
        w.writerow(cells)
    return out.getvalue()
