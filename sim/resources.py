"""Analytical resource model (LUT, FF, DSP, BRAM36) of the mixed-scheme GEMM engine.

The datapath part (PEs, skew registers, drain multiplexers, post-processing) is a formula
in the bit widths and array sizes that follows what ``hw`` builds and what Yosys 0.23
``synth_xilinx`` makes of it; its constants were fitted to single-unit syntheses and the
whole formula is checked against whole-datapath syntheses by
``bench/resource_calibration.py`` (table and errors in
``reports/reference/resource_calibration.md``; acceptance: DSP exact, LUT and FF within
15% for every configuration). Buffers and control are first-order estimates, not
calibrated (the generated datapath has neither).

Symbols: ``w`` weight bits, ``a`` activation bits, ``A`` accumulator bits, ``R x C`` a
core's rows and columns, ``P`` the DSP packing, ``G = ceil(R / P)`` the DSP core's row
groups (``G = R`` for the LUT core). Unit costs (measured numbers are the "units" table of
the calibration report):

* **Multipliers** (:func:`multiplier_dsps`): a signed ``m x n``-bit multiply is tiled into
  25x18 (DSP48E1) or 27x18 (DSP48E2) signed pieces. The PEs' multipliers are marked for DSP
  slices (``hw.params.USE_DSP``, honoured by ``hw.synth``) and map at any width; Yosys
  sends an unmarked multiply to DSPs only when its product has at least 9 bits
  (``mul2dsp`` ``DSP_Y_MINWIDTH``).
* **Fixed PE** (:func:`fixed_pe_cost`): one DSP slice at every width (3- and 4-bit included:
  units fixed-3 a4, fixed-4 a4). On DSP48E1 the accumulator is absorbed (P register): 0
  LUT, 0 FF (units fixed-4 a4, fixed-8 a8); on DSP48E2 Yosys keeps it in fabric: ``A`` LUT
  and ``A`` FF (units fixed-4 a4 xcup, fixed-8 a8 xcup).
* **Packed group** of ``n = 2..4`` fixed PEs (:func:`packed_pe_cost`, ``hw.pe_packed``): one
  DSP slice; ``n (S + A) + A + 2 w + 1`` LUT, ``S`` the lane spacing
  (:func:`packed_lane_bits`), ``n A`` FF (the lanes' accumulators). Fitted on the units
  pair 4/4 A24, pair 8/8 A24, pair 8/8 A32, quad 4/4 A24 (all four exact).
* **SP2 PE** (:func:`sp2_pe_cost`): ``A + p (SP2_SEL_LUT (m1 + m2) + SP2_BIT_LUT)`` LUT,
  ``p = a + S`` the product width: two shifters selecting with ``m1`` and ``m2`` bits, their
  sum and its negation; ``A`` FF. Fitted on units sp2-4 a4 and sp2-6 a6 (exact), the sp2-8
  a8 unit checks it.
* **PoT PE** (:func:`pot_pe_cost`): ``A + p (POT_SEL_LUT s + POT_BIT_LUT)`` LUT with
  ``p = a + E``, ``E = min(2**(w-1) - 2, POT_MAX_EXPONENT)`` the largest shift and ``s`` the
  bits of its shift index (``w - 1`` below the exponent cap); ``A`` FF. Fitted on units
  pot-4 a4 and pot-5 a8 (exact); from PoT-6 on the capped shifter of ``hw.pe_pot``.
* **Array registers** (structural, exact in every synthesis so far): weights of row ``r``
  (group ``g``) pass ``g + C - 1`` registers, activations of column ``c`` pass
  ``c + G - 1``, the 3-bit valid/first/last control ``G + C - 2`` (PEs on one anti-diagonal
  see the same control, Yosys merges those registers) and its capture flag one more.
  Registers are not shared between cores.
* **Drain registers** (sim.timing R4): ``A`` FF per PE, loaded with a clock enable (no LUT).
* **Drain multiplexer**: ``C A mux(R)`` LUT per core (``mux(n) = ceil(n / 4)``, a LUT6 is a
  4:1 multiplexer).
* **Post-processing** per core (``hw.postproc`` as the engine builds it, the output format
  an input: ``p = A + 18`` bits: ``(acc + bias)`` times the 16-bit multiplier):
  ``(POST_LANE_LUT C + POST_SHARED_LUT) p`` LUT (the variable right shift over ``p`` bits,
  its sticky mask and the clamp to the command's output format dominate),
  ``C (max_out_bits + 1) + 1`` FF (each lane's output register holds any output format,
  :func:`hw.params.out_shape`), and :func:`multiplier_dsps` of ``(A+1) x 17`` per lane.
  Fitted (least squares) on units post A24 with 1, 2, 4 lanes and post A32 with 1, 2 lanes
  (errors within 13 LUT).
* **Control and DMA**: a fixed 1,500 LUTs and 2,000 FFs (not calibrated).
* **BRAM36**: each load buffer (``hw.buffer``) is one ``width x depth`` memory, ``width``
  the rows' (weights) or the columns' (activations) bits of one K step, ``depth``
  :func:`buffer_depth` of ``memory.k_tile``, mapped to the cheapest BRAM36 aspect ratio
  (72x512 ... 1x32768). Not calibrated at full size: ``bench/buffer_bram.py`` finds it
  exact for 48 x 2048 and 48 x 2000 (3), but Yosys uses RAMB18 halves and splits a deep
  memory's depth (48 x 4608: 7 where the model says 9; 256 x 1024: 15 RAMB18 = 7.5, model
  8), so the model may over-count; the full presets' buffers did not finish under Yosys in
  20 minutes on a loaded machine.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from quant.errors import ConfigError
from quant.formats import ActFormat, Scheme, weight_format
from quant.requant import REQUANTIZER
from sim.arch import Accelerator, GemmEngine
from sim.timing import DIV_CYCLES

CONTROL_LUT = 1_500
CONTROL_FF = 2_000
BRAM36_SHAPES = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384),
                 (1, 32768))

#: Yosys ``synth_xilinx`` maps an unmarked multiply to DSPs only from this product width on.
DSP_Y_MINWIDTH = 9
#: Signed multiplier port widths (A, B) of the DSP slices.
DSP_PORTS = {"DSP48E1": (25, 18), "DSP48E2": (27, 18)}
MODEL_NOTE = ("analytical; datapath calibrated against Yosys synth_xilinx "
              "(reports/reference/resource_calibration.md), buffers and control not")

# Fitted constants (see the module docstring for the syntheses they come from).
SP2_SEL_LUT = 11 / 26
SP2_BIT_LUT = 71 / 26
POT_SEL_LUT = 9 / 11
POT_BIT_LUT = 45 / 22
POST_LANE_LUT = 6.787
POST_SHARED_LUT = 3.284


def _mux_luts(n: int) -> int:
    return max(0, math.ceil(n / 4)) if n > 1 else 0


@dataclass(frozen=True)
class UnitCost:
    """LUT, FF and DSP of one hardware unit (a PE, a packed group, a post-processor)."""

    lut: float
    ff: float
    dsp: int

    def __add__(self, other: UnitCost) -> UnitCost:
        return UnitCost(self.lut + other.lut, self.ff + other.ff, self.dsp + other.dsp)

    def __mul__(self, n: int) -> UnitCost:
        return UnitCost(self.lut * n, self.ff * n, self.dsp * n)


ZERO = UnitCost(0.0, 0.0, 0)


def multiplier_dsps(a_bits: int, b_bits: int, dsp_type: str, marked: bool = False) -> int:
    """DSP slices for a signed ``a_bits x b_bits`` multiply (0: LUT logic).

    ``marked``: the product carries ``use_dsp`` (``hw.params.dsp_product``) and maps to DSP
    slices at any width; otherwise Yosys' ``DSP_Y_MINWIDTH`` rule applies.
    """
    if not marked and a_bits + b_bits < DSP_Y_MINWIDTH:
        return 0
    pa, pb = DSP_PORTS[dsp_type]
    big, small = max(a_bits, b_bits), min(a_bits, b_bits)
    # mul2dsp splits the operands into signed top pieces and unsigned lower pieces.
    return math.ceil((big - 1) / (pa - 1)) * math.ceil((small - 1) / (pb - 1))


def packed_lane_bits(weight_bits: int, act: ActFormat) -> int:
    """Lane spacing of a packed multiplier: bits of the largest ``|k| * |x|``.

    ``|k|`` goes up to ``2**(weight_bits-1)`` (the most negative word), so every lane's
    magnitude product fits its lane and lanes never carry into each other.
    """
    return ((1 << (weight_bits - 1)) * act.max_abs).bit_length()


def fixed_pe_cost(w: int, act: ActFormat, acc: int, dsp_type: str) -> UnitCost:
    """One fixed-point PE (``hw.pe_fixed``): a DSP slice (its product is marked)."""
    dsp = multiplier_dsps(w, act.bits, dsp_type, marked=True)
    if dsp_type == "DSP48E1":
        return UnitCost(0.0, 0.0, dsp)
    return UnitCost(acc, acc, dsp)


def packed_pe_cost(lanes: int, w: int, act: ActFormat, acc: int, dsp_type: str) -> UnitCost:
    """``lanes`` fixed PEs on one multiplier (``hw.pe_packed``); one lane is a fixed PE."""
    if lanes == 1:
        return fixed_pe_cost(w, act, acc, dsp_type)
    s = packed_lane_bits(w, act)
    packed_bits = (lanes - 1) * s + w + 1  # unsigned magnitudes, signed for the DSP
    return UnitCost(lanes * (s + acc) + acc + 2 * w + 1, lanes * acc,
                    multiplier_dsps(packed_bits, act.bits + 1, dsp_type, marked=True))


def sp2_pe_cost(w: int, act: ActFormat, acc: int) -> UnitCost:
    fmt = weight_format(Scheme.SP2, w)
    p = act.bits + fmt.shift_base  # type: ignore[attr-defined]
    sel = fmt.m1 + fmt.m2  # type: ignore[attr-defined]
    return UnitCost(acc + p * (SP2_SEL_LUT * sel + SP2_BIT_LUT), acc, 0)


def pot_pe_cost(w: int, act: ActFormat, acc: int) -> UnitCost:
    # the largest shift of a code (hw.pe_pot): 2**(w-1) - 2 up to the exponent cap
    # (quant.formats.POT_MAX_EXPONENT, binding from PoT-6 on), its shift index that many bits
    shift = weight_format(Scheme.POT, w).denominator.bit_length() - 1
    p = act.bits + shift
    return UnitCost(acc + p * (POT_SEL_LUT * max(1, shift.bit_length()) + POT_BIT_LUT), acc, 0)


def postproc_cost(cols: int, acc: int, dsp_type: str) -> UnitCost:
    """One post-processor (``hw.postproc``) with ``cols`` lanes, the output format an input."""
    p = REQUANTIZER.product_bits(acc)
    return UnitCost((POST_LANE_LUT * cols + POST_SHARED_LUT) * p,
                    cols * (REQUANTIZER.max_out_bits + 1) + 1,
                    cols * multiplier_dsps(acc + 1, REQUANTIZER.mult_bits + 1, dsp_type))


def core_cost(scheme: Scheme, rows: int, cols: int, w: int, act: ActFormat, acc: int,
              dsp_type: str, packing: int = 1) -> UnitCost:
    """One output-stationary core (``hw.core``): PEs, skew registers, drain multiplexer."""
    if rows == 0:
        return ZERO
    groups = [min(packing, rows - g0) for g0 in range(0, rows, packing)]
    n_groups = len(groups)
    if scheme == Scheme.FIXED:
        pes = sum((packed_pe_cost(n, w, act, acc, dsp_type) for n in groups), ZERO) * cols
    elif scheme == Scheme.SP2:
        pes = sp2_pe_cost(w, act, acc) * (rows * cols)
    else:
        pes = pot_pe_cost(w, act, acc) * (rows * cols)
    w_regs = w * sum(g * n + n * (cols - 1) for g, n in enumerate(groups))
    x_regs = act.bits * (cols * (cols - 1) // 2 + cols * (n_groups - 1))
    # valid, first and last along the anti-diagonals, and the capture flag one step further
    ctl_regs = 3 * (n_groups + cols - 2) + 1
    held = rows * cols * acc  # the drain registers (R4)
    drain = cols * acc * _mux_luts(rows)
    return pes + UnitCost(drain, w_regs + x_regs + ctl_regs + held, 0)


def datapath_cost(engine: GemmEngine, dsp_type: str) -> dict[str, UnitCost]:
    """Cost of each block ``hw.engine.EngineDatapath`` builds: cores and post-processors."""
    e, act = engine, engine.act_format
    out = {}
    for name, scheme, rows, packing in (("dsp", Scheme.FIXED, e.dsp_rows, e.dsp_packing),
                                        ("lut", e.lut_core_scheme, e.lut_rows, 1)):
        if rows:
            out[f"{name}_core"] = core_cost(scheme, rows, e.cols, e.weight_bits, act,
                                            e.acc_bits, dsp_type, packing)
            out[f"{name}_post"] = postproc_cost(e.cols, e.acc_bits, dsp_type)
    return out


@dataclass(frozen=True)
class PeCosts:
    """Per-PE and per-column costs the estimate assumes (LUTs, FFs, DSP slices).

    Per-PE numbers are the PE's own logic (a packed group's cost shared by its lanes);
    ``*_per_col_post`` is one post-processing lane (shared logic left out).
    """

    lut_per_lut_pe: float
    ff_per_lut_pe: float
    lut_per_dsp_pe: float
    ff_per_dsp_pe: float
    dsp_per_dsp_pe: float
    lut_per_col_post: float
    ff_per_col_post: float
    dsp_per_col_post: int
    control_lut: int = CONTROL_LUT
    control_ff: int = CONTROL_FF


def pe_costs(accel: Accelerator) -> PeCosts:
    """The unit costs of ``accel``'s engine, per PE and per post-processing column."""
    e, dsp_type = accel.engine, accel.part.dsp_type
    act, w, acc = e.act_format, e.weight_bits, e.acc_bits
    if e.lut_rows == 0:
        lut_pe = ZERO
    elif e.lut_core_scheme == Scheme.SP2:
        lut_pe = sp2_pe_cost(w, act, acc)
    else:
        lut_pe = pot_pe_cost(w, act, acc)
    pack = e.dsp_packing
    dsp_pe = packed_pe_cost(pack, w, act, acc, dsp_type)
    post = postproc_cost(1, acc, dsp_type)
    return PeCosts(
        lut_per_lut_pe=round(lut_pe.lut, 1), ff_per_lut_pe=lut_pe.ff,
        lut_per_dsp_pe=round(dsp_pe.lut / pack, 1), ff_per_dsp_pe=dsp_pe.ff / pack,
        dsp_per_dsp_pe=dsp_pe.dsp / pack,
        lut_per_col_post=round(POST_LANE_LUT * REQUANTIZER.product_bits(acc), 1),
        ff_per_col_post=REQUANTIZER.max_out_bits + 1, dsp_per_col_post=post.dsp,
    )


