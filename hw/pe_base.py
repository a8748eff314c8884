"""What every PE shares: argument checks, ports and the output-stationary accumulate step."""

from __future__ import annotations

from typing import ClassVar

from amaranth.hdl import Module, Mux, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance
from quant.formats import ActFormat, WeightFormat


class AccumulatingPe(wiring.Component):
    """Base of the PEs: each valid cycle adds ``product`` to ``acc``; ``first`` restarts it.

    A subclass names its weight format class in ``FORMAT`` (and how errors name it, in
    ``FORMAT_NAME``) and builds the product of the
    weight word ``w`` and the activation ``x`` in :meth:`product`. Ports: ``w`` In(fmt.bits),
    ``x`` In(act shape), ``valid`` In(1), ``first`` In(1), ``acc`` Out(signed(acc_bits)).
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
