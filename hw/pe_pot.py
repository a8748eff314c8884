"""Power-of-two PE: one shift per step, no multiplier (LUTs only)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed

from hw.pe_base import AccumulatingPe
from quant.formats import PotFormat


class PotPe(AccumulatingPe):
    """Output-stationary PE for power-of-two weight rows.

    The weight word holds ``sign`` (MSB) and the exponent field ``e`` as in
    :class:`quant.formats.PotFormat`; each valid cycle adds ``±(x << (e - 1))`` to the
    accumulator, nothing when ``e = 0``. ``first`` restarts the accumulator.

    Parameters:
        fmt: the weight format (:class:`quant.formats.PotFormat`).
        act: the activation format.
        acc_bits: signed accumulator width.

    Members:
        w: In(fmt.bits) weight code word.
        x: In(act shape) activation.
        valid: In(1) accumulate this cycle.
        first: In(1) this is the tile's first step.
        acc: Out(signed(acc_bits)) the accumulator register.
    """

    FORMAT = PotFormat
    FORMAT_NAME = "a PotFormat"

    def product(self, m: Module) -> Value:
        e_bits = self.fmt.bits - 1
        e = self.w[:e_bits]
        sign = self.w[e_bits]
        max_shift = (1 << e_bits) - 2
        shift = Signal(range(max_shift + 1))
        magnitude = Signal(signed(self.act.bits + max_shift + 1))
        m.d.comb += [
            shift.eq(e - 1),
            magnitude.eq(Mux(e == 0, 0, self.x << shift)),
        ]
        return Mux(sign, -magnitude, magnitude)