def buffer_depth(k_tile: int) -> int:
    """Words of a load buffer's memory (``hw.buffer.DoubleBuffer``): two banks of ``k_tile``
    words (of the next power of two when ``k_tile`` is one, whose bank bit is then an
    address bit)."""
    if k_tile & (k_tile - 1) == 0:
        return 2 << max(1, (k_tile - 1).bit_length())
    return 2 * k_tile


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
                "model": MODEL_NOTE, "per_pe_costs": asdict(self.costs)}


def estimate_resources(accel: Accelerator) -> ResourceEstimate:
    """LUT/FF/DSP/BRAM36 of ``accel``'s engine, buffers and control (see module docstring)."""
    e, m = accel.engine, accel.memory
    c = pe_costs(accel)
    dp = sum(datapath_cost(e, accel.part.dsp_type).values(), ZERO)
    dsp = dp.dsp
    lut = round(dp.lut) + c.control_lut
    ff = round(dp.ff) + c.control_ff

    # The two load buffers as hw.buffer builds them: one memory of both banks each, one
    # K step of every row (weights) or every column (activations) per word.
    depth = buffer_depth(m.k_tile)
    bram = (bram36_blocks(e.rows * e.weight_bits, depth)
            + bram36_blocks(e.cols * e.act_bits, depth))
    return ResourceEstimate(lut=int(lut), ff=int(ff), dsp=int(dsp), bram36=int(bram), costs=c)


