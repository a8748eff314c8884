# amaranth: UnusedElaboratable=no
"""The banked weight ring of an engine with column groups (hw.buffer.BankedRing, sim.timing
rule R3c) against a model: blocks back to back or one per bank, both read ports, and a word
read in the cycle it is written."""

from __future__ import annotations

import numpy as np
import pytest

from hw.buffer import BankedRing
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.parametrize("align", [False, True])
def test_banked_ring_writes_and_reads_both_groups(align: bool) -> None:
    kt, width = 5, 12
    ring = 3 * kt
    rng = np.random.default_rng(int(align))
    dut = BankedRing(width, kt)
    blocks = [int(rng.integers(1, kt + 1)) for _ in range(30)]
    model = np.full(ring, -1)
    starts = []
    ptr = 0
    beats = []
    for size in blocks:
        starts.append(ptr)
        for i in range(size):
            beats.append((ptr, int(rng.integers(0, 1 << width)), i == size - 1))
            ptr = (ptr + 1) % ring
        if align:  # the next block starts a bank
            ptr = (starts[-1] // kt + 1) % 3 * kt
    checks = []

    async def bench(ctx):
        ctx.set(dut.align, align)
        for n, (addr, value, last) in enumerate(beats):
            assert ctx.get(dut.wr_ptr) == addr
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.data, value)
            ctx.set(dut.load.payload.last, last)
            # read this very word (forwarded) on port A, a random written word's bank on B
            ctx.set(dut.rd_base, addr)
            ctx.set(dut.rd_step, 0)
            model[addr] = value
            other = int(rng.integers(0, 3)) * kt + addr % kt
            ctx.set(dut.rd_base_b, other)
            await ctx.tick()
            ctx.set(dut.load.valid, 0)
            checks.append((ctx.get(dut.data), value, ctx.get(dut.data_b), int(model[other])))
            if n % 7 == 6:  # an idle cycle: read a block back by base and step
                s = starts[len([b for b in beats[:n + 1] if b[2]]) - 1] if align else 0
                step = int(rng.integers(0, kt))
                ctx.set(dut.rd_base, s)
                ctx.set(dut.rd_step, step)
                ctx.set(dut.rd_base_b, s)
                await ctx.tick()
                want = int(model[(s + step) % ring])
                checks.append((ctx.get(dut.data), want, ctx.get(dut.data_b), want))

    run_bench(dut, bench)
    assert len(checks) > 50
    for got_a, want_a, got_b, want_b in checks:
        if want_a >= 0:  # a word written before
            assert got_a == want_a
        if want_b >= 0:
            assert got_b == want_b
