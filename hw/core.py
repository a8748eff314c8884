"""Output-stationary PE array: the DSP core (fixed PEs) or the LUT core (SP2/PoT PEs)."""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance
from hw.pe_fixed import FixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from quant.errors import check_int_range
from quant.formats import ActFormat, Scheme, WeightFormat

PE_CLASSES = {Scheme.FIXED: FixedMacPe, Scheme.SP2: Sp2Pe, Scheme.POT: PotPe}


class OutputStationaryCore(wiring.Component):
    """``rows x cols`` PEs of one scheme; each PE owns one output element of the tile.

    The edge inputs carry one K step per cycle, unskewed: ``w[r]`` is row ``r``'s weight word,
    ``x[c]`` column ``c``'s activation, ``valid``/``first`` mark the step. The core skews them
    internally: PE ``(r, c)`` performs step ``t`` presented at cycle ``t`` in cycle
    ``t + r + c`` (weights and control move right one PE per cycle, activations down). So the
    last step of a tile using ``r`` rows and ``c`` columns is done ``(r-1) + (c-1)`` cycles
    after it was presented, and from the next cycle on ``out`` shows, combinationally, the
    ``cols`` accumulators of row ``drain_row`` (sim.timing rule R4: one row per drain cycle).

    Parameters:
        fmt: weight format of every row (fixed → DSP core, sp2/pot → LUT core).
        act: activation format.
        acc_bits: signed accumulator width.
        rows, cols: array size (1..4096 each).

    Members:
        w: In(ArrayLayout(fmt.bits, rows)) weight words of one K step.
        x: In(ArrayLayout(act shape, cols)) activations of one K step.
        valid: In(1) the step is valid.
        first: In(1) the step is a tile's first (accumulators restart).
        drain_row: In(range(rows)) row shown on ``out``.
        out: Out(ArrayLayout(signed(acc_bits), cols)) accumulators of ``drain_row``.
    """

    def __init__(self, fmt: WeightFormat, act: ActFormat, acc_bits: int, rows: int,
                 cols: int) -> None:
        check_instance("fmt", fmt, WeightFormat, "a WeightFormat")
        check_instance("act", act, ActFormat, "an ActFormat")
        self.fmt = fmt
        self.act = act
        self.acc_bits = check_acc_bits(acc_bits, fmt, act)
        self.rows = check_int_range("rows", rows, 1, 4096)
        self.cols = check_int_range("cols", cols, 1, 4096)
        super().__init__({
            "w": In(data.ArrayLayout(fmt.bits, rows)),
            "x": In(data.ArrayLayout(act_shape(act), cols)),
            "valid": In(1),
            "first": In(1),
            "drain_row": In(range(rows)),
            "out": Out(data.ArrayLayout(signed(self.acc_bits), cols)),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols = self.rows, self.cols
        pe_cls = PE_CLASSES[self.fmt.scheme]

        def delayed(sig, n: int, name: str):
            """``sig`` through ``n`` registers."""
            for i in range(n):
                reg = Signal.like(sig, name=f"{name}_d{i + 1}")
                m.d.sync += reg.eq(sig)
                sig = reg
            return sig

        # Edge skew: row r's weights/control wait r cycles, column c's activations c cycles.
        w_in = [[None] * cols for _ in range(rows)]
        ctl_in = [[None] * cols for _ in range(rows)]
        x_in = [[None] * cols for _ in range(rows)]
        for r in range(rows):
            ctl = Signal(2, name=f"ctl_edge{r}")
            m.d.comb += ctl.eq(self.valid | (self.first << 1))
            w_in[r][0] = delayed(self.w[r], r, f"w_edge{r}")
            ctl_in[r][0] = delayed(ctl, r, f"ctl_edge{r}")
        for c in range(cols):
            x_in[0][c] = delayed(self.x[c], c, f"x_edge{c}")
        accs = []
        for r in range(rows):
            row_accs = []
            for c in range(cols):
                if c > 0:
                    w_in[r][c] = delayed(w_in[r][c - 1], 1, f"w_{r}_{c}")
                    ctl_in[r][c] = delayed(ctl_in[r][c - 1], 1, f"ctl_{r}_{c}")
                if r > 0:
                    x_in[r][c] = delayed(x_in[r - 1][c], 1, f"x_{r}_{c}")
                pe = pe_cls(self.fmt, self.act, self.acc_bits)
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.w.eq(w_in[r][c]),
                    pe.x.eq(x_in[r][c]),
                    pe.valid.eq(ctl_in[r][c][0]),
                    pe.first.eq(ctl_in[r][c][1]),
                ]
                row_accs.append(pe.acc)
            accs.append(row_accs)
        for c in range(cols):
            column = Array(accs[r][c] for r in range(rows))
            m.d.comb += self.out[c].eq(column[self.drain_row])
        return m