def fit_violations(accel: Accelerator, est: ResourceEstimate | None = None) -> list[str]:
    """One message per resource the engine needs more of than its part has (empty: fits)."""
    est = est or estimate_resources(accel)
    e, part = accel.engine, accel.part
    out = []
    for res, have in (("dsp", part.dsp), ("lut", part.lut), ("ff", part.ff),
                      ("bram36", part.bram36)):
        used = getattr(est, res)
        if used > have:
            out.append(f"engine needs {used} {res.upper()} but part {part.name} has {have} "
                       f"(dsp_rows={e.dsp_rows}, lut_rows={e.lut_rows}, cols={e.cols})")
    return out


def fits(accel: Accelerator, lut_cap: float = 1.0) -> bool:
    """True if the engine fits its part, using at most ``lut_cap`` of the part's LUTs."""
    est = estimate_resources(accel)
    return not fit_violations(accel, est) and est.lut <= lut_cap * accel.part.lut


def check_fits(accel: Accelerator) -> None:
    """Raise :class:`~quant.errors.ConfigError` (the first violation) unless the engine fits."""
    bad = fit_violations(accel)
    if bad:
        raise ConfigError(bad[0])


# ---------------------------------------------------------------------------------------
# Vector unit and attention buffer (first-order estimates for the ViT search; not yet
# calibrated against Yosys: issue 16)
# ---------------------------------------------------------------------------------------

