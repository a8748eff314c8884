"""PIM digital periphery: shift-and-add of ADC codes across input planes and weight slices."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import check_instance
from quant.errors import check_int_range
from quant.pim import PimPlan


def code_sequence(pl: PimPlan) -> list[tuple[int, int]]:
    """``(sign, shift)`` of each conversion of one group, in the order the macro emits them.

    The order is the kernel's (:func:`sim.pim.pim_gemm`): native one code; differential the
    positive then the negative column; bit-serial input planes outer, weight slices inner.
    A code contributes ``sign * (code << shift)`` to the output (``shift`` includes the
    plan's ``out_shift``: the power-of-two ADC step, or in exact mode only the slice's
    ``e_s``, the step itself being folded into the requantizer after the periphery).
    """
    scheme = pl.arith.scheme
    if scheme == "native":
        return [(1, pl.out_shift[0])]
    if scheme == "differential":
        return [(1, pl.out_shift[0]), (-1, pl.out_shift[0])]
    seq = []
    for psign, pshift in pl.planes:
        for si, (smul, sshift, _, _) in enumerate(pl.slices):
            seq.append((psign * smul, pl.out_shift[si] + sshift + pshift))
    return seq


class PimPeriphery(wiring.Component):
    """Accumulates one output's ADC codes into the integer result (see :mod:`quant.pim`).

    Codes arrive on ``codes`` in :func:`code_sequence` order, group after group; the last
    code of an output carries ``last``. The periphery adds ``sign * (code << shift)`` of the
    code's position to its accumulator and, on ``last``, offers the sum on ``result`` and
    starts over. While a result waits for ``result.ready`` no code is taken.

    Parameters:
        pim_plan: the layer's decomposition (:func:`quant.pim.plan`).
        acc_bits: signed width of the accumulator and of ``result``.

    Members:
        codes: In(stream of {code, last}); ``code`` is signed for native conversions and
            unsigned otherwise, ``adc_bits`` wide.
        result: Out(stream of signed(acc_bits)).
    """

    def __init__(self, pim_plan: PimPlan, acc_bits: int) -> None:
        check_instance("pim_plan", pim_plan, PimPlan, "a PimPlan")
        self.plan = pim_plan
        self.sequence = code_sequence(pim_plan)
        adc = pim_plan.arith.adc_bits
        code_shape = signed(adc) if pim_plan.arith.signed_adc else unsigned(adc)
        term_bits = adc + max(s for _, s in self.sequence) + 2
        self.acc_bits = check_int_range("acc_bits", acc_bits, term_bits, 64,
                                        "(one shifted code plus sign)")
        self.code_layout = data.StructLayout({"code": code_shape, "last": 1})
        super().__init__({
            "codes": In(stream.Signature(self.code_layout)),
            "result": Out(stream.Signature(signed(self.acc_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        seq = self.sequence
        n = len(seq)
        acc = Signal(signed(self.acc_bits))
        pos = Signal(range(max(n, 2)))
        top = max(1, max(s for _, s in seq))  # exact-mode native shifts are all 0
        shifts = Array(Const(s, range(top + 1)) for _, s in seq)
        negate = Array(Const(int(sg < 0), 1) for sg, _ in seq)

        code = self.codes.payload.code
        shifted = Signal(signed(self.acc_bits))
        m.d.comb += shifted.eq(code << shifts[pos])
        total = acc + Mux(negate[pos], -shifted, shifted)

        m.d.comb += self.codes.ready.eq(~self.result.valid)
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += self.result.valid.eq(0)
        with m.If(self.codes.valid & self.codes.ready):
            with m.If(self.codes.payload.last):
                m.d.sync += [
                    self.result.payload.eq(total),
                    self.result.valid.eq(1),
                    acc.eq(0),
                    pos.eq(0),
                ]
            with m.Else():
                m.d.sync += [
                    acc.eq(total),
                    pos.eq(Mux(pos == n - 1, 0, pos + 1)),
                ]
        return m
