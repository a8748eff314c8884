"""Rule R3c, dealt tiles on two column groups (sim.timing): the deal covers every output once,
the host's deal is the fewest legal tiles, analytical == cycle without memory limits, the
lower bound and monotonicity with them, the host's choice, and the limits a deal must keep."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.timing import (
    DEAL_CA,
    DEAL_CB,
    DEAL_FA,
    DEAL_FB,
    DEAL_PA,
    DEAL_PB,
    GemmShape,
    Tiling,
    analytical_cycles,
    check_deal,
    choose_deal,
    deal_fits,
    deal_sequence,
    dealt_compute_cycles,
    gemm_tiling,
    ring_steps,
    row_steps,
    schedule_cycles,
    shape_cycles,
)

#: (m_fixed, m_lut, n, k) of a GEMM whose K fits one chunk of the engines below (kt 64).
LAYER = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 60),
                  st.integers(1, 64)).filter(lambda t: t[0] + t[1] > 0)
#: (dsp_rows, lut_rows, cols, group_b) with 1 <= group_b < cols.
ENGINE = st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(2, 12)).flatmap(
    lambda e: st.tuples(st.just(e[0]), st.just(e[1]), st.just(e[2]), st.integers(1, e[2] - 1)))
KT = 64


def _deal(draw_n: int, nf: int, data) -> tuple[int, ...]:
    return tuple(data.draw(st.integers(0, draw_n)) for _ in range(nf))


def _run(g: GemmShape, eng, deal, bw=None, lat=0, pack=1, shared=False):
    rd, rl, c, cb = eng
    out, stop = schedule_cycles(np.array([[g.m_fixed, g.m_lut, g.n, g.k, 1]]), rd, rl, c, KT,
                                4, 4, bw, lat, None, packing=pack,
                                tilings=[Tiling(0, False, tuple(deal))], group_b=cb,
                                shared=shared)
    assert stop == -1
    return out[0]


def test_worked_deal_by_hand():
    """docs/timing.md's worked deal: the tiny engine with group B on its last column."""
    g = GemmShape(4, 4, 6, 8)
    assert choose_deal(6, 2, 3, 1) == (3, 6)
    assert gemm_tiling(g, 2, 2, 4, 16, 4, 4, group_b=1, bw=4, lat=4) == Tiling(0, False, (3, 6))
    assert dealt_compute_cycles(g, 2, 2, 4, 1, (3, 6), 1) == 30
    out, _ = schedule_cycles(np.array([[4, 4, 6, 8, 1]]), 2, 2, 4, 16, 4, 4, 4, 4, None,
                             packing=1, group_b=1)
    assert (out[0].cycles, out[0].stall, out[0].dram_read) == (39, 9, 80)
    plain, _ = schedule_cycles(np.array([[4, 4, 6, 8, 1]]), 2, 2, 4, 16, 4, 4, 4, 4, None,
                               packing=1)
    assert (plain[0].cycles, plain[0].dram_read) == (45, 56)


