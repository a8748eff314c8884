"""The vector unit's softmax: I-ViT's Shiftmax row by row (sim.timing R14, quant.ops.softmax)."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import clamp_range, format_fields
from hw.vector.common import (
    EXP_BITS,
    EXP_N_MAX,
    RestoringDivider,
    delay,
    lane_tree,
    requant_stages,
    shift_exp_stages,
)
from hw.vector.requant import MAX_SHIFT
from quant.errors import ConfigError, check_int_range
from quant.ops.intmath import DYADIC_BITS, INT32_MAX
from quant.requant import REQUANTIZER
from sim.timing import (
    DIV_CYCLES,
    EXP_DEPTH,
    MUL_DEPTH,
    REDUCE_DEPTH,
    REQ_DEPTH,
    SOFTMAX_LATENCY,
)


class Softmax(wiring.Component):
    """Integer softmax of rows of ``length`` scores, ``lanes`` per beat (rule R14).

    Per row the unit runs three passes, one row at a time:

    1. takes the row's accumulators on ``inp``, requantizes them with the matmul's dyadic
       requantizer (``mult``, ``shift``, clamp to ``ActFormat(x_bits, x_signed)``: R11d)
       and folds them into the row maximum (lane max tree);
    2. takes the same row again on ``inp``, requantizes, computes ``e = shift_exp(x - max,
       x0, n)`` (:func:`quant.ops.intmath.shift_exp`), writes ``e`` into the row buffer and
       folds it into the row sum; then ``f = INT32_MAX // sum`` in a radix-2 restoring
       divider of :data:`~sim.timing.DIV_CYCLES` steps;
    3. reads ``e`` back and gives ``(e * f) >> (31 - out_bits)`` on ``out``.

    So ``inp`` carries every row twice, ``ceil(length / lanes)`` beats each (the last one's
    lanes past ``length`` are ignored); ``out`` gives ``ceil(length / lanes)`` beats per row
    (lanes past ``length`` are 0). Bit-exact with :func:`quant.ops.softmax.shiftmax` of the
    requantized row. Without idle input cycles and back-pressure a row takes exactly
    ``3 * ceil(length / lanes) + SOFTMAX_LATENCY`` cycles from its first beat taken to its
    last beat given (the next row's first beat is taken in the following cycle). The command
    inputs must hold during an op; the host proves ``length * |x0| * 2**n <= INT32_MAX``
    (:func:`quant.ops.intmath.check_exp_sum`), as the reference does.

    Parameters:
        lanes: elements per beat.
        acc_bits: signed width of the input accumulators.
        max_length: longest row (row-buffer depth ``ceil(max_length / lanes)`` beats).

    Members:
        inp: In(stream of ArrayLayout(signed(acc_bits), lanes)).
        out: Out(stream of ArrayLayout(unsigned(16), lanes)).
        length: In(range(max_length + 1)) row length, at least 1.
        mult, shift: In, the input requantizer (31-bit multiplier, right shift 0..62).
        x_bits, x_signed: In, the requantized scores' format (the matmul's output format).
        x0: In(signed(32)), exp_n: In(range(31)): the layer's ``x0`` and ``n``.
        out_bits: In(range(17)) the output format's bits ``p`` (unsigned, scale ``2**-p``).
    """

    def __init__(self, lanes: int, acc_bits: int, max_length: int) -> None:
        self.lanes = check_int_range("lanes", lanes, 1, 1 << 16)
        self.acc_bits = check_int_range("acc_bits", acc_bits, 2, 64)
        self.max_length = check_int_range("max_length", max_length, 1, 1 << 20)
        self.depth = -(-self.max_length // self.lanes)
        ob = REQUANTIZER.max_out_bits
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(signed(self.acc_bits), self.lanes))),
            "out": Out(stream.Signature(data.ArrayLayout(unsigned(ob), self.lanes))),
            "length": In(range(self.max_length + 1)),
            "mult": In(unsigned(DYADIC_BITS)),
            "shift": In(range(MAX_SHIFT + 1)),
            **{k.replace("out_", "x_"): In(v) for k, v in format_fields().items()},
            "x0": In(signed(EXP_BITS)),
            "exp_n": In(range(EXP_N_MAX + 1)),
            "out_bits": In(range(ob + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        nl = self.lanes
        qbits = REQUANTIZER.max_out_bits + 1  # requantized score, signed
        qmin_all = -(1 << (qbits - 1))

        # --- control: the row's phases -------------------------------------------------
        P1, D1, P2, D2, DIV, P3, D3 = range(7)
        state = Signal(range(7), init=P1)
        drain = Signal(range(64))
        pos = Signal(range(self.max_length + nl + 1))  # first element of the current beat
        last_beat = pos + nl >= self.length
        taking = (state == P1) | (state == P2)
        take = Signal()
        m.d.comb += [self.inp.ready.eq(taking), take.eq(taking & self.inp.valid)]
        mask = Signal(nl)
        m.d.comb += mask.eq(Cat(pos + i < self.length for i in range(nl)))

        # --- passes 1 and 2: the input requantizer ------------------------------------
        qmax, qmin = clamp_range(m, self.x_bits, self.x_signed)
        xs = [self.inp.payload[i] for i in range(nl)]
        qs = requant_stages(m, xs, Const(1), self.mult, self.shift, qmax, qmin, "rq")
        rq_valid = delay(m, take, REQ_DEPTH, Const(1), "rq_valid")
        rq_mask = delay(m, mask, REQ_DEPTH, Const(1), "rq_mask")
        rq_pass2 = delay(m, state == P2, REQ_DEPTH, Const(1), "rq_pass2")

        # pass 1: row maximum (masked lanes give the smallest score)
        mx = Signal(signed(qbits), init=qmin_all)
        lanes_max = [Mux(rq_mask[i], qs[i], qmin_all) for i in range(nl)]
        tmax, st = lane_tree(m, lanes_max, lambda a, b: Mux(a > b, a, b), "max")
        tmax_valid = delay(m, rq_valid & ~rq_pass2, st, Const(1), "max_valid")
        with m.If(tmax_valid):
            m.d.sync += mx.eq(Mux(tmax > mx, tmax, mx))
        with m.Elif(state == P3):
            m.d.sync += mx.eq(qmin_all)

        # pass 2: shift-exp of x - max, EXP_DEPTH stages; masked lanes give 0
        ds = []
        for i in range(nl):
            d = Signal(signed(qbits + 1), name=f"d{i}")
            m.d.comb += d.eq(qs[i] - mx)
            ds.append(d)
        raw = shift_exp_stages(m, ds, Const(1), self.x0, self.exp_n, "exp")
        ev = delay(m, rq_valid & rq_pass2, EXP_DEPTH, Const(1), "exp_valid")
        emask = delay(m, rq_mask, EXP_DEPTH, Const(1), "exp_mask")
        es = [Mux(emask[i], raw[i], 0) for i in range(nl)]

        # row buffer: e of every beat, read back in pass 3
        m.submodules.rowbuf = rowbuf = memory.Memory(shape=EXP_BITS * nl, depth=self.depth,
                                                     init=[])
        wr = rowbuf.write_port()
        waddr = Signal(range(max(self.depth, 2)))
        m.d.comb += [wr.addr.eq(waddr), wr.data.eq(Cat(*es)), wr.en.eq(ev)]
        with m.If(ev):
            m.d.sync += waddr.eq(waddr + 1)
        with m.Elif(state == P3):
            m.d.sync += waddr.eq(0)

        # pass 2: row sum
        total = Signal(EXP_BITS)
        tsum, st = lane_tree(m, list(es), lambda a, b: a + b, "sum")
        tsum_valid = delay(m, ev, st, Const(1), "sum_valid")
        with m.If(tsum_valid):
            m.d.sync += total.eq(total + tsum)
        with m.Elif(state == P1):
            m.d.sync += total.eq(0)

        # reciprocal: f = INT32_MAX // sum
        div = RestoringDivider(DIV_CYCLES, "recip")
        div.build(m)
        m.d.comb += [div.numerator.eq(INT32_MAX), div.divisor.eq(total)]

        # --- pass 3: (e * f) >> (31 - p), MUL_DEPTH stages with back-pressure -----------
        en3 = Signal()
        m.d.comb += en3.eq(~self.out.valid | self.out.ready)
        rd = rowbuf.read_port(transparent_for=())
        raddr = Signal(range(max(self.depth, 2)))
        va = Signal()
        m.d.comb += [rd.addr.eq(raddr), rd.en.eq(en3)]
        issue = (state == P3) & en3
        with m.If(en3):
            m.d.sync += [va.eq(state == P3), self.out.valid.eq(va)]
        oshift = Signal(range(32))
        m.d.comb += oshift.eq(31 - self.out_bits)
        for i in range(nl):
            prod = Signal(2 * EXP_BITS, name=f"ef{i}")
            m.d.comb += prod.eq(rd.data[i * EXP_BITS:(i + 1) * EXP_BITS] * div.quotient)
            with m.If(en3):
                m.d.sync += self.out.payload[i].eq(prod >> oshift)
        if MUL_DEPTH != 2:
            raise ConfigError(f"MUL_DEPTH must be 2 (row-buffer read, multiply and shift), "
                              f"not {MUL_DEPTH}")

        # --- the phases, timed by R14 ---------------------------------------------------
        with m.Switch(state):
            with m.Case(P1, P2):
                with m.If(take):
                    m.d.sync += pos.eq(pos + nl)
                    with m.If(last_beat):
                        m.d.sync += [state.eq(state + 1), drain.eq(0), pos.eq(0)]
            with m.Case(D1):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == REQ_DEPTH + REDUCE_DEPTH - 1):
                    m.d.sync += state.eq(P2)
            with m.Case(D2):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == REQ_DEPTH + EXP_DEPTH + REDUCE_DEPTH - 1):
                    m.d.comb += div.start.eq(1)
                    m.d.sync += [state.eq(DIV), drain.eq(0)]
            with m.Case(DIV):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == DIV_CYCLES - 1):
                    m.d.sync += [state.eq(P3), raddr.eq(0)]
            with m.Case(P3):
                with m.If(issue):
                    m.d.sync += [raddr.eq(raddr + 1), pos.eq(pos + nl)]
                    with m.If(last_beat):
                        m.d.sync += [state.eq(D3), pos.eq(0)]
            with m.Case(D3):
                with m.If(~va & self.out.valid & self.out.ready):
                    m.d.sync += state.eq(P1)
        latency = ((REQ_DEPTH + REDUCE_DEPTH) + (REQ_DEPTH + EXP_DEPTH + REDUCE_DEPTH)
                   + DIV_CYCLES + MUL_DEPTH)
        if latency != SOFTMAX_LATENCY:
            raise ConfigError(f"SOFTMAX_LATENCY must be the phases' {latency}, not "
                              f"{SOFTMAX_LATENCY}")
        return m
