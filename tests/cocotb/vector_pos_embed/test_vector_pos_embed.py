"""The vector unit's pos_embed (hw.vector.posembed.PosEmbed) on Verilator under cocotb:
outputs exact against ``quant.ops.embed.POS_EMBED`` and cycles exact against sim.timing R15
(``ceil(E / L) + POS_EMBED_DEPTH``).

Per parameter set, ops from ``tests.hw.vector_cases.pos_embed_case``: the first two with the
input format's ends under the largest multiplier and shift 0, tables at +-2**62 (the largest
the op allows) besides 0 and +-1, out_shift 0, 62 or the one that spreads ``x * mult`` over
the output range, and the class token; two with rounding ties of both signs in the branch
and in the sum; two with multiplier 0 or the largest at shifts 31 or 62; then float position
embeddings at random scales, with or without the class token. Every class-token slot
carries a random ``x`` the unit must ignore.
Even ops run with the input always valid and the output always ready and their cycles are
checked; odd ops get random idle cycles on ``inp`` and back-pressure on ``out``. Mutants of
the generated Verilog must fail: lane 0's table add skipped (the output check), the valid
pipeline one stage longer (the cycle check).
"""

from __future__ import annotations

import re

import cocotb
import numpy as np
import pytest

from quant.formats import ActFormat
from sim.resources import POS_TABLE_BITS
from sim.timing import vector_op_cycles
from tests.cocotb.tbutil import Scoreboard, failure_summary, run_paramset, tb_params, tb_seed
from tests.cocotb.vector_tb import VectorStreams
from tests.hw.vector_cases import pos_embed_case

PARAMSETS = {
    "l4-int8": {"lanes": 4, "x_bits": 8, "x_signed": True, "ops": 12, "features": 5,
                "patches": 6},
    "l1-int16": {"lanes": 1, "x_bits": 16, "x_signed": True, "ops": 10, "features": 3,
                 "patches": 8},
}
OUT_BITS = 17  # hw.params.out_shape(): signed(max_out_bits + 1)
KINDS = ("extreme", "extreme", "ties", "ties", "ends", "ends")


def lane_word(lane: dict, x_bits: int) -> int:
    """One lane of ``inp`` as hw.vector.posembed.lane_layout packs it: x, cls, table."""
    return ((lane["x"] & ((1 << x_bits) - 1)) | lane["cls"] << x_bits
            | (lane["table"] & ((1 << POS_TABLE_BITS) - 1)) << (x_bits + 1))


@cocotb.test(timeout_time=50, timeout_unit="ms")
async def pos_embed_ops(dut):
    """Every element against the reference; the stall-free ops' cycles against R15."""
    p = tb_params()
    seed = tb_seed()
    rng = np.random.default_rng(seed)
    lanes, xb = p["lanes"], p["x_bits"]
    fmt = ActFormat(xb, p["x_signed"])
    io = VectorStreams(dut, rng, lanes, xb + 1 + POS_TABLE_BITS, OUT_BITS, True)
    board = Scoreboard(dut._log, seed)
    cycles = Scoreboard(dut._log, seed)
    await io.reset({})
    cocotb.start_soon(io.count())
    for k in range(p["ops"]):
        kind = KINDS[k] if k < len(KINDS) else "random"
        case = pos_embed_case(rng, p["features"], p["patches"], fmt, kind=kind)
        a = case.attrs
        io.set_command({"mult": a["mult"], "shift": a["shift"], "out_shift": a["out_shift"],
                        "out_bits": case.out_fmt.bits,
                        "out_signed": int(case.out_fmt.signed)})
        stall = k % 2 == 1
        words = [lane_word(e, xb) for e in case.lanes(rng)]
        beats = [(words[i:i + lanes] + [0] * lanes)[:lanes]
                 for i in range(0, len(words), lanes)]
        io.first = io.last = None
        src = cocotb.start_soon(io.source(beats, 0.3 if stall else 0.0))
        got = await io.sink(len(beats), 0.6 if stall else 1.0)
        await src
        want = case.expected.reshape(-1).tolist()
        flat = [v for b in got for v in b][:len(words)]
        tokens = case.table.shape[1]
        for i, (g, w) in enumerate(zip(flat, want, strict=True)):
            d, t = divmod(i, tokens)
            board.compare(g, w, f"op {k} ({kind}) element {i} (feature {d}, token {t}, "
                                f"table {int(case.table[d, t])}, attrs {a}, {case.out_fmt})")
        if not stall:
            n = vector_op_cycles("pos_embed", len(words), 0, 0, lanes, 1)
            cycles.compare(io.span(), n, f"op {k} cycles ({len(words)} elements)")
    board.finish(200)
    cycles.finish(p["ops"] // 2)


def build(paramset: str):
    from hw.vector.posembed import PosEmbed

    p = PARAMSETS[paramset]
    return PosEmbed(p["lanes"], ActFormat(p["x_bits"], p["x_signed"])), p


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_vector_pos_embed_verilator(paramset: str) -> None:
    dut, p = build(paramset)
    tests, failed, log = run_paramset(dut, "vector_pos_embed", paramset, __name__, p)
    assert failed == 0 and tests >= 1, failure_summary(log)


def test_vector_pos_embed_mutant_skipped_table_is_caught() -> None:
    """Lane 0's table add skipped (``sum0 = branch`` instead of ``branch + table``): the
    scoreboard must report output mismatches."""
    from hw.tb.verilator import emit_verilog

    dut, p = build("l4-int8")
    p = {**p, "ops": 4}
    original = emit_verilog(dut, "vector_pos_embed")
    mutant, n = re.subn(r"= \$signed\(br_y0\) \+ \$signed\(tab0_d2\);", "= $signed(br_y0);",
                        original)
    assert n == 1, "lane 0's table add was not found in the generated Verilog"
    tests, failed, log = run_paramset(None, "vector_pos_embed", "mutant-no-table", __name__,
                                      p, verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant pos_embed passed the testbench"
    assert re.search(r"mismatch at op \d+ \(\w+\) element", log.read_text()), \
        "the mutant failed, but not on the scoreboard"


def test_vector_pos_embed_mutant_longer_valid_is_caught() -> None:
    """The valid pipeline one stage longer (an extra register before ``valid_d0``): the
    stall-free ops' cycle check must report ``ceil(E / L) + POS_EMBED_DEPTH + 1``."""
    from hw.tb.verilator import emit_verilog

    dut, p = build("l4-int8")
    p = {**p, "ops": 4}
    original = emit_verilog(dut, "vector_pos_embed")
    mutant, n = re.subn(r"(\\\$\d+ += )inp__valid;", r"\1mut_valid;", original)
    mutant, m = re.subn(r"(  reg valid_d0 = 1'h0;\n)",
                        r"\1  reg mut_valid = 1'h0;\n  always @(posedge clk)\n"
                        r"    if (inp__ready) mut_valid <= inp__valid;\n", mutant)
    assert n == m == 1, "the valid pipeline's first stage was not found in the Verilog"
    tests, failed, log = run_paramset(None, "vector_pos_embed", "mutant-long-valid", __name__,
                                      p, verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant pos_embed passed the testbench"
    assert re.search(r"mismatch at op \d+ cycles", log.read_text()), \
        "the mutant failed, but not on the cycle check"
