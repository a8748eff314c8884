"""Analytical resource model (LUT, FF, DSP, BRAM36, LUT RAM) of the mixed-scheme GEMM
accelerator.

The datapath part (PEs, skew registers, drain multiplexers, post-processing) is a formula
in the bit widths and array sizes that follows what ``hw`` builds and what Yosys 0.23
``synth_xilinx`` makes of it; its constants were fitted to single-unit syntheses and the
whole formula is checked against whole-datapath syntheses by
``bench/resource_calibration.py`` (table and errors in
``reports/reference/resource_calibration.md``; acceptance: DSP exact, LUT and FF within
15% for every configuration). The buffers, memories and control of the whole top are
costed block by block (below) and checked against whole-top syntheses.

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
* **Drain multiplexer** (:func:`drain_mux_luts`): ``C A mux(R)`` LUT per core. Up to
  ``DRAIN_TREE_ROWS`` = 8 rows ``mux(n) = ceil((n - 1) / 3)``, a tree of LUT6s, each a 4:1
  multiplexer (the 2..4-row sweep 1 LUT per bit, the mid-size top's 8-row cores 3). From 9
  rows on (four or more select bits) Yosys' ABC mapping, with MUXF7/MUXF8, grows by
  ``DRAIN_MUX_LUT`` per row instead of a third: ``mux(n) = DRAIN_MUX_LUT (n - 1)``, fitted
  (least squares) on the drain-multiplexer units of ``bench/resource_calibration.py
  --tops`` (a 4-column DSP core of 12..64 rows, its own module's LUTs). At 49 rows that is
  20.2 LUTs per bit against the LUT6 tree's 16; the same multiplexer measures 20.6 in a
  49 x 12 core alone and 25.2 inside the xc7z020 top (ABC's result varies from netlist to
  netlist by up to a quarter at that size).
* **Post-processing** per core (``hw.postproc`` as the engine builds it, the output format
  an input: ``p = A + 18`` bits: ``(acc + bias)`` times the 16-bit multiplier):
  ``(POST_LANE_LUT C + POST_SHARED_LUT) p`` LUT (the variable right shift over ``p`` bits,
  its sticky mask and the clamp to the command's output format dominate),
  ``C (max_out_bits + 1) + 1`` FF (each lane's output register holds any output format,
  :func:`hw.params.out_shape`), and :func:`multiplier_dsps` of ``(A+1) x 17`` per lane.
  Fitted (least squares) on units post A24 with 1, 2, 4 lanes and post A32 with 1, 2 lanes
  (errors within 13 LUT). With ``engine.shared_post`` (:func:`shares_post`, R4) the DSP
  core's post-processors serve both cores: none for the LUT core, and
  ``SHARED_POST_LUT_PER_BIT`` LUT per bit of the lanes' accumulators and the parameters the
  core choice passes, ``SHARED_CONTROL_LUT`` in the controller (the LUT phase and its row
  index); set from the tiny tops (`fpim synth --accel tiny --set engine.shared_post=true
  --whole-top`: 3,253 LUT, model +0.4%; with ``engine.group_b_cols=1``: 4,753, +0.9%).
* **Matmul path** (sim.timing R11; a top built with ``matmul=True``, which
  :func:`rtl_runs_matmul` allows; not in :func:`estimate_resources`): the DSP core's
  PEs, skew registers and ports take the widened operands of :func:`core_operands`, its
  post-processor's output lanes :func:`out_lane_bits` bits; one LUT per weight-role port bit
  of each row and per activation column (the edge's extension multiplexers) and one per
  output lane bit (the bypass). Measured on tiny (`fpim synth --accel tiny`, Yosys 0.23):
  3,324 LUT / 921 FF against the model's 3,274 / 921.

The rest of the accelerator top (``hw.accel.GemmAccelerator``; :func:`top_cost`) is checked
against Yosys syntheses of whole tops by ``bench/resource_calibration.py --tops``
(``reports/reference/resource_calibration_tops.md``; acceptance: DSP and BRAM exact, LUT and
FF within 10%). Yosys keeps the top's hierarchy, so each block below is costed alone:

* **Memories** (:func:`map_memory`): the two load buffers, the requantization parameter
  memories and the output FIFO's storage (:func:`top_memories`) go to block RAM, LUT RAM or
  flip-flops exactly as Yosys 0.23 ``memory_libmap`` decides for ``synth_xilinx -family
  xc7``: the cheapest of its cost rules (``brams_xc4v.txt`` with 36 Kb blocks, cascade,
  mixed-width SDP; ``lutrams_xc5v.txt``; a flip-flop bit costs 1), with its geometry
  (RAMB18 halves, depth slices sharing a block's width). Measured on the units and tops of
  the calibration report (every decision and cell count exact); the tests list edge cases.
  A LUT RAM cell (RAM32M, RAM64M, ...) occupies 4 LUTs of the part. UltraScale+ parts are
  costed with the same rules (not measured: Yosys maps them with other libraries).
* **Buffer and FIFO logic** (:func:`control_cost`): pointers, the registered read address,
  the forwarding multiplexer of a transparent read (per word bit: 1 LUT on RAM32M and
  RAM64M, 3 around a block RAM, plus ``ceil((s - 1) / 8)`` per bit for ``s`` depth slices),
  ``RING_MOD_LUT`` per pointer bit when the ring's length is not a power of two (its two
  modular additions) and, around a block RAM, Yosys' transparency registers (``width + 1``
  FFs). Fitted on the buffer units of the calibration report; the depth-sliced rings
  (nine RAMB18 slices, ``k_tile`` 4608) on the xc7z020 top's two buffers (256 and 48 bits:
  1,102 and 274 LUTs; the model 1,102 and 270; the 48-bit unit alone 316).
* **Walkers and controller** (:func:`control_cost`): flip-flops counted register by
  register (command fields, the eight step counters (R6-R8),
  two block bases and the block size of the rings (R6), both tile walkers, the drain state, the
  output row's metadata); LUTs a fitted constant per walker and, for the controller, a
  constant and a term per bit of its step counters (:func:`controller_luts`), plus the
  load-size multipliers (``rows x steps``, ``cols x steps``), which go to DSP slices when
  their used product has at least ``DSP_Y_MINWIDTH`` bits.
* **Column groups** (R3c, ``engine.group_b_cols``): the weight ring is three banks
  (``hw.buffer.BankedRing``), each of :func:`bank_pieces` (block RAM without depth slices:
  4096 + 512 words on xc7z020) and read by both groups through one multiplexer each
  (:func:`banked_logic_cost`: 1,832 LUT against 1,830 measured alone), the activation ring
  three banks long, a second copy of each parameter memory, the deal table in quad-port LUT
  RAM (:func:`map_multiread`), two deal walkers and the controller's group fields
  (:func:`group_control_cost`), and each core's post-processor split in two (group A's
  lanes, group B's, each with its own shared part). Checked on the tiny and
  xc7z020 tops with groups (``fpim synth --set engine.group_b_cols=W --whole-top``): tiny
  LUT +1.2 %, FF +0.2 %; xc7z020 7 + 5 LUT −3.0 %, FF, DSP and BRAM within 0.1 %; the
  xc7z020 preset (7 + 5 with one post-processor, ``fpim synth --accel xc7z020
  --whole-top``) LUT −3.3 %, FF +0.05 %, DSP, BRAM and LUT RAM exact.

The **vector unit** of a transformer (``hw.vector``: one component per op, the dyadic
requantizer, softmax, GELU and LayerNorm; :class:`VectorConfig`) is costed component by
component (:func:`vector_unit_costs`) and checked against Yosys syntheses of each component
over a sweep of lanes and widths by ``bench/resource_calibration.py --vector``
(``reports/reference/resource_calibration_vector.md``; acceptance: DSP exact, LUT and FF
within 10%): DSP slices exactly from its multipliers (:func:`vector_unit_dsps`, none marked
``use_dsp``), its memory by :func:`map_memory`, LUT and FF as ``lanes (lane + lane_w w) +
shared`` with fitted constants (:data:`VEC_LUT`, :data:`VEC_FF`). :func:`accel_vector_unit`
is the one rule the simulator (``fpim simulate``'s resources) and both searches use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from quant.errors import ConfigError, check_choice, check_int_range
from quant.formats import ActFormat, Scheme, weight_format
from quant.ops.add import BRANCH_LIMIT
from quant.ops.intmath import DYADIC_BITS
from quant.ops.layernorm import BETA_LIMIT
from quant.requant import REQUANTIZER
from sim.arch import Accelerator, GemmEngine
from sim.timing import drain_rows, ring_steps

if TYPE_CHECKING:
    from sim.workload import Attention

BRAM36_SHAPES = ((72, 512), (36, 1024), (18, 2048), (9, 4096), (4, 8192), (2, 16384),
                 (1, 32768))

#: Command field width and requantization rows per core of the generated accelerator top
#: (``hw.generate`` builds ``hw.accel.GemmAccelerator`` with them).
DIM_BITS = 16
PARAM_DEPTH = 64


def ring_count_bits(k_tile: int, group_b: int = 0) -> int:
    """Width of the controller's step counters of one ring (R6), counting modulo its power
    of two: a ring holds ``2 * k_tile`` steps (``3 * k_tile`` with column group B,
    ``group_b`` > 0) and a block at most ``k_tile`` more, so the steps requested and not
    yet released, plus the next block's, stay below twice the ring."""
    return (2 * ring_steps(k_tile, group_b) - 1).bit_length()

