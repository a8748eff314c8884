"""Post-processor (hw.postproc.PostProcessor) on Verilator under cocotb, exact against
``quant.ref.requantize``: one row per valid cycle, the result on ``y`` with ``y_valid`` one
cycle later; idle cycles (``valid`` low, garbage inputs) must give ``y_valid`` low.

Rows: the full accumulator range at its ends (most negative accumulator and bias, largest
multiplier, shifts 0 and ``max_shift``, ReLU on and off), then the random rows with forced
rounding ties of the Amaranth-simulator test (``tests.hw.test_postproc.cases``).
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat
from quant.ref import requantize
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
from tests.hw.test_postproc import cases

PARAMSETS = {
    "acc32-int8-3-m16-s48": {"acc_bits": 32, "cols": 3, "out_bits": 8, "out_signed": True,
                             "mult_bits": 16, "max_shift": 48},
    "acc20-uint4-2-m8-s20": {"acc_bits": 20, "cols": 2, "out_bits": 4, "out_signed": False,
                             "mult_bits": 8, "max_shift": 20},
}
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
        self.drive(rng.integers(-half, half, self.cols), int(rng.integers(0, 1 << self.mult_bits)),
                   int(rng.integers(0, self.max_shift + 1)), int(rng.integers(-half, half)),
                   int(rng.integers(0, 2)), 0)

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
    tb = TB(dut, tb_params())
    await tb.reset()
    rows = edge_rows(tb.acc_bits, tb.cols, tb.mult_bits, tb.max_shift)
    rows += cases(tb.acc_bits, tb.cols, tb.mult_bits, tb.max_shift, N_RANDOM, seed=tb.seed)
    await tb.run(rows)


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_postproc_verilator(paramset: str) -> None:
    from hw.postproc import PostProcessor

    params = PARAMSETS[paramset]
    dut = PostProcessor(*postproc_args(params), mult_bits=params["mult_bits"],
                        max_shift=params["max_shift"])
    tests, failed, log = run_paramset(dut, "postproc", paramset, __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)