#: Width of a vector lane's registers: I-ViT's int32 (``quant.ops.intmath.INT32_MAX``).
VEC_WORD_BITS = 32
#: Width of its products, requantizer sums and row reductions.
VEC_WIDE_BITS = 64
#: Stages of a lane's pipelined divider and of the shared scalar divider and square root:
#: one quotient (root) bit per stage or cycle, R13's one definition.
VEC_DIV_STAGES = DIV_CYCLES
#: Quotient stages of ShiftExp's ``q = x // x0`` (``q <= 31``: five bits).
VEC_EXP_Q_STAGES = 5
#: Sequencer of the vector unit (micro-op table, row and element counters), LUT and FF.
VEC_CONTROL = 500


@dataclass(frozen=True)
class BlockCost:
    """LUT, FF, DSP and BRAM36 of a block outside the GEMM datapath (whole units)."""

    lut: int
    ff: int
    dsp: int
    bram36: int

    def to_dict(self) -> dict:
        return asdict(self)


def vector_lane_cost(dsp_type: str) -> UnitCost:
    """One lane of the vector unit (:func:`vector_unit_cost` gives the derivation)."""
    w, p = VEC_WORD_BITS, VEC_WIDE_BITS
    big = multiplier_dsps(w, w, dsp_type, marked=True)
    small = multiplier_dsps(w, 16 + 1, dsp_type, marked=True)
    combine = (2 * (big - 1) + (small - 1)) * p
    shifter = p * (math.ceil(math.log2(p) / 2) + 1)
    exp = 2 * w + w + VEC_EXP_Q_STAGES * w + w + w * math.ceil(math.log2(w) / 2)
    lut = (combine + 2 * exp + VEC_DIV_STAGES * w + shifter + p + 2 * w + 2 * p + p)
    ff = VEC_DIV_STAGES * 2 * w + 16 * p + p
    return UnitCost(float(lut), float(ff), 2 * big + small)


