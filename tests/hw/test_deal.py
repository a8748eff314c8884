# amaranth: UnusedElaboratable=no
"""The deal walker (hw.deal.DealWalker) against sim.timing's dealt tiles (rule R3c): every
tile's groups, positions, rows, banks and the weight-block bookkeeping, on the host's deals
and random legal ones."""

from __future__ import annotations

import numpy as np
import pytest

from hw.deal import READS, DealWalker
from sim.timing import (
    DEAL_CA,
    DEAL_CB,
    DEAL_FA,
    DEAL_FB,
    DEAL_PA,
    DEAL_PB,
    choose_deal,
    deal_fits,
    deal_sequence,
)
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


def _expected(n, deal, ca, cb, mf, ml):
    """Per tile the walker's outputs, from deal_sequence and R2."""
    nf = len(deal)
    qa, ra, qb, rb = mf // nf, mf % nf, ml // nf, ml % nf
    rd = [qa + (f < ra) for f in range(nf)]
    rl = [qb + (f < rb) for f in range(nf)]
    seq = deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb).tolist()
    out = []
    top_prev = -1
    for t, row in enumerate(seq):
        tile = {}
        for sfx, fcol, ccol, pcol in (("", DEAL_FA, DEAL_CA, DEAL_PA),
                                      ("_b", DEAL_FB, DEAL_CB, DEAL_PB)):
            f = row[fcol]
            on = f >= 0
            tile[f"on{sfx}"] = int(on)
            tile[f"cols{sfx}"] = row[ccol] if on else 0
            if on:
                tile[f"f{sfx}"] = f
                tile[f"bank{sfx}"] = f % 3
                tile[f"col0{sfx}"] = row[pcol]
                tile[f"row0_dsp{sfx}"] = sum(rd[:f])
                tile[f"row0_lut{sfx}"] = sum(rl[:f])
            tile[f"rows_dsp{sfx}"] = rd[f] if on else 0
            tile[f"rows_lut{sfx}"] = rl[f] if on else 0
        steps = [row[c] for c in (DEAL_FA, DEAL_FB) if row[c] >= 0]
        top = max(steps)
        tile["top"] = top
        tile["w_new"] = int(top > top_prev)
        top_prev = max(top, top_prev)
        tile["rows"] = max(max(rd[f], rl[f]) for f in steps)
        tile["rows_dsp_max"] = max(rd[f] for f in steps)
        tile["span"] = ca + row[DEAL_CB] if row[DEAL_FB] >= 0 else row[DEAL_CA]
        tile["final"] = int(t == len(seq) - 1)
        later = [r[c] for r in seq[t + 1:] for c in (DEAL_FA, DEAL_FB) if r[c] >= 0]
        tile["next_f"] = min(later, default=nf)
        if t + 1 < len(seq):
            for sfx, fcol in (("", DEAL_FA), ("_b", DEAL_FB)):
                if seq[t + 1][fcol] >= 0 and row[fcol] >= 0:
                    tile[f"bank_next{sfx}"] = seq[t + 1][fcol] % 3
        out.append(tile)
    return out


def _run(n, deal, ca, cb, mf, ml):
    dut = DealWalker(ca, cb)
    nf = len(deal)
    want = _expected(n, deal, ca, cb, mf, ml)
    got = []

    async def bench(ctx):
        def serve():
            for i in range(READS):
                a = ctx.get(getattr(dut, f"addr{i}"))
                ctx.set(getattr(dut, f"data{i}"), deal[a] if a < nf else 0)

        ctx.set(dut.restart, 1)
        serve()
        await ctx.tick()
        ctx.set(dut.restart, 0)
        for k, v in (("n", n), ("nf", nf), ("qa", mf // nf), ("ra", mf % nf),
                     ("qb", ml // nf), ("rb", ml % nf)):
            ctx.set(getattr(dut, k), v)
        for _ in want:
            serve()
            got.append({k: ctx.get(getattr(dut, k)) for k in want[0] | want[-1]
                        | {"bank_next": 0, "bank_next_b": 0}})
            ctx.set(dut.advance, 1)
            await ctx.tick()
            ctx.set(dut.advance, 0)
            serve()
            await ctx.tick()  # an idle cycle between tiles changes nothing

    run_bench(dut, bench)
    for t, (w, g) in enumerate(zip(want, got, strict=True)):
        for k, v in w.items():
            assert g[k] == v, (t, k, g[k], v, deal)


@pytest.mark.parametrize(("n", "nf", "ca", "cb"), [(49, 8, 7, 5), (49, 4, 7, 5), (196, 4, 7, 5),
                                                   (13, 3, 3, 2), (17, 5, 3, 2)])
def test_walker_follows_the_host_deal(n, nf, ca, cb):
    deal = choose_deal(n, nf, ca, cb)
    assert deal is not None
    _run(n, list(deal), ca, cb, 3 * nf + 1, 2 * nf + 3)


def test_walker_follows_random_legal_deals():
    rng = np.random.default_rng(5)
    done = 0
    while done < 25:
        n = int(rng.integers(1, 30))
        nf = int(rng.integers(1, 7))
        ca, cb = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        deal = [int(v) for v in rng.integers(0, n + 1, size=nf)]
        if rng.random() < 0.3:  # some steps to one group only
            deal = [n if rng.random() < 0.5 else v for v in deal]
        if not deal_fits(deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)):
            continue
        _run(n, deal, ca, cb, int(rng.integers(0, 20)), int(rng.integers(1, 20)))
        done += 1
