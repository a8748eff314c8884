"""PIM digital periphery (hw.pim_periphery.PimPeriphery) on Verilator under cocotb, exact
against the numba PIM kernel ``sim.pim.pim_gemm``.

Each output's ADC codes (ideal ADC, in ``code_sequence`` order, from
``tests.hw.test_pim_periphery.conversion_codes``) go in on the ``codes`` stream with random
idle cycles between beats; ``result`` sees random back-pressure. Edge rows and columns: the
largest weights of each sign, zero weights (zero codes), the extreme activations; the ADC
range covers half the worst-case group sum, so large sums clip; two parameter sets use exact
(non-power-of-two) ADC steps with small ranges and two a calibrated range (``adc_range`` of
``quant.pim.plan``: differential and bit-serial) whose step is exact and below which large
sums clip (the step itself is folded into the requantizer after the periphery, so the
periphery's result is in units of the step).
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat
from quant.pim import PimArith, plan
from sim.pim import pim_gemm
from tests.cocotb.tbutil import (
    Scoreboard,
    failure_summary,
    run_paramset,
    settle,
    start_clock_and_reset,
    tb_params,
    tb_seed,
    to_signed,
)
from tests.hw.test_pim_periphery import conversion_codes

PARAMSETS = {  # signed codes, one per group; unsigned codes, 3 planes x 3 slices per group
    "native-c3-g16-adc6-w4-int4": {"scheme": "native", "cell_bits": 3, "group": 16,
                                   "adc_bits": 6, "w_bits": 4, "act_bits": 4,
                                   "act_signed": True, "acc_bits": 32},
    "bit_serial-c2-g8-adc6-w4-int3": {"scheme": "bit_serial", "cell_bits": 2, "group": 8,
                                      "adc_bits": 6, "w_bits": 4, "act_bits": 3,
                                      "act_signed": True, "acc_bits": 32},
    # exact (non-power-of-two) ADC steps whose ranges clip large sums
    "native-c3-g16-adc5-w4-int4-step13.7": {"scheme": "native", "cell_bits": 3, "group": 16,
                                            "adc_bits": 5, "w_bits": 4, "act_bits": 4,
                                            "act_signed": True, "acc_bits": 32,
                                            "adc_step": 13.7},
    "bit_serial-c2-g8-adc3-w4-int3-step0.7": {"scheme": "bit_serial", "cell_bits": 2,
                                              "group": 8, "adc_bits": 3, "w_bits": 4,
                                              "act_bits": 3, "act_signed": True,
                                              "acc_bits": 32, "adc_step": 0.7},
    # calibrated ADC ranges (quant.pim.plan's adc_range): exact steps 90/15 and 6/7, clipping
    "differential-c3-g16-adc4-w4-uint4-range90": {"scheme": "differential", "cell_bits": 3,
                                                  "group": 16, "adc_bits": 4, "w_bits": 4,
                                                  "act_bits": 4, "act_signed": False,
                                                  "acc_bits": 32, "adc_range": 90.0},
    "bit_serial-c1-g16-adc3-w4-uint4-range6": {"scheme": "bit_serial", "cell_bits": 1,
                                               "group": 16, "adc_bits": 3, "w_bits": 4,
                                               "act_bits": 4, "act_signed": False,
                                               "acc_bits": 32, "adc_range": 6.0},
}
M, K, N = 10, 20, 20  # 200 outputs; K is not a multiple of the group


def pim_setup(params: dict):
    """``(arith, plan, act)`` of a parameter set (an ``adc_step`` makes the step exact)."""
    step = {"adc_step": params["adc_step"], "pot_step": False} if "adc_step" in params else {}
    if "adc_range" in params:
        step = {"pot_step": False}
    arith = PimArith(scheme=params["scheme"], group_size=params["group"],
                     cell_bits=params["cell_bits"], adc_bits=params["adc_bits"],
                     range_fraction=0.5, **step)
    act = ActFormat(params["act_bits"], params["act_signed"])
    return arith, plan(arith, params["w_bits"], act.bits, act.signed,
                       params.get("adc_range")), act


def operands(w_bits: int, act: ActFormat, rng):
    """Random ``W (M, K)`` and ``X (K, N)`` with edge rows and columns first."""
    wmax = (1 << (w_bits - 1)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(M, K))
    x = rng.integers(act.qmin, act.qmax + 1, size=(K, N))
    w[0], w[1], w[2] = wmax, -wmax, 0
    x[:, 0], x[:, 1], x[:, 2] = act.qmax, act.qmin, 0
    return w, x


class TB:
    """Clock, reset, a ``codes`` stream source with idle cycles, a ``result`` stream sink
    with back-pressure, and a scoreboard of the results in output order."""

    def __init__(self, dut, params: dict) -> None:
        from hw.pim_periphery import PimPeriphery

        self.dut = dut
        self.arith, self.plan, self.act = pim_setup(params)
        self.adc_range = params.get("adc_range")
        self.acc_bits = params["acc_bits"]
        self.layout = PimPeriphery(self.plan, self.acc_bits).code_layout
        self.seed = tb_seed()
        self.rng = np.random.default_rng(self.seed)
        self.scoreboard = Scoreboard(dut._log, self.seed)
        dut._log.info("PIM periphery %s, seed %d", params, self.seed)

    async def reset(self) -> None:
        self.dut.codes__valid.value = 0
        self.dut.codes__payload.value = 0
        self.dut.result__ready.value = 0
        await start_clock_and_reset(self.dut)

    def beat(self, code: int, last: int) -> int:
        return self.layout.const({"code": code, "last": last}).as_bits()

    async def source(self, streams: list[list[int]]) -> None:
        dut, rng = self.dut, self.rng
        for codes in streams:
            for t, code in enumerate(codes):
                while rng.random() < 0.3:
                    await FallingEdge(dut.clk)
                    dut.codes__valid.value = 0
                    dut.codes__payload.value = int(rng.integers(0, 1 << self.layout.size))
                await FallingEdge(dut.clk)
                dut.codes__valid.value = 1
                dut.codes__payload.value = self.beat(code, int(t == len(codes) - 1))
                await settle()
                while not dut.codes__ready.value:  # hold the beat until it is taken
                    await FallingEdge(dut.clk)
                    await settle()
        await FallingEdge(dut.clk)
        dut.codes__valid.value = 0

    async def sink(self, expected: list[tuple[str, int]]) -> None:
        dut = self.dut
        got = 0
        while got < len(expected):
            await FallingEdge(dut.clk)
            ready = int(self.rng.random() < 0.6)
            dut.result__ready.value = ready
            await settle()
            if ready and dut.result__valid.value:
                what, want = expected[got]
                value = to_signed(dut.result__payload.value.integer, self.acc_bits)
                self.scoreboard.compare(value, want, what)
                got += 1

    async def random_gemm(self) -> None:
        w, x = operands(self.plan.w_bits, self.act, self.rng)
        want = pim_gemm(w, x, self.plan.w_bits, self.act, self.arith,
                        adc_range=self.adc_range)
        outputs = [(i, j) for i in range(M) for j in range(N)]
        streams = [conversion_codes(w[i], x[:, j], self.plan) for i, j in outputs]
        expected = [(f"output ({i}, {j})", int(want[i, j])) for i, j in outputs]
        await self.reset()
        source = cocotb.start_soon(self.source(streams))
        await self.sink(expected)
        await source
        self.scoreboard.finish(len(outputs))


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def random_gemm_streams(dut):
    """A 10x20x20 GEMM's codes with idle cycles and back-pressure, 200 results checked."""
    await TB(dut, tb_params()).random_gemm()


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_pim_periphery_verilator(paramset: str) -> None:
    from hw.pim_periphery import PimPeriphery

    params = PARAMSETS[paramset]
    dut = PimPeriphery(pim_setup(params)[1], params["acc_bits"])
    tests, failed, log = run_paramset(dut, "pim_periphery", paramset, __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)

