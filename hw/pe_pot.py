"""Power-of-two PE: one shift per step, no multiplier (LUTs only)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed

from hw.params import index_shape
from hw.pe_base import AccumulatingPe
from quant.formats import PotFormat


class PotPe(AccumulatingPe):
    """Output-stationary PE for power-of-two weight rows (an :class:`~hw.pe_base.AccumulatingPe`).

    ``fmt`` is a :class:`quant.formats.PotFormat`. The weight word holds ``sign`` (MSB) and
    the exponent field ``e``; the product is ``±(x << (e - 1))``, 0 when ``e = 0``.
    """

    FORMAT = PotFormat
    FORMAT_NAME = "a PotFormat"

    def product(self, m: Module) -> Value:
        e_bits = self.fmt.bits - 1
        e = self.w[:e_bits]
        sign = self.w[e_bits]
        max_shift = self.fmt.denominator.bit_length() - 1  # the largest e - 1 of a code
        shift = Signal(index_shape(max_shift + 1))  # 2-bit words: always 0
        magnitude = Signal(signed(self.act.bits + max_shift + 1))
        m.d.comb += [
            shift.eq(e - 1),
            magnitude.eq(Mux(e == 0, 0, self.x << shift)),
        ]
        return Mux(sign, -magnitude, magnitude)
