"""Post-processor (hw.postproc.PostProcessor) on Verilator under cocotb, exact against
``quant.ref.requantize``: one row per valid cycle, the result on ``y`` with ``y_valid`` one
cycle later; idle cycles (``valid`` low, garbage inputs) must give ``y_valid`` low.

Two kinds of parameter sets. A generic post-processor gets the full accumulator range at its
ends (most negative accumulator and bias, largest multiplier, shifts 0 and ``max_shift``, ReLU
on and off), then the random rows with forced rounding ties of the Amaranth-simulator test
(``tests.hw.test_postproc.cases``). The engine's post-processor
(``PostProcessor.for_engine``) gets every accepted combination of the edges of the range the
simulator accepts (``quant.requant.REQUANTIZER``), then random rows over that range with ties,
both from ``tests.hw.requant_space`` (the rows the simulator refuses are never driven).
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat
from quant.ref import requantize
from quant.requant import REQUANTIZER
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
from tests.hw import requant_space as space
from tests.hw.test_postproc import cases

PARAMSETS = {
    "acc32-int8-3-m16-s48": {"acc_bits": 32, "cols": 3, "out_bits": 8, "out_signed": True,
                             "mult_bits": 16, "max_shift": 48},
    "acc20-uint4-2-m8-s20": {"acc_bits": 20, "cols": 2, "out_bits": 4, "out_signed": False,
                             "mult_bits": 8, "max_shift": 20},
}
#: The engine's post-processor at the narrowest, the tiny preset's and the widest accumulator
#: (``mult_bits``/``max_shift`` only size the idle cycles' garbage).
PARAMSETS |= {
    f"engine-acc{acc}-{'' if signed else 'u'}int{bits}-{cols}": {
        "engine": True, "acc_bits": acc, "cols": cols, "out_bits": bits, "out_signed": signed,
        "mult_bits": REQUANTIZER.mult_bits, "max_shift": REQUANTIZER.shift_range(acc)[1]}
    for acc, cols, bits, signed in ((8, 2, 4, True), (24, 4, 4, False), (64, 2, 16, True))}
N_RANDOM = 250


def postproc_args(params: dict) -> tuple:
    return (params["acc_bits"], params["cols"], ActFormat(params["out_bits"],
                                                          params["out_signed"]))


def edge_rows(acc_bits: int, cols: int, mult_bits: int, max_shift: int):
    """``(acc[cols], mult, shift, bias, relu)`` at the ends of every input's range."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    mmax = (1 << mult_bits) - 1
    rows = []
    for acc in (np.full(cols, lo), np.full(cols, hi), np.array([lo, hi, 0, -1][:cols])):
        for bias in (lo, hi, 0):
            for mult, shift in ((mmax, 0), (mmax, max_shift), (1, 0), (0, max_shift)):
                rows += [(acc, mult, shift, bias, relu) for relu in (0, 1)]
    return rows


class TB:
    """Clock, reset, a driver of one row (or an idle cycle) per cycle and a monitor checking
    ``y_valid`` every cycle and ``y`` against ``requantize`` one cycle after each row."""

    def __init__(self, dut, params: dict) -> None:
        self.dut = dut
        self.acc_bits, self.cols, self.out_fmt = postproc_args(params)
        self.mult_bits = params["mult_bits"]
        self.max_shift = params["max_shift"]
        self.seed = tb_seed()
        self.rng = np.random.default_rng(self.seed)
        self.scoreboard = Scoreboard(dut._log, self.seed)
        dut._log.info("post-processor %s, seed %d", params, self.seed)

    def drive(self, acc, mult: int, shift: int, bias: int, relu: int, valid: int) -> None:
        dut = self.dut
        dut.acc.value = pack(acc, self.acc_bits)
        dut.mult.value = mult
        dut.shift.value = shift
        dut.bias.value = bias & ((1 << self.acc_bits) - 1)
        dut.relu.value = relu
        dut.valid.value = valid

    def drive_idle(self) -> None:
        rng, half = self.rng, 1 << (self.acc_bits - 1)
        self.drive(rng.integers(-half, half - 1, self.cols, endpoint=True),
                   int(rng.integers(0, 1 << self.mult_bits)),
                   int(rng.integers(0, self.max_shift + 1)),
                   int(rng.integers(-half, half - 1, endpoint=True)), int(rng.integers(0, 2)), 0)

    async def reset(self) -> None:
        self.drive([0] * self.cols, 0, 0, 0, 0, 0)
        await start_clock_and_reset(self.dut)

    async def run(self, rows) -> None:
        """Drive ``rows`` in order, an idle cycle before a row one time in five."""
        i = 0
        while i < len(rows):
            if self.rng.random() < 0.2:
                self.drive_idle()
                row = None
            else:
                row = rows[i]
                self.drive(*row, valid=1)
                i += 1
            await FallingEdge(self.dut.clk)
            await settle()
            what = "an idle cycle" if row is None else f"row {i - 1} {self.describe(row)}"
            self.scoreboard.compare(int(self.dut.y_valid.value), int(row is not None),
                                    f"y_valid after {what}")
            if row is not None:
                acc, mult, shift, bias, relu = row
                want = requantize(np.asarray(acc, dtype=np.int64), mult, shift, self.out_fmt,
                                  bias=bias, relu=bool(relu))
                got = unpack(self.dut.y.value.integer, self.out_fmt.bits, self.cols,
                             self.out_fmt.signed)
                self.scoreboard.compare(got, [int(v) for v in want], what)
        self.scoreboard.finish(2 * len(rows))

    @staticmethod
    def describe(row) -> str:
        acc, mult, shift, bias, relu = row
        return (f"(acc={[int(a) for a in acc]}, mult={mult}, shift={shift}, bias={bias}, "
                f"relu={relu})")


@cocotb.test()
async def edge_and_random_rows(dut):
    """Edge rows, then random rows with ties, with idle cycles mixed in."""
    params = tb_params()
    tb = TB(dut, params)
    await tb.reset()
    if params.get("engine"):
        rows = space.edge_rows(tb.acc_bits, tb.cols)
        pick = space.seeded_pick(tb.seed)
        rows += space.accepted([space.draw_row(pick, tb.acc_bits, tb.cols)
                                for _ in range(N_RANDOM)], tb.acc_bits)
    else:
        rows = edge_rows(tb.acc_bits, tb.cols, tb.mult_bits, tb.max_shift)
        rows += cases(tb.acc_bits, tb.cols, tb.mult_bits, tb.max_shift, N_RANDOM, seed=tb.seed)
    await tb.run(rows)


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_postproc_verilator(paramset: str) -> None:
    from hw.postproc import PostProcessor

    params = PARAMSETS[paramset]
    dut = (PostProcessor.for_engine(*postproc_args(params)) if params.get("engine") else
           PostProcessor(*postproc_args(params), mult_bits=params["mult_bits"],
                         max_shift=params["max_shift"]))
    tests, failed, log = run_paramset(dut, "postproc", paramset, __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)
