"""Power-of-two PE: one shift per step, no multiplier (LUTs only)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance
from quant.formats import ActFormat, PotFormat


class PotPe(wiring.Component):
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

    def __init__(self, fmt: PotFormat, act: ActFormat, acc_bits: int) -> None:
        check_instance("fmt", fmt, PotFormat, "a PotFormat")
        check_instance("act", act, ActFormat, "an ActFormat")
        self.fmt = fmt
        self.act = act
        self.acc_bits = check_acc_bits(acc_bits, fmt, act)
        super().__init__({
            "w": In(fmt.bits),
            "x": In(act_shape(act)),
            "valid": In(1),
            "first": In(1),
            "acc": Out(signed(self.acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
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
        product = Mux(sign, -magnitude, magnitude)
        with m.If(self.valid):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + product)
        return m
