"""The vector unit's GELU (hw.vector.gelu.Gelu) on Verilator under cocotb: outputs exact
against ``quant.ops.gelu.shift_gelu`` followed by ``quant.ref.requantize``, cycles exact
against sim.timing R15 (``ceil(E / L) + GELU_DEPTH``).

Per parameter set, ops from ``tests.hw.vector_cases.gelu_case``: the first two with the
input format's ends, 0 and ±1 and the coarsest and finest input scales, then random input
and output scales, sigmoid bits 2..16 and output formats. Even ops run with the input always
valid and the output always ready and their cycles are checked; odd ops get random idle
cycles on ``inp`` and back-pressure on ``out``. A mutant of the generated Verilog with the
sigmoid's shift one short (``30 - p`` for ``31 - p``) must fail the output check.
"""

from __future__ import annotations

import re

import cocotb
import numpy as np
import pytest

from quant.formats import ActFormat
from sim.timing import vector_op_cycles
from tests.cocotb.tbutil import Scoreboard, failure_summary, run_paramset, tb_params, tb_seed
from tests.cocotb.vector_tb import VectorStreams
from tests.hw.vector_cases import chunks, gelu_case

PARAMSETS = {
    "l1-int8": {"lanes": 1, "x_bits": 8, "x_signed": True, "ops": 12, "elems": 19},
    "l2-int16": {"lanes": 2, "x_bits": 16, "x_signed": True, "ops": 12, "elems": 19},
}
OUT_BITS = 17  # hw.params.out_shape(): signed(max_out_bits + 1)


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def gelu_ops(dut):
    """Every element against the reference; the stall-free ops' cycles against R15."""
    p = tb_params()
    seed = tb_seed()
    rng = np.random.default_rng(seed)
    lanes = p["lanes"]
    fmt = ActFormat(p["x_bits"], p["x_signed"])
    io = VectorStreams(dut, rng, lanes, p["x_bits"], OUT_BITS, True)
    board = Scoreboard(dut._log, seed)
    cycles = Scoreboard(dut._log, seed)
    await io.reset({})
    cocotb.start_soon(io.count())
    for k in range(p["ops"]):
        case = gelu_case(rng, p["elems"], fmt, extreme=k < 2)
        a = case.attrs
        io.set_command({"x0": a["x0"] & 0xFFFFFFFF, "exp_n": a["n"], "sigmoid_bits": a["p"],
                        "mult": a["mult"], "shift": a["shift"],
                        "out_bits": case.out_fmt.bits,
                        "out_signed": int(case.out_fmt.signed)})
        stall = k % 2 == 1
        beats = chunks(case.x, lanes)
        io.first = io.last = None
        src = cocotb.start_soon(io.source(beats, 0.3 if stall else 0.0))
        got = await io.sink(len(beats), 0.6 if stall else 1.0)
        await src
        flat = [v for b in got for v in b][:len(case.x)]
        for i, (g, w) in enumerate(zip(flat, case.expected.tolist(), strict=True)):
            board.compare(g, w, f"op {k} element {i} (x {int(case.x[i])}, attrs {a}, "
                                f"{case.out_fmt})")
        if not stall:
            want = vector_op_cycles("gelu", len(case.x), 0, 0, lanes, 1)
            cycles.compare(io.span(), want, f"op {k} cycles ({len(case.x)} elements)")
    board.finish(200)
    cycles.finish(p["ops"] // 2)


def build(paramset: str):
    from hw.vector.gelu import Gelu

    p = PARAMSETS[paramset]
    return Gelu(p["lanes"], ActFormat(p["x_bits"], p["x_signed"])), p


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_vector_gelu_verilator(paramset: str) -> None:
    dut, p = build(paramset)
    tests, failed, log = run_paramset(dut, "vector_gelu", paramset, __name__, p)
    assert failed == 0 and tests >= 1, failure_summary(log)


def test_vector_gelu_mutant_is_caught() -> None:
    from hw.tb.verilator import emit_verilog

    dut, p = build("l2-int16")
    p = {**p, "ops": 4}
    original = emit_verilog(dut, "vector_gelu")
    mutant, n = re.subn(r"= 5'h1f - sigmoid_bits;", "= 5'h1e - sigmoid_bits;", original)
    assert n == 1, "the sigmoid shift was not found in the generated Verilog"
    tests, failed, log = run_paramset(None, "vector_gelu", "mutant-sigma-shift", __name__, p,
                                      verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant GELU passed the testbench"
    assert re.search(r"mismatch at op \d+ element", log.read_text()), \
        "the mutant failed, but not on the scoreboard"
