"""The vector unit's dyadic requantizer (hw.vector.requant.DyadicRequant) on Verilator under
cocotb: outputs exact against ``quant.ref.requantize`` and cycles exact against sim.timing
R15 (``ceil(E / L) + REQ_DEPTH``).

Per parameter set, ops from ``tests.hw.vector_cases.requant_cases`` (the accumulator
extremes with the largest multiplier and shifts 0, 31 and 62, rounding ties of both signs,
``mult = 0``, then random dyadic ratios and output formats): even ops run with the input
always valid and the output always ready, and their cycles are checked; odd ops get random
idle cycles on ``inp`` and back-pressure on ``out``. A mutant (the round-half-even guard bit
taken one place too high in the generated Verilog) must fail the output check.
"""

from __future__ import annotations

import re

import cocotb
import numpy as np
import pytest

from sim.timing import vector_op_cycles
from tests.cocotb.tbutil import (
    Scoreboard,
    failure_summary,
    run_paramset,
    tb_params,
    tb_seed,
)
from tests.cocotb.vector_tb import VectorStreams
from tests.hw.vector_cases import chunks, requant_cases

PARAMSETS = {
    "l4-acc32": {"lanes": 4, "acc_bits": 32, "ops": 24, "elems": 37},
    "l1-acc24": {"lanes": 1, "acc_bits": 24, "ops": 16, "elems": 13},
}
OUT_BITS = 17  # hw.params.out_shape(): signed(max_out_bits + 1)


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def requant_ops(dut):
    """Every op's outputs against quant.ref; the stall-free ops' cycles against R15."""
    p = tb_params()
    seed = tb_seed()
    rng = np.random.default_rng(seed)
    lanes = p["lanes"]
    io = VectorStreams(dut, rng, lanes, p["acc_bits"], OUT_BITS, True)
    board = Scoreboard(dut._log, seed)
    cycles = Scoreboard(dut._log, seed)
    cases = requant_cases(rng, p["acc_bits"], p["ops"], p["elems"])
    await io.reset({})
    cocotb.start_soon(io.count())
    for k, case in enumerate(cases):
        io.set_command({"mult": case.mult, "shift": case.shift, "out_bits": case.fmt.bits,
                        "out_signed": int(case.fmt.signed)})
        stall = k % 2 == 1
        beats = chunks(case.acc, lanes)
        io.first = io.last = None
        src = cocotb.start_soon(io.source(beats, 0.3 if stall else 0.0))
        got = await io.sink(len(beats), 0.6 if stall else 1.0)
        await src
        flat = [v for b in got for v in b][:len(case.acc)]
        for i, (g, w) in enumerate(zip(flat, case.expected.tolist(), strict=True)):
            board.compare(g, w, f"op {k} element {i} (acc {int(case.acc[i])}, mult "
                                f"{case.mult}, shift {case.shift}, {case.fmt})")
        if not stall:
            want = vector_op_cycles("requant", len(case.acc), 0, 0, lanes, 1)
            cycles.compare(io.span(), want, f"op {k} cycles ({len(case.acc)} elements)")
    board.finish(200)
    cycles.finish(len(cases) // 2)


def build_params(paramset: str) -> tuple:
    from hw.vector.requant import DyadicRequant

    p = PARAMSETS[paramset]
    return DyadicRequant(p["lanes"], p["acc_bits"]), p


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_vector_requant_verilator(paramset: str) -> None:
    dut, p = build_params(paramset)
    tests, failed, log = run_paramset(dut, "vector_requant", paramset, __name__, p)
    assert failed == 0 and tests >= 1, failure_summary(log)


def test_vector_requant_mutant_is_caught() -> None:
    """The rounding guard bit taken one place too high (``p >> s`` instead of ``p >> (s - 1)``
    in lane 0): the scoreboard must report mismatches."""
    from hw.tb.verilator import emit_verilog

    dut, p = build_params("l1-acc24")
    original = emit_verilog(dut, "vector_requant")
    mutant, hits = re.subn(r"(= \$signed\(rq_p0\) >>> )\\\$\d+ \[5:0\];", r"\1shift;",
                           original)
    assert hits == 1, "the guard-bit shift was not found in the generated Verilog"
    tests, failed, log = run_paramset(None, "vector_requant", "l1-acc24-mutant", __name__, p,
                                      verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant requantizer passed the testbench"
    assert "mismatch at" in log.read_text(), "the mutant failed, but not on the scoreboard"
