"""Output-stationary cores (hw.core.OutputStationaryCore) on Verilator under cocotb: the DSP
core (fixed PEs, unpacked and two per multiplier) and the LUT core (SP2 PEs), exact against
``WeightFormat.hw_mul`` summed over K, on sim.timing's R4/R4b schedule.

A tile of ``r x c`` outputs and ``K`` steps: ``K`` valid steps at the core's edge (with idle
cycles mixed in, which only stretch the window), the last one marked ``last``; from ``c``
cycles after it, ``r`` drain cycles show row ``0 .. r-1`` on ``out`` while the next tile
already streams (R4b: its last step waits until that drain is done). Half of the tiles
start right after the previous tile's last step, the others after a few idle cycles.
Unused rows and columns and every idle input carry random garbage.
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat, weight_format
from tests.cocotb.tbutil import (
    Scoreboard,
    failure_summary,
    pack,
    run_paramset,
    settle,
    start_clock_and_reset,
    tb_params,
    tb_seed,
    unpack,
)

PARAMSETS = {
    "dsp-fixed8-int8-2x3": {"scheme": "fixed", "bits": 8, "act_bits": 8, "act_signed": True,
                            "acc_bits": 32, "rows": 2, "cols": 3, "packing": 1},
    # two fixed PEs per multiplier; the third row is a partial group
    "dsp-fixed8-uint8-3x2-p2": {"scheme": "fixed", "bits": 8, "act_bits": 8,
                                "act_signed": False, "acc_bits": 32, "rows": 3, "cols": 2,
                                "packing": 2},
    "lut-sp2-5-uint4-3x2": {"scheme": "sp2", "bits": 5, "act_bits": 4, "act_signed": False,
                            "acc_bits": 24, "rows": 3, "cols": 2, "packing": 1},
}
N_TILES = 200
MAX_K = 12


def core_args(params: dict):
    """``OutputStationaryCore`` arguments ``(fmt, act, acc_bits, rows, cols, packing)``."""
    return (weight_format(params["scheme"], params["bits"]),
            ActFormat(params["act_bits"], params["act_signed"]), params["acc_bits"],
            params["rows"], params["cols"], params["packing"])


def random_tiles(fmt, act, rows: int, cols: int, n: int, rng):
    """``(w (r, K) words, x (K, c))`` per tile: a full tile, the largest products of each
    sign, zero code words, then random shapes over all ``2**bits`` words."""
    words = np.arange(1 << fmt.bits)
    x_big = act.qmin if -act.qmin > act.qmax else act.qmax
    prod = fmt.hw_mul(words, x_big)
    tiles = []
    for i in range(n):
        r = rows if i < 4 else int(rng.integers(1, rows + 1))
        c = cols if i < 4 else int(rng.integers(1, cols + 1))
        k = MAX_K if i < 4 else int(rng.integers(1, MAX_K + 1))
        w = rng.choice(words, size=(r, k))
        x = rng.integers(act.qmin, act.qmax + 1, size=(k, c))
        if i in (1, 2):  # largest positive, then largest negative sums
            w[:] = words[np.argmax(prod) if i == 1 else np.argmin(prod)]
            x[:] = x_big
        elif i == 3:  # zero codes
            w[:] = 0
        tiles.append((w, x))
    return tiles


class TB:
    """Clock, reset, a driver of the core's edge (steps, idle cycles, drain rows) and a
    scoreboard checking every drained element of every tile."""

    def __init__(self, dut, params: dict) -> None:
        self.dut = dut
        self.fmt, self.act, self.acc_bits, self.rows, self.cols, packing = core_args(params)
        self.seed = tb_seed()
        self.rng = np.random.default_rng(self.seed)
        self.scoreboard = Scoreboard(dut._log, self.seed)
        dut._log.info("core %dx%d of %s-%d PEs (packing %d), %s activations, seed %d",
                      self.rows, self.cols, self.fmt.name, self.fmt.bits, packing, self.act,
                      self.seed)

    def drive(self, w_col, x_row, valid: int, first: int, last: int) -> None:
        self.dut.w.value = pack(w_col, self.fmt.bits)
        self.dut.x.value = pack(x_row, self.act.bits)
        self.dut.valid.value = valid
        self.dut.first.value = first
        self.dut.last.value = last

    def drive_idle(self) -> None:
        """``valid`` low, everything else random."""
        rng = self.rng
        self.drive(rng.integers(0, 1 << self.fmt.bits, self.rows),
                   rng.integers(self.act.qmin, self.act.qmax + 1, self.cols), 0,
                   int(rng.integers(0, 2)), int(rng.integers(0, 2)))

    async def reset(self) -> None:
        self.drive([0] * self.rows, [0] * self.cols, 0, 0, 0)
        self.dut.drain_row.value = 0
        self.t = 0  # cycles driven
        self.done = 0  # cycle the previous tile's drain ends (P of R4)
        self.drains: dict[int, tuple] = {}  # cycle -> (row, wanted values, label)
        await start_clock_and_reset(self.dut)

    async def cycle(self) -> None:
        """The next cycle: its drain row (if one is due) is checked after the inputs."""
        await FallingEdge(self.dut.clk)
        self.t += 1

    async def check_drain(self) -> None:
        due = self.drains.pop(self.t, None)
        if due is None:
            return
        d, want, label = due
        self.dut.drain_row.value = d
        await settle()
        got = unpack(self.dut.out.value.integer, self.acc_bits, self.cols, signed=True)
        for j, value in enumerate(want):
            self.scoreboard.compare(got[j], int(value), f"{label} row {d} col {j}")

    async def idle(self) -> None:
        await self.cycle()
        self.drive_idle()
        await self.check_drain()

    async def tile(self, index: int, w: np.ndarray, x: np.ndarray) -> None:
        rng = self.rng
        r, k = w.shape
        c = x.shape[1]
        step = 0
        while step < k:
            if step == k - 1 and self.t + 2 < self.done:  # R4b: wait for the drain
                await self.idle()
                continue
            if step > 0 and rng.random() < 0.15:
                await self.idle()
                continue
            await self.cycle()
            w_col = rng.integers(0, 1 << self.fmt.bits, self.rows)  # garbage in unused rows
            x_row = rng.integers(self.act.qmin, self.act.qmax + 1, self.cols)
            w_col[:r] = w[:, step]
            x_row[:c] = x[step]
            self.drive(w_col, x_row, 1, int(step == 0), int(step == k - 1))
            await self.check_drain()
            step += 1
        want = self.fmt.hw_mul(w[:, :, None], x[None, :, :]).sum(axis=1)
        end = self.t + 1  # the window ended with the cycle just driven
        for d in range(r):
            self.drains[end + c + d] = (d, want[d], f"tile {index} ({r}x{c}, K={k})")
        self.done = end + c + r

    async def random_tiles(self, n: int) -> None:
        await self.reset()
        tiles = random_tiles(self.fmt, self.act, self.rows, self.cols, n, self.rng)
        for i, (w, x) in enumerate(tiles):
            if self.rng.random() < 0.5:
                for _ in range(int(self.rng.integers(1, 4))):
                    await self.idle()
            await self.tile(i, w, x)
        while self.drains:
            await self.idle()
        self.scoreboard.finish(sum(w.shape[0] * x.shape[1] for w, x in tiles))


@cocotb.test()
async def random_tiles_r4(dut):
    """200 tiles (full, largest products, zero codes, random shapes) on the R4/R4b
    schedule."""
    await TB(dut, tb_params()).random_tiles(N_TILES)


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_core_verilator(paramset: str) -> None:
    from hw.core import OutputStationaryCore

    params = PARAMSETS[paramset]
    tests, failed, log = run_paramset(OutputStationaryCore(*core_args(params)), "core",
                                      paramset, __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)

