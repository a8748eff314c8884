"""The vector unit's LayerNorm (hw.vector.layernorm.LayerNorm) on Verilator under cocotb:
outputs exact against ``quant.ops.layernorm.normalize`` and the layer's affine requantizer,
cycles exact against sim.timing R14 (``tokens * (3 * ceil(C / L) + LAYERNORM_LATENCY)``).

Per parameter set, ops of a few tokens from ``tests.hw.vector_cases.layernorm_case``: the
first four extreme (a constant token, so variance 0; a token at both ends of the format; a
single outlier; tokens whose mean is a rounding tie of either sign) at the most features,
then random gamma (some 0), beta, output scales and formats and feature counts ``2 ..
max_length``. Each op first writes its gamma and beta into the coefficient memory. Even ops
run with the input always valid and the output always ready and their cycles are checked;
odd ops get random idle cycles on ``inp`` and back-pressure on ``out``. A mutant of the
generated Verilog whose square root stops one root bit short must fail the output check.
"""

from __future__ import annotations

import re

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat
from sim.timing import vector_op_cycles
from tests.cocotb.tbutil import (
    Scoreboard,
    failure_summary,
    pack,
    run_paramset,
    tb_params,
    tb_seed,
)
from tests.cocotb.vector_tb import VectorStreams
from tests.hw.vector_cases import chunks, layernorm_case

PARAMSETS = {
    "l4-c40-int8": {"lanes": 4, "x_bits": 8, "x_signed": True, "max_length": 40, "ops": 42,
                    "tokens": 5},
    "l1-c6-uint8": {"lanes": 1, "x_bits": 8, "x_signed": False, "max_length": 6, "ops": 42,
                    "tokens": 5},
}
OUT_BITS = 17  # hw.params.out_shape(): signed(max_out_bits + 1)


async def write_coefs(dut, case, lanes: int) -> None:
    from hw.vector.layernorm import BETA_BITS, GAMMA_BITS

    for addr, (g, b) in enumerate(zip(chunks(case.gamma, lanes), chunks(case.beta, lanes),
                                      strict=True)):
        dut.coef_we.value = 1
        dut.coef_addr.value = addr
        dut.coef_gamma.value = pack(g, GAMMA_BITS)
        dut.coef_beta.value = pack(b, BETA_BITS)
        await FallingEdge(dut.clk)
    dut.coef_we.value = 0


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def layernorm_ops(dut):
    """Every token's outputs against the reference; the stall-free ops' cycles against R14."""
    p = tb_params()
    seed = tb_seed()
    rng = np.random.default_rng(seed)
    lanes = p["lanes"]
    fmt = ActFormat(p["x_bits"], p["x_signed"])
    io = VectorStreams(dut, rng, lanes, p["x_bits"], OUT_BITS, True)
    board = Scoreboard(dut._log, seed)
    cycles = Scoreboard(dut._log, seed)
    await io.reset({"coef_we": 0})
    cocotb.start_soon(io.count())
    tokens = p["tokens"]
    checked = 0
    for k in range(p["ops"]):
        extreme = k < 4
        c = p["max_length"] if extreme else int(rng.integers(2, p["max_length"] + 1))
        case = layernorm_case(rng, c, tokens, fmt, extreme=extreme)
        io.set_command({"length": c, "shift": case.shift, "out_bits": case.out_fmt.bits,
                        "out_signed": int(case.out_fmt.signed)})
        await write_coefs(dut, case, lanes)
        beats = []
        for t in range(tokens):
            beats += chunks(case.x[:, t], lanes) * 3  # passes 1, 2 and 3 each read it
        per_token = len(chunks(case.x[:, 0], lanes))
        stall = k % 2 == 1
        io.first = io.last = None
        src = cocotb.start_soon(io.source(beats, 0.3 if stall else 0.0))
        got = await io.sink(tokens * per_token, 0.6 if stall else 1.0)
        await src
        want = case.expected
        for t in range(tokens):
            row = [v for b in got[t * per_token:(t + 1) * per_token] for v in b][:c]
            board.compare(row, want[:, t].tolist(),
                          f"op {k} token {t} (C {c}, x {case.x[:, t].tolist()}, shift "
                          f"{case.shift}, {case.out_fmt})")
            checked += 1
        if not stall:
            want_cycles = vector_op_cycles("layernorm", case.x.size, tokens, c, lanes, 1)
            cycles.compare(io.span(), want_cycles, f"op {k} cycles ({tokens} tokens of {c})")
    dut._log.info("%d tokens checked", checked)
    board.finish(200)
    cycles.finish(p["ops"] // 2)


def build(paramset: str):
    from hw.vector.layernorm import LayerNorm

    p = PARAMSETS[paramset]
    return LayerNorm(p["lanes"], ActFormat(p["x_bits"], p["x_signed"]), p["max_length"]), p


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_vector_layernorm_verilator(paramset: str) -> None:
    dut, p = build(paramset)
    tests, failed, log = run_paramset(dut, "vector_layernorm", paramset, __name__, p)
    assert failed == 0 and tests >= 1, failure_summary(log)


def test_vector_layernorm_mutant_is_caught() -> None:
    """The square root started with 31 steps instead of 32 (one root bit short)."""
    from hw.tb.verilator import emit_verilog

    dut, p = build("l1-c6-uint8")
    p = {**p, "ops": 6}
    original = emit_verilog(dut, "vector_layernorm")
    mutant, n = re.subn(r"(if \(sqrt_start\) begin\n\s+\\\$\d+  = )6'h20;", r"\g<1>6'h1f;",
                        original)
    assert n == 1, "the square root's step count was not found in the generated Verilog"
    tests, failed, log = run_paramset(None, "vector_layernorm", "mutant-sqrt-short", __name__,
                                      p, verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant LayerNorm passed the testbench"
    assert re.search(r"mismatch at op \d+ token", log.read_text()), \
        "the mutant failed, but not on the scoreboard"
