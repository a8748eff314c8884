"""Fixed-point multiply-accumulate PE: one signed multiply per step (maps to a DSP48 slice)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance
from quant.formats import ActFormat, FixedFormat


class FixedMacPe(wiring.Component):
    """Output-stationary PE for fixed-point weight rows.

    Each cycle with ``valid`` set, the PE adds ``k * x`` to its accumulator, ``k`` being the
    weight word read as ``bits``-bit two's complement (:meth:`FixedFormat.hw_mul`). With
    ``first`` set the accumulator restarts from that product (the first K step of a tile).

    Parameters:
        fmt: the weight format (:class:`quant.formats.FixedFormat`).
        act: the activation format.
        acc_bits: signed accumulator width.

    Members:
        w: In(fmt.bits) weight code word.
        x: In(act shape) activation.
        valid: In(1) accumulate this cycle.
        first: In(1) this is the tile's first step.
        acc: Out(signed(acc_bits)) the accumulator register.
    """

    def __init__(self, fmt: FixedFormat, act: ActFormat, acc_bits: int) -> None:
        check_instance("fmt", fmt, FixedFormat, "a FixedFormat")
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
        product = self.w.as_signed() * self.x
        with m.If(self.valid):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + product)
        return m
