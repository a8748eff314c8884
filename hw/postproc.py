"""Post-processing unit: per-row requantization of one drained row of accumulators."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_instance, clamp_range, format_fields, out_shape
from quant.errors import check_int_range
from quant.formats import ActFormat
from quant.requant import REQUANTIZER


class PostProcessor(wiring.Component):
    """``y = clamp(relu(round_half_even((acc + bias) * mult / 2**shift)))`` for ``cols`` lanes.

    Bit-exact with :func:`quant.ref.requantize` for non-negative shifts (the F8Net pure shift
    is ``mult = 1``). Inputs are taken when ``valid`` is set; the result appears on ``y``
    with ``y_valid`` one cycle later. :meth:`for_engine` builds the GEMM engine's, whose
    parameter range is :data:`quant.requant.REQUANTIZER`'s.

    Parameters:
        acc_bits: signed accumulator (and bias) width.
        cols: lanes (one per array column).
        out: output activation format (clamp range), or None: the format is an input
            (``out_bits``, ``out_signed``; the GEMM engine's, one per command).
        mult_bits: unsigned multiplier width (1..32).
        max_shift: largest right shift (0..acc_bits + mult_bits).
        bypass: build the bypass (sim.timing R11d): a ``bypass`` input that passes the
            accumulators through unchanged, on lanes of ``lane_bits`` bits.
        lane_bits: output lane width with ``bypass`` (at least ``acc_bits`` and the
            requantized format's).

    Members:
        acc: In(ArrayLayout(signed(acc_bits), cols)) one row of accumulators.
        valid: In(1).
        mult: In(mult_bits) the row's multiplier.
        shift: In(range(max_shift + 1)) the row's right shift.
        bias: In(signed(acc_bits)) the row's bias, in accumulator units.
        relu: In(1) apply ReLU.
        out_bits, out_signed: In, the output format when ``out`` is None: clamp to
            ``ActFormat(out_bits, out_signed)`` (``qmin .. qmax``; ``out_bits`` >= 1, >= 2 if
            signed).
        bypass: In(1), with ``bypass``: ``y`` is ``acc`` itself (no bias, ReLU or clamp).
        y: Out(ArrayLayout(out shape, cols)) requantized outputs (:func:`hw.params.out_shape`
            when ``out`` is None; ``signed(lane_bits)`` with ``bypass``).
        y_valid: Out(1).
    """

    def __init__(self, acc_bits: int, cols: int, out: ActFormat | None, mult_bits: int = 16,
                 max_shift: int | None = None, *, bypass: bool = False,
                 lane_bits: int | None = None) -> None:
        self.acc_bits = check_int_range("acc_bits", acc_bits, 2, 64)
        self.cols = check_int_range("cols", cols, 1, 4096)
        if out is not None:
            check_instance("out", out, ActFormat, "an ActFormat")
        self.out_fmt = out
        self.mult_bits = check_int_range("mult_bits", mult_bits, 1, 32)
        limit = self.acc_bits + self.mult_bits
        self.max_shift = check_int_range("max_shift", limit if max_shift is None else max_shift,
                                         0, limit)
        y_shape = out_shape() if out is None else act_shape(out)
        self.bypass_lanes = bypass
        if bypass:
            least = max(self.acc_bits, y_shape.width)
            y_shape = signed(check_int_range("lane_bits", least if lane_bits is None
                                             else lane_bits, least, 64))
        super().__init__({
            "acc": In(data.ArrayLayout(signed(self.acc_bits), cols)),
            "valid": In(1),
            "mult": In(unsigned(self.mult_bits)),
            "shift": In(range(self.max_shift + 1)),
            "bias": In(signed(self.acc_bits)),
            "relu": In(1),
            **({} if out is not None else {k: In(v) for k, v in format_fields().items()}),
            **({"bypass": In(1)} if bypass else {}),
            "y": Out(data.ArrayLayout(y_shape, cols)),
            "y_valid": Out(1),
        })

    @classmethod
    def for_engine(cls, acc_bits: int, cols: int, out: ActFormat | None = None, *,
                   lane_bits: int | None = None) -> PostProcessor:
        """The GEMM engine's post-processor: the multiplier width and shift range of
        :data:`quant.requant.REQUANTIZER` for ``acc_bits``-bit accumulators; by default the
        output format is an input, as in the engine. ``lane_bits`` (the DSP core's, when it
        runs matmuls) builds the bypass on lanes that wide."""
        return cls(acc_bits, cols, out, mult_bits=REQUANTIZER.mult_bits,
                   max_shift=REQUANTIZER.shift_range(acc_bits)[1],
                   bypass=lane_bits is not None, lane_bits=lane_bits)

    def elaborate(self, platform):
        m = Module()
        fmt = self.out_fmt
        pw = self.acc_bits + 1 + self.mult_bits + 1  # (acc + bias) * mult, signed
        s = self.shift
        s_m1 = Signal.like(s)  # s - 1, only used when s > 0
        m.d.comb += s_m1.eq(s - 1)
        m.d.sync += self.y_valid.eq(self.valid)
        qmax, qmin = (clamp_range(m, self.out_bits, self.out_signed) if fmt is None
                      else (fmt.qmax, fmt.qmin))
        for c in range(self.cols):
            p = Signal(signed(pw), name=f"p{c}")
            q = Signal(signed(pw), name=f"q{c}")
            guard = Signal(name=f"guard{c}")
            sticky = Signal(name=f"sticky{c}")
            y = Signal(signed(pw + 1), name=f"round{c}")
            y_relu = Signal(signed(pw + 1), name=f"relu{c}")
            m.d.comb += [
                p.eq((self.acc[c] + self.bias) * self.mult),
                q.eq(p >> s),  # arithmetic: floor
                # Round half to even: up when the first dropped bit is set and either a
                # lower dropped bit is set or q is odd (so a tie goes to the even neighbour).
                guard.eq((s != 0) & (p >> s_m1)[0]),
                sticky.eq((s > 1) & ((p & ((1 << s_m1) - 1)) != 0)),
                y.eq(q + (guard & (sticky | q[0]))),
                y_relu.eq(Mux(self.relu & (y < 0), 0, y)),
            ]
            clamped = Mux(y_relu > qmax, qmax, Mux(y_relu < qmin, qmin, y_relu))
            if self.bypass_lanes:  # R11d: the accumulator itself
                clamped = Mux(self.bypass, self.acc[c], clamped)
            with m.If(self.valid):
                m.d.sync += self.y[c].eq(clamped)
        return m
