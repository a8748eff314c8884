"""The vector unit's softmax (hw.vector.softmax.Softmax) on Verilator under cocotb: outputs
exact against ``quant.ops.softmax.shiftmax`` of the requantized scores (R11d) and cycles
exact against sim.timing R14 (``rows * (3 * ceil(n / L) + SOFTMAX_LATENCY)``).

Per parameter set, ops of a few rows from ``tests.hw.vector_cases.softmax_case``: the first
four with extreme accumulators (both ends, so the requantized scores clamp; rows of equal
scores; a single spike; input scales 1, 0.75 and ``2**-10``) at the longest row, then random
scales, ratios, formats and row lengths ``1 .. max_length``. Even ops run with the input
always valid and the output always ready and their cycles are checked; odd ops get random
idle cycles on ``inp`` and back-pressure on ``out``. Three mutants of the generated Verilog
must fail: a wrong shift constant in shift-exp (``x >> 3`` for ``x >> 4``), a reciprocal
divider one step short, and the exp-and-sum pass's drain one cycle longer.
"""

from __future__ import annotations

import re

import cocotb
import numpy as np
import pytest

from sim.timing import vector_op_cycles
from tests.cocotb.tbutil import Scoreboard, failure_summary, run_paramset, tb_params, tb_seed
from tests.cocotb.vector_tb import VectorStreams
from tests.hw.vector_cases import chunks, softmax_case

PARAMSETS = {
    "l16-n65-acc32": {"lanes": 16, "acc_bits": 32, "max_length": 65, "ops": 52, "rows": 4},
    "l4-n13-acc24": {"lanes": 4, "acc_bits": 24, "max_length": 13, "ops": 52, "rows": 4},
}
OUT_BITS = 16  # REQUANTIZER.max_out_bits, unsigned


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def softmax_ops(dut):
    """Every row's outputs against shiftmax; the stall-free ops' cycles against R14."""
    p = tb_params()
    seed = tb_seed()
    rng = np.random.default_rng(seed)
    lanes = p["lanes"]
    io = VectorStreams(dut, rng, lanes, p["acc_bits"], OUT_BITS, False)
    board = Scoreboard(dut._log, seed)
    cycles = Scoreboard(dut._log, seed)
    await io.reset({})
    cocotb.start_soon(io.count())
    rows_checked = 0
    for k in range(p["ops"]):
        extreme = k < 4
        length = p["max_length"] if extreme else int(rng.integers(1, p["max_length"] + 1))
        case = softmax_case(rng, p["rows"], length, p["acc_bits"],
                            kind="extreme" if extreme else "random")
        io.set_command({"length": length, "mult": case.mult, "shift": case.shift,
                        "x_bits": case.fmt.bits, "x_signed": int(case.fmt.signed),
                        "x0": case.x0 & 0xFFFFFFFF, "exp_n": case.n,
                        "out_bits": case.out_bits})
        beats = []
        for row in case.acc:
            beats += chunks(row, lanes) * 2  # passes 1 and 2 each read the row
        per_row = len(chunks(case.acc[0], lanes))
        stall = k % 2 == 1
        io.first = io.last = None
        src = cocotb.start_soon(io.source(beats, 0.3 if stall else 0.0))
        got = await io.sink(p["rows"] * per_row, 0.6 if stall else 1.0)
        await src
        want = case.expected
        for r in range(p["rows"]):
            row = [v for b in got[r * per_row:(r + 1) * per_row] for v in b]
            board.compare(row[:length], want[r].tolist(),
                          f"op {k} row {r} (length {length}, x0 {case.x0}, n {case.n}, "
                          f"p {case.out_bits}, mult {case.mult}, shift {case.shift}, "
                          f"{case.fmt})")
            board.compare(row[length:], [0] * (len(row) - length), f"op {k} row {r} padding")
            rows_checked += 1
        if not stall:
            want_cycles = vector_op_cycles("softmax", case.acc.size, p["rows"], length,
                                           lanes, 1)
            cycles.compare(io.span(), want_cycles, f"op {k} cycles ({p['rows']} rows of "
                                                   f"{length})")
    dut._log.info("%d rows checked", rows_checked)
    board.finish(400)
    cycles.finish(p["ops"] // 2)


def build(paramset: str):
    from hw.vector.softmax import Softmax

    p = PARAMSETS[paramset]
    return Softmax(p["lanes"], p["acc_bits"], p["max_length"]), p


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_vector_softmax_verilator(paramset: str) -> None:
    dut, p = build(paramset)
    tests, failed, log = run_paramset(dut, "vector_softmax", paramset, __name__, p)
    assert failed == 0 and tests >= 1, failure_summary(log)


#: name -> (pattern, replacement, matches, the scoreboard line it must cause)
MUTANTS = {
    "exp-shift": (r"= \{ d0\[17\], d0\[17\], d0\[17\], d0\[17\], d0\[17:4\] \};",
                  "= { d0[17], d0[17], d0[17], d0[17:3] };", 1, r"mismatch at op \d+ row"),
    "divider-short": (r"(\\\$\d+  = )6'h20;", r"\g<1>6'h1f;", 1, r"mismatch at op \d+ row"),
    "drain-long": (r"drain == 4'he;", "drain == 4'hf;", 2, r"mismatch at op \d+ cycles"),
}


@pytest.mark.parametrize("name", MUTANTS)
def test_vector_softmax_mutant_is_caught(name: str) -> None:
    from hw.tb.verilator import emit_verilog

    pattern, replacement, hits, report = MUTANTS[name]
    dut, p = build("l4-n13-acc24")
    p = {**p, "ops": 8}
    original = emit_verilog(dut, "vector_softmax")
    mutant, n = re.subn(pattern, replacement, original)
    assert n == hits, f"{name}: {n} matches of {pattern!r} in the generated Verilog"
    tests, failed, log = run_paramset(None, "vector_softmax", f"mutant-{name}", __name__, p,
                                      verilog=mutant)
    assert tests >= 1 and failed == tests, f"the {name} mutant passed the testbench"
    assert re.search(report, log.read_text()), f"the {name} mutant failed, but not with "\
                                                 f"{report!r}"
