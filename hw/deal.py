"""Deal walker: steps through a dealt GEMM's tiles (sim.timing rule R3c) on two column groups."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from quant.errors import check_bool, check_int_range
from sim.resources import DEAL_READS_PER_WALKER

#: Table reads of one walker: each group's next two row steps (R3c: a group skips at most
#: one row step, so the walker looks two ahead).
READS = DEAL_READS_PER_WALKER


class DealWalker(wiring.Component):
    """The current dealt tile of a GEMM and what it needs; ``advance`` steps on.

    The host writes the deal (R3c: ``deal[f]``, group A's output positions in row step
    ``f``) into a table the walker reads through ``addr[i]``/``data[i]`` (combinational reads;
    :data:`READS` of them). ``restart`` goes to the first tile: it reads ``deal[0]`` through
    read 0 in that cycle, so the table must hold the deal then; the GEMM's ``n``, ``f`` and
    R2 quotients/remainders (``nf`` = ``F``) are read from the following cycle on.

    Group A (columns ``0 .. ca-1``) covers positions ``0 .. deal[f]-1`` of each row step in
    tiles of ``ca``, group B (columns ``ca .. ca+cb-1``) positions ``deal[f] .. n-1`` in tiles
    of ``cb``; each walks its row steps in order, and the tile pairs the groups' current
    tiles (a group whose tiles ran out is off). Outputs of the current tile, per group
    (``_b`` for group B): ``on``, the row step ``f``, its ring bank ``bank`` (``f mod 3``),
    the first position ``col0`` and count ``cols`` (0 when off), the R2 rows
    ``row0_dsp``/``rows_dsp``/``row0_lut``/``rows_lut`` (counts 0 when off); and for the
    tile: ``rows`` (``r_t``), ``rows_dsp_max`` (the larger DSP-row count: R4b's capture
    lead), ``span`` (``c_t``: ``ca + cols_b`` with a group B tile, else ``cols``), ``top``
    (``max f``), ``w_new`` (the first tile, or ``top`` above every earlier tile's: the tile
    loads weight block ``top``), ``top_row0_dsp``/``top_rows_dsp``/``top_row0_lut``/
    ``top_rows_lut`` (that block's rows), ``final`` (the last tile), ``next_f`` (the
    smallest row step a later tile of either group works on, ``nf`` when none: every block
    below it is released after this tile) and ``bank_next``/``bank_next_b`` (the banks of
    the groups' next tiles).

    Parameters:
        ca, cb: the groups' columns.
        dim_bits: width of the command's dimensions (``n``, the positions).
        max_steps: the most row steps a command has (its rows per core are at most the
            top's parameter depth): row steps, rows and table addresses are that wide.
        shared: the cores share one post-processor (``engine.shared_post``): ``rows`` is
            the larger DSP row count plus the larger LUT row count (R3c with R4).

    Members:
        n, nf, qa, ra, qb, rb: In(dim_bits), the GEMM's N, F (R1) and R2 quotients and
            remainders, held while walking.
        restart, advance: In(1).
        addr: Out(dim_bits) x READS; data: In(dim_bits) x READS.
        the outputs above.
    """

    def __init__(self, ca: int, cb: int, dim_bits: int = 16, max_steps: int = 64,
                 shared: bool = False) -> None:
        self.shared = check_bool("shared", shared)
        self.ca = check_int_range("ca", ca, 1, 4096)
        self.cb = check_int_range("cb", cb, 1, 4096)
        self.dim_bits = d = check_int_range("dim_bits", dim_bits, 2, 32)
        self.max_steps = check_int_range("max_steps", max_steps, 1, 1 << 16)
        self.step_bits = s = (max_steps + 2).bit_length()  # f + 2 of the last step
        per_group = {
            "on": Out(1), "f": Out(s), "bank": Out(range(3)), "col0": Out(d),
            "cols": Out(range(max(ca, cb) + 1)), "row0_dsp": Out(s), "rows_dsp": Out(s),
            "row0_lut": Out(s), "rows_lut": Out(s), "bank_next": Out(range(3))}
        super().__init__({
            "n": In(d), **{k: In(s) for k in ("nf", "qa", "ra", "qb", "rb")},
            "restart": In(1), "advance": In(1),
            **{f"addr{i}": Out(s) for i in range(READS)},
            **{f"data{i}": In(d) for i in range(READS)},
            **per_group, **{f"{k}_b": v for k, v in per_group.items()},
            "rows": Out(s + self.shared), "rows_dsp_max": Out(s), "span": Out(range(ca + cb + 1)),
            "top": Out(s), "w_new": Out(1), "top_row0_dsp": Out(s), "top_rows_dsp": Out(s),
            "top_row0_lut": Out(s), "top_rows_lut": Out(s), "final": Out(1), "next_f": Out(s),
        })

    def elaborate(self, platform):
        m = Module()
        d, sb = self.dim_bits, self.step_bits
        first = Signal()
        top_prev = Signal(sb)
        ends = {}
        lasts = {}
        nexts = {}
        for g, width, sfx, (r1, r2) in (("a", self.ca, "", (0, 1)), ("b", self.cb, "_b", (2, 3))):
            f, row0_d, row0_l = (Signal(sb, name=f"{g}_{k}") for k in ("f", "r0d", "r0l"))
            p = Signal(d, name=f"{g}_p")
            bank = Signal(range(3), name=f"{g}_bank")
            end = Signal(d, name=f"{g}_end")  # group A's share ends here (B's at n)
            if g == "b":
                end = self.n
            ends[g] = end
            on = Signal(name=f"{g}_on")

            def rows(step, q, r):
                return q + (step < r)

            f1, f2 = Signal(sb, name=f"{g}_f1"), Signal(sb, name=f"{g}_f2")
            n1, n2 = getattr(self, f"data{r1}"), getattr(self, f"data{r2}")
            # the shares of the next two row steps are nonempty (A: deal > 0, B: deal < n)
            s1, s2, stay = (Signal(name=f"{g}_{k}") for k in ("s1", "s2", "stay"))
            nxt = Signal(d, name=f"{g}_pnext")
            m.d.comb += [
                f1.eq(f + 1), f2.eq(f + 2),
                getattr(self, f"addr{r1}").eq(Mux(self.restart, 0, f1)),
                getattr(self, f"addr{r2}").eq(f2),
                on.eq((f < self.nf) & (p < end)),
                nxt.eq(p + width),
                stay.eq(nxt < end),
                s1.eq((f1 < self.nf) & ((n1 != 0) if g == "a" else (n1 < self.n))),
                s2.eq((f2 < self.nf) & ((n2 != 0) if g == "a" else (n2 < self.n))),
                getattr(self, f"on{sfx}").eq(on),
                getattr(self, f"f{sfx}").eq(f),
                getattr(self, f"bank{sfx}").eq(bank),
                getattr(self, f"col0{sfx}").eq(p),
                getattr(self, f"cols{sfx}").eq(Mux(on, Mux(stay, width, end - p), 0)),
                getattr(self, f"row0_dsp{sfx}").eq(row0_d),
                getattr(self, f"row0_lut{sfx}").eq(row0_l),
                getattr(self, f"rows_dsp{sfx}").eq(Mux(on, rows(f, self.qa, self.ra), 0)),
                getattr(self, f"rows_lut{sfx}").eq(Mux(on, rows(f, self.qb, self.rb), 0)),
                getattr(self, f"bank_next{sfx}").eq(Mux(
                    stay, bank, Mux(s1, Mux(bank == 2, 0, bank + 1),
                                    Mux(bank == 0, 2, bank - 1)))),
            ]
            lasts[g] = ~on | (~stay & ~s1 & ~s2)
            nexts[g] = Mux(~on, self.nf, Mux(stay, f, Mux(s1, f1, Mux(s2, f2, self.nf))))
            if g == "a":
                with m.If(self.restart):  # row step 0: A's share 0 .. deal[0]
                    m.d.sync += [f.eq(0), p.eq(0), end.eq(n1), bank.eq(0), row0_d.eq(0),
                                 row0_l.eq(0)]
            else:
                with m.If(self.restart):  # B's: deal[0] .. n (read 0 is A's at restart)
                    m.d.sync += [f.eq(0), p.eq(self.data0), bank.eq(0), row0_d.eq(0),
                                 row0_l.eq(0)]
            with m.Elif(self.advance & on):
                with m.If(stay):
                    m.d.sync += p.eq(nxt)
                with m.Elif(s1 | s2):
                    m.d.sync += [
                        f.eq(Mux(s1, f1, f2)),
                        bank.eq(getattr(self, f"bank_next{sfx}")),
                        row0_d.eq(row0_d + rows(f, self.qa, self.ra)
                                  + Mux(s1, 0, rows(f1, self.qa, self.ra))),
                        row0_l.eq(row0_l + rows(f, self.qb, self.rb)
                                  + Mux(s1, 0, rows(f1, self.qb, self.rb))),
                    ]
                    if g == "a":
                        m.d.sync += [p.eq(0), end.eq(Mux(s1, n1, n2))]
                    else:
                        m.d.sync += p.eq(Mux(s1, n1, n2))
                with m.Else():
                    m.d.sync += f.eq(self.nf)  # no tile left
        on_a, on_b = self.on, self.on_b
        a_top = Signal()
        def larger(a, b):
            return Mux(a > b, a, b)

        m.d.comb += [
            self.rows.eq(self.rows_dsp_max + larger(self.rows_lut, self.rows_lut_b)
                         if self.shared else larger(larger(self.rows_dsp, self.rows_lut),
                                                    larger(self.rows_dsp_b, self.rows_lut_b))),
            self.rows_dsp_max.eq(larger(self.rows_dsp, self.rows_dsp_b)),
            self.span.eq(Mux(on_b, self.ca + self.cols_b, self.cols)),
            a_top.eq(on_a & (~on_b | (self.f >= self.f_b))),
            self.top.eq(Mux(a_top, self.f, self.f_b)),
            self.w_new.eq(first | (self.top > top_prev)),
            self.top_row0_dsp.eq(Mux(a_top, self.row0_dsp, self.row0_dsp_b)),
            self.top_rows_dsp.eq(Mux(a_top, self.rows_dsp, self.rows_dsp_b)),
            self.top_row0_lut.eq(Mux(a_top, self.row0_lut, self.row0_lut_b)),
            self.top_rows_lut.eq(Mux(a_top, self.rows_lut, self.rows_lut_b)),
            self.final.eq(lasts["a"] & lasts["b"]),
            self.next_f.eq(Mux(nexts["a"] < nexts["b"], nexts["a"], nexts["b"])),
        ]
        with m.If(self.restart):
            m.d.sync += [first.eq(1), top_prev.eq(0)]
        with m.Elif(self.advance):
            m.d.sync += first.eq(0)
            with m.If(self.top > top_prev):  # the highest block loaded so far
                m.d.sync += top_prev.eq(self.top)
        return m
