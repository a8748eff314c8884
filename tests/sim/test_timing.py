"""Timing rules (sim.timing): analytical == cycle without memory limits, monotonicity,
the lower bound, a worked example computed by hand, the cycle limit, and the overlap of a
tile's drain with the next tile (R4b)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.timing import (
    CYCLE_LIMIT,
    DONE,
    RESULT_COLUMNS,
    GemmShape,
    ScheduleResult,
    _gemm_schedule,
    analytical_cycles,
    compute_cycles,
    plain_os_cycles,
    schedule_cycles,
)

LAYER = st.tuples(
    st.integers(0, 70), st.integers(0, 70), st.integers(1, 90), st.integers(1, 300),
).filter(lambda t: t[0] + t[1] > 0)
ENGINE = st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 12),
                   st.integers(1, 64))


def _cycle(g: GemmShape, rd, rl, c, kt, wb=4, ab=4, bw=None, lat=0):
    out, stop = schedule_cycles(np.array([[g.m_fixed, g.m_lut, g.n, g.k, 1]]), rd, rl, c, kt,
                                wb, ab, bw, lat, None)
    assert stop == -1
    return out[0].cycles, out[0].stall, out[0].dram_read


def _ana(g, rd, rl, c, kt, wb=4, ab=4, bw=None, lat=0):
    return analytical_cycles(g, rd, rl, c, kt, wb, ab, bw, lat)


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE)
def test_analytical_equals_cycle_with_unlimited_bandwidth(layer, eng):
    g = GemmShape(*layer)
    rd, rl, c, kt = eng
    cyc, stall, dram = _cycle(g, rd, rl, c, kt)
    a = _ana(g, rd, rl, c, kt)
    assert cyc == a.cycles == a.compute == compute_cycles(g, rd, rl, c)
    assert stall == 0 == a.stall
    assert dram == a.dram_read


def _tile_sum(g: GemmShape, rd: int, rl: int, c: int) -> int:
    """R4/R4b by brute force: step the output tiles (R2 steps, column blocks) in order 0."""
    fd = -(-g.m_fixed // rd) if g.m_fixed else 0
    fl = -(-g.m_lut // rl) if g.m_lut else 0
    f = max(fd, fl)
    stream_end = done = 0
    for j in range(0, g.n, c):
        cj = min(c, g.n - j)
        for s in range(f):
            a = g.m_fixed // f + (s < g.m_fixed % f)
            b = g.m_lut // f + (s < g.m_lut % f)
            assert a <= rd and b <= rl and max(a, b) >= 1
            stream_end = max(stream_end + g.k, done)  # the last window ends no earlier
            done = stream_end + max(a, b) + cj
    return done


@settings(max_examples=200, deadline=None)
@given(LAYER, ENGINE)
def test_closed_form_is_the_tile_sum(layer, eng):
    g = GemmShape(*layer)
    assert compute_cycles(g, *eng[:3]) == _tile_sum(g, *eng[:3])


@settings(max_examples=200, deadline=None)
@given(LAYER, ENGINE, st.sampled_from(["rd", "rl", "c"]), st.integers(1, 8))
def test_more_rows_or_columns_never_slower(layer, eng, which, extra):
    g = GemmShape(*layer)
    rd, rl, c, kt = eng
    base = _cycle(g, rd, rl, c, kt)[0]
    bigger = {"rd": (rd + extra, rl, c), "rl": (rd, rl + extra, c), "c": (rd, rl, c + extra)}
    assert _cycle(g, *bigger[which], kt)[0] <= base


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


def test_worked_example_by_hand():
    """docs/timing.md section 'Worked example': Mf=3, Ml=2, N=6, K=20 on the tiny engine."""
    g = GemmShape(3, 2, 6, 20)
    assert compute_cycles(g, 2, 2, 4) == 83
    assert _cycle(g, 2, 2, 4, 16, 4, 4, 4, 4) == (147, 64, 220)


def test_plain_os_formula():
    assert plain_os_cycles(20, 10, 30, 8, 4) == 9 * (2 * 8 + 4 + 30 - 2)
    # one full single-core tile: plain pays the skew tail (R - 1) + (C - 1) and R drain
    # cycles; the engine drains C cycles after the stream (R4): R - 2 cycles less
    assert plain_os_cycles(8, 4, 30, 8, 4) == compute_cycles(
        GemmShape(8, 0, 4, 30), 8, 1, 4) + 8 - 2


def test_cycle_limit_stops_with_position():
    p = np.array([[64, 64, 1000, 500, 1], [64, 64, 1000, 500, 3]])
    out, stop = schedule_cycles(p, 8, 8, 8, 64, 4, 4, 1, 10, 10_000)
    assert stop == 0 and out[0].status == CYCLE_LIMIT and out[0].cycles > 10_000
    assert out[0].column_block < 125 and out[0].row_step < 8  # a tile inside, not the end
    out, stop = schedule_cycles(p, 8, 8, 8, 64, 4, 4, None, 0, None)
    assert stop == -1 and out[1].cycles == 3 * out[0].cycles


@pytest.mark.parametrize("order_case", [(1, 1, 500, 64), (200, 0, 9, 64), (8, 8, 3000, 700)])
def test_loop_order_does_not_change_compute(order_case):
    g = GemmShape(*order_case)
    assert _cycle(g, 4, 4, 8, 128)[0] == compute_cycles(g, 4, 4, 8)


def test_result_rows_are_named():
    """The kernel writes the columns ScheduleResult reads: the worked example by name."""
    row = np.zeros(RESULT_COLUMNS, np.int64)
    _gemm_schedule(3, 2, 6, 20, 0, 2, 2, 4, 16, 4, 4, 4, 4, 1 << 40, row)
    assert ScheduleResult.from_row(row) == ScheduleResult(
        status=DONE, cycles=147, stall=64, dram_read=220, column_block=2, row_step=2,
        k_chunk=2)
    _gemm_schedule(3, 2, 6, 20, 0, 2, 2, 4, 16, 4, 4, 4, 4, 60, row)
    stopped = ScheduleResult.from_row(row)
    assert stopped.status == CYCLE_LIMIT and stopped.cycles > 60
    assert max(stopped.column_block, stopped.row_step, stopped.k_chunk) < 2  # inside it


def test_overlap_costs_one_fill_and_drain_when_k_covers_the_drain():
    """R4b: K >= r + c on every tile → tiles * K + h_last (DSP-only 47x16, a 3x3x64 conv)."""
    g = GemmShape(128, 0, 3136, 576)
    f, j = 3, 196  # rows 43, 43, 42
    assert compute_cycles(g, 47, 0, 16) == f * j * 576 + 42 + 16


def test_short_k_waits_for_the_drain():
    """R4b: with K < r + c the next tile's last window waits until the drain is done, so a
    tile costs r + c; the cycle mode steps the same schedule."""
    g = GemmShape(16, 0, 24, 5)  # F = 2 steps of 8 rows, J = 3 blocks of 8: h = 16 > K
    assert compute_cycles(g, 8, 1, 8) == 5 * 16 + 5 + 16
    assert _cycle(g, 8, 1, 8, 4)[0] == compute_cycles(g, 8, 1, 8)
    # K = h: the drain is hidden exactly
    assert compute_cycles(GemmShape(16, 0, 24, 16), 8, 1, 8) == 6 * 16 + 16
