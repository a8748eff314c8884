"""Analytical resource model (LUT, FF, DSP, BRAM36) of the mixed-scheme GEMM engine.

The per-PE costs are first-order formulas in the bit widths; :func:`pe_costs` lists each one
with the rule it came from, so reports can print the assumptions and the RTL issue can
calibrate them against Yosys ``synth_xilinx``. Until then these are estimates, not
measurements.

Rules (``w`` weight bits, ``a`` activation bits, ``A`` accumulator bits, LUT6 logic):

* A ``n:1`` multiplexer costs ``ceil(n / 4)`` LUTs per output bit (LUT6 = 4:1 mux, MUXF7/F8
  extend it).
* **SP2 PE** (arXiv 2012.04240): two shifters selecting among ``2**m1`` and ``2**m2``
  positions of the ``a``-bit activation (product width ``p = a + S``, ``S = 2**m1 - 1``),
  a ``p``-bit adder, and an ``A``-bit add/subtract accumulator: ``p * (mux(2**m1) +
  mux(2**m2)) + p + A`` LUTs.
* **PoT PE**: one shifter over ``2**(w-1)`` positions plus the accumulator:
  ``p * mux(2**(w-1)) + A`` LUTs.
* **DSP PE**: the multiply-accumulate sits in the DSP slice (``1/packing`` slice per PE);
  ``A / 2`` LUTs for the output-drain multiplexer.
* **FF per PE**: operand pipeline registers ``w + a`` plus accumulator and drain register
  ``2 * A`` (for DSP PEs the accumulator is the slice's P register: ``w + a + A``).
* **Post-processing** (requantization): one DSP slice and ``2 * A`` LUTs/FFs per column.
* **Control and DMA**: a fixed 1,500 LUTs and 2,000 FFs.
* **BRAM36**: each bank of each buffer is ``width x depth`` bits, mapped to the cheapest
  BRAM36 aspect ratio (72x512 ... 1x32768); every buffer has two banks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from quant.formats import Scheme, weight_format

if TYPE_CHECKING:
    from sim.arch import Accelerator

CONTROL_LUT = 1_500
CONTROL_FF = 2_000
BRAM36_SHAPES = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384),
                 (1, 32768))


def _mux_luts(n: int) -> int:
    return max(0, math.ceil(n / 4)) if n > 1 else 0


@dataclass(frozen=True)
class PeCosts:
    """Per-PE and per-column costs the estimate assumes (LUTs, FFs, DSP slices)."""

    lut_per_lut_pe: int
    ff_per_lut_pe: int
    lut_per_dsp_pe: int
    ff_per_dsp_pe: int
    dsp_per_dsp_pe: float
    lut_per_col_post: int
    ff_per_col_post: int
    dsp_per_col_post: int
    control_lut: int = CONTROL_LUT
    control_ff: int = CONTROL_FF


def pe_costs(accel: Accelerator) -> PeCosts:
    e = accel.engine
    a, w, acc = e.act_bits, e.weight_bits, e.acc_bits
    lut_fmt = weight_format(e.lut_core_scheme, w) if e.lut_rows else None
    if lut_fmt is not None and lut_fmt.scheme == Scheme.SP2:
        s = lut_fmt.shift_base  # type: ignore[attr-defined]
        p = a + s
        m1, m2 = lut_fmt.m1, lut_fmt.m2  # type: ignore[attr-defined]
        lut_pe = p * (_mux_luts(1 << m1) + _mux_luts(1 << m2)) + p + acc
    elif lut_fmt is not None:
        p = a + (1 << (w - 1)) - 2
        lut_pe = p * _mux_luts(1 << (w - 1)) + acc
    else:
        lut_pe = 0
    return PeCosts(
        lut_per_lut_pe=lut_pe,
        ff_per_lut_pe=w + a + 2 * acc,
        lut_per_dsp_pe=acc // 2,
        ff_per_dsp_pe=w + a + acc,
        dsp_per_dsp_pe=1.0 / e.dsp_packing,
        lut_per_col_post=2 * acc,
        ff_per_col_post=2 * acc,
        dsp_per_col_post=1,
    )


def bram36_blocks(width_bits: int, depth: int) -> int:
    """BRAM36 blocks for one ``width_bits x depth`` memory (cheapest aspect ratio)."""
    if width_bits <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for w, d in BRAM36_SHAPES)


@dataclass(frozen=True)
class ResourceEstimate:
    """Estimated use of the part's resources by the engine (ints, whole units)."""

    lut: int
    ff: int
    dsp: int
    bram36: int
    costs: PeCosts

    def to_dict(self) -> dict:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram36": self.bram36,
                "model": "analytical (uncalibrated)", "per_pe_costs": asdict(self.costs)}


def estimate_resources(accel: Accelerator) -> ResourceEstimate:
    """LUT/FF/DSP/BRAM36 of ``accel``'s engine, buffers and control (see module docstring)."""
    e, m = accel.engine, accel.memory
    c = pe_costs(accel)
    n_dsp_pe = e.dsp_rows * e.cols
    n_lut_pe = e.lut_rows * e.cols
    dsp = math.ceil(n_dsp_pe / e.dsp_packing) + e.cols * c.dsp_per_col_post
    lut = (n_lut_pe * c.lut_per_lut_pe + n_dsp_pe * c.lut_per_dsp_pe
           + e.cols * c.lut_per_col_post + c.control_lut)
    ff = (n_lut_pe * c.ff_per_lut_pe + n_dsp_pe * c.ff_per_dsp_pe
          + e.cols * c.ff_per_col_post + c.control_ff)

    def bank_depth(kib: float, width: int) -> int:
        return max(1, int(kib * 8192) // width)

    wb_width = e.rows * e.weight_bits
    ab_width = e.cols * e.act_bits
    ob_width = e.cols * e.act_bits
    bram = 2 * (bram36_blocks(wb_width, bank_depth(m.weight_bank_kib, wb_width))
                + bram36_blocks(ab_width, bank_depth(m.act_bank_kib, ab_width))
                + bram36_blocks(ob_width, bank_depth(m.out_bank_kib, ob_width)))
    return ResourceEstimate(lut=int(lut), ff=int(ff), dsp=int(dsp), bram36=int(bram), costs=c)