#: Yosys ``synth_xilinx`` maps an unmarked multiply to DSPs only from this product width on.
DSP_Y_MINWIDTH = 9
#: Signed multiplier port widths (A, B) of the DSP slices.
DSP_PORTS = {"DSP48E1": (25, 18), "DSP48E2": (27, 18)}
MODEL_NOTE = ("analytical; datapath calibrated against Yosys synth_xilinx "
              "(reports/reference/resource_calibration.md), whole top (buffers, memories, "
              "control) against whole-top syntheses "
              "(reports/reference/resource_calibration_tops.md)")

# Fitted constants (see the module docstring for the syntheses they come from).
SP2_SEL_LUT = 11 / 26
SP2_BIT_LUT = 71 / 26
POT_SEL_LUT = 9 / 11
POT_BIT_LUT = 45 / 22
POST_LANE_LUT = 6.787
POST_SHARED_LUT = 3.284


#: Drain multiplexer: rows up to which it is a tree of LUT6 4:1 multiplexers, and the LUTs
#: per row and selected bit beyond (module docstring; the drain-multiplexer units of
#: ``bench/resource_calibration.py --tops``).
DRAIN_TREE_ROWS = 8
DRAIN_MUX_LUT = 0.42


def drain_mux_luts(n: int) -> float:
    """LUTs per selected bit of a core's ``n:1`` drain multiplexer (``hw.core``'s row
    select; 0 for one row)."""
    if n <= 1:
        return 0
    if n <= DRAIN_TREE_ROWS:
        return math.ceil((n - 1) / 3)
    return DRAIN_MUX_LUT * (n - 1)


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


def postproc_cost(cols: int, acc: int, dsp_type: str, lane_bits: int | None = None
                  ) -> UnitCost:
    """One post-processor (``hw.postproc``) with ``cols`` lanes, the output format an input;
    ``lane_bits``: its output register's width per lane (default ``max_out_bits + 1``; the
    DSP core's with the matmul bypass: :func:`out_lane_bits`)."""
    p = REQUANTIZER.product_bits(acc)
    lane = REQUANTIZER.max_out_bits + 1 if lane_bits is None else lane_bits
    return UnitCost((POST_LANE_LUT * cols + POST_SHARED_LUT) * p,
                    cols * lane + 1,
                    cols * multiplier_dsps(acc + 1, REQUANTIZER.mult_bits + 1, dsp_type))


