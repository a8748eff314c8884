"""The vector unit's LayerNorm: I-ViT's I-LayerNorm token by token (sim.timing R14,
quant.ops.layernorm)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import clamp_range, format_fields, out_shape
from hw.vector.common import (
    EXP_BITS,
    DigitSqrt,
    RestoringDivider,
    delay,
    lane_tree,
    requant_stages,
)
from hw.vector.requant import MAX_SHIFT
from quant.errors import ConfigError, check_int_range
from quant.formats import ActFormat
from quant.ops.intmath import INT32_MAX
from sim.resources import BETA_BITS, GAMMA_BITS  # signed widths of gamma and beta
from sim.timing import (
    DIV_CYCLES,
    LAYERNORM_LATENCY,
    LN_OUT_DEPTH,
    REDUCE_DEPTH,
    REQ_DEPTH,
    SQRT_CYCLES,
    SQUARE_DEPTH,
)


class LayerNorm(wiring.Component):
    """Integer LayerNorm of tokens of ``length`` features, ``lanes`` per beat (rule R14),
    bit-exact with :func:`quant.ops.layernorm.normalize` and the layer's affine requantizer.

    Per token, one token at a time, the unit takes the token's features on ``inp`` three
    times (``ceil(length / lanes)`` beats each; lanes past ``length`` are ignored):

    1. sum (lane tree); ``mean = round_div(sum, length)`` in a restoring divider of
       :data:`~sim.timing.DIV_CYCLES` steps on ``|sum|`` with the sign and the
       round-half-to-even fixed up after;
    2. ``y = x - mean``, ``y * y`` (:data:`~sim.timing.SQUARE_DEPTH`), their sum; the
       digit-by-digit square root (:data:`~sim.timing.SQRT_CYCLES`), then ``f = INT32_MAX
       // max(std, 1)`` (:data:`~sim.timing.DIV_CYCLES`);
    3. ``z = (y * f) >> 1``, ``z * gamma + beta``, ``clamp(round_shift(., shift))`` on
       ``out`` (:data:`~sim.timing.LN_OUT_DEPTH` stages, stopping while ``out`` waits).

    ``gamma`` and ``beta`` sit in a coefficient memory written through ``coef_*`` before the
    op (beat ``k`` holds features ``k*lanes ..``). Without idle input cycles and
    back-pressure a token takes exactly ``3 * ceil(length / lanes) + LAYERNORM_LATENCY``
    cycles from its first beat taken to its last beat given. The host proves the variance
    bound (:func:`quant.ops.layernorm.check_variance`) as the reference does; ``|sum|`` must
    be below ``2**32`` (``length * 2**16`` for 16-bit inputs).

    Parameters:
        lanes: features per beat.
        x_fmt: the input activation format (at most 16 bits).
        max_length: most features (coefficient-memory depth ``ceil(max_length / lanes)``).

    Members:
        inp: In(stream of ArrayLayout(x shape, lanes)).
        out: Out(stream of ArrayLayout(:func:`hw.params.out_shape`, lanes)).
        length: In(range(max_length + 1)) features per token, at least 1.
        shift: In(range(63)) the affine step's right shift.
        out_bits, out_signed: In, the output format.
        coef_we, coef_addr, coef_gamma, coef_beta: In, one beat of coefficients written.
    """

    def __init__(self, lanes: int, x_fmt: ActFormat, max_length: int) -> None:
        self.lanes = check_int_range("lanes", lanes, 1, 1 << 16)
        if not isinstance(x_fmt, ActFormat) or x_fmt.bits > 16:
            raise ConfigError(f"x_fmt must be an ActFormat of at most 16 bits, not {x_fmt!r}")
        self.x_fmt = x_fmt
        self.max_length = check_int_range("max_length", max_length, 1, 1 << 16)
        self.depth = -(-self.max_length // self.lanes)
        xs = signed(x_fmt.bits) if x_fmt.signed else unsigned(x_fmt.bits)
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(xs, self.lanes))),
            "out": Out(stream.Signature(data.ArrayLayout(out_shape(), self.lanes))),
            "length": In(range(self.max_length + 1)),
            "shift": In(range(MAX_SHIFT + 1)),
            **{k: In(v) for k, v in format_fields().items()},
            "coef_we": In(1),
            "coef_addr": In(range(max(self.depth, 2))),
            "coef_gamma": In(data.ArrayLayout(signed(GAMMA_BITS), self.lanes)),
            "coef_beta": In(data.ArrayLayout(signed(BETA_BITS), self.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        nl = self.lanes
        xb = self.x_fmt.bits + 1  # x as a signed value
        sum_bits = 33  # |sum| < 2**32
        P1, D1, MEAN, P2, D2, SQRT, RECIP, P3, D3 = range(9)
        state = Signal(range(9), init=P1)
        drain = Signal(range(64))
        pos = Signal(range(self.max_length + nl + 1))
        beat = Signal(range(max(self.depth, 2)))
        last_beat = pos + nl >= self.length
        en3 = Signal()  # pass 3's pipeline advances
        m.d.comb += en3.eq(~self.out.valid | self.out.ready)
        ready = Mux(state == P3, en3, (state == P1) | (state == P2))
        take = Signal()
        m.d.comb += [self.inp.ready.eq(ready), take.eq(ready & self.inp.valid)]
        xs = [self.inp.payload[i] for i in range(nl)]
        mask = [pos + i < self.length for i in range(nl)]

        # pass 1: sum of x
        total = Signal(signed(sum_bits))
        tsum, st = lane_tree(m, [Mux(mask[i], xs[i], 0) for i in range(nl)],
                             lambda a, b: a + b, "sum")
        tsum_valid = delay(m, take & (state == P1), st, Const(1), "sum_valid")
        with m.If(tsum_valid):
            m.d.sync += total.eq(total + tsum)
        with m.Elif(state == P3):
            m.d.sync += total.eq(0)

        # mean = round_div(sum, length): |sum| // length, then sign and rounding
        mdiv = RestoringDivider(DIV_CYCLES, "mean")
        mdiv.build(m)
        neg = Signal()
        m.d.comb += [mdiv.numerator.eq(Mux(total < 0, -total, total)),
                     mdiv.divisor.eq(self.length)]
        with m.If(mdiv.start):
            m.d.sync += neg.eq(total < 0)
        qq = Signal(signed(DIV_CYCLES + 2))
        rr = Signal(DIV_CYCLES + 1)
        exact = mdiv.remainder == 0
        m.d.comb += [
            qq.eq(Mux(neg, Mux(exact, -mdiv.quotient, -mdiv.quotient - 1), mdiv.quotient)),
            rr.eq(Mux(neg & ~exact, self.length - mdiv.remainder, mdiv.remainder)),
        ]
        mean = Signal(signed(xb + 1))
        m.d.comb += mean.eq(qq + ((rr * 2 > self.length)
                                  | ((rr * 2 == self.length) & qq[0])))

        # pass 2: sum of (x - mean)**2, SQUARE_DEPTH stages before the tree
        ys = [Signal(signed(xb + 2), name=f"y{i}") for i in range(nl)]
        sq = [Signal(2 * (xb + 2), name=f"yy{i}") for i in range(nl)]
        for i in range(nl):
            m.d.sync += [ys[i].eq(Mux(mask[i], xs[i] - mean, 0)), sq[i].eq(ys[i] * ys[i])]
        if SQUARE_DEPTH != 2:
            raise ConfigError(f"SQUARE_DEPTH must be 2 (subtract, square), not {SQUARE_DEPTH}")
        var = Signal(2 * SQRT_CYCLES)
        tvar, st = lane_tree(m, sq, lambda a, b: a + b, "var")
        tvar_valid = delay(m, take & (state == P2), SQUARE_DEPTH + st, Const(1), "var_valid")
        with m.If(tvar_valid):
            m.d.sync += var.eq(var + tvar)
        with m.Elif(state == P1):
            m.d.sync += var.eq(0)

        # std = isqrt(var), f = INT32_MAX // max(std, 1)
        sqrt = DigitSqrt(SQRT_CYCLES, "sqrt")
        sqrt.build(m)
        m.d.comb += sqrt.radicand.eq(var)
        rdiv = RestoringDivider(DIV_CYCLES, "recip", latch=False)
        rdiv.build(m)
        m.d.comb += [rdiv.numerator.eq(INT32_MAX),
                     rdiv.divisor.eq(Mux(sqrt.root == 0, 1, sqrt.root))]

        # pass 3: LN_OUT_DEPTH stages with back-pressure
        m.submodules.coef = coef = memory.Memory(shape=(GAMMA_BITS + BETA_BITS) * nl,
                                                 depth=self.depth, init=[])
        wp = coef.write_port()
        m.d.comb += [wp.addr.eq(self.coef_addr), wp.en.eq(self.coef_we),
                     wp.data.eq(self._coef_word())]
        rp = coef.read_port(transparent_for=())
        m.d.comb += [rp.addr.eq(beat), rp.en.eq(en3)]
        w = GAMMA_BITS + BETA_BITS

        def reg(v, shape, nm: str) -> Signal:
            r = Signal(shape, name=nm)
            with m.If(en3):
                m.d.sync += r.eq(v)
            return r

        y3 = [reg(x - mean, signed(xb + 2), f"o_y{i}") for i, x in enumerate(xs)]
        z = [reg((y3[i] * rdiv.quotient) >> 1, signed(EXP_BITS + 1), f"o_z{i}")
             for i in range(nl)]
        gam = [reg(rp.data[i * w:i * w + GAMMA_BITS].as_signed(), signed(GAMMA_BITS),
                   f"o_g{i}") for i in range(nl)]
        bet = [reg(rp.data[i * w + GAMMA_BITS:(i + 1) * w].as_signed(), signed(BETA_BITS),
                   f"o_b{i}") for i in range(nl)]
        aff = [reg(z[i] * gam[i] + bet[i], signed(64), f"o_a{i}") for i in range(nl)]
        qmax, qmin = clamp_range(m, self.out_bits, self.out_signed)
        outs = requant_stages(m, aff, en3, Const(1, 1), self.shift, qmax, qmin, "rq")
        stages = 3 + REQ_DEPTH
        if stages != LN_OUT_DEPTH:
            raise ConfigError(f"LN_OUT_DEPTH must be {stages}, not {LN_OUT_DEPTH}")
        in3 = take & (state == P3)
        v = delay(m, in3, LN_OUT_DEPTH - 1, en3, "o_valid")
        last = delay(m, in3 & last_beat, LN_OUT_DEPTH - 1, en3, "o_last")
        out_last = Signal()
        with m.If(en3):
            m.d.sync += [self.out.valid.eq(v), out_last.eq(last)]
        for i in range(nl):
            m.d.comb += self.out.payload[i].eq(outs[i])

        # the phases, timed by R14
        with m.Switch(state):
            with m.Case(P1, P2, P3):
                with m.If(take):
                    m.d.sync += [pos.eq(pos + nl), beat.eq(beat + 1)]
                    with m.If(last_beat):
                        m.d.sync += [state.eq(state + 1), drain.eq(0), pos.eq(0),
                                     beat.eq(0)]
            with m.Case(D1):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == REDUCE_DEPTH - 1):
                    m.d.comb += mdiv.start.eq(1)
                    m.d.sync += [state.eq(MEAN), drain.eq(0)]
            with m.Case(MEAN):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == DIV_CYCLES - 1):
                    m.d.sync += state.eq(P2)
            with m.Case(D2):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == SQUARE_DEPTH + REDUCE_DEPTH - 1):
                    m.d.comb += sqrt.start.eq(1)
                    m.d.sync += [state.eq(SQRT), drain.eq(0)]
            with m.Case(SQRT):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == SQRT_CYCLES - 1):
                    m.d.sync += [state.eq(RECIP), drain.eq(0)]
            with m.Case(RECIP):
                m.d.comb += rdiv.start.eq(drain == 0)
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == DIV_CYCLES - 1):
                    m.d.sync += state.eq(P3)
            with m.Case(D3):
                with m.If(self.out.valid & self.out.ready & out_last):
                    m.d.sync += state.eq(P1)
        latency = (REDUCE_DEPTH + DIV_CYCLES + SQUARE_DEPTH + REDUCE_DEPTH + SQRT_CYCLES
                   + DIV_CYCLES + LN_OUT_DEPTH)
        if latency != LAYERNORM_LATENCY:
            raise ConfigError(f"LAYERNORM_LATENCY must be the phases' {latency}, not "
                              f"{LAYERNORM_LATENCY}")
        return m

    def _coef_word(self):
        from amaranth.hdl import Cat

        parts = []
        for i in range(self.lanes):
            parts += [self.coef_gamma[i], self.coef_beta[i]]
        return Cat(*parts)
