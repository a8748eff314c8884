# amaranth: UnusedElaboratable=no
"""The banked weight ring of an engine with column groups (hw.buffer.BankedRing, sim.timing
rule R3c) against a model: blocks back to back or one per bank, both read ports, and a word
read in the cycle it is written."""

from __future__ import annotations

import numpy as np
import pytest

from hw.buffer import BankedRing
from quant.errors import ConfigError
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.parametrize("pieces", [None, (4, 1), (2, 2, 1)])
@pytest.mark.parametrize("align", [False, True])
def test_banked_ring_writes_and_reads_both_groups(align: bool, pieces) -> None:
    kt, width = 5, 12
    ring = 3 * kt
    rng = np.random.default_rng(int(align))
    dut = BankedRing(width, kt, pieces)
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


def test_banked_ring_splits_block_ram_banks_into_pieces() -> None:
    # sim.resources.bank_pieces: XC7Z020's 256 x 4608 weight banks as 4096 + 512 words (no
    # depth slices); LUT RAM and flip-flop banks stay whole
    assert BankedRing(256, 4608).pieces == (4096, 512)
    assert BankedRing(12, 5).pieces == (5,)
    with pytest.raises(ConfigError, match="pieces must be positive depths summing to"):
        BankedRing(12, 5, (4, 2))


@pytest.mark.parametrize("pieces", [None, (4, 1), (2, 2, 1)])
def test_banked_ring_shows_a_word_in_the_cycle_it_is_written(pieces) -> None:
    # cut-through: an address given in cycle t, its word written in cycle t + 1, is on both
    # ports in cycle t + 1 (a group B base one bank on, at the same in-bank word, shows that
    # bank's earlier word)
    kt, width = 5, 12
    rng = np.random.default_rng(7)
    dut = BankedRing(width, kt, pieces)
    values = [int(v) for v in rng.integers(0, 1 << width, 3 * kt * 2)]
    seen = []

    async def bench(ctx):
        for n, value in enumerate(values):
            addr = n % (3 * kt)
            ctx.set(dut.rd_base, addr)
            ctx.set(dut.rd_base_b, (addr + kt) % (3 * kt))
            ctx.set(dut.rd_step, 0)
            ctx.set(dut.load.valid, 0)
            await ctx.tick()
            ctx.set(dut.load.valid, 1)
            ctx.set(dut.load.payload.data, value)
            ctx.set(dut.load.payload.last, 0)
            seen.append((ctx.get(dut.data), ctx.get(dut.data_b)))
            await ctx.tick()

    run_bench(dut, bench)
    for n, (got_a, got_b) in enumerate(seen):
        assert got_a == values[n]
        older = n + kt - 3 * kt  # the word of the next bank, one ring earlier
        if older >= 0:
            assert got_b == values[older]