def core_cost(scheme: Scheme, rows: int, cols: int, w: int, act: ActFormat, acc: int,
              dsp_type: str, packing: int = 1, split: int = 0) -> UnitCost:
    """One output-stationary core (``hw.core``): PEs, skew registers, drain multiplexer;
    ``split``: group B's first column (R3c), whose weights come through their own edge
    skew of ``g + split`` registers per row group ``g`` instead of one."""
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
    if split:
        w_regs += w * sum(n * (g + split - 1) for g, n in enumerate(groups))
    x_regs = act.bits * (cols * (cols - 1) // 2 + cols * (n_groups - 1))
    # valid, first and last along the anti-diagonals, and the capture flag one step further
    ctl_regs = 3 * (n_groups + cols - 2) + 1
    held = rows * cols * acc  # the drain registers (R4)
    drain = cols * acc * drain_mux_luts(rows)
    return pes + UnitCost(drain, w_regs + x_regs + ctl_regs + held, 0)


def datapath_cost(engine: GemmEngine, dsp_type: str, matmul: bool = False
                  ) -> dict[str, UnitCost]:
    """Cost of each block ``hw.engine.EngineDatapath`` builds (``matmul``: with the matmul
    path): cores and post-processors."""
    e = engine
    out = {}
    shared = shares_post(e)
    split = e.cols - e.group_b_cols if e.group_b_cols else 0
    groups = (split, e.group_b_cols) if split else (e.cols,)
    for name, scheme, rows, packing in (("dsp", Scheme.FIXED, e.dsp_rows, e.dsp_packing),
                                        ("lut", e.lut_core_scheme, e.lut_rows, 1)):
        if rows:
            w, act = core_operands(e, name, matmul)
            out[f"{name}_core"] = core_cost(scheme, rows, e.cols, w, act, e.acc_bits,
                                            dsp_type, packing, split)
            if shared and name == "lut":  # R4: the DSP core's serves both
                continue
            # R3c: one post-processor per column group
            out[f"{name}_post"] = sum((postproc_cost(
                lanes, e.acc_bits, dsp_type, out_lane_bits(e, name, matmul))
                for lanes in groups), ZERO)
            if name == "dsp" and matmul and rtl_runs_matmul(e):
                # R11b-d: a 2:1 multiplexer bit per weight-role port bit of each row, a gate
                # per activation column at the core's edge; the bypass per output lane bit
                out["dsp_core"] += UnitCost(rows * w + e.cols, 0, 0)
                out["dsp_post"] += UnitCost(e.cols * out_lane_bits(e, name, matmul), 0, 0)
    if shared:  # R4: hw.engine's dsp_lut_post; the core and the parameters of the row
        # drained, one 2:1 gate per bit
        bits = e.cols * e.acc_bits + len(groups) * param_word_bits(e.acc_bits)
        out["dsp_lut_post"] = (out.pop("dsp_post")
                               + UnitCost(SHARED_POST_LUT_PER_BIT * bits, 0, 0))
    return out


def shares_post(engine: GemmEngine) -> bool:
    """Whether ``engine``'s cores share one post-processor (``engine.shared_post`` on an
    engine with both cores; sim.timing R4)."""
    return engine.shared_post and engine.dsp_rows > 0 and engine.lut_rows > 0


def rtl_runs_matmul(engine: GemmEngine) -> bool:
    """Whether the generated top can be built with the matmul path (``hw.accel``'s
    ``matmul=True``) to run rule R11's matmuls on its DSP core: an unpacked DSP
    core (``dsp_packing`` 1; four packed 4-bit lanes have no room in a DSP48E2 for
    ``act_bits + 1``-bit operands) whose widened operands (:func:`core_operands`: at most
    16-bit words, the widest fixed-point format) have a product its accumulators hold."""
    w = max(engine.weight_bits, engine.act_bits + 1)
    need = (((1 << (w - 1)) - 1) * ((1 << engine.act_bits) - 1)).bit_length() + 1
    return (engine.dsp_rows > 0 and engine.dsp_packing == 1 and w <= 16
            and engine.acc_bits >= need)


def core_operands(engine: GemmEngine, core: str, matmul: bool = False
                  ) -> tuple[int, ActFormat]:
    """The PE operand widths of a core of the generated top: (weight-role word bits, the
    activation operand's format). The LUT core's and a core without matmuls are the
    engine's; a DSP core built with the matmul path (``matmul`` and
    :func:`rtl_runs_matmul`, R11c) takes
    ``max(weight_bits, act_bits + 1)``-bit signed words in the weight role and ``act_bits
    + 1``-bit signed activations, either operand extended from ``act_bits`` by the command's
    signedness."""
    if core == "dsp" and matmul and rtl_runs_matmul(engine):
        return (max(engine.weight_bits, engine.act_bits + 1),
                ActFormat(engine.act_bits + 1, True))
    return engine.weight_bits, engine.act_format


def out_lane_bits(engine: GemmEngine, core: str, matmul: bool = False) -> int:
    """Bits of one output lane of a core on the top's ``out`` stream: any output format the
    requantizer clamps to (``max_out_bits + 1``, signed), and on a DSP core built with the
    matmul path (``matmul`` and :func:`rtl_runs_matmul`) at least the ``acc_bits`` of the
    post-processor's bypass (R11d)."""
    base = REQUANTIZER.max_out_bits + 1
    if core == "dsp" and matmul and rtl_runs_matmul(engine):
        return max(base, engine.acc_bits)
    return base


@dataclass(frozen=True)
class PeCosts:
    """Per-PE and per-column costs the estimate assumes (LUTs, FFs, DSP slices).

    Per-PE numbers are the PE's own logic (a packed group's cost shared by its lanes);
    ``*_per_col_post`` is one post-processing lane (shared logic left out);
    ``control_*`` the walkers, controller and the buffers' and FIFO's logic
    (:func:`control_cost`, memory cells not included).
    """

    lut_per_lut_pe: float
    ff_per_lut_pe: float
    lut_per_dsp_pe: float
    ff_per_dsp_pe: float
    dsp_per_dsp_pe: float
    lut_per_col_post: float
    ff_per_col_post: float
    dsp_per_col_post: int
    control_lut: int
    control_ff: int


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
    ctl = sum(control_cost(accel).values(), ZERO)
    return PeCosts(
        lut_per_lut_pe=round(lut_pe.lut, 1), ff_per_lut_pe=lut_pe.ff,
        lut_per_dsp_pe=round(dsp_pe.lut / pack, 1), ff_per_dsp_pe=dsp_pe.ff / pack,
        dsp_per_dsp_pe=dsp_pe.dsp / pack,
        lut_per_col_post=round(POST_LANE_LUT * REQUANTIZER.product_bits(acc), 1),
        ff_per_col_post=REQUANTIZER.max_out_bits + 1, dsp_per_col_post=post.dsp,
        control_lut=round(ctl.lut), control_ff=round(ctl.ff),
    )


def buffer_depth(k_tile: int, group_b: int = 0) -> int:
    """Words of a load buffer's memory (``hw.buffer.RingBuffer``): its ring of
    :func:`sim.timing.ring_steps` words (``group_b``: the engine's column group B)."""
    return ring_steps(k_tile, group_b)


def bram36_blocks(width_bits: int, depth: int) -> int:
    """BRAM36 blocks for one ``width_bits x depth`` memory at its cheapest aspect ratio, each
    block holding one slice of the words. Yosys does better (RAMB18 halves, depth slices
    sharing a block's width): the estimate uses :func:`map_memory`."""
    if width_bits <= 0 or depth <= 0:
        return 0
    return min(math.ceil(width_bits / w) * math.ceil(depth / d) for w, d in BRAM36_SHAPES)


# ---- Memories: Yosys 0.23 memory_libmap for synth_xilinx -family xc7 ----------------------

#: Read ports of the top's memories: combinational (``async``: the parameter memories),
#: registered (``sync``: the output FIFO) and registered with the write forwarded to the
#: read in the same cycle (``transparent``: the load buffers).
READ_PORTS = ("async", "sync", "transparent")
#: memory_libmap's weights of the extra logic a mapping needs (per bit of a read multiplexer
#: or write decoder, per point of emulation score) and of one flip-flop bit of memory.
_FACTOR_MUX = 0.5
_FACTOR_DEMUX = 0.5
_FACTOR_EMU = 2
_LOGIC_COST_RAM = 1.0
#: Emulation score of a one-write, one-read memory: a point for the read port of its own;
#: three more for emulated transparency (no xc7 RAM forwards a write to the other port).
_EMU_SCORE = {"async": 1, "sync": 1, "transparent": 4}
#: LUTs of the part one LUT RAM instance occupies (a quarter of a SLICEM per RAM32M/RAM64M,
#: likewise RAM128X1D and two RAM64X1D).
LUTRAM_INSTANCE_LUTS = 4


@dataclass(frozen=True)
class _Ram:
    """One mapping option of a library RAM: ``abits`` address bits at the narrowest width,
    data widths, cost and width scale (memory_libmap's ``widthscale``), the byte width and
    the cells one instance becomes."""

    name: str
    kind: str  # "lutram" or "bram"
    abits: int
    widths: tuple[int, ...]
    cost: float
    widthscale: float
    byte: int
    cell: str
    cells: int = 1


# In memory_libmap's order (library files as synth_xilinx passes them, options last first).
# The single-port LUT RAM needs the read and write address to be one: never for these memories.
_LUTRAMS = (
    _Ram("DP", "lutram", 7, (1,), 8, 8, 0, "RAM128X1D"),
    _Ram("DP", "lutram", 6, (2,), 8, 8, 0, "RAM64X1D", 2),
    _Ram("DP", "lutram", 5, (4,), 8, 8, 0, "RAM32M"),
    _Ram("QP", "lutram", 6, (1,), 7, 7, 0, "RAM64M"),
    _Ram("QP", "lutram", 5, (2,), 7, 7, 0, "RAM32M"),
    _Ram("SDP", "lutram", 6, (3,), 8, 7, 0, "RAM64M"),
    _Ram("SDP", "lutram", 5, (6,), 8, 7, 0, "RAM32M"),
)
_BRAMS = (
    _Ram("TDP", "bram", 16, (1, 2, 4, 9), 513, 0, 9, "RAMB36E1", 2),  # cascaded pair
    _Ram("TDP", "bram", 15, (1, 2, 4, 9, 18, 36), 257, 0, 9, "RAMB36E1"),
    _Ram("TDP", "bram", 14, (1, 2, 4, 9, 18), 129, 0, 9, "RAMB18E1"),
    _Ram("SDP", "bram", 15, (1, 2, 4, 9, 18, 36, 72), 257, 0, 9, "RAMB36E1"),
    _Ram("SDP", "bram", 14, (1, 2, 4, 9, 18, 36), 129, 0, 9, "RAMB18E1"),
)


@dataclass(frozen=True)
class MemoryMap:
    """How Yosys maps one ``width x depth`` memory: ``kind`` ``bram``, ``lutram`` or ``ff``
    (flip-flops and multiplexers), the cells (``cell`` x ``cells``), the depth slices whose
    words a read multiplexer selects (``slices``), and memory_libmap's cost of the choice."""

    width: int
    depth: int
    read: str
    kind: str
    cell: str
    cells: int
    slices: int
    cost: float

    @property
    def bram36(self) -> float:
        """Block RAM in BRAM36 equivalents (a RAMB18 is half of one)."""
        per = {"RAMB36E1": 1.0, "RAMB18E1": 0.5}.get(self.cell, 0.0)
        return per * self.cells

    @property
    def lutram_luts(self) -> int:
        """LUTs of the part the memory's LUT RAM cells occupy."""
        if self.kind != "lutram":
            return 0
        per_instance = {"RAM64X1D": 2}.get(self.cell, 1)
        return self.cells // per_instance * LUTRAM_INSTANCE_LUTS


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _option_cost(ram: _Ram, width: int, depth: int, emu: int) -> tuple[float, int, int]:
    """(cost, instances, depth slices) of ``ram``'s best geometry for the memory, as
    memory_libmap's ``handle_geom`` computes it for one write and one read port of the
    memory's width (uniform write enable)."""
    best = None
    for b, unit in enumerate(ram.widths):
        byte = unit if ram.byte == 0 or ram.byte > unit else ram.byte
        padded = _ceil_div(width, byte) * byte
        slices = _ceil_div(depth, 1 << (ram.abits - b))
        repl = _ceil_div(slices * padded, unit)
        mux = (slices - 1) * width
        demux = slices if slices != 1 else 0
        cost = ((ram.cost - ram.widthscale) * repl
                + ram.widthscale * slices * width / unit
                + _FACTOR_MUX * mux + _FACTOR_DEMUX * demux + _FACTOR_EMU * emu)
        if best is None or cost < best[0]:
            best = (cost, repl, slices)
    assert best is not None
    return best


def map_memory(width: int, depth: int, read: str) -> MemoryMap:
    """What Yosys 0.23 ``synth_xilinx -family xc7`` (``memory_libmap``) makes of a memory
    with one write port and one read port of kind ``read`` (:data:`READ_PORTS`).

    Each library RAM option gets its cheapest geometry; the cheapest LUT RAM and the
    cheapest block RAM compete with flip-flops (``width * depth``, compared as an integer
    and replaced by each cheaper candidate's truncated cost, as memory_libmap does). A
    combinational read port rules block RAM out.
    """
    width = check_int_range("width", width, 1, 1 << 20)
    depth = check_int_range("depth", depth, 1, 1 << 30)
    check_choice("read", read, READ_PORTS)
    emu = _EMU_SCORE[read]
    kept: dict[str, tuple[float, _Ram, int, int]] = {}
    rams = _LUTRAMS + (() if read == "async" else _BRAMS)
    for ram in rams:
        cost, repl, slices = _option_cost(ram, width, depth, emu)
        if ram.kind not in kept or cost < kept[ram.kind][0]:
            kept[ram.kind] = (cost, ram, repl, slices)
    best = int(width * depth * _LOGIC_COST_RAM)
    out = MemoryMap(width, depth, read, "ff", "", 0, depth, float(width * depth))
    for cost, ram, repl, slices in kept.values():
        if cost < best:
            best = int(cost)
            out = MemoryMap(width, depth, read, ram.kind, ram.cell, repl * ram.cells, slices,
                            cost)
    return out


#: R3c: reads of the top's deal table per deal walker (``hw.deal``: each group's next two
#: row steps), and the walkers reading it (loader and compute side).
DEAL_READS_PER_WALKER = 4
DEAL_WALKERS = 2
#: Read ports of one quad-port LUT RAM (RAM64M) beside its write port.
QP_READS = 3


#: The most memories one buffer bank is split into (:func:`bank_pieces`).
MAX_PIECES = 4


def bank_pieces(width: int, depth: int) -> tuple[int, ...]:
    """Depths of the memories one ``width x depth`` bank of a load buffer is built from,
    first to last word (``hw.buffer.BankedRing``).

    Block RAM deeper than one primitive's aspect allows is sliced in depth, and Yosys
    selects the read word among the slices in LUTs (:class:`MemoryMap`'s ``slices``: 9 for
    xc7z020's 256 x 4608 weight bank, about three LUTs per bit). Split into power-of-two
    pieces, largest first (4608 = 4096 + 512), each maps to primitives at a narrower aspect
    with no slices, in as many block RAMs, and the pieces' selection merges into the bank
    selection the buffer makes anyway. The split is taken when every piece maps to block RAM
    without slices, in no more BRAM36 than the whole and at most :data:`MAX_PIECES` pieces;
    otherwise the bank is one memory."""
    whole = map_memory(width, depth, "sync")
    if whole.kind != "bram" or whole.slices == 1:
        return (depth,)
    pieces, rest = [], depth
    while rest:
        pieces.append(1 << (rest.bit_length() - 1))
        rest -= pieces[-1]
    maps = [map_memory(width, d, "sync") for d in pieces]
    if (len(pieces) <= MAX_PIECES and all(m.kind == "bram" and m.slices == 1 for m in maps)
            and sum(m.bram36 for m in maps) <= whole.bram36):
        return tuple(pieces)
    return (depth,)


def map_multiread(width: int, depth: int, reads: int) -> MemoryMap:
    """A memory of at most 64 words with ``reads`` combinational read ports (the deal
    table): Yosys builds copies of quad-port LUT RAM, each RAM64M one bit of three reads."""
    check_int_range("depth", depth, 1, 64)
    cells = width * _ceil_div(reads, QP_READS)
    return MemoryMap(width, depth, "async", "lutram", "RAM64M", cells, 1, float(cells))


def memory_maps(accel: Accelerator, matmul: bool = False) -> dict[str, MemoryMap]:
    """How Yosys maps each of :func:`top_memories` (the deal table's many read ports by
    :func:`map_multiread`)."""
    out = {}
    for name, (width, depth, read) in top_memories(accel, matmul).items():
        out[name] = (map_multiread(width, depth, DEAL_READS_PER_WALKER * DEAL_WALKERS)
                     if name == "deal_table" else map_memory(width, depth, read))
    return out


def param_word_bits(acc_bits: int) -> int:
    """Bits of one row's requantization parameters in the top's parameter memories
    (multiplier, shift, bias, ReLU flag)."""
    max_shift = REQUANTIZER.shift_range(acc_bits)[1]
    return REQUANTIZER.mult_bits + max_shift.bit_length() + acc_bits + 1


def out_fifo_depth(engine: GemmEngine) -> int:
    """Entries of the top's output FIFO: three tiles' drained rows and two in flight (R4b: a
    tile's last step makes the rest of the draining tile's drain unstoppable, so the
    controller lets it go only while the buffer holds that rest; without back-pressure it
    always does)."""
    return 3 * drain_rows(engine.dsp_rows, engine.lut_rows, shares_post(engine)) + 2


def _bits(n: int) -> int:
    """Bits of ``range(n)`` (Amaranth's shape; 0 for one value)."""
    return (n - 1).bit_length()


def _cores(engine: GemmEngine) -> int:
    return int(engine.dsp_rows > 0) + int(engine.lut_rows > 0)


def out_payload_bits(engine: GemmEngine, matmul: bool = False) -> int:
    """Bits of one output row on the top's ``out`` stream (``matmul``: of a top built with
    the matmul path): per present core the lanes (:func:`out_lane_bits`), the row index and
    its enable; the columns' first index and count; with column group B (R3c) group B's
    row indices, enables and columns too."""
    lanes = sum(engine.cols * out_lane_bits(engine, core, matmul)
                for core, rows in (("dsp", engine.dsp_rows), ("lut", engine.lut_rows)) if rows)
    groups = 2 if engine.group_b_cols else 1  # R3c: group B's rows, enables and columns
    return lanes + groups * (_cores(engine) * (DIM_BITS + 1) + DIM_BITS + _bits(engine.cols + 1))


def top_memories(accel: Accelerator, matmul: bool = False
                 ) -> dict[str, tuple[int, int, str]]:
    """The memories of the generated top (``matmul``: with the matmul path), by block:
    (width, depth, read port kind)."""
    e = accel.engine
    kt = accel.memory.k_tile
    depth = buffer_depth(kt, e.group_b_cols)
    if e.group_b_cols:  # R3c: three weight banks (hw.buffer.BankedRing)
        out = bank_memories(e.rows * e.weight_bits, kt)
    else:
        out = {"w_buf": (e.rows * e.weight_bits, depth, "transparent")}
    out["x_buf"] = (e.cols * e.act_bits, depth, "transparent")
    for core, rows in (("dsp", e.dsp_rows), ("lut", e.lut_rows)):
        if rows:
            out[f"params_{core}"] = (param_word_bits(e.acc_bits), PARAM_DEPTH, "async")
            if e.group_b_cols:  # group B's row's read: Yosys builds a second copy
                out[f"params_{core}_b"] = out[f"params_{core}"]
    if e.group_b_cols:  # R3c: the deal, one entry per row step (hw.accel)
        out["deal_table"] = (DIM_BITS, PARAM_DEPTH, "async")
    out["out_fifo"] = (out_payload_bits(e, matmul), out_fifo_depth(e) - 1, "sync")
    return out


# ---- Control: walkers, controller, the buffers' and FIFO's logic --------------------------

#: Fitted LUT constants (the calibration report's units and tops): one tile walker, the
#: controller (counters, comparisons, command and drain logic: a constant and a term per bit
#: of the rings' step counters, :func:`controller_luts`; a load-size multiply in LUTs
#: adds half a LUT per product bit and bit of its narrower operand), the buffer forwarding
#: logic per word bit and per buffer, the FIFO's per pointer bit and per FIFO.
WALKER_LUT = 260
#: A shared post-processor's drain control (``hw.accel``: the LUT phase, its row index).
SHARED_CONTROL_LUT = 40
#: A shared post-processor's inputs: LUTs per bit of the lanes' and parameters' 2:1 choice.
SHARED_POST_LUT_PER_BIT = 1.0
CONTROLLER_LUT = 300
CONTROLLER_LUT_PER_BIT = 46
BUF_LUT_PER_BIT = {"RAM32M": 1, "RAM64M": 1, "bram": 3, "ff": 2}
BUF_LUT = {"RAM32M": 10, "RAM64M": 11, "bram": 22, "ff": 9}
#: Depth slices whose read multiplexer one more LUT per word bit covers (beside the
#: forwarding), and the LUTs per pointer bit of a ring whose length is not a power of two
#: (``hw.buffer.ring_add``: two additions modulo the ring, each a compare, a subtract and a
#: select).
BUF_SLICES_PER_LUT = 8
RING_MOD_LUT = 4
FIFO_LUT_PER_BIT = 4.5
FIFO_LUT = 3


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1


def controller_luts(k_tile: int, group_b: int = 0) -> int:
    """The controller's LUTs besides its load-size multiplies: ``CONTROLLER_LUT`` plus
    ``CONTROLLER_LUT_PER_BIT`` per bit of :func:`ring_count_bits` (the step counters, the
    rings' room comparisons and the block bases and sizes grow with ``k_tile``; least squares
    over the three calibration tops, 6 to 15 bits: tiny, mid and xc7z020 within 15, 22 and
    15 LUTs, reports/reference/resource_calibration_tops.md; 208 + 35 per bit before R10b's
    prefetch request, ring origin and the multiplexed load size)."""
    return CONTROLLER_LUT + CONTROLLER_LUT_PER_BIT * ring_count_bits(k_tile, group_b)


def load_size_cost(accel: Accelerator) -> UnitCost:
    """The controller's two load-size multiplies (``hw.accel``: bytes of a weight block
    ``(rows_dsp + rows_lut) * steps * weight_bits``, of an activation block
    ``cols * steps * act_bits``). Only the product bits the byte count keeps are built
    (``wreduce``; a power-of-two factor is a shift); they go to DSP slices when at least
    ``DSP_Y_MINWIDTH`` bits remain, else to LUTs."""
    e, kt = accel.engine, accel.memory.k_tile
    steps = _bits(kt + 1)
    out = ZERO
    for operand, count, bits in ((DIM_BITS + 1, e.rows, e.weight_bits),
                                 (_bits(e.cols + 1), e.cols, e.act_bits)):
        byte_bits = _bits(_ceil_div(count * kt * bits, 8) + 1)
        used = min(operand + steps, byte_bits + 3 - _trailing_zeros(bits))
        a, b = min(operand, used), min(steps, used)
        if used >= DSP_Y_MINWIDTH:
            out += UnitCost(0, 0, multiplier_dsps(a, b, accel.part.dsp_type, marked=True))
        else:
            out += UnitCost(used * min(a, b) / 2, 0, 0)
    return out


def _forwarding(mem: MemoryMap) -> tuple[float, int, str]:
    """LUTs and FFs of one buffer memory's read forwarding and read register (beside the
    pointers), and the kind of its LUT constants."""
    abits = (mem.depth - 1).bit_length()
    kind = "bram" if mem.kind == "bram" else mem.cell
    ff = 0
    if mem.kind == "bram":
        # Yosys' transparency: the written word and an address match, registered; the
        # read multiplexer's select registered when the depth is sliced.
        ff += mem.width + 1 + (_bits(mem.slices) if mem.slices > 1 else 0)
    elif mem.kind == "lutram":
        ff += abits  # the read address register of the asynchronous LUT RAM
    else:  # flip-flops, and the read word's register (measured on a 1 x 2 ring only)
        kind = "ff"
        ff += mem.width * mem.depth + mem.width
    per_bit = BUF_LUT_PER_BIT[kind] + _ceil_div(mem.slices - 1, BUF_SLICES_PER_LUT)
    return mem.width * per_bit + BUF_LUT[kind], ff, kind


def _modulo_luts(k_tile: int, group_b: int = 0) -> int:
    """``hw.buffer.ring_add``'s compare, subtract and select modulo a ring whose length is
    not a power of two."""
    ring = ring_steps(k_tile, group_b)
    return RING_MOD_LUT * _ring_ptr_bits(k_tile, group_b) if ring & (ring - 1) else 0


def _ring_ptr_bits(k_tile: int, group_b: int = 0) -> int:
    return max(1, (ring_steps(k_tile, group_b) - 1).bit_length())


def buffer_logic_cost(mem: MemoryMap, k_tile: int, group_b: int = 0) -> UnitCost:
    """A load buffer's logic (``hw.buffer.RingBuffer``, its ring of
    ``ring_steps(k_tile, group_b)`` words) around its memory."""
    lut, ff, _ = _forwarding(mem)
    ff += _ring_ptr_bits(k_tile, group_b) + (mem.depth - 1).bit_length()  # write, shown
    return UnitCost(lut + _modulo_luts(k_tile, group_b), ff, 0)


#: R3c's control, fitted on the tiny and xc7z020 tops with column groups (see
#: :func:`group_control_cost`; Yosys 0.23, per-module counts: deal walkers 402 + 496 and
#: 410 + 506 LUTs, the controller's additions 285 on tiny): one deal walker's LUTs and the
#: controller's extra LUTs (the dealt tile's fields beside the tile walker's, block
#: counters, group B's parameter address and output fields).
DEAL_WALKER_LUT = 450
GROUP_CONTROLLER_LUT = 285
#: ``hw.buffer.BankedRing``'s read multiplexers, fitted on the ring synthesized alone (Yosys
#: 0.23, ``bench/column_groups.py --ring``): LUTs per word bit and reader for each four of
#: its sources (every bank's pieces and the word written in the address cycle; the word
#: written in the shown cycle takes one LUT more), by the banks' memory kind (xc7z020's
#: 256-bit banks of 4096 + 512 words in block RAM: 1,830 LUTs; tiny's 16-bit banks in LUT
#: RAM: 119); per word bit of a bank, the LUTs of each depth slice beyond the first of a
#: block RAM bank left whole (its read multiplexer: 4,558 LUTs for xc7z020's banks whole,
#: nine slices each); and the ring's other logic (piece decode, write and forward matches).
BANK_MUX_LUT_PER_4 = {"bram": 1.16, "lutram": 0.6, "ff": 1.0}
BANK_SLICE_LUT = 0.54
BANK_LUT = 20


def piece_firsts(pieces: tuple[int, ...]) -> list[int]:
    """The first word of each of a bank's ``pieces`` (their depths, first word first)."""
    return [sum(pieces[:i]) for i in range(len(pieces))]


def bank_memories(width: int, k_tile: int, pieces: tuple[int, ...] | None = None
                  ) -> dict[str, tuple[int, int, str]]:
    """``hw.buffer.BankedRing``'s memories: three banks, each of ``pieces`` (default
    :func:`bank_pieces`), read through registered ports without forwarding (the ring
    forwards after selecting), named ``w_buf{bank}_{first word}``."""
    pieces = bank_pieces(width, k_tile) if pieces is None else pieces
    return {f"w_buf{b}_{first}": (width, depth, "sync") for b in range(3)
            for first, depth in zip(piece_firsts(pieces), pieces, strict=True)}


def banked_logic_cost(banks: list[MemoryMap], k_tile: int) -> UnitCost:
    """``hw.buffer.BankedRing``'s logic around its memories (``banks``, three banks of the
    same pieces): both readers' multiplexers (:data:`BANK_MUX_LUT_PER_4`), the read
    multiplexers of block RAM sliced in depth (:data:`BANK_SLICE_LUT`), ring additions,
    and the registers (the written word of the address cycle, each LUT RAM or flip-flop
    piece's read word, the write bank and word, the shown word, per reader its select and
    bank)."""
    width, kind = banks[0].width, banks[0].kind
    sources = len(banks) + 1
    per_bit = BANK_MUX_LUT_PER_4[kind] * _ceil_div(sources, 4) + 1
    sliced = sum(BANK_SLICE_LUT * (m.slices - 1) for m in banks if m.kind == "bram")
    abits = max(1, (k_tile - 1).bit_length())
    ff = width + 2 * abits + 2 + 2 * (_bits(1 << _bits(sources)) + 2)
    if kind != "bram":  # the read word's register (block RAM has its own)
        ff += width * len(banks)
    return UnitCost(width * (2 * per_bit + sliced) + BANK_LUT + 2 * _modulo_luts(k_tile, 1),
                    ff, 0)


def group_control_cost(accel: Accelerator) -> dict[str, UnitCost]:
    """R3c's control on an engine with column group B: two ``hw.deal.DealWalker`` (row
    steps, rows and table addresses of :func:`deal_step_bits`, positions of ``DIM_BITS``)
    and the controller's additions (the ``dealt`` bit, two block counters, group B's fields
    in the pending and drained descriptors and the output row)."""
    e = accel.engine
    d, sb = DIM_BITS, deal_step_bits()
    walker_ff = 7 * sb + 3 * d + 5
    c_bits, cb_bits = _bits(e.cols + 1), _bits(max(e.cols - e.group_b_cols, e.group_b_cols) + 1)
    descriptor = c_bits + 4 * sb + d + cb_bits
    out_row = _cores(e) * (sb + 2) + d + _bits(e.group_b_cols + 1)
    ff = 1 + 2 * (d + 1) + 2 * descriptor + out_row
    # the loader's walker reads no ring banks: Yosys drops its two bank registers
    return {"deal_walkers": UnitCost(DEAL_WALKER_LUT * DEAL_WALKERS,
                                     walker_ff * DEAL_WALKERS - 2 * 2, 0),
            "group_control": UnitCost(GROUP_CONTROLLER_LUT, ff, 0)}


def deal_step_bits() -> int:
    """Bits of a deal walker's row steps and rows (``hw.deal.DealWalker``: up to
    :data:`PARAM_DEPTH` row steps, plus the two it looks ahead)."""
    return (PARAM_DEPTH + 2).bit_length()


def fifo_logic_cost(mem: MemoryMap) -> UnitCost:
    """The output FIFO's pointers and level, and its read register (in a block RAM's own)."""
    n = mem.depth
    ff = 2 * _bits(n) + _bits(n + 1) + 1
    lut = FIFO_LUT + FIFO_LUT_PER_BIT * _bits(n)
    if mem.kind != "bram":
        ff += mem.width
    if mem.slices > 1:
        lut += mem.width * _ceil_div(mem.slices - 1, 4)
    return UnitCost(lut, ff, 0)


def walker_cost(cols: int, k_tile: int) -> UnitCost:
    """One ``hw.walker.TileWalker``: its row step, first flag, column, K and row offsets
    (the low bits a power-of-two factor of ``cols`` or ``k_tile`` leaves at 0 are no
    registers), two registered flags; LUTs a fitted constant."""
    d = DIM_BITS
    ff = 5 * d + 3 - min(_trailing_zeros(cols), d) - min(_trailing_zeros(k_tile), d)
    return UnitCost(WALKER_LUT, ff, 0)


def control_cost(accel: Accelerator, matmul: bool = False) -> dict[str, UnitCost]:
    """LUT, FF and DSP of the top's blocks besides the datapath and the memory cells:
    ``controller`` (command, counters, loader and drain state), ``walkers`` (two
    ``hw.walker.TileWalker``), ``w_buf``/``x_buf`` and ``out_fifo`` logic."""
    e, kt = accel.engine, accel.memory.k_tile
    d, c, cores = DIM_BITS, e.cols, _cores(e)
    shared = shares_post(e)
    rmax = drain_rows(e.dsp_rows, e.lut_rows, shared)  # the longest drain (R4)
    cbits = _bits(c + 1)
    command = 9 * d + _bits(REQUANTIZER.max_out_bits + 1) + 3  # + order, resident, signed
    if matmul and rtl_runs_matmul(e):
        command += 3  # matmul, a_signed, b_signed
    # R10b: pf, the prefetched block's rows of each present core and its steps
    # (hw.accel.prefetch_bits; ``pre`` is read from the payload, its register bit unused)
    command += 1 + sum(rows.bit_length() for rows in (e.dsp_rows, e.lut_rows) if rows) \
        + kt.bit_length()
    gb = e.group_b_cols
    ring_bits = _ring_ptr_bits(kt, gb)
    ff = (command + 2 + 5  # busy, done, loader flags
          + 2 + ring_bits  # R10b: prefetch requested, drained; the weight ring's origin
          + 8 * ring_count_bits(kt, gb)  # step counters (R6-R8)
          + 2 * ring_bits + max(1, kt.bit_length())  # each ring's block base, block size
          + _bits(max(kt, 2)) + 1 + _bits(rmax + c + 1) + _bits(max(rmax, 2))  # step .. drow
          # the drained and the pending tile's fields (R4: and the DSP rows' drain, on a
          # grouped engine with a shared post-processor), final flags, pending's valid bit
          + 2 * ((2 + 2 * cores + (shared and gb > 0)) * d + cbits) + 3
          + _bits(rmax + c + 1)  # its countdown (R4b), and r_f - s_f if the DSP core packs
          + (_bits(rmax + 1) if (e.dsp_rows and e.dsp_packing > 1) or shared else 0)
          + cores * (d + 1) + d + cbits)  # the output row's metadata
    mems = memory_maps(accel, matmul)
    return {
        "controller": (UnitCost(controller_luts(kt, gb) + SHARED_CONTROL_LUT * shared, ff, 0)
                       + load_size_cost(accel)),
        "walkers": walker_cost(c, kt) * 2,
        "w_buf": (banked_logic_cost([v for k, v in mems.items() if k.startswith("w_buf")], kt)
                  if gb
                  else buffer_logic_cost(mems["w_buf"], kt)),
        "x_buf": buffer_logic_cost(mems["x_buf"], kt, gb),
        "out_fifo": fifo_logic_cost(mems["out_fifo"]),
        **(group_control_cost(accel) if gb else {}),
    }


@dataclass(frozen=True)
class TopCost:
    """The model's account of the whole generated top: datapath blocks, control blocks and
    memories (:func:`top_cost`). ``lut`` counts logic LUTs (what Yosys reports as LUT1-6 and
    INV); ``lut_memory`` the LUTs that LUT RAM cells occupy on the part."""

    datapath: dict[str, UnitCost]
    control: dict[str, UnitCost]
    memories: dict[str, MemoryMap]

    def _total(self) -> UnitCost:
        return sum((*self.datapath.values(), *self.control.values()), ZERO)

    @property
    def lut(self) -> int:
        return round(self._total().lut)

    @property
    def ff(self) -> int:
        return round(self._total().ff)

    @property
    def dsp(self) -> int:
        return self._total().dsp

    def cells(self, cell: str) -> int:
        return sum(m.cells for m in self.memories.values() if m.cell == cell)

    @property
    def bram36(self) -> float:
        return sum(m.bram36 for m in self.memories.values())

    @property
    def lutram(self) -> int:
        """LUT RAM cells."""
        return sum(m.cells for m in self.memories.values() if m.kind == "lutram")

    @property
    def lut_memory(self) -> int:
        return sum(m.lutram_luts for m in self.memories.values())


def top_cost(accel: Accelerator, matmul: bool = False) -> TopCost:
    """Cost of ``accel``'s generated top block by block (see the module docstring);
    ``matmul``: the top built with the matmul path (:func:`rtl_runs_matmul`)."""
    return TopCost(datapath_cost(accel.engine, accel.part.dsp_type, matmul),
                   control_cost(accel, matmul),
                   memory_maps(accel, matmul))


@dataclass(frozen=True)
class ResourceEstimate:
    """Estimated use of the part's resources by the accelerator top.

    ``lut`` counts every LUT of the part the design occupies: logic and LUT RAM
    (``lut_memory`` of them, in ``lutram`` cells); ``bram36`` counts BRAM36 blocks, a RAMB18
    half of one.
    """

    lut: int
    ff: int
    dsp: int
    bram36: float
    costs: PeCosts
    lutram: int = 0
    lut_memory: int = 0

    def to_dict(self) -> dict:
        return {"lut": self.lut, "ff": self.ff, "dsp": self.dsp, "bram36": self.bram36,
                "lutram": self.lutram, "lut_memory": self.lut_memory,
                "model": MODEL_NOTE, "per_pe_costs": asdict(self.costs)}


def estimate_resources(accel: Accelerator) -> ResourceEstimate:
    """LUT/FF/DSP/BRAM36 of ``accel``'s whole top: datapath, buffers and other memories,
    walkers and controller (see the module docstring)."""
    top = top_cost(accel)
    return ResourceEstimate(lut=top.lut + top.lut_memory, ff=top.ff, dsp=top.dsp,
                            bram36=top.bram36, costs=pe_costs(accel), lutram=top.lutram,
                            lut_memory=top.lut_memory)


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


def accel_vector_unit(accel: Accelerator, attn: Attention) -> BlockCost:
    """The vector unit of ``accel`` (:func:`vector_config`, its part's DSP type) for a
    transformer of ``attn``'s tokens and features (:func:`sim.workload.attention_of`)."""
    return vector_unit_cost(vector_config(accel, attn.tokens, attn.features),
                            accel.part.dsp_type)


def with_vector_unit(est: ResourceEstimate, vector: BlockCost | None) -> ResourceEstimate:
    """``est`` plus the vector unit (:func:`accel_vector_unit`; None: none): the one rule by
    which a transformer's design is costed, in `fpim simulate` and the searches."""
    if vector is None:
        return est
    return replace(est, lut=est.lut + vector.lut, ff=est.ff + vector.ff,
                   dsp=est.dsp + vector.dsp, bram36=est.bram36 + vector.bram36)


def fits(accel: Accelerator, lut_cap: float = 1.0, attn: Attention | None = None) -> bool:
    """True if the engine (with the vector unit of a transformer, :func:`with_vector_unit`)
    fits its part, using at most ``lut_cap`` of the part's LUTs."""
    vector = None if attn is None else accel_vector_unit(accel, attn)
    est = with_vector_unit(estimate_resources(accel), vector)
    return not fit_violations(accel, est) and est.lut <= lut_cap * accel.part.lut


def check_fits(accel: Accelerator) -> None:
    """Raise :class:`~quant.errors.ConfigError` (the first violation) unless the engine fits."""
    bad = fit_violations(accel)
    if bad:
        raise ConfigError(bad[0])


# ---------------------------------------------------------------------------------------
# Vector unit (hw.vector, calibrated against Yosys: bench/resource_calibration.py --vector)
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockCost:
    """LUT, FF, DSP and BRAM36 of a block outside the GEMM datapath (whole units; BRAM36
    counts a RAMB18 as half a block)."""

    lut: int
    ff: int
    dsp: int
    bram36: float

    def to_dict(self) -> dict:
        return asdict(self)


#: Widths of the vector unit's words (``hw.vector`` builds them): an exp, an exp sum and a
#: reciprocal (int32, quant.ops.intmath), LayerNorm's integer gamma (``|gamma| <=
#: INT32_MAX``) and beta (``|beta| <= BETA_LIMIT``), one of each per lane in its memory.
EXP_BITS = 32
GAMMA_BITS = 32
BETA_BITS = BETA_LIMIT.bit_length() + 1
VEC_COEF_BITS = GAMMA_BITS + BETA_BITS
#: A ``pos_embed`` table word as its stream carries it: ``|table| <= BRANCH_LIMIT`` (2**62,
#: quant.ops.embed's bound), signed.
POS_TABLE_BITS = BRANCH_LIMIT.bit_length() + 1

#: The vector unit's components (``hw.vector``), in the order they are reported.
VECTOR_UNITS = ("requant", "softmax", "gelu", "layernorm", "pos_embed")


@dataclass(frozen=True)
class VectorConfig:
    """The parameters of an accelerator's vector unit (``hw.vector.unit`` builds its
    components from them, :func:`vector_unit_cost` costs them):

    ``lanes`` (``vector.lanes``); ``acc_bits``, the signed accumulators the requantizer and
    softmax take (the engine's, R11d); ``x_fmt``, the signed activations GELU and LayerNorm
    take (the engine's activation bits, signed: fc1's outputs and the residual stream);
    ``tokens``, the longest softmax row (``T``, the softmax's row buffer); ``features``, the
    longest LayerNorm token (``D``, its coefficient memory)."""

    lanes: int
    acc_bits: int
    x_fmt: ActFormat
    tokens: int
    features: int

    def to_dict(self) -> dict[str, int | bool]:
        """The parameters as ``fpim synth --vector`` and the vector manifest print them."""
        return {"lanes": self.lanes, "acc_bits": self.acc_bits, "x_bits": self.x_fmt.bits,
                "x_signed": self.x_fmt.signed, "tokens": self.tokens,
                "features": self.features}

    def __post_init__(self) -> None:
        check_int_range("vector.lanes", self.lanes, 1, 1 << 16)
        check_int_range("acc_bits", self.acc_bits, 2, 64)
        check_int_range("tokens", self.tokens, 1, 1 << 20, "(the longest softmax row)")
        check_int_range("features", self.features, 1, 1 << 16,
                        "(the longest LayerNorm token)")


def vector_config(accel: Accelerator, tokens: int, features: int) -> VectorConfig:
    """``accel``'s vector unit for rows of ``tokens`` scores and ``features`` features."""
    e = accel.engine
    return VectorConfig(accel.vector.lanes, e.acc_bits, ActFormat(max(2, e.act_bits), True),
                        tokens, features)


#: Fitted LUT and FF of each component, ``(lane, lane_w, shared)``: ``lanes (lane + lane_w
#: w) + shared`` with ``w`` the component's width (:func:`vector_width`). Least squares on
#: Yosys syntheses of 1, 2 and 4 lanes on xc7 at two widths each (``bench/
#: resource_calibration.py --vector`` prints the fit; its 8-lane and xcup rows check it).
#: FF of requant are exact: ``17 + 2 (acc_bits + 32)`` per lane (product and rounding
#: registers) and 3 valid bits.
VEC_LUT = {
    "requant": (83.68, 5.665, 219.5),
    "softmax": (1012.4, 3.451, 572.5),
    "gelu": (3582.1, 44.68, 367.5),
    "layernorm": (549.3, 0.0, 1186.8),
    "pos_embed": (636.7, 3.857, 415.0),
}
VEC_FF = {
    "requant": (17.0, 2.0, 3.0),
    "softmax": (256.8, 3.522, 327.5),
    "gelu": (3860.0, 55.0, 47.0),
    "layernorm": (400.1, 0.0, 533.3),
    "pos_embed": (488.0, 2.0, 7.0),
}


#: FF per lane that Yosys keeps in fabric on DSP48E2 (xcup) but absorbs into DSP48E1 on xc7:
#: measured on LayerNorm (2 lanes: 1,604 FF on xcup, 1,357 on xc7: its single-slice
#: products' registers), none on requant and softmax (the same FF on both families).
VEC_FF_DSP48E2 = {"requant": 0.0, "softmax": 0.0, "gelu": 0.0, "layernorm": 123.5,
                  "pos_embed": 0.0}


def vector_width(unit: str, cfg: VectorConfig) -> int:
    """The width a unit's per-lane logic grows with: the requantizer's product (``acc_bits``
    + 32) for requant and softmax, GELU's signed input (``x bits + 1``, which its 40-odd
    pipeline stages carry); 0 for LayerNorm, whose lanes are 33 and 64 bits wide whatever
    its input (the calibration measures no width term there)."""
    if unit in ("requant", "softmax"):
        return cfg.acc_bits + DYADIC_BITS + 1
    if unit in ("gelu", "pos_embed"):
        return cfg.x_fmt.bits + 1
    return 0


def vector_unit_dsps(unit: str, cfg: VectorConfig, dsp_type: str) -> int:
    """DSP slices of ``unit``: its multipliers (none marked ``use_dsp``: Yosys'
    ``DSP_Y_MINWIDTH`` rule) tiled by :func:`multiplier_dsps`, Amaranth's unsigned operands
    one bit wider as signed."""
    n, x = cfg.lanes, cfg.x_fmt.bits + 1

    def mul(a: int, b: int) -> int:
        return multiplier_dsps(a, b, dsp_type)

    req = mul(cfg.acc_bits, DYADIC_BITS + 1)  # x * mult (requant_stages)
    nx0 = mul(EXP_BITS, 6)  # n * x0 of the shift-exp, shared
    if unit == "requant":
        return n * req
    if unit == "softmax":  # requant, e * f
        return n * (req + mul(EXP_BITS + 1, EXP_BITS + 1)) + nx0
    if unit == "gelu":  # e1 * f, x * sigma, the output requantizer of x * sigma
        return n * (mul(EXP_BITS + 1, EXP_BITS + 1) + mul(x, 17)
                    + mul(x + 16, DYADIC_BITS + 1)) + nx0
    if unit == "pos_embed":  # the branch's x * mult (the output requantizer multiplies by 1)
        return n * mul(cfg.x_fmt.bits + (not cfg.x_fmt.signed), DYADIC_BITS + 1)
    # layernorm: y * y, y * f, z * gamma (the affine requantizer multiplies by 1)
    return n * (mul(x + 2, x + 2) + mul(x + 2, EXP_BITS + 1) + mul(EXP_BITS + 1, 32))


def vector_unit_memory(unit: str, cfg: VectorConfig) -> MemoryMap | None:
    """The unit's memory (:func:`map_memory`, registered read): softmax's row buffer of
    exps (``32 lanes`` bits, ``ceil(tokens / lanes)`` words), LayerNorm's gamma and beta
    (``(32 + 63) lanes`` bits, ``ceil(features / lanes)`` words); None for the others."""
    if unit == "softmax":
        return map_memory(EXP_BITS * cfg.lanes, -(-cfg.tokens // cfg.lanes), "sync")
    if unit == "layernorm":
        return map_memory(VEC_COEF_BITS * cfg.lanes, -(-cfg.features // cfg.lanes), "sync")
    return None


def vector_unit_costs(cfg: VectorConfig, dsp_type: str) -> dict[str, TopCost]:
    """Each component of the vector unit (:data:`VECTOR_UNITS`) as ``hw.vector`` builds it
    for ``cfg``: logic LUT and FF (fitted, :data:`VEC_LUT`, :data:`VEC_FF`,
    :data:`VEC_FF_DSP48E2`), DSP slices
    (:func:`vector_unit_dsps`, exact) and its memory (:func:`vector_unit_memory`)."""
    out = {}
    for unit in VECTOR_UNITS:
        w = vector_width(unit, cfg)
        (la, lw, lc), (fa, fw, fc) = VEC_LUT[unit], VEC_FF[unit]
        fa += VEC_FF_DSP48E2[unit] if dsp_type == "DSP48E2" else 0.0
        logic = UnitCost(cfg.lanes * (la + lw * w) + lc, cfg.lanes * (fa + fw * w) + fc,
                         vector_unit_dsps(unit, cfg, dsp_type))
        mem = vector_unit_memory(unit, cfg)
        if mem is not None and mem.kind == "ff":  # a memory in flip-flops: one per bit
            logic += UnitCost(0.0, mem.width * mem.depth, 0)
        out[unit] = TopCost({unit: logic}, {}, {} if mem is None else {unit: mem})
    return out


def vector_unit_cost(cfg: VectorConfig, dsp_type: str) -> BlockCost:
    """The whole vector unit: one of each component (:func:`vector_unit_costs`), LUTs
    counting the LUT RAM's too."""
    parts = vector_unit_costs(cfg, dsp_type).values()
    return BlockCost(lut=sum(t.lut + t.lut_memory for t in parts), ff=sum(t.ff for t in parts),
                     dsp=sum(t.dsp for t in parts), bram36=sum(t.bram36 for t in parts))


def matmul_block_violation(accel: Accelerator, m: int, k: int) -> str | None:
    """Whether the weight buffer holds every block rule R11b loads for a matmul whose
    weight-role operand ``op(a)`` is ``m x k`` per group (a head's K, ``T x head_dim``, for
    QK^T; its V, ``head_dim x T``, for A.V): None if it does, else one line saying why.

    No separate K/V buffer: R11b streams ``op(a)`` through the weight buffer
    (``hw.buffer.RingBuffer`` as ``hw.accel`` builds it, counted by
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
