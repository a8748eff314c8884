"""PIM macro cost model: cycles, conversions, energy and area of a layer on the macros.

The arithmetic (decomposition schemes, ADC step, transfer curve, noise) is defined once in
:mod:`quant.pim`; this module maps a layer's integer GEMM onto crossbar macros, computes
every group conversion with a numba kernel, and estimates cycles, energy and area.

Cost model (per GEMM ``M x K`` weights, ``N`` activation vectors), weights stationary:

* a macro holds ``rows`` inputs by ``cols // columns_per_output`` outputs; a layer needs
  ``tiles = ceil(K / rows) * ceil(M * columns_per_output / cols)`` macro tiles;
* one activation vector on one tile costs ``planes * groups * ceil(cols_used / adcs) *
  adc_latency`` cycles: each input step (one plane for parallel inputs, ``a_bits`` planes
  for bit-serial) activates each group of ``group_size`` rows in turn, and each ADC
  converts its share of the used columns one after another;
* with ``tiles <= macros`` the tiles run in parallel and ``floor(macros / tiles)`` copies of
  the layer split the ``N`` vectors; otherwise the tiles run in ``ceil(tiles / macros)``
  passes, each preceded by writing the weights (``rows * write_cycles_per_row``);
* energy = conversions x ``energy_adc_pj`` + cell MACs x ``energy_cell_fj`` + digital
  shift-adds (one per conversion) x ``energy_shift_add_pj``; area = ``macros`` x
  ``area_mm2``. The defaults are approximations; each preset names its sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quant.errors import ConfigError, check_int_range
from quant.pim import PimPlan, plan
from sim.pim.macro import PimMacro


@dataclass(frozen=True)
class PimLayerCost:
    """Cycles, energy and mapping of one GEMM on a chip of PIM macros."""

    name: str
    m: int
    k: int
    n: int
    tiles: int
    passes: int
    replication: int
    conversions: int
    cycles: int
    energy_uj: float
    latency_us: float


def layer_cost(macro: PimMacro, name: str, m: int, k: int, n: int, w_bits: int,
               a_bits: int, a_signed: bool = False) -> PimLayerCost:
    """Cost of one ``M x K`` by ``K x N`` GEMM (see the module docstring)."""
    for label, v in (("M", m), ("K", k), ("N", n)):
        check_int_range(label, v, 1, 1 << 40)
    pl: PimPlan = plan(macro.arith, w_bits, a_bits, a_signed)
    cpo = pl.columns_per_output
    if cpo > macro.cols:
        raise ConfigError(f"cols must be at least {cpo} for {macro.arith.scheme} with "
                          f"w_bits={w_bits}, not {macro.cols}")
    outs_per_macro = macro.cols // cpo
    row_tiles = math.ceil(k / macro.rows)
    col_tiles = math.ceil(m / outs_per_macro)
    tiles = row_tiles * col_tiles
    g = macro.arith.group_size
    rows_used = min(k, macro.rows)
    groups = math.ceil(rows_used / g)
    cols_used = min(m, outs_per_macro) * cpo
    planes = len(pl.planes)
    per_vector = planes * groups * math.ceil(cols_used / macro.adcs) * macro.adc_latency
    if tiles <= macro.macros:
        passes, replication = 1, macro.macros // tiles
        cycles = math.ceil(n / replication) * per_vector
    else:
        passes, replication = math.ceil(tiles / macro.macros), 1
        cycles = passes * (n * per_vector + macro.rows * macro.write_cycles_per_row)
    groups_total = math.ceil(k / g)  # conversions use the real K, not the padded tile
    conversions = n * m * groups_total * pl.conversions_per_group
    cell_macs = n * m * k * planes * len(pl.slices) * (2 if cpo == 2 else 1)
    energy_pj = (conversions * (macro.energy_adc_pj + macro.energy_shift_add_pj)
                 + cell_macs * macro.energy_cell_fj * 1e-3)
    return PimLayerCost(name, m, k, n, tiles, passes, replication, conversions, cycles,
                        energy_pj * 1e-6, cycles / macro.clock_mhz)

