"""Timing rules (sim.timing): analytical == cycle without memory limits, monotonicity,
the lower bound, a worked example computed by hand, the cycle limit, and the overlap of a
tile's drain with the next tile (R4b)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.timing import (
    CHAIN_FORCE,
    CHAIN_HOST,
    CHAIN_NONE,
    CYCLE_LIMIT,
    DONE,
    RESULT_COLUMNS,
    TILINGS,
    GemmShape,
    ScheduleResult,
    Tiling,
    _gemm_schedule,
    analytical_cycles,
    compute_cycles,
    first_block_rows,
    gemm_tiling,
    plain_os_cycles,
    resident_fits,
    row_steps,
    schedule_cycles,
    shape_cycles,
    word_arrival,
)

LAYER = st.tuples(
    st.integers(0, 70), st.integers(0, 70), st.integers(1, 90), st.integers(1, 300),
).filter(lambda t: t[0] + t[1] > 0)
ENGINE = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
                   st.integers(1, 64))


def _cycle(g: GemmShape, rd, rl, c, kt, wb=4, ab=4, bw=None, lat=0, pack=1, shared=False):
    out, stop = schedule_cycles(np.array([[g.m_fixed, g.m_lut, g.n, g.k, 1]]), rd, rl, c, kt,
                                wb, ab, bw, lat, None, packing=pack, shared=shared)
    assert stop == -1
    return out[0].cycles, out[0].stall, out[0].dram_read


def _ana(g, rd, rl, c, kt, wb=4, ab=4, bw=None, lat=0, pack=1, shared=False):
    return analytical_cycles(g, rd, rl, c, kt, wb, ab, bw, lat, packing=pack, shared=shared)


def _compute(g: GemmShape, rd, rl, c, kt=64, wb=4, ab=4, pack=1, shared=False):
    """The closed form in the loop order the host picks (R3)."""
    order = gemm_tiling(g, rd, rl, c, kt, wb, ab, shared=shared).order
    return compute_cycles(g, rd, rl, c, order, pack, shared)


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.sampled_from([1, 2, 4]), st.booleans())
def test_analytical_equals_cycle_with_unlimited_bandwidth(layer, eng, pack, shared):
    g = GemmShape(*layer)
    rd, rl, c, kt = eng
    cyc, stall, dram = _cycle(g, rd, rl, c, kt, pack=pack, shared=shared)
    a = _ana(g, rd, rl, c, kt, pack=pack, shared=shared)
    assert cyc == a.cycles == a.compute == _compute(g, rd, rl, c, kt, pack=pack,
                                                    shared=shared)
    assert stall == 0 == a.stall
    assert dram == a.dram_read


def _tile_sum(g: GemmShape, rd: int, rl: int, c: int, order: int, pack: int,
              shared: bool = False) -> int:
    """R4/R4b by brute force: step the output tiles (R2 steps, column blocks) in ``order``;
    each drained row ``i`` of the DSP core is captured again by the next tile ``i // pack``
    cycles after its row 0, row ``i`` of the LUT core ``i`` cycles after; ``shared``: the
    LUT core's rows are read after the DSP core's (one post-processor)."""
    fd = -(-g.m_fixed // rd) if g.m_fixed else 0
    fl = -(-g.m_lut // rl) if g.m_lut else 0
    f = max(fd, fl)
    jn = -(-g.n // c)
    tiles = [(j, s) for j in range(jn) for s in range(f)] if order == 0 else [
        (j, s) for s in range(f) for j in range(jn)]
    stream_end = done = lead = 0
    for j, s in tiles:
        cj = min(c, g.n - j * c)
        a = g.m_fixed // f + (s < g.m_fixed % f)
        b = g.m_lut // f + (s < g.m_lut % f)
        assert a <= rd and b <= rl and max(a, b) >= 1
        # The last window ends no earlier than: this tile's drain may start once the previous
        # one is done (P - c_j), and every drained row is read before it is captured again.
        stream_end = max(stream_end + g.k, done - cj, lead)
        drain = stream_end + cj
        # (read cycle - capture cycle) of every drained row, after the drain starts
        gaps = [i - i // pack for i in range(a)] + [(a if shared else 0) + i - i
                                                     for i in range(b)]
        lead = drain + max([*gaps, 0])
        done = drain + (a + b if shared else max(a, b))
    return done


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.integers(1, 16), st.integers(0, 30), st.sampled_from([1, 2, 4]))
def test_no_schedule_beats_the_shape(layer, eng, bw, lat, pack):
    """``shape_cycles`` (every output tile at K cycles) bounds both loop orders' compute
    cycles and the cycle kernel's cycles at any bandwidth, and is what R1/R2 tile: F row
    steps times J column blocks times K."""
    g = GemmShape(*layer)
    rd, rl, c, kt = eng
    best = shape_cycles(g, rd, rl, c)
    assert best == row_steps(g.m_fixed, g.m_lut, rd, rl) * -(-g.n // c) * g.k
    assert all(compute_cycles(g, rd, rl, c, order, pack) >= best for order in (0, 1))
    assert _cycle(g, rd, rl, c, kt, bw=bw, lat=lat, pack=pack)[0] >= best
    # one tile (F = J = 1) costs its K plus one fill and drain: the bound is K, not less
    if g.m_fixed <= rd and g.m_lut <= rl and g.n <= c:
        assert best == g.k


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.sampled_from([0, 1]), st.sampled_from([1, 2, 4]), st.booleans())
def test_closed_form_is_the_tile_sum(layer, eng, order, pack, shared):
    g = GemmShape(*layer)
    assert (compute_cycles(g, *eng[:3], order, pack, shared)
            == _tile_sum(g, *eng[:3], order, pack, shared))


@settings(max_examples=200, deadline=None)
@given(LAYER, ENGINE, st.sampled_from(["rd", "rl", "c"]), st.integers(1, 8),
       st.sampled_from([0, 1]))
def test_more_rows_or_columns_never_slower(layer, eng, which, extra, order):
    """In one loop order, more rows are never slower; more columns are never slower once K
    covers every tile's drain bound (R4b: a short-K tile costs max(r, c_j) or more, so a
    ragged last column block can make a wider array slower, e.g. N = 25, K = 7 on 1 + 10 rows
    of 11 or 12 columns; the previous r + c rule had the same effect, docs/timing.md)."""
    g = GemmShape(*layer)
    rd, rl, c, _ = eng
    bigger = {"rd": (rd + extra, rl, c), "rl": (rd, rl + extra, c), "c": (rd, rl, c + extra)}
    if which == "c":
        assume(g.k >= c + extra + max(rd, rl))
    base = compute_cycles(g, rd, rl, c, order, 1)
    assert compute_cycles(g, *bigger[which], order, 1) <= base


def test_wider_array_slower_on_a_short_reduction():
    """The counterexample of docs/timing.md: 43 + 1 rows, N = 25, K = 7 on 1 + 10 rows."""
    g = GemmShape(43, 1, 25, 7)
    assert _compute(g, 1, 10, 12) > _compute(g, 1, 10, 11)


@settings(max_examples=150, deadline=None)
@given(LAYER, ENGINE, st.integers(1, 64), st.integers(0, 50), st.integers(1, 4),
       st.integers(0, 20), st.sampled_from([4, 8]))
def test_less_bandwidth_or_more_latency_never_faster(layer, eng, bw, lat, div, dlat, bits):
    g = GemmShape(*layer)
    rd, rl, c, kt = eng
    fast = _cycle(g, rd, rl, c, kt, bits, bits, bw, lat)
    slow = _cycle(g, rd, rl, c, kt, bits, bits, max(1, bw // div), lat + dlat)
    ideal = _cycle(g, rd, rl, c, kt, bits, bits)
    assert ideal[0] <= fast[0] <= slow[0]
    assert fast[2] == slow[2] == ideal[2]  # bytes do not depend on timing
    a = _ana(g, rd, rl, c, kt, bits, bits, bw, lat)
    assert a.cycles <= fast[0]  # analytical is a lower bound of the cycle mode
    assert a.compute == fast[0] - fast[1]  # cycles = compute + stall
    assert a.dram_read == fast[2]


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 40), st.integers(1, 300), st.integers(0, 64), st.integers(0, 12),
       st.integers(-1, 60), st.integers(0, 80))
def test_window_closed_form_equals_stepping_word_by_word(steps, nbytes, bw, lat, prev, late):
    """R7/R8: stepping a window word by word (each word written at max(due, previous word +
    1), each step presented at max(previous step + 1, its word)) ends where the closed form
    the kernel uses says, E = max(start + k_q, l + 1), with f and l of R7."""
    due = [word_arrival(i, steps, nbytes, bw, lat) for i in range(steps)]
    written, w = [], prev
    for d in due:
        w = max(d, w + 1)
        written.append(w)
    f, last = written[0], written[-1]
    assert f == max(due[0], prev + 1)
    assert last == max(due[-1], f + steps - 1)
    assert due[-1] == lat + (0 if bw == 0 else -(-nbytes // bw))  # the block's completion e
    start = f + late  # a window starts no earlier than its first word (R8)
    t = start - 1
    for wi in written:
        t = max(t + 1, wi)
    assert t + 1 == max(start + steps, last + 1)


def test_worked_example_by_hand():
    """docs/timing.md section 'Worked example': Mf=3, Ml=2, N=6, K=20 on the tiny engine."""
    g = GemmShape(3, 2, 6, 20)
    assert _compute(g, 2, 2, 4, 16) == 83
    assert _cycle(g, 2, 2, 4, 16, 4, 4, 4, 4) == (111, 28, 220)


def test_plain_os_formula():
    assert plain_os_cycles(20, 10, 30, 8, 4) == 9 * (2 * 8 + 4 + 30 - 2)
    # one full single-core tile: plain pays the skew tail (R - 1) + (C - 1) and R drain
    # cycles; the engine drains C cycles after the stream (R4): R - 2 cycles less
    assert plain_os_cycles(8, 4, 30, 8, 4) == _compute(
        GemmShape(8, 0, 4, 30), 8, 1, 4) + 8 - 2


def test_cycle_limit_stops_with_position():
    p = np.array([[64, 64, 1000, 500, 1], [64, 64, 1000, 500, 3]])
    out, stop = schedule_cycles(p, 8, 8, 8, 64, 4, 4, 1, 10, 10_000, packing=1)
    assert stop == 0 and out[0].status == CYCLE_LIMIT and out[0].cycles > 10_000
    assert out[0].column_block < 125 and out[0].row_step < 8  # a tile inside, not the end
    out, stop = schedule_cycles(p, 8, 8, 8, 64, 4, 4, None, 0, None, packing=1)
    assert stop == -1 and out[1].cycles == 3 * out[0].cycles


@pytest.mark.parametrize("order_case", [(1, 1, 500, 64), (200, 0, 9, 64), (8, 8, 3000, 700)])
def test_loop_order_does_not_change_compute(order_case):
    g = GemmShape(*order_case)
    assert _cycle(g, 4, 4, 8, 128)[0] == compute_cycles(g, 4, 4, 8, 0, 1) == compute_cycles(
        g, 4, 4, 8, 1, 1)


def test_result_rows_are_named():
    """The kernel writes the columns ScheduleResult reads: the worked example by name."""
    row = np.zeros(RESULT_COLUMNS, np.int64)
    _gemm_schedule(3, 2, 6, 20, 0, 0, 2, 2, 4, 1, 16, 4, 4, 4, 4, 1 << 40, row)
    assert ScheduleResult.from_row(row) == ScheduleResult(
        status=DONE, cycles=111, stall=28, dram_read=220, column_block=2, row_step=2,
        k_chunk=2)
    _gemm_schedule(3, 2, 6, 20, 0, 0, 2, 2, 4, 1, 16, 4, 4, 4, 4, 60, row)
    stopped = ScheduleResult.from_row(row)
    assert stopped.status == CYCLE_LIMIT and stopped.cycles > 60
    assert max(stopped.column_block, stopped.row_step, stopped.k_chunk) < 2  # inside it


def test_overlap_costs_one_fill_and_drain_when_k_covers_the_drain():
    """R4b: K >= r + c on every tile → tiles * K + h_last (DSP-only 47x16, a 3x3x64 conv)."""
    g = GemmShape(128, 0, 3136, 576)
    f, j = 3, 196  # rows 43, 43, 42
    assert compute_cycles(g, 47, 0, 16, 0, 1) == f * j * 576 + 42 + 16 == _compute(g, 47, 0, 16)


def test_short_k_waits_for_the_drain():
    """R4b: with K < max(r, c) the next tile's last window waits for the drain: its own drain
    starts once this one is done and no drain register is captured before it was read, so a
    tile costs max(K, r, c) unpacked (was r + c before the second drain descriptor); the cycle
    mode steps the same schedule."""
    g = GemmShape(16, 0, 24, 5)  # F = 2 steps of 8 rows, J = 3 blocks of 8: r = c = 8 > K
    assert _compute(g, 8, 1, 8, 4) == 5 * 8 + 5 + 16
    assert _cycle(g, 8, 1, 8, 4)[0] == _compute(g, 8, 1, 8, 4)
    # K = h: the drain is hidden exactly
    assert _compute(GemmShape(16, 0, 24, 16), 8, 1, 8) == 6 * 16 + 16


def test_short_k_drain_port_and_packing():
    """R4b's two bounds: a tile followed by a narrower one waits until its drain leaves room
    (P - c_next), and packed DSP rows, captured P to a cycle, hold the next tile back until
    the drain is ahead of them (D + s)."""
    g = GemmShape(0, 16, 20, 1)  # F = 2 steps of 8 rows, c = 8, 8, 4
    # order 0: (0,0) (0,1) (1,0) (1,1) (2,0) (2,1): 8 + 8 + 8 + (8 + 8 - 4) + 8, + 1 + 4 + 8
    assert compute_cycles(g, 1, 8, 8, 0, 1) == 4 * 8 + 12 + 1 + 4 + 8
    # order 1: (0,0) (0,1) (0,2) (1,0) (1,1) (1,2): 8 + 12 + (4 + 8 - 8) + 8 + 12, + 13
    assert compute_cycles(g, 1, 8, 8, 1, 1) == 8 + 12 + 4 + 8 + 12 + 1 + 4 + 8
    # 8 packed DSP rows, 2 to a multiplier: row 7 is captured 3 cycles after row 0 but
    # drained 7 cycles after it: s = 4, each tile but the last costs c + s = 12
    h = GemmShape(16, 0, 16, 1)  # F = 2, J = 2 blocks of 8
    assert compute_cycles(h, 8, 1, 8, 0, 2) == 3 * 12 + 1 + 8 + 8
    assert compute_cycles(h, 8, 1, 8, 0, 1) == 3 * 8 + 1 + 8 + 8
    assert _cycle(h, 8, 1, 8, 4, pack=2)[0] == 3 * 12 + 1 + 8 + 8


def _once_bytes(g: GemmShape, rd, rl, c, wb=4, ab=4) -> int:
    """Every weight and activation block loaded once (Q == 1): ``ceil(bits / 8)`` per block."""
    f = row_steps(g.m_fixed, g.m_lut, rd, rl)
    qa, ra, qb, rb = g.m_fixed // f, g.m_fixed % f, g.m_lut // f, g.m_lut % f
    w = sum(-(-(qa + (i < ra) + qb + (i < rb)) * g.k * wb // 8) for i in range(f))
    x = sum(-(-min(c, g.n - j * c) * g.k * ab // 8) for j in range(-(-g.n // c)))
    return w + x


def _schedule(g: GemmShape, t: Tiling, rd, rl, c, kt, bw, lat, wb=4, ab=4):
    row = np.zeros(RESULT_COLUMNS, np.int64)
    _gemm_schedule(g.m_fixed, g.m_lut, g.n, g.k, t.order, int(t.resident), rd, rl, c, 1, kt,
                   wb, ab, bw, lat, 1 << 40, row)
    return ScheduleResult.from_row(row)


def test_resident_inner_operand_loads_each_block_once():
    """R5b by hand on the tiny engine (2 + 2 rows, 4 columns, KT = 16): Mf = Ml = 6
    (F = 3), N = 10 (J = 3, c = 4, 4, 2), K = 9 (Q = 1). Order 0 resident needs F*K = 27 <=
    32 words, order 1 J*K = 27. Not resident, order 0 loads the weights J = 3 times (3 * 54
    bytes + 45), order 1 the activations F = 3 times (54 + 3 * 45); resident, each block once
    (99 bytes). The host picks the order by its bytes without residency (order 1: 189 < 207)
    and makes it resident (R3)."""
    g = GemmShape(6, 6, 10, 9)
    assert resident_fits(0, 3, 3, 9, 16) and resident_fits(1, 3, 3, 9, 16)
    assert not resident_fits(0, 4, 3, 9, 16) and not resident_fits(1, 3, 3, 17, 16)
    assert _once_bytes(g, 2, 2, 4) == 99
    assert gemm_tiling(g, 2, 2, 4, 16, 4, 4) == Tiling(1, True)
    want = {Tiling(0, False): 3 * 54 + 45, Tiling(1, False): 54 + 3 * 45,
            Tiling(0, True): 99, Tiling(1, True): 99}
    for t in TILINGS:
        for bw, lat in ((None, 0), (4, 4), (1, 9)):
            r = _schedule(g, t, 2, 2, 4, 16, 0 if bw is None else bw, lat)
            assert r.dram_read == want[t]
            if bw is None and lat == 0:
                assert r.cycles == compute_cycles(g, 2, 2, 4, t.order, 1)
    assert _cycle(g, 2, 2, 4, 16)[2] == _ana(g, 2, 2, 4, 16).dram_read == 99
    # one more row step (F = 4): order 1 loads fewer bytes, and J*K = 27 fits: resident
    assert gemm_tiling(GemmShape(8, 8, 10, 9), 2, 2, 4, 16, 4, 4) == Tiling(1, True)
    # an inner loop of length 1 re-reads nothing: not resident (F = 1, order 0 by the tie)
    assert gemm_tiling(GemmShape(2, 2, 10, 9), 2, 2, 4, 16, 4, 4) == Tiling(0, False)
    # few weight rows (F = 2, 27 bytes of weights, 36 of activations in J = 2 blocks): order 0
    # (2 * 27 + 36 = 90 < 27 + 2 * 36 = 99), and F*K = 18 fits: resident
    assert gemm_tiling(GemmShape(3, 3, 8, 9), 2, 2, 4, 16, 4, 4) == Tiling(0, True)


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.integers(0, 8), st.integers(0, 20), st.sampled_from([4, 8]))
def test_tiling_never_worse_and_residency_loads_each_block_once(layer, eng, bw, lat, bits):
    """R3/R5b on random shapes (each tiling run by the cycle kernel): the host's order is the
    one with fewer bytes without residency (ties: order 0); it is resident exactly where R5b
    allows it and the inner loop repeats, and then it loads no more bytes and takes no more
    cycles than the same order without residency, each block once; the analytical mode's
    bytes and lower bound hold for it."""
    rd, rl, c, kt = eng
    g = GemmShape(layer[0], layer[1], layer[2], 1 + layer[3] % (2 * kt))  # Q of 1 or 2
    f, jn = row_steps(g.m_fixed, g.m_lut, rd, rl), -(-g.n // c)
    chosen = gemm_tiling(g, rd, rl, c, kt, bits, bits)
    runs = {t: _schedule(g, t, rd, rl, c, kt, bw, lat, bits, bits) for t in TILINGS
            if not t.resident or resident_fits(t.order, f, jn, g.k, kt)}
    plain = {o: runs[Tiling(o, False)].dram_read for o in (0, 1)}
    assert chosen.order == (0 if plain[0] <= plain[1] else 1)
    inner = f if chosen.order == 0 else jn
    assert chosen.resident == (inner > 1 and resident_fits(chosen.order, f, jn, g.k, kt))
    base = runs[Tiling(chosen.order, False)]
    assert runs[chosen].dram_read <= base.dram_read and runs[chosen].cycles <= base.cycles
    if chosen.resident:
        assert runs[chosen].dram_read == _once_bytes(g, rd, rl, c, bits, bits)
    a = _ana(g, rd, rl, c, kt, bits, bits, bw or None, lat)
    cyc = _cycle(g, rd, rl, c, kt, bits, bits, bw or None, lat)
    assert cyc[2] == a.dram_read == runs[chosen].dram_read
    assert cyc[0] == runs[chosen].cycles and a.cycles <= cyc[0]
    assert a.compute == cyc[0] - cyc[1]


def _pair(a: GemmShape, b: GemmShape, rd, rl, c, kt, bw, lat, chain, wb=4, ab=4, pack=1):
    out, stop = schedule_cycles(np.array([[*(a.m_fixed, a.m_lut, a.n, a.k), 1],
                                          [*(b.m_fixed, b.m_lut, b.n, b.k), 1]]),
                                rd, rl, c, kt, wb, ab, bw, lat, None, packing=pack,
                                chain=[chain, CHAIN_NONE])
    assert stop == -1
    return out


def test_prefetch_worked_pair():
    """R10b on the tiny engine (2 + 2 rows, 4 columns, KT = 16, 4 B/cycle, L = 4): a GEMM of
    4 + 4 rows, N = 16, K = 8 (79 cycles), then one of 4 + 4 rows, N = 4, K = 16. The
    second's first weight block (2 + 2 rows, 16 steps: 32 bytes, 8 transfer cycles) is
    requested after the first's last request and its last word written in cycle 48, before
    the first's last drain ends, so the first keeps its 79 cycles and the second starts with
    the block in its ring. Its first window waits only for the activation block (32 bytes,
    words due from L + 1 = 5 to L + 8 = 12: the window runs 5..21, 5 stall cycles), not
    behind the weight block as well (13..29: 13 stall cycles)."""
    a, b = GemmShape(4, 4, 16, 8), GemmShape(4, 4, 4, 16)
    assert first_block_rows(4, 4, 2, 2) == (2, 2)
    off = _pair(a, b, 2, 2, 4, 16, 4, 4, CHAIN_NONE)
    on = _pair(a, b, 2, 2, 4, 16, 4, 4, CHAIN_HOST)
    assert off[0].cycles == on[0].cycles == 79 and on[0].prefetch and on[1].preloaded
    assert on[0].prefetch_last == 48
    assert (off[1].stall, on[1].stall) == (13, 5) and off[1].cycles - on[1].cycles == 8
    assert on[0].dram_read == off[0].dram_read + 32
    assert on[1].dram_read == off[1].dram_read - 32
    # a block that would be written after the GEMM's end is not prefetched (host's rule)
    late = _pair(GemmShape(3, 2, 6, 12), b, 2, 2, 4, 16, 4, 4, CHAIN_HOST)
    assert late[0].prefetch_last >= late[0].cycles and not late[0].prefetch
    assert not late[1].preloaded and late[1].cycles == off[1].cycles


@settings(max_examples=300, deadline=None)
@given(LAYER, LAYER, ENGINE, st.integers(1, 16), st.integers(0, 30), st.sampled_from(TILINGS),
       st.sampled_from([1, 2]))
def test_prefetch_never_lengthens_and_moves_bytes(la, lb, eng, bw, lat, tiling, pack):
    """R10b, the host's rule: the prefetching GEMM keeps its cycles, the next one is never
    slower, the run reads the same bytes; a forced prefetch ends its GEMM no earlier than
    one cycle after the block's last word, and changes nothing else of it."""
    a, b = GemmShape(*la), GemmShape(*lb)
    rd, rl, c, kt = eng
    f = row_steps(a.m_fixed, a.m_lut, rd, rl)
    assume(not tiling.resident or resident_fits(tiling.order, f, -(-a.n // c), a.k, kt))
    rows = np.array([[a.m_fixed, a.m_lut, a.n, a.k, 1], [b.m_fixed, b.m_lut, b.n, b.k, 1]])

    def run(chain):
        out, stop = schedule_cycles(rows, rd, rl, c, kt, 4, 4, bw, lat, None, packing=pack,
                                    tilings=[tiling, gemm_tiling(b, rd, rl, c, kt, 4, 4)],
                                    chain=[chain, CHAIN_NONE])
        assert stop == -1
        return out

    off, host, force = run(CHAIN_NONE), run(CHAIN_HOST), run(CHAIN_FORCE)
    assert host[0].cycles == off[0].cycles and host[0].stall == off[0].stall
    assert host[1].cycles <= off[1].cycles
    assert host[1].preloaded == host[0].prefetch
    if host[0].prefetch:
        assert host[0].prefetch_last < host[0].cycles
    assert sum(r.dram_read for r in host) == sum(r.dram_read for r in off)
    assert force[0].prefetch and force[1].preloaded
    assert force[0].cycles == max(off[0].cycles, force[0].prefetch_last + 1)
    assert force[0].prefetch_last == host[0].prefetch_last
    assert force[1].cycles <= off[1].cycles
    # the analytical bound holds for a preloaded GEMM too
    ana = analytical_cycles(b, rd, rl, c, kt, 4, 4, bw, lat, packing=pack, preloaded=True)
    assert ana.cycles <= force[1].cycles and ana.compute == force[1].cycles - force[1].stall


def test_prefetch_chain_is_checked():
    rows = np.array([[1, 1, 4, 8, 1], [1, 1, 4, 8, 2]])
    with pytest.raises(ValueError, match="R10b"):
        schedule_cycles(rows, 2, 2, 4, 16, 4, 4, 4, 4, None, packing=1,
                        chain=[CHAIN_HOST, CHAIN_NONE])
    with pytest.raises(ValueError, match="chain"):
        schedule_cycles(rows, 2, 2, 4, 16, 4, 4, 4, 4, None, packing=1, chain=[3, 0])
