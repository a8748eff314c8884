"""Tile walker: steps through a GEMM's chunk tiles in the order of sim.timing rules R1-R3, R5."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.params import format_fields
from quant.errors import check_bool, check_int_range


def command_layout(dim_bits: int, matmul: bool = False,
                   prefetch: tuple[int, int, int] | None = None,
                   grouped: bool = False) -> data.StructLayout:
    """The command registers the host writes for one GEMM (rules R1-R3).

    ``m_fixed``/``m_lut`` rows, ``n`` columns, ``k`` reduction steps, ``f`` row steps (R1),
    ``qa, ra = divmod(m_fixed, f)`` and ``qb, rb = divmod(m_lut, f)`` (R2), ``order``
    (R3: 0 = column blocks outer, 1 = row steps outer) and ``resident`` (R3/R5b: the inner
    loop's operand stays in its ring; the host sets it only with ``k <= k_tile`` and the
    inner loop's blocks within one ring, :func:`sim.timing.gemm_tiling`);
    ``out_bits``/``out_signed``, the output format the post-processors clamp to
    (:func:`hw.params.format_fields`, :meth:`quant.requant.Requantizer.output_format`).
    With ``prefetch`` (the accelerator's command: the widths of a DSP-core row count, a
    LUT-core row count and a step count) five more, after the walker's fields (R10b):
    ``pre``, the GEMM's first weight block is in the ring already (the previous command
    prefetched it); ``pf``, prefetch the next command's first weight block of
    ``pf_rows_dsp + pf_rows_lut`` rows and ``pf_steps`` steps after this GEMM's last load.
    With ``matmul`` (a top built with the matmul path) three more: ``matmul``, an activation
    x activation GEMM (sim.timing R11: every row on the DSP core, the weight-role operand at
    ``act_bits``, the accumulators out through the post-processor's bypass) whose
    weight-role operand is signed if ``a_signed`` and streamed operand if ``b_signed`` (all
    0 for an ordinary GEMM). With ``grouped`` (an engine with column group B) one more
    last: ``dealt``, the GEMM runs as dealt tiles (sim.timing R3c) on the deal the host wrote
    into the top's deal table (``order`` and ``resident`` 0).
    """
    return data.StructLayout({
        "m_fixed": dim_bits, "m_lut": dim_bits, "n": dim_bits, "k": dim_bits, "f": dim_bits,
        "qa": dim_bits, "ra": dim_bits, "qb": dim_bits, "rb": dim_bits, "order": 1,
        "resident": 1,
        **format_fields(),
        **({} if prefetch is None else {
            "pre": 1, "pf": 1, "pf_rows_dsp": prefetch[0], "pf_rows_lut": prefetch[1],
            "pf_steps": prefetch[2]}),
        **({"matmul": 1, "a_signed": 1, "b_signed": 1} if matmul else {}),
        **({"dealt": 1} if grouped else {}),
    })


class TileWalker(wiring.Component):
    """The current chunk tile ``(j, f, q)`` of a GEMM and what it needs; ``advance`` steps on.

    ``restart`` goes to the first chunk tile. The outputs describe the current one: its
    columns ``col0 .. col0 + cols - 1`` (``cols = c_j``), its DSP rows
    ``row0_dsp .. + rows_dsp`` and LUT rows ``row0_lut .. + rows_lut`` (``a_f``, ``b_f`` of
    R2, ``rows = r_f``), its K steps ``k0 .. k0 + steps - 1`` (``steps = k_q``);
    ``last_chunk`` (last chunk of the output tile), ``final`` (last chunk tile of the GEMM);
    ``w_new``/``x_new`` (R5/R5b: the tile loads a new weight/activation block) and
    ``w_last_use``/``x_last_use`` (the tile is the last user of its block: the next tile loads
    a new one, or there is no next tile; never for a resident buffer before the last tile).
    For a resident buffer (R5b: the command's ``resident``, the inner loop's operand, with
    ``Q == 1``) ``w_res``/``x_res`` are set, and ``w_home``/``x_home`` mark a tile whose block
    is the inner loop's first (at ring word 0), ``w_home_next``/``x_home_next`` a tile the
    next one of which is; every other tile of a resident buffer reads the block ``K`` words
    after the previous tile's.

    Parameters:
        cols: engine columns ``C``.
        k_tile: load block depth ``KT``.
        dim_bits: width of the command's dimensions.
        shared: the cores share one post-processor (``engine.shared_post``): ``rows`` is
            the drain's ``a_f + b_f`` (:func:`sim.timing.drain_rows`).

    Members:
        cmd: In(command_layout(dim_bits)), held stable while walking.
        restart, advance: In(1).
        col0, cols, row0_dsp, rows_dsp, row0_lut, rows_lut, rows, k0, steps, last_chunk,
        final, w_new, x_new, w_last_use, x_last_use, w_res, x_res, w_home, x_home,
        w_home_next, x_home_next: Out, as above.
    """

    def __init__(self, cols: int, k_tile: int, dim_bits: int = 16, shared: bool = False
                 ) -> None:
        self.shared = check_bool("shared", shared)
        self.n_cols = check_int_range("cols", cols, 1, 4096)
        self.k_tile = check_int_range("k_tile", k_tile, 1, 1 << 20)
        self.dim_bits = check_int_range("dim_bits", dim_bits, 2, 32)
        d = dim_bits
        super().__init__({
            "cmd": In(command_layout(d)),
            "restart": In(1), "advance": In(1),
            "col0": Out(d), "cols": Out(range(cols + 1)),
            "row0_dsp": Out(d), "rows_dsp": Out(d), "row0_lut": Out(d), "rows_lut": Out(d),
            "rows": Out(d), "k0": Out(d), "steps": Out(range(k_tile + 1)),
            "last_chunk": Out(1), "final": Out(1),
            "w_new": Out(1), "x_new": Out(1), "w_last_use": Out(1), "x_last_use": Out(1),
            "w_res": Out(1), "x_res": Out(1), "w_home": Out(1), "x_home": Out(1),
            "w_home_next": Out(1), "x_home_next": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cmd, c, kt = self.cmd, self.n_cols, self.k_tile
        f = Signal(self.dim_bits)
        first = Signal()
        j_last, f_last = Signal(), Signal()
        multi_q, multi_j, multi_f = Signal(), Signal(), Signal()
        rem_n = Signal(self.dim_bits)
        rem_k = Signal(self.dim_bits)
        m.d.comb += [
            self.rows_dsp.eq(cmd.qa + (f < cmd.ra)),
            self.rows_lut.eq(cmd.qb + (f < cmd.rb)),
            self.rows.eq(self.rows_dsp + self.rows_lut if self.shared else
                         Mux(self.rows_dsp > self.rows_lut, self.rows_dsp, self.rows_lut)),
            rem_n.eq(cmd.n - self.col0),
            rem_k.eq(cmd.k - self.k0),
            self.cols.eq(Mux(rem_n > c, c, rem_n)),
            self.steps.eq(Mux(rem_k > kt, kt, rem_k)),
            j_last.eq(rem_n <= c),
            f_last.eq(f + 1 >= cmd.f),
            self.last_chunk.eq(rem_k <= kt),
            multi_q.eq(cmd.k > kt),
            multi_j.eq(cmd.n > c),
            multi_f.eq(cmd.f > 1),
            self.final.eq(self.last_chunk & j_last & f_last),
            # R5b: the inner loop's buffer is resident (Q == 1): order 0 the weights, 1 the
            # activations; its block is the inner loop's first at f == 0 (order 0) or
            # col0 == 0 (order 1), its last at f_last or j_last.
            self.w_res.eq(cmd.resident & ~cmd.order & ~multi_q),
            self.x_res.eq(cmd.resident & cmd.order & ~multi_q),
            self.w_home.eq(self.w_res & (f == 0)),
            self.x_home.eq(self.x_res & (self.col0 == 0)),
            self.w_home_next.eq(self.w_res & f_last),
            self.x_home_next.eq(self.x_res & j_last),
            # With Q > 1 consecutive chunk tiles always differ in q; with Q == 1 a block is
            # new when the index of its loop changed, a resident one in the first outer
            # iteration only (col0 == 0 in order 0, f == 0 in order 1: what the other order
            # writes for its outer operand).
            self.w_new.eq(first | multi_q | Mux(cmd.order | self.w_res, self.col0 == 0,
                                                multi_f)),
            self.x_new.eq(first | multi_q | Mux(cmd.order & ~self.x_res, multi_j, f == 0)),
            self.w_last_use.eq(self.final | multi_q
                               | (~self.w_res & Mux(cmd.order, j_last, multi_f))),
            self.x_last_use.eq(self.final | multi_q
                               | (~self.x_res & Mux(cmd.order, multi_j, f_last))),
        ]

        def next_row_step():
            m.d.sync += [f.eq(f + 1), self.row0_dsp.eq(self.row0_dsp + self.rows_dsp),
                         self.row0_lut.eq(self.row0_lut + self.rows_lut)]

        with m.If(self.restart):
            m.d.sync += [f.eq(0), first.eq(1), self.col0.eq(0), self.k0.eq(0),
                         self.row0_dsp.eq(0), self.row0_lut.eq(0)]
        with m.Elif(self.advance):
            m.d.sync += first.eq(0)
            with m.If(~self.last_chunk):
                m.d.sync += self.k0.eq(self.k0 + kt)
            with m.Else():
                m.d.sync += self.k0.eq(0)
                with m.If(cmd.order == 0):  # for j: for f
                    with m.If(f_last):
                        m.d.sync += [f.eq(0), self.row0_dsp.eq(0), self.row0_lut.eq(0),
                                     self.col0.eq(self.col0 + c)]
                    with m.Else():
                        next_row_step()
                with m.Else():  # for f: for j
                    with m.If(j_last):
                        m.d.sync += self.col0.eq(0)
                        next_row_step()
                    with m.Else():
                        m.d.sync += self.col0.eq(self.col0 + c)
        return m