def vector_unit_cost(lanes: int, dsp_type: str, row_words: int) -> BlockCost:
    """The vector unit (softmax, LayerNorm, GELU, residual adds and the requantizers of
    ``sim.timing`` R12-R16) with ``lanes`` lanes; ``row_words`` is the longest row it
    keeps (a softmax row of T keys, a token's D features, an MLP row of 4D).

    Derivation (``W`` = :data:`VEC_WORD_BITS`, ``P`` = :data:`VEC_WIDE_BITS`, LUT6 = a 4:1
    multiplexer or one bit of a carry-chain adder). Each lane takes one element per cycle
    through the op's pipeline (R14, R15), so it has every unit the widest of those
    pipelines uses at once:

    * multipliers: two signed ``W x W`` (the dyadic requantizer ``z M``; Shiftmax's and
      ShiftGELU's ``e f``, LayerNorm's ``y f``) and one ``W x 17`` (ShiftGELU's ``x
      sigma``, LayerNorm's gamma): :func:`multiplier_dsps` slices each (4, 4 and 2 on
      DSP48E2), their partial products summed by ``pieces - 1`` adders of ``P`` bits;
    * two ShiftExp units (ShiftGELU's two exps side by side, R15): ``x + (x >> 1) - (x >>
      4)`` (two adders, ``2 W``), the clamp at ``n x0`` (``W``), :data:`VEC_EXP_Q_STAGES`
      restoring quotient stages for ``q = x // x0`` (``W`` each: a subtract whose select
      shares the LUT), the remainder (``W``) and the shift ``e << (n - q)`` (``W
      ceil(log2 W / 2)``);
    * the pipelined divider of ShiftGELU's ``INT32_MAX // (e1 + e2)``:
      :data:`VEC_DIV_STAGES` restoring stages of ``W`` LUT and ``2 W`` FF (remainder and
      the dividend's quotient bits);
    * the requantizer's rounding shift, both ways, ``P (ceil(log2 P / 2) + 1)``, its
      rounding add ``P``, the clamp and the row-maximum comparator ``2 W``, operand
      selection (two ``P``-bit 4:1 multiplexers) ``2 P``;
    * its share of the registered tree that reduces a row across the lanes (R12: max or
      sum, ``lanes - 1`` adders of ``P`` bits): ``P`` LUT and ``P`` FF;
    * pipeline registers beside the divider's: about 16 stages of ``P`` bits.

    Shared by the lanes: the scalar divider and square root of R13 (a ``P``-bit subtractor
    and select, ``2 P`` LUT, and three ``P``-bit registers) and the sequencer
    (:data:`VEC_CONTROL` LUT and FF).

    BRAM36: a row is read more than once (R14's passes), so the unit holds one row of
    ``W``-bit words, double-buffered so that the next row loads meanwhile: one memory
    ``lanes x W`` bits wide (the lanes take consecutive elements of the row) and ``2
    ceil(row_words / lanes)`` deep (:func:`bram36_blocks`).

    Per lane this is about 2,800 LUT, 3,100 FF and 10 DSP slices (either DSP type): a
    first-order estimate, to be calibrated against a synthesis of the vector unit (issue
    16) as the GEMM datapath was.
    """
    if lanes < 1 or row_words < 1:
        raise ConfigError(f"vector unit lanes and row_words must be positive, not {lanes} "
                          f"and {row_words}")
    p = VEC_WIDE_BITS
    lane = vector_lane_cost(dsp_type) * lanes
    return BlockCost(lut=round(lane.lut) + 2 * p + VEC_CONTROL,
                     ff=round(lane.ff) + 3 * p + VEC_CONTROL, dsp=lane.dsp,
                     bram36=bram36_blocks(lanes * VEC_WORD_BITS,
                                          2 * math.ceil(row_words / lanes)))


