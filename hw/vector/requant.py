"""The vector unit's dyadic requantizer (sim.timing R11d, R15 ``requant``)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import clamp_range, format_fields, out_shape
from hw.vector.common import requant_stages, stream_out
from quant.errors import check_int_range
from quant.ops.intmath import DYADIC_BITS
from sim.timing import REQ_DEPTH

#: Largest right shift of the dyadic requantizer (a matmul's ``shift`` attr is -62..62; the
#: unit takes right shifts only, like the engine's, see :func:`check_shift`).
MAX_SHIFT = 62


def check_shift(shift: int) -> int:
    """A matmul's requantizer shift as the unit takes it: 0..:data:`MAX_SHIFT`. (A dyadic
    ``(M, E)`` has ``E = 31 - e`` with ``ratio = m * 2**e``: a negative ``E`` needs a ratio of
    at least ``2**31``, which no matmul of clamped activations has.)"""
    return check_int_range("shift", shift, 0, MAX_SHIFT,
                           "(right shifts of the vector unit's dyadic requantizer)")


class DyadicRequant(wiring.Component):
    """``y = clamp(round_half_even(acc * mult / 2**shift))`` on ``lanes`` lanes per beat, the
    requant op of rule R15 (a matmul's unrequantized accumulators, R11d).

    Bit-exact with :func:`quant.ref.requantize` (no bias, no ReLU) for shifts 0..62. A beat
    taken on ``inp`` leaves on ``out`` :data:`sim.timing.REQ_DEPTH` cycles later when ``out``
    is never held back; the pipeline stops as a whole while ``out`` waits (``inp.ready =
    ~out.valid | out.ready``). So an op of ``E`` elements takes ``ceil(E / lanes) +
    REQ_DEPTH`` cycles from its first beat to its last result without stalls.

    Parameters:
        lanes: elements per beat.
        acc_bits: signed width of the accumulators.

    Members:
        inp: In(stream of ArrayLayout(signed(acc_bits), lanes)).
        out: Out(stream of ArrayLayout(:func:`hw.params.out_shape`, lanes)).
        mult: In(31) the op's multiplier (command register, held during the op).
        shift: In(range(63)) the op's right shift.
        out_bits, out_signed: In, the output format (clamp range).
    """

    def __init__(self, lanes: int, acc_bits: int) -> None:
        self.lanes = check_int_range("lanes", lanes, 1, 1 << 16)
        self.acc_bits = check_int_range("acc_bits", acc_bits, 2, 64)
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(signed(self.acc_bits), self.lanes))),
            "out": Out(stream.Signature(data.ArrayLayout(out_shape(), self.lanes))),
            "mult": In(unsigned(DYADIC_BITS)),
            "shift": In(range(MAX_SHIFT + 1)),
            **{k: In(v) for k, v in format_fields().items()},
        })

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        m.d.comb += [en.eq(~self.out.valid | self.out.ready), self.inp.ready.eq(en)]
        qmax, qmin = clamp_range(m, self.out_bits, self.out_signed)
        xs = [self.inp.payload[i] for i in range(self.lanes)]
        ys = requant_stages(m, xs, en, self.mult, self.shift, qmax, qmin, "rq")
        stream_out(self, m, en, ys, REQ_DEPTH, REQ_DEPTH, "REQ_DEPTH", "rq_valid")
        return m
