"""The vector unit's GELU: I-ViT's ShiftGELU and its requantizer (sim.timing R15)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import clamp_range, format_fields, out_shape
from hw.vector.common import (
    EXP_BITS,
    EXP_N_MAX,
    delay,
    requant_stages,
    shift_exp_stages,
    stream_out,
)
from hw.vector.requant import MAX_SHIFT
from quant.errors import ConfigError, check_int_range
from quant.formats import ActFormat
from quant.ops.intmath import DYADIC_BITS, INT32_MAX
from sim.timing import DIV_CYCLES, EXP_DEPTH, GELU_DEPTH, MUL_DEPTH, REQ_DEPTH

#: Largest sigmoid bits ``p`` (quant.ops.gelu: attr ``p`` is 1..16).
SIGMOID_BITS_MAX = 16


class Gelu(wiring.Component):
    """``requantize(x * sigma(1.702 x))`` element-wise on ``lanes`` lanes (rule R15), with
    ``m = max(x, 0)``, ``e1 = shift_exp(x - m)``, ``e2 = shift_exp(-m)`` (side by side),
    ``sigma = (e1 * (INT32_MAX // (e1 + e2))) >> (31 - p)``: bit-exact with
    :func:`quant.ops.gelu.shift_gelu` followed by :func:`quant.ref.requantize`.

    One pipeline of :data:`sim.timing.GELU_DEPTH` stages: the two exps
    (:data:`~sim.timing.EXP_DEPTH`), their sum, a per-lane pipelined restoring divider of
    :data:`~sim.timing.DIV_CYCLES` stages (one quotient bit each), ``e1 * f`` and its shift
    (:data:`~sim.timing.MUL_DEPTH`), ``x * sigma``, the requantizer
    (:data:`~sim.timing.REQ_DEPTH`). It stops as a whole while ``out`` waits; without
    stalls an op of ``E`` elements takes ``ceil(E / lanes) + GELU_DEPTH`` cycles from its
    first beat to its last result.

    Parameters:
        lanes: elements per beat.
        x_fmt: the input activation format (at most 16 bits).

    Members:
        inp: In(stream of ArrayLayout(x shape, lanes)).
        out: Out(stream of ArrayLayout(:func:`hw.params.out_shape`, lanes)).
        x0: In(signed(32)), exp_n: In(range(31)), sigmoid_bits: In(range(17)): the layer's
            ``x0``, ``n`` and ``p``.
        mult, shift: In, the output requantizer (31-bit multiplier, right shift 0..62).
        out_bits, out_signed: In, the output format.
    """

    def __init__(self, lanes: int, x_fmt: ActFormat) -> None:
        self.lanes = check_int_range("lanes", lanes, 1, 1 << 16)
        if not isinstance(x_fmt, ActFormat) or x_fmt.bits > 16:
            raise ConfigError(f"x_fmt must be an ActFormat of at most 16 bits, not {x_fmt!r}")
        self.x_fmt = x_fmt
        xs = signed(x_fmt.bits) if x_fmt.signed else unsigned(x_fmt.bits)
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(xs, self.lanes))),
            "out": Out(stream.Signature(data.ArrayLayout(out_shape(), self.lanes))),
            "x0": In(signed(EXP_BITS)),
            "exp_n": In(range(EXP_N_MAX + 1)),
            "sigmoid_bits": In(range(SIGMOID_BITS_MAX + 1)),
            "mult": In(unsigned(DYADIC_BITS)),
            "shift": In(range(MAX_SHIFT + 1)),
            **{k: In(v) for k, v in format_fields().items()},
        })

    def elaborate(self, platform):
        m = Module()
        nl = self.lanes
        en = Signal()
        m.d.comb += [en.eq(~self.out.valid | self.out.ready), self.inp.ready.eq(en)]
        xb = self.x_fmt.bits + 1  # x as a signed value

        def reg(v, shape, nm: str) -> Signal:
            r = Signal(shape, name=nm)
            with m.If(en):
                m.d.sync += r.eq(v)
            return r

        stages = 0
        xs = [self.inp.payload[i] for i in range(nl)]
        ds = []
        for i, x in enumerate(xs):  # x - max(x, 0) = min(x, 0) and -max(x, 0)
            d1 = Signal(signed(xb + 1), name=f"d1_{i}")
            d2 = Signal(signed(xb + 1), name=f"d2_{i}")
            m.d.comb += [d1.eq(Mux(x < 0, x, 0)), d2.eq(Mux(x > 0, -x, 0))]
            ds += [d1, d2]
        es = shift_exp_stages(m, ds, en, self.x0, self.exp_n, "exp")
        stages += EXP_DEPTH
        x_at = [delay(m, x, EXP_DEPTH, en, f"x{i}") for i, x in enumerate(xs)]
        e1 = [es[2 * i] for i in range(nl)]
        # the sum e1 + e2
        s = [reg(es[2 * i] + es[2 * i + 1], EXP_BITS, f"s{i}") for i in range(nl)]
        e1 = [reg(v, EXP_BITS, f"e1s{i}") for i, v in enumerate(e1)]
        x_at = [reg(v, signed(xb), f"xs{i}") for i, v in enumerate(x_at)]
        stages += 1
        # f = INT32_MAX // s, one quotient bit per stage, numerator bits from the top
        rem = [Const(0, EXP_BITS + 1)] * nl
        quo = [Const(0, DIV_CYCLES)] * nl
        for j in range(DIV_CYCLES):
            bit = (INT32_MAX >> (DIV_CYCLES - 1 - j)) & 1
            nr, nq = [], []
            for i in range(nl):
                trial = Signal(EXP_BITS + 2, name=f"div{j}_trial{i}")
                m.d.comb += trial.eq(rem[i] * 2 + bit)
                ge = trial >= s[i]
                nr.append(reg(Mux(ge, trial - s[i], trial), EXP_BITS + 1, f"div{j}_r{i}"))
                nq.append(reg((quo[i] << 1)[:DIV_CYCLES] | ge, DIV_CYCLES, f"div{j}_q{i}"))
            rem, quo = nr, nq
            s = [reg(v, EXP_BITS, f"div{j}_s{i}") for i, v in enumerate(s)]
            e1 = [reg(v, EXP_BITS, f"div{j}_e1{i}") for i, v in enumerate(e1)]
            x_at = [reg(v, signed(xb), f"div{j}_x{i}") for i, v in enumerate(x_at)]
            stages += 1
        # sigma = (e1 * f) >> (31 - p): product, then shift
        prod = [reg(e1[i] * quo[i], 2 * EXP_BITS, f"ef{i}") for i in range(nl)]
        x_at = [reg(v, signed(xb), f"xm{i}") for i, v in enumerate(x_at)]
        sh = Signal(range(32))
        m.d.comb += sh.eq(31 - self.sigmoid_bits)
        sig = [reg(prod[i] >> sh, SIGMOID_BITS_MAX, f"sigma{i}") for i in range(nl)]
        x_at = [reg(v, signed(xb), f"xn{i}") for i, v in enumerate(x_at)]
        stages += MUL_DEPTH
        # x * sigma
        xsig = [reg(x_at[i] * sig[i], signed(xb + SIGMOID_BITS_MAX), f"xsig{i}")
                for i in range(nl)]
        stages += 1
        qmax, qmin = clamp_range(m, self.out_bits, self.out_signed)
        ys = requant_stages(m, xsig, en, self.mult, self.shift, qmax, qmin, "rq")
        stages += REQ_DEPTH
        stream_out(self, m, en, ys, stages, GELU_DEPTH, "GELU_DEPTH")
        return m