def matmul_block_violation(accel: Accelerator, m: int, k: int) -> str | None:
    """Whether the weight buffer holds every block rule R11b loads for a matmul whose
    weight-role operand ``op(a)`` is ``m x k`` per group (a head's K, ``T x head_dim``, for
    QK^T; its V, ``head_dim x T``, for A.V): None if it does, else one line saying why.

    No separate K/V buffer: R11b streams ``op(a)`` through the weight buffer
    (``hw.buffer.DoubleBuffer`` as ``hw.accel`` builds it, counted by
    :func:`estimate_resources`), whose word is one K step of every row, the DSP core's ``Rd``
    rows at ``weight_bits`` first, in banks of ``k_tile`` words (:func:`buffer_depth`). A
    block is ``a_f`` rows (R2: at most ``ceil(m / ceil(m / Rd))``) of ``k_q <= k_tile``
    steps (R1), so it takes ``k_q`` words of one bank whatever ``m`` and ``k`` are (a
    longer operand is loaded fold by fold and chunk by chunk, its DRAM traffic and stalls
    timed by R5-R8); each word must carry ``a_f`` values of ``act_bits`` in the DSP rows'
    ``Rd weight_bits`` bits, which always holds when ``act_bits <= weight_bits``."""
    e = accel.engine
    if min(m, k) < 1:
        raise ConfigError(f"matmul operand sizes must be positive, not {m} x {k}")
    if e.dsp_rows < 1:
        return "a matmul runs on the DSP core (R11a), but engine.dsp_rows is 0"
    rows = -(-m // -(-m // e.dsp_rows))
    need, have = rows * e.act_bits, e.dsp_rows * e.weight_bits
    if need <= have:
        return None
    return (f"a {m}x{k} matmul operand's blocks of {rows} rows at act_bits {e.act_bits} need "
            f"{need} bits of a weight-buffer word, but its DSP rows have {have} "
            f"(engine.dsp_rows {e.dsp_rows} x weight_bits {e.weight_bits})")
