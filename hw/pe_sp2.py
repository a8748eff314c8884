"""SP2 shift-add PE: two shifts and an add per step, no multiplier (LUTs and carry chains)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed

from hw.pe_base import AccumulatingPe
from quant.formats import Sp2Format


class Sp2Pe(AccumulatingPe):
    """Output-stationary PE for SP2 weight rows (an :class:`~hw.pe_base.AccumulatingPe`).

    ``fmt`` is a :class:`quant.formats.Sp2Format` (arXiv 2012.04240). The weight word holds
    ``sign`` (MSB), ``i1`` (``m1`` bits) and ``i2`` (``m2`` LSBs); the product is
    ``±((x << (S - i1)) + (x << (S - i2)))``, a term being 0 when its field is 0 (``S`` is
    the format's ``shift_base``).
    """

    FORMAT = Sp2Format
    FORMAT_NAME = "an Sp2Format"

    def product(self, m: Module) -> Value:
        fmt = self.fmt
        s = fmt.shift_base
        i2 = self.w[:fmt.m2]
        i1 = self.w[fmt.m2:fmt.m2 + fmt.m1]
        sign = self.w[fmt.bits - 1]
        width = self.act.bits + s + 1  # one term, sign-extended
        term1 = Signal(signed(width))
        term2 = Signal(signed(width))
        shift1 = Signal(range(s + 1))
        shift2 = Signal(range(s + 1))
        m.d.comb += [
            shift1.eq(s - i1),
            shift2.eq(s - i2),
            term1.eq(Mux(i1 == 0, 0, self.x << shift1)),
            term2.eq(Mux(i2 == 0, 0, self.x << shift2)),
        ]
        magnitude = term1 + term2
        return Mux(sign, -magnitude, magnitude)
