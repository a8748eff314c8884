"""Load buffer: a ring of ``2 * k_tile`` words in block RAM, written by a load stream."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import index_shape
from quant.errors import check_int_range
from sim.resources import buffer_depth
from sim.timing import ring_steps


def beat_layout(width: int) -> data.StructLayout:
    """One load beat: the words of one K step and ``last`` (the block's final step)."""
    return data.StructLayout({"data": width, "last": 1})


def ring_sub(a, b, cap: int):
    """``(a - b) mod cap`` for ``a, b < cap``: a slice when ``cap`` is a power of two."""
    if cap & (cap - 1) == 0:
        return (a - b)[:max(1, (cap - 1).bit_length())]
    return Mux(a >= b, a - b, a + cap - b)


def ring_add(a, b, cap: int):
    """``(a + b) mod cap`` for ``a, b < cap``: a slice when ``cap`` is a power of two, else
    one compare and subtract."""
    s = a + b
    if cap & (cap - 1) == 0:
        return s[:max(1, (cap - 1).bit_length())]
    return Mux(s >= cap, s - cap, s)


class RingBuffer(wiring.Component):
    """A weight or activation buffer (sim.timing rules R5/R6): a ring of
    :func:`sim.timing.ring_steps` words, one per K step.

    Writes: every beat on ``load`` is stored at the write pointer, which then moves one word
    on around the ring, so blocks lie back to back in load order (block ``n`` at word
    ``S_n mod ring``, ``S_n`` the steps loaded before it). ``restart`` puts the pointer at
    word 0. ``load.ready`` is always 1: the controller only lets a block in once the ring has
    room for it (R6).

    The ring is one memory of :func:`sim.resources.buffer_depth` words (its first
    ``ring_steps(k_tile)`` used).

    Reads: ``rd_base``/``rd_step`` given in one cycle select the word ``(rd_base + rd_step) mod
    ring`` shown on ``data`` in the next (a synchronous BRAM read port). A beat written in
    either of the two cycles to that address is forwarded, so a block can be read while it
    streams in (cut-through): a word written in cycle ``t`` can be presented to the array in
    cycle ``t``.

    Parameters:
        width: bits per word (one K step of every row, or of every column).
        k_tile: the longest block, in steps (the ring holds two).

    Members:
        load: In(stream.Signature(beat_layout(width))).
        restart: In(1).
        rd_base: In(range(ring)), the word where the block being read starts.
        rd_step: In(range(k_tile), at least one bit).
        data: Out(width).
        wr_ptr: Out(range(ring)), the word the next beat is written to.
    """

    def __init__(self, width: int, k_tile: int) -> None:
        self.width = check_int_range("width", width, 1, 1 << 16)
        self.k_tile = check_int_range("k_tile", k_tile, 1, 1 << 20)
        self.ring = ring_steps(k_tile)
        super().__init__({
            "load": In(stream.Signature(beat_layout(width))),
            "restart": In(1),
            "rd_base": In(index_shape(self.ring)),
            "rd_step": In(index_shape(k_tile)),
            "data": Out(width),
            "wr_ptr": Out(index_shape(self.ring)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width,
                                               depth=buffer_depth(self.k_tile), init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))
        w_ptr = Signal(index_shape(self.ring))
        m.d.comb += [
            self.wr_ptr.eq(w_ptr),
            self.load.ready.eq(1),
            wp.addr.eq(w_ptr),
            wp.data.eq(self.load.payload.data),
            wp.en.eq(self.load.valid),
        ]
        with m.If(self.restart):
            m.d.sync += w_ptr.eq(0)
        with m.Elif(self.load.valid):
            m.d.sync += w_ptr.eq(ring_add(w_ptr, 1, self.ring))
        shown = Signal.like(rp.addr)
        m.d.comb += rp.addr.eq(ring_add(self.rd_base, self.rd_step, self.ring))
        m.d.sync += shown.eq(rp.addr)
        m.d.comb += self.data.eq(Mux(wp.en & (wp.addr == shown), wp.data, rp.data))
        return m
