"""Output-stationary PE array: the DSP core (fixed PEs) or the LUT core (SP2/PoT PEs)."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance, index_shape
from hw.pe_fixed import FixedMacPe
from hw.pe_packed import PackedFixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from quant.errors import ConfigError, check_choice, check_int_range
from quant.formats import ActFormat, Scheme, WeightFormat

PE_CLASSES = {Scheme.FIXED: FixedMacPe, Scheme.SP2: Sp2Pe, Scheme.POT: PotPe}


class OutputStationaryCore(wiring.Component):
    """``rows x cols`` PEs of one scheme; each PE owns one output element of the tile.

    The edge inputs carry one K step per cycle, unskewed: ``w[r]`` is row ``r``'s weight word,
    ``x[c]`` column ``c``'s activation, ``valid``/``first`` mark the step. The core skews them
    internally: PE ``(r, c)`` performs step ``t`` presented at cycle ``t`` in cycle
    ``t + r + c`` (weights and control move right one PE per cycle, activations down).
    ``last`` marks a tile's last step; in the cycle after a PE performed it, the PE's drain
    register takes its accumulator (sim.timing rule R4), which the next tile's first step
    may then restart. ``out`` shows, combinationally, the ``cols`` drain registers of row
    ``drain_row``. For a tile whose last step was presented in cycle ``E - 1``, row ``r``'s
    registers of columns ``0 .. c-1`` hold the tile's results from cycle ``E + r + c`` on
    until the next tile's last step is captured there (written at the end of cycle
    ``E' + r`` at the earliest, for the next tile's ``E'``), which is why the controller
    drains row ``i`` in cycle ``E + c + i`` and lets the next tile end no earlier than that
    drain's start (R4b: ``E' >= E + c``).

    With ``packing`` P > 1 (fixed weights only) the rows form groups of P (the last group
    may be smaller): group ``g`` (rows ``gP .. gP+P-1``) of column ``c`` is one
    :class:`hw.pe_packed.PackedFixedMacPe`, whose single multiplier computes the column's
    activation times the group's P weights. The group's weights and control are skewed by
    ``g`` and the activations move down one group per cycle, so the group performs step
    ``t`` in cycle ``t + g + c <= t + r + c``: every drain register holds its result no
    later than in the unpacked array, but is overwritten ``r - g`` cycles earlier than
    there: R4b lets the next tile end no earlier than the drain's start plus
    ``max (r - g) = (a - 1) - (a - 1) // P`` for a tile of ``a`` rows
    (:func:`sim.timing.capture_lead`). The drain timing at the core's edge (R4) is the same
    for every packing. A group of one row is a plain :class:`hw.pe_fixed.FixedMacPe`.

    With ``split`` S > 0 (an engine with column group B, sim.timing rule R3c) columns
    ``S .. cols-1`` take their weights from a second edge input ``wb`` instead of from column
    ``S - 1``: ``wb`` is presented in the same cycles as ``w`` and skewed by ``g + S`` at the
    edge, so the timing above holds for every column; the control and the activations are
    shared, so both groups run the same steps in lockstep, each on its own weights.

    Parameters:
        fmt: weight format of every row (fixed → DSP core, sp2/pot → LUT core).
        act: activation format.
        acc_bits: signed accumulator width.
        rows, cols: array size (1..4096 each).
        packing: PEs per multiplier, 1, 2 or 4 (more than 1 only for fixed weights).
        split: first column of group B (1..cols-1), or 0: one group.

    Members:
        w: In(ArrayLayout(fmt.bits, rows)) weight words of one K step.
        wb: In(ArrayLayout(fmt.bits, rows)) group B's weight words (only with ``split``).
        x: In(ArrayLayout(act shape, cols)) activations of one K step.
        valid: In(1) the step is valid.
        first: In(1) the step is a tile's first (accumulators restart).
        last: In(1) the step is a tile's last (drain registers capture after it).
        drain_row: In(range(rows), at least one bit) row shown on ``out``.
        out: Out(ArrayLayout(signed(acc_bits), cols)) drain registers of ``drain_row``.
    """

    def __init__(self, fmt: WeightFormat, act: ActFormat, acc_bits: int, rows: int,
                 cols: int, packing: int = 1, split: int = 0) -> None:
        check_instance("fmt", fmt, WeightFormat, "a WeightFormat")
        check_choice("packing", packing, (1, 2, 4))
        if packing > 1 and fmt.scheme != Scheme.FIXED:
            raise ConfigError(f"packing must be 1 for {fmt.name} weights, not {packing}")
        self.packing = packing
        check_instance("act", act, ActFormat, "an ActFormat")
        self.fmt = fmt
        self.act = act
        self.acc_bits = check_acc_bits(acc_bits, fmt, act)
        self.rows = check_int_range("rows", rows, 1, 4096)
        self.cols = check_int_range("cols", cols, 1, 4096)
        self.split = 0 if split == 0 else check_int_range("split", split, 1, self.cols - 1,
                                                          "(or 0)")
        super().__init__({
            "w": In(data.ArrayLayout(fmt.bits, rows)),
            **({"wb": In(data.ArrayLayout(fmt.bits, rows))} if self.split else {}),
            "x": In(data.ArrayLayout(act_shape(act), cols)),
            "valid": In(1),
            "first": In(1),
            "last": In(1),
            "drain_row": In(index_shape(rows)),
            "out": Out(data.ArrayLayout(signed(self.acc_bits), cols)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols, pack = self.rows, self.cols, self.packing
        groups = [range(g0, min(g0 + pack, rows)) for g0 in range(0, rows, pack)]

        def delayed(sig, n: int, name: str):
            """``sig`` through ``n`` registers."""
            for i in range(n):
                reg = Signal.like(sig, name=f"{name}_d{i + 1}")
                m.d.sync += reg.eq(sig)
                sig = reg
            return sig

        # Edge skew: group g's weights/control wait g cycles, column c's activations c cycles
        # (without packing a group is one row). Control bits: valid, first, last.
        w_in = [[None] * cols for _ in range(rows)]
        ctl_in = [[None] * cols for _ in groups]
        x_in = [[None] * cols for _ in groups]
        for g, grp in enumerate(groups):
            ctl = Signal(3, name=f"ctl_edge{g}")
            m.d.comb += ctl.eq(self.valid | (self.first << 1) | ((self.valid & self.last) << 2))
            for r in grp:
                w_in[r][0] = delayed(self.w[r], g, f"w_edge{r}")
            ctl_in[g][0] = delayed(ctl, g, f"ctl_edge{g}")
        for c in range(cols):
            x_in[0][c] = delayed(self.x[c], c, f"x_edge{c}")
        accs = [[None] * cols for _ in range(rows)]
        for g, grp in enumerate(groups):
            for c in range(cols):
                if c > 0:
                    for r in grp:
                        w_in[r][c] = (delayed(self.wb[r], g + c, f"wb_edge{r}")
                                      if c == self.split  # group B's own weights (R3c)
                                      else delayed(w_in[r][c - 1], 1, f"w_{r}_{c}"))
                    ctl_in[g][c] = delayed(ctl_in[g][c - 1], 1, f"ctl_{g}_{c}")
                if g > 0:
                    x_in[g][c] = delayed(x_in[g - 1][c], 1, f"x_{g}_{c}")
                pe = self._pe(len(grp))
                m.submodules[f"pe_{g}_{c}"] = pe
                if len(grp) == 1:
                    m.d.comb += pe.w.eq(w_in[grp[0]][c])
                    accs[grp[0]][c] = pe.acc
                else:
                    for i, r in enumerate(grp):
                        m.d.comb += pe.w[i].eq(w_in[r][c])
                        accs[r][c] = pe.acc[i]
                m.d.comb += [
                    pe.x.eq(x_in[g][c]),
                    pe.valid.eq(ctl_in[g][c][0]),
                    pe.first.eq(ctl_in[g][c][1]),
                ]
                # The drain registers take the accumulators one cycle after the last step.
                capture = delayed(ctl_in[g][c][2], 1, f"cap_{g}_{c}")
                for r in grp:
                    held = Signal.like(accs[r][c], name=f"held_{r}_{c}")
                    with m.If(capture):
                        m.d.sync += held.eq(accs[r][c])
                    accs[r][c] = held
        for c in range(cols):
            if rows == 1:  # nothing to select
                m.d.comb += self.out[c].eq(accs[0][c])
            else:
                column = Array(accs[r][c] for r in range(rows))
                m.d.comb += self.out[c].eq(column[self.drain_row])
        return m

    def _pe(self, lanes: int) -> wiring.Component:
        if lanes == 1:
            return PE_CLASSES[self.fmt.scheme](self.fmt, self.act, self.acc_bits)
        return PackedFixedMacPe(self.fmt, self.act, self.acc_bits, lanes)
