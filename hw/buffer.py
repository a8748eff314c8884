"""Double-buffered load buffer: two BRAM banks of ``k_tile`` words, written by a load stream."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import index_shape
from quant.errors import check_int_range
from sim.resources import buffer_depth


def beat_layout(width: int) -> data.StructLayout:
    """One load beat: the words of one K step and ``last`` (the block's final step)."""
    return data.StructLayout({"data": width, "last": 1})


class DoubleBuffer(wiring.Component):
    """A weight or activation buffer (sim.timing rules R5/R6): two banks of ``k_tile`` words.

    Writes: every beat on ``load`` is stored at the write pointer's (bank, step); ``last``
    ends the block and moves the pointer to step 0 of the other bank, so the ``n``-th block
    of a GEMM goes to bank ``n mod 2``. ``restart`` puts the pointer at bank 0, step 0.
    ``load.ready`` is always 1: the controller only lets a block in once its bank is
    released.

    The banks are one memory of :func:`sim.resources.buffer_depth` words: bank ``b``, step
    ``s`` is word ``b * k_tile + s`` (a bit concatenation when ``k_tile`` is a power of
    two), so a bank of any ``k_tile`` costs no more block RAM than its words need.

    Reads: ``rd_bank``/``rd_step`` given in one cycle select the word shown on ``data`` in the
    next (a synchronous BRAM read port). A beat written in either of the two cycles to that
    address is forwarded, so a block can be read while it streams in (cut-through): a word
    written in cycle ``t`` can be presented to the array in cycle ``t``.

    Parameters:
        width: bits per word (one K step of every row, or of every column).
        k_tile: words per bank.

    Members:
        load: In(stream.Signature(beat_layout(width))).
        restart: In(1).
        rd_bank: In(1), rd_step: In(range(k_tile), at least one bit).
        data: Out(width).
    """

    def __init__(self, width: int, k_tile: int) -> None:
        self.width = check_int_range("width", width, 1, 1 << 16)
        self.k_tile = check_int_range("k_tile", k_tile, 1, 1 << 20)
        self.step_bits = max(1, (k_tile - 1).bit_length())
        super().__init__({
            "load": In(stream.Signature(beat_layout(width))),
            "restart": In(1),
            "rd_bank": In(1),
            "rd_step": In(index_shape(k_tile)),
            "data": Out(width),
        })

    def _addr(self, bank, step):
        if self.k_tile & (self.k_tile - 1) == 0:
            return Cat(step.as_unsigned()[:self.step_bits], bank)
        return Mux(bank, step + self.k_tile, step)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.width,
                                               depth=buffer_depth(self.k_tile), init=[])
        wp = mem.write_port()
        rp = mem.read_port(transparent_for=(wp,))
        w_bank = Signal()
        w_step = Signal(self.step_bits)
        m.d.comb += [
            self.load.ready.eq(1),
            wp.addr.eq(self._addr(w_bank, w_step)),
            wp.data.eq(self.load.payload.data),
            wp.en.eq(self.load.valid),
        ]
        with m.If(self.restart):
            m.d.sync += [w_bank.eq(0), w_step.eq(0)]
        with m.Elif(self.load.valid):
            with m.If(self.load.payload.last):
                m.d.sync += [w_bank.eq(~w_bank), w_step.eq(0)]
            with m.Else():
                m.d.sync += w_step.eq(w_step + 1)
        shown = Signal.like(rp.addr)
        m.d.comb += rp.addr.eq(self._addr(self.rd_bank, self.rd_step))
        m.d.sync += shown.eq(rp.addr)
        m.d.comb += self.data.eq(Mux(wp.en & (wp.addr == shown), wp.data, rp.data))
        return m
