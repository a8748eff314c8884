"""The vector unit's ``pos_embed``: the class token's slot, the position table, the
requantizer (sim.timing R15, quant.ops.embed)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, clamp_range, format_fields, out_shape
from hw.vector.common import delay, requant_stages, stream_out
from hw.vector.requant import MAX_SHIFT
from quant.errors import ConfigError, check_int_range
from quant.formats import ActFormat
from quant.ops.intmath import DYADIC_BITS
from sim.resources import POS_TABLE_BITS  # a table word: |table| <= 2**62, signed
from sim.timing import POS_EMBED_DEPTH, REQ_DEPTH


def lane_layout(x_fmt: ActFormat) -> data.StructLayout:
    """One lane of ``PosEmbed.inp``: the patch value ``x`` (ignored in a class-token slot),
    the ``cls`` flag of the class token's slot and the table word of the output element."""
    return data.StructLayout({"x": act_shape(x_fmt), "cls": 1,
                              "table": signed(POS_TABLE_BITS)})


class PosEmbed(wiring.Component):
    """``requantize(t + table, 1, out_shift, out_fmt)`` element-wise on ``lanes`` lanes (rule
    R15 ``pos_embed``), ``t = round_shift(x * mult, shift)`` for a patch element and ``t =
    0`` in the class token's slot: bit-exact with :class:`quant.ops.embed.PosEmbed` for
    branch shifts 0..62.

    The op streams its ``E = D * T`` output elements in output order (channel-first: token
    ``t`` of feature ``d`` is element ``d * T + t``), each lane carrying the element's table
    word and, for a patch, its input ``x``; the producer sets ``cls`` on the slot of each
    row's class token (column 0 when the layer's ``cls``), whose ``x`` the unit ignores. So
    the class token is prepended by where the patches are read to, and every output element
    is one lane of one beat.

    One pipeline of :data:`sim.timing.POS_EMBED_DEPTH` stages: the branch's dyadic scaling
    (the requantizer's multiply and round without the clamp, :data:`~sim.timing.REQ_DEPTH`),
    the table add, the output requantizer (multiplier 1, the right shift ``out_shift``,
    :data:`~sim.timing.REQ_DEPTH`). It stops as a whole while ``out`` waits (``inp.ready =
    ~out.valid | out.ready``); without stalls an op takes ``ceil(E / lanes) +
    POS_EMBED_DEPTH`` cycles from its first beat taken to its last result.

    Parameters:
        lanes: elements per beat.
        x_fmt: the patch tokens' activation format (at most 16 bits).

    Members:
        inp: In(stream of ArrayLayout(:func:`lane_layout`, lanes)).
        out: Out(stream of ArrayLayout(:func:`hw.params.out_shape`, lanes)).
        mult: In(31) the branch's dyadic multiplier; shift: In(range(63)) its right shift.
        out_shift: In(range(63)) the output requantizer's right shift.
        out_bits, out_signed: In, the output format.
    """

    def __init__(self, lanes: int, x_fmt: ActFormat) -> None:
        self.lanes = check_int_range("lanes", lanes, 1, 1 << 16)
        if not isinstance(x_fmt, ActFormat) or x_fmt.bits > 16:
            raise ConfigError(f"x_fmt must be an ActFormat of at most 16 bits, not {x_fmt!r}")
        self.x_fmt = x_fmt
        super().__init__({
            "inp": In(stream.Signature(data.ArrayLayout(lane_layout(x_fmt), self.lanes))),
            "out": Out(stream.Signature(data.ArrayLayout(out_shape(), self.lanes))),
            "mult": In(unsigned(DYADIC_BITS)),
            "shift": In(range(MAX_SHIFT + 1)),
            "out_shift": In(range(MAX_SHIFT + 1)),
            **{k: In(v) for k, v in format_fields().items()},
        })

    def elaborate(self, platform):
        m = Module()
        nl = self.lanes
        en = Signal()
        m.d.comb += [en.eq(~self.out.valid | self.out.ready), self.inp.ready.eq(en)]
        lanes = [self.inp.payload[i] for i in range(nl)]
        stages = 0
        # the branch: round_shift(x * mult, shift), x = 0 in the class token's slot
        xs = []
        for i, ln in enumerate(lanes):
            x = Signal(act_shape(self.x_fmt), name=f"x{i}")
            m.d.comb += x.eq(Mux(ln.cls, 0, ln.x))
            xs.append(x)
        ts = requant_stages(m, xs, en, self.mult, self.shift, None, None, "br")
        tables = [delay(m, ln.table, REQ_DEPTH, en, f"tab{i}") for i, ln in enumerate(lanes)]
        stages += REQ_DEPTH
        # the table add
        sums = []
        for i in range(nl):
            s = Signal(signed(max(len(ts[i]), POS_TABLE_BITS) + 1), name=f"sum{i}")
            with m.If(en):
                m.d.sync += s.eq(ts[i] + tables[i])
            sums.append(s)
        stages += 1
        # the output requantizer: clamp(round_half_even(sum / 2**out_shift))
        qmax, qmin = clamp_range(m, self.out_bits, self.out_signed)
        ys = requant_stages(m, sums, en, Const(1, 1), self.out_shift, qmax, qmin, "rq")
        stages += REQ_DEPTH
        stream_out(self, m, en, ys, stages, POS_EMBED_DEPTH, "POS_EMBED_DEPTH")
        return m