def test_sequence_of_a_worked_deal():
    """N = 49 on 7 + 5 columns, three row steps: group A takes 35, 14 and 49 positions."""
    seq = deal_sequence(49, np.array([35, 14, 49]), 7, 5)
    a = [(f, c, p) for f, c, p in seq[:, [DEAL_FA, DEAL_CA, DEAL_PA]].tolist() if f >= 0]
    b = [(f, c, p) for f, c, p in seq[:, [DEAL_FB, DEAL_CB, DEAL_PB]].tolist() if f >= 0]
    assert a == [(0, 7, p) for p in range(0, 35, 7)] + [(1, 7, 0), (1, 7, 7)] + [
        (2, 7, p) for p in range(0, 49, 7)]
    assert b == [(0, 5, 35), (0, 5, 40), (0, 4, 45)] + [(1, 5, p) for p in range(14, 49, 5)]
    assert len(seq) == 14 and deal_fits(seq)  # 14 tiles; F * J = 3 * 5 = 15 on 12 columns


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 6), st.integers(1, 8), st.integers(1, 8), st.data())
def test_deal_covers_every_output_once(n, nf, ca, cb, data):
    deal = _deal(n, nf, data)
    seq = deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)
    seen = {(f, p): 0 for f in range(nf) for p in range(n)}
    for fcol, ccol, pcol, width in ((DEAL_FA, DEAL_CA, DEAL_PA, ca),
                                    (DEAL_FB, DEAL_CB, DEAL_PB, cb)):
        steps = [int(f) for f in seq[:, fcol] if f >= 0]
        assert steps == sorted(steps)  # each group walks its row steps in order
        assert all(f < 0 for f in seq[len(steps):, fcol])  # then idles
        for f, c, p in seq[:len(steps), [fcol, ccol, pcol]].tolist():
            assert 1 <= c <= width
            for q in range(p, p + c):
                seen[f, q] += 1
    assert set(seen.values()) == {1}
    assert len(seq) == max(sum(-(-v // ca) for v in deal), sum(-(-(n - v) // cb) for v in deal))


def _fewest_legal_tiles(n: int, nf: int, ca: int, cb: int) -> int | None:
    best = None
    for deal in itertools.product(range(n + 1), repeat=nf):
        seq = deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)
        if deal_fits(seq) and (best is None or len(seq) < best):
            best = len(seq)
    return best


@pytest.mark.parametrize(("n", "nf", "ca", "cb"), [
    (7, 3, 2, 1), (9, 3, 3, 2), (11, 3, 4, 3), (13, 2, 5, 3), (10, 4, 3, 2), (5, 4, 2, 2),
    (12, 3, 4, 4), (6, 1, 4, 1),
])
def test_host_deal_is_the_fewest_legal_tiles(n, nf, ca, cb):
    """choose_deal against every deal: the fewest tiles a legal deal reaches, or None when
    none beats F * J."""
    best = _fewest_legal_tiles(n, nf, ca, cb)
    deal = choose_deal(n, nf, ca, cb)
    jn = -(-n // (ca + cb))
    if deal is None:
        assert best >= nf * jn
    else:
        seq = deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)
        assert deal_fits(seq) and len(seq) == best < nf * jn


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.sampled_from([1, 2, 4]), st.booleans(), st.data())
def test_analytical_equals_cycle_with_unlimited_bandwidth(layer, eng, pack, shared, data):
    g = GemmShape(*layer)
    rd, rl, c, cb = eng
    nf = row_steps(g.m_fixed, g.m_lut, rd, rl)
    deal = _deal(g.n, nf, data)
    assume(deal_fits(deal_sequence(g.n, np.array(deal, dtype=np.int64), c - cb, cb)))
    res = _run(g, eng, deal, pack=pack, shared=shared)
    comp = dealt_compute_cycles(g, rd, rl, c, cb, deal, pack, shared)
    assert res.cycles == comp and res.stall == 0
    tiles = len(deal_sequence(g.n, np.array(deal, dtype=np.int64), c - cb, cb))
    assert comp >= tiles * g.k  # every dealt tile streams K steps (R4)
    # R5: each row step's weights once, each output position's K activations once
    assert res.dram_read == sum(-(-((g.m_fixed // nf + (f < g.m_fixed % nf))
                                    + (g.m_lut // nf + (f < g.m_lut % nf))) * g.k * 4 // 8)
                                for f in range(nf)) + sum(
        -(-g.k * int(cc) * 4 // 8) for cc in deal_sequence(
            g.n, np.array(deal, dtype=np.int64), c - cb, cb)[:, [DEAL_CA, DEAL_CB]].sum(1))


@settings(max_examples=300, deadline=None)
@given(LAYER, ENGINE, st.integers(1, 16), st.integers(0, 40), st.data())
def test_memory_only_adds_cycles_and_less_bandwidth_is_never_faster(layer, eng, bw, lat, data):
    g = GemmShape(*layer)
    rd, rl, c, cb = eng
    nf = row_steps(g.m_fixed, g.m_lut, rd, rl)
    deal = _deal(g.n, nf, data)
    assume(deal_fits(deal_sequence(g.n, np.array(deal, dtype=np.int64), c - cb, cb)))
    free = _run(g, eng, deal)
    slow = _run(g, eng, deal, bw, lat)
    slower = _run(g, eng, deal, max(1, bw // 2), lat + 3)
    assert slow.cycles - slow.stall == free.cycles  # the stall is what the memory adds
    assert free.cycles <= slow.cycles <= slower.cycles
    assert slow.dram_read == free.dram_read


@settings(max_examples=200, deadline=None)
@given(LAYER, ENGINE, st.integers(1, 16), st.integers(0, 40), st.booleans())
def test_host_choice_and_analytical_bound(layer, eng, bw, lat, shared):
    """gemm_tiling deals exactly when R3c's condition holds; the analytical mode's cycles
    bound the cycle mode's from below, and its compute cycles are the cycle mode's less
    its stalls, in whichever tiling the host chose."""
    g = GemmShape(*layer)
    rd, rl, c, cb = eng
    t = gemm_tiling(g, rd, rl, c, KT, 4, 4, group_b=cb, bw=bw, lat=lat, shared=shared)
    out, _ = schedule_cycles(np.array([[g.m_fixed, g.m_lut, g.n, g.k, 1]]), rd, rl, c, KT,
                             4, 4, bw, lat, None, packing=1, group_b=cb, shared=shared)
    ana = analytical_cycles(g, rd, rl, c, KT, 4, 4, bw, lat, packing=1, group_b=cb,
                            shared=shared)
    assert ana.cycles <= out[0].cycles and ana.compute == out[0].cycles - out[0].stall
    assert ana.dram_read == out[0].dram_read
    nf = row_steps(g.m_fixed, g.m_lut, rd, rl)
    drain = rd + rl if shared else max(rd, rl)  # R4: the longest drain
    if t.dealt:
        seq = deal_sequence(g.n, np.array(t.deal, dtype=np.int64), c - cb, cb)
        assert deal_fits(seq) and len(seq) < nf * -(-g.n // c)
        assert g.k >= drain + c
    elif g.k >= drain + c and choose_deal(g.n, nf, c - cb, cb) is not None:
        assert bw is not None  # only the transfers can have kept it from dealing
    # the shape's bound holds for every tiling the host may choose
    assert shape_cycles(g, rd, rl, c, group_b=cb, k_tile=KT) <= ana.compute


def test_grouped_rings_have_three_banks():
    assert ring_steps(64) == 128 and ring_steps(64, 0) == 128 and ring_steps(64, 3) == 192


def test_deal_limits_are_checked():
    check_deal((35, 14, 49), 49, 4608, 3, 12, 4608, 5)
    with pytest.raises(ValueError, match="group B"):
        check_deal((35, 14, 49), 49, 4608, 3, 12, 4608, 0)
    with pytest.raises(ValueError, match="K <= k_tile 4096"):
        check_deal((35, 14, 49), 49, 4608, 3, 12, 4096, 5)
    with pytest.raises(ValueError, match="3 row steps"):
        check_deal((35, 14), 49, 4608, 3, 12, 4608, 5)
    with pytest.raises(ValueError, match=r"deal\[1\] must be in 0..49"):
        check_deal((35, 50, 49), 49, 4608, 3, 12, 4608, 5)
    # group A alone on steps 0-2 while B's first tile is on step 3: four blocks at once
    with pytest.raises(ValueError, match="more than 2 apart"):
        check_deal((49, 49, 49, 0), 49, 4608, 4, 12, 4608, 5)
    # group B's first tile on row step 1: the first tile would load two weight blocks
    with pytest.raises(ValueError, match="two new weight blocks"):
        check_deal((49, 0), 49, 4608, 2, 12, 4608, 5)
    rows = np.array([[8, 8, 49, 64, 1], [8, 8, 49, 64, 1]])
    with pytest.raises(ValueError, match="more than 2 apart"):
        schedule_cycles(rows[:1], 2, 2, 12, 64, 4, 4, None, 0, None, packing=1, group_b=5,
                        tilings=[Tiling(0, False, (49, 49, 49, 0))])
    # R10b: a forced prefetch into or out of a dealt GEMM is refused, the host's dropped
    dealt = Tiling(0, False, (35, 14, 49, 14))
    with pytest.raises(ValueError, match="neither prefetches"):
        schedule_cycles(rows, 2, 2, 12, 64, 4, 4, 4, 4, None, packing=1, group_b=5,
                        tilings=[dealt, None], chain=[2, 0])
    out, _ = schedule_cycles(rows, 2, 2, 12, 64, 4, 4, 4, 4, None, packing=1, group_b=5,
                             tilings=[None, dealt], chain=[1, 0])
    assert not out[0].prefetch and not out[1].preloaded
