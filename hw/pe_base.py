"""What every PE shares: argument checks, ports and the output-stationary accumulate step."""

from __future__ import annotations

from typing import ClassVar

from amaranth.hdl import Module, Mux, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance
from quant.formats import ActFormat, WeightFormat


class AccumulatingPe(wiring.Component):
    """Base of the output-stationary PEs, one weight row each.

    Each cycle with ``valid`` set, the PE adds the signed product of the weight code word
    ``w`` and the activation ``x`` to its accumulator; with ``first`` set the accumulator
    restarts from that product (the first K step of a tile). A subclass names its weight
    format class in ``FORMAT`` (and how errors name it, in ``FORMAT_NAME``), builds the
    product in :meth:`product` and documents only how it reads the code word.

    Parameters:
        fmt: the weight format, an instance of the subclass's ``FORMAT``
            (:mod:`quant.formats`).
        act: the activation format.
        acc_bits: signed accumulator width, at least one product's
            (:func:`hw.params.check_acc_bits`).

    Members:
        w: In(fmt.bits) weight code word.
        x: In(act shape) activation.
        valid: In(1) accumulate this cycle.
        first: In(1) this is the tile's first step.
        acc: Out(signed(acc_bits)) the accumulator register.
    """

    FORMAT: ClassVar[type[WeightFormat]]
    FORMAT_NAME: ClassVar[str]

    def __init__(self, fmt: WeightFormat, act: ActFormat, acc_bits: int) -> None:
        check_instance("fmt", fmt, self.FORMAT, self.FORMAT_NAME)
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

    def product(self, m: Module) -> Value:  # pragma: no cover - abstract
        """The signed product of ``w`` and ``x`` (may add combinational logic to ``m``)."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        product = self.product(m)
        with m.If(self.valid):
            m.d.sync += self.acc.eq(Mux(self.first, 0, self.acc) + product)
        return m
