"""Load buffers: a ring of ``2 * k_tile`` words (three banks of ``k_tile`` on an engine with
column groups) in block RAM, written by a load stream."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.params import index_shape
from quant.errors import ConfigError, check_int_range
from sim.resources import bank_pieces, buffer_depth, piece_firsts
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
    ``ring_steps(k_tile, group_b)`` used; ``group_b``: the engine's column group B, R3c).

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

    def __init__(self, width: int, k_tile: int, group_b: int = 0) -> None:
        self.width = check_int_range("width", width, 1, 1 << 16)
        self.k_tile = check_int_range("k_tile", k_tile, 1, 1 << 20)
        self.group_b = group_b
        self.ring = ring_steps(k_tile, group_b)
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
        m.submodules.mem = mem = memory.Memory(
            shape=self.width, depth=buffer_depth(self.k_tile, self.group_b), init=[])
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


class BankedRing(wiring.Component):
    """The weight buffer of an engine with column groups (sim.timing rule R3c): a ring of
    three banks of ``k_tile`` words, read for both groups at once.

    Each bank is its own memories: ``pieces`` of power-of-two depths where block RAM would
    otherwise be sliced in depth (:func:`sim.resources.bank_pieces`), so that no read
    multiplexer sits inside a bank. The pieces' read ports do not forward; each group has
    one multiplexer over every bank's pieces and the word written in the cycle its address
    was given, with a registered select, and the word written in the shown cycle beside it.

    Writes and ``rd_base``/``rd_step``/``data``/``wr_ptr`` are those of :class:`RingBuffer`
    with a ring of ``3 * k_tile`` words (word ``w`` is word ``w mod k_tile`` of bank
    ``w // k_tile``), but with ``align`` set a block's last beat moves the write pointer to
    the first word of the next bank, so that block ``n`` of a dealt GEMM lies in bank
    ``n mod 3`` from its first word (R3c). Every bank is read at the in-bank word of
    ``rd_base + rd_step``; ``data_b`` shows the word of the bank holding ``rd_base_b +
    rd_step`` at that same in-bank word (group B's: in a dealt GEMM both bases are bank
    starts, otherwise ``rd_base_b = rd_base``), forwarded like ``data``.

    Parameters:
        width: bits per word.
        k_tile: words per bank.
        pieces: the depths of the memories each bank is built from, first word first
            (default :func:`sim.resources.bank_pieces`, which the resource model counts;
            given, for tests of a split on small banks).

    Members:
        load, restart, rd_base, rd_step, data, wr_ptr: as :class:`RingBuffer`'s.
        align: In(1), a block's last beat ends its bank.
        rd_base_b: In(range(ring)), where group B's block starts.
        data_b: Out(width).
    """

    def __init__(self, width: int, k_tile: int, pieces: tuple[int, ...] | None = None
                 ) -> None:
        self.width = check_int_range("width", width, 1, 1 << 16)
        self.k_tile = check_int_range("k_tile", k_tile, 1, 1 << 20)
        self.pieces = bank_pieces(width, k_tile) if pieces is None else tuple(pieces)
        if sum(self.pieces) != k_tile or min(self.pieces) < 1:
            raise ConfigError(f"pieces must be positive depths summing to k_tile={k_tile}, "
                              f"not {self.pieces}")
        self.ring = ring_steps(k_tile, 1)
        super().__init__({
            "load": In(stream.Signature(beat_layout(width))),
            "restart": In(1),
            "align": In(1),
            "rd_base": In(index_shape(self.ring)),
            "rd_base_b": In(index_shape(self.ring)),
            "rd_step": In(index_shape(k_tile)),
            "data": Out(width),
            "data_b": Out(width),
            "wr_ptr": Out(index_shape(self.ring)),
        })

    def elaborate(self, platform):
        m = Module()
        kt = self.k_tile
        banks = self.ring // kt
        w_bank = Signal(range(banks))
        w_off = Signal(index_shape(kt))
        m.d.comb += [self.wr_ptr.eq(w_bank * kt + w_off), self.load.ready.eq(1)]
        end = Signal()
        m.d.comb += end.eq((w_off == kt - 1) | (self.align & self.load.payload.last))
        with m.If(self.restart):
            m.d.sync += [w_bank.eq(0), w_off.eq(0)]
        with m.Elif(self.load.valid & end):
            m.d.sync += [w_bank.eq(Mux(w_bank == banks - 1, 0, w_bank + 1)), w_off.eq(0)]
        with m.Elif(self.load.valid):
            m.d.sync += w_off.eq(w_off + 1)

        def split(word):
            """(bank, in-bank word) of a ring word."""
            bank = (word >= kt) + (word >= 2 * kt)
            return bank, word - Mux(bank == 0, 0, Mux(bank == 1, kt, 2 * kt))

        bank_a, off = split(ring_add(self.rd_base, self.rd_step, self.ring))
        bank_b, _ = split(ring_add(self.rd_base_b, self.rd_step, self.ring))
        # Each bank is memories of the pieces' depths (no depth slices in block RAM), read
        # without forwarding; a reader's registered select picks its bank's piece or the word
        # written in the cycle the address was given (`prev`: the read port shows the old
        # one), and the word written in the shown cycle (`now`) overrides both.
        pieces = self.pieces
        firsts = piece_firsts(pieces)
        piece = sum((off >= f for f in firsts[1:]), Const(0))
        sources = []
        for b in range(banks):
            for first, depth in zip(firsts, pieces, strict=True):
                mem = memory.Memory(shape=self.width, depth=depth, init=[])
                m.submodules[f"bank{b}_{first}"] = mem
                wp = mem.write_port()
                rp = mem.read_port()
                inside = self.load.valid & (w_bank == b)
                if first:
                    inside &= w_off >= first
                if first + depth < kt:
                    inside &= w_off < first + depth
                m.d.comb += [wp.addr.eq(w_off - first), wp.data.eq(self.load.payload.data),
                             wp.en.eq(inside), rp.addr.eq(off - first)]
                sources.append(rp.data)
        prev_data = Signal(self.width)
        m.d.sync += prev_data.eq(self.load.payload.data)
        sources.append(prev_data)
        # a power of two of sources: the select's unused codes show `prev` too
        sources += [prev_data] * ((1 << (len(sources) - 1).bit_length()) - len(sources))
        shown = Signal(index_shape(kt))
        m.d.sync += shown.eq(off)
        for out, bank in ((self.data, bank_a), (self.data_b, bank_b)):
            sel = Signal(range(len(sources)))
            shown_bank = Signal(range(banks))
            prev = self.load.valid & (w_bank == bank) & (w_off == off)
            m.d.sync += [sel.eq(Mux(prev, len(pieces) * banks, bank * len(pieces) + piece)),
                         shown_bank.eq(bank)]
            now = self.load.valid & (w_bank == shown_bank) & (w_off == shown)
            m.d.comb += out.eq(Mux(now, self.load.payload.data, Array(sources)[sel]))
        return m
