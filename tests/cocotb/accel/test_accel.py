"""The whole engine on Verilator under cocotb: outputs bit-exact, cycles equal to sim.

The testbench (TB class, stream drivers, DRAM model, scoreboard) is :mod:`hw.tb.accel_tb`;
it lives in the package because ``fpim verify`` runs it too. Each parameter set builds its
own Verilator model in ``build/cocotb/accel-<top>-<hash>``; every case runs back to back on one
DUT without a reset in between. The mutation tests edit a copy of the generated Verilog and
show that the output check and the cycle check each fail when the RTL is wrong.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pytest

from hw.generate import generate
from hw.tb.cases import (
    make_case,
    random_case,
    random_cases,
    random_matmul_cases,
    random_matmul_groups,
)
from hw.tb.engine import REPO, artifact_layer_case, build_accel, run_verilator
from quant.formats import ActFormat
from quant.msq import msq_assign
from sim.config import load_accelerator, replace_engine
from tests.equivalence.workloads import shaped

pytestmark = pytest.mark.skipif(shutil.which("verilator") is None,
                                reason="verilator not installed (make test installs it)")

TINY = load_accelerator("tiny")
# A second parameter set: PoT LUT core, 3 DSP rows, 2 LUT rows, 3 columns, 8-step tiles.
TINY_POT = dataclasses.replace(
    replace_engine(TINY, lut_scheme="pot", dsp_rows=3, lut_rows=2, cols=3),
    name="tiny_pot", memory=dataclasses.replace(TINY.memory, k_tile=8))
# Engine shapes the simulator accepts and the RTL must run alike (tests/hw/test_shapes.py
# draws many more in Amaranth): a DSP-only engine of one row, a LUT-only PoT engine with
# one-step load blocks and signed activations, and a one-row LUT core beside a DSP core of
# three rows packed four to a DSP48E2 (one partial group).
SHAPES = {
    "tiny_dsp1": shaped("tiny_dsp1", dsp_rows=1, lut_rows=0, cols=3, dsp_packing=2, k_tile=5),
    "tiny_lut3": shaped("tiny_lut3", dsp_rows=0, lut_rows=3, lut_scheme="pot", cols=4,
                        k_tile=1, act_signed=True),
    "tiny_mix31": shaped("tiny_mix31", "XCZU9EG", dsp_rows=3, lut_rows=1, cols=2,
                         dsp_packing=4, k_tile=7),
}
# Column groups (sim.timing R3c): 3 + 1 columns, random legal deals among the random cases.
TINY_GROUPS = dataclasses.replace(replace_engine(TINY, group_b_cols=1), name="tiny_groups")
#: column groups and one post-processor for both cores (the XC7Z020 preset's engine options)
TINY_SHARED = dataclasses.replace(replace_engine(TINY_GROUPS, shared_post=True),
                                  name="tiny_shared_groups")
PARAMS = {"tiny": TINY, "tiny_pot": TINY_POT, "tiny_groups": TINY_GROUPS,
          "tiny_shared_groups": TINY_SHARED, **SHAPES}
RANDOM_CASES = 24
SEED = 2026


def prefetch_chains(seed: int) -> list:
    """Three sequences of 8 GEMMs on the tiny preset, one DRAM timing each, run as one list
    (no reset between), with R10b's prefetches (:func:`hw.tb.cases.random_chain`)."""
    from hw.tb.cases import random_chain

    return [c for i, (bw, lat) in enumerate(((4, 4), (None, 3), (2, 9)))
            for c in random_chain(TINY, 8, seed + i, bw=bw, lat=lat)]


def check_all(outcomes) -> None:
    failures = [o.failure() for o in outcomes if not o.passed]
    assert not failures, "\n".join(failures)


def test_engine_prefetch_chains(tmp_path) -> None:
    """R10b on Verilator: three runs of 8 GEMMs back to back (three DRAM timings), each
    command prefetching the next one's first weight block (host's rule, every third
    forced), idle cycles on params/cmd and mild back-pressure: outputs, busy cycles and
    bytes as the simulator's run of each sequence."""
    cases = prefetch_chains(SEED + 40)
    assert sum(c.preloaded for c in cases) >= 6
    outcomes = run_verilator(TINY, cases, seed=SEED, log_file=tmp_path / "sim.log")
    check_all(outcomes)
    assert all(o.cycles_rtl == o.cycles_sim for o in outcomes)


@pytest.mark.parametrize("preset", sorted(PARAMS))
def test_engine_random_gemms(preset, tmp_path) -> None:
    """24 random GEMMs (ragged M/N/K, mixed per-row schemes, every memory timing), load
    beats at the DRAM's cycles (R7), idle cycles on params/cmd and mild back-pressure on
    out; the tiny preset also runs two layers of the shipped QAT artifact: a conv in the
    engine's format and the logits (widest signed format in the command, where they
    saturate). Random cases draw their output format too. Every engine shape of
    :data:`SHAPES` runs the same way."""
    accel = PARAMS[preset]
    cases = random_cases(accel, RANDOM_CASES, seed=SEED)
    assert {c.out_fmt for c in cases} != {accel.engine.act_format}
    if preset == "tiny":
        cases += [artifact_layer_case(accel), artifact_layer_case(accel, layer="fc")]
    outcomes = run_verilator(accel, cases, seed=SEED, log_file=tmp_path / "sim.log")
    assert len(outcomes) == len(cases) >= 20
    check_all(outcomes)
    assert all(o.cycles_rtl == o.cycles_sim for o in outcomes)


def test_engine_heavy_back_pressure(tmp_path) -> None:
    """Idle params/cmd half the time and an ``out`` consumer ready 30 % of the time:
    outputs still exact."""
    cases = random_cases(TINY, 8, seed=SEED + 1)
    outcomes = run_verilator(TINY, cases, seed=SEED + 1, log_file=tmp_path / "sim.log",
                             patterns={"out": "heavy", "idle": 0.5})
    check_all(outcomes)


MATMULS = 10


def matmul_mix(seed: int) -> list:
    """Random matmuls (1 to 3 heads, each head one command; signed and unsigned operands of
    every width up to act_bits, extreme values, both operand layouts, every memory timing)
    interleaved with ordinary GEMMs, so each mode runs after the other on the same DUT."""
    groups = random_matmul_groups(TINY, MATMULS, seed=seed)
    gemms = random_cases(TINY, len(groups), seed=seed)
    cases = [c for pair in zip(groups, gemms, strict=True) for c in (*pair[0], pair[1])]
    # a full-range pair: every product of the extremes of an unsigned and a signed operand
    cases += random_matmul_cases(TINY, 2, 5, 9, 33, seed=seed, bw=4, lat=4, name="extreme")
    return cases


def test_engine_random_matmuls(tmp_path) -> None:
    """Attention matmuls on the engine (sim.timing R11): accumulators bit-exact against
    quant.ops.matmul, busy cycles and bytes requested equal to the simulator's cycle mode
    with the weight role at act_bits, under idle cycles on params/cmd and mild
    back-pressure on out; ordinary GEMMs in between stay exact."""
    cases = matmul_mix(SEED + 10)
    mm = [c for c in cases if c.matmul]
    assert {(c.a_signed, c.b_signed) for c in mm} == {(False, False), (False, True),
                                                       (True, False), (True, True)}
    assert any(int(abs(c.want).max()) >= (1 << (2 * TINY.engine.act_bits - 3)) for c in mm)
    outcomes = run_verilator(TINY, cases, seed=SEED + 10, log_file=tmp_path / "sim.log")
    check_all(outcomes)
    assert all(o.cycles_rtl == o.cycles_sim for o in outcomes)


def test_engine_matmuls_heavy_back_pressure(tmp_path) -> None:
    """Idle params/cmd half the time and an ``out`` consumer ready 30 % of the time: matmul
    accumulators still exact."""
    cases = matmul_mix(SEED + 11)
    outcomes = run_verilator(TINY, cases, seed=SEED + 11, log_file=tmp_path / "sim.log",
                             patterns={"out": "heavy", "idle": 0.5})
    check_all(outcomes)


def mutant(pattern: str, replacement: str, name: str, tmp_path, matmul: bool = False):
    """A build of the tiny top (``matmul``: with the matmul path) with one textual edit of
    its generated Verilog."""
    text, _ = generate(TINY, matmul=matmul)
    edited, count = re.subn(pattern, replacement, text)
    assert count >= 1 and edited != text, f"mutation {name!r} did not apply"
    return build_accel(TINY, REPO / "build" / "cocotb" / f"mutant-{name}", verilog=edited)


def test_mutant_sp2_shift_is_caught_by_the_output_check(tmp_path) -> None:
    """Every SP2 PE shifts its first term one place too little: outputs must differ."""
    b = mutant(r"= 2'h3 - w\[2:1\];", "= 2'h2 - w[2:1];", "sp2-shift", tmp_path)
    cases = random_cases(TINY, 6, seed=SEED + 2)
    outcomes = run_verilator(TINY, cases, seed=SEED + 2, build=b, log_file=tmp_path / "l")
    assert any(o.first_mismatch is not None for o in outcomes)
    assert not all(o.passed for o in outcomes)


def test_mutant_late_drain_is_caught_by_the_cycle_check(tmp_path) -> None:
    """The controller starts each drain one cycle late (R4): the cycle count must differ."""
    b = mutant(r"= rows \+ (\\cols\$\d+) ;", r"= rows + \1 + 1'h1;", "late-drain", tmp_path)
    cases = random_cases(TINY, 6, seed=SEED + 3)
    outcomes = run_verilator(TINY, cases, seed=SEED + 3, build=b, log_file=tmp_path / "l")
    assert any(o.cycles_rtl != o.cycles_sim for o in outcomes)
    assert not all(o.passed for o in outcomes)


# K of 1 and 2 against tiles of max(r, c) up to 4 cycles; N = 13, 17, 9: a last column
# block of one column after full ones (R4b's drain-port bound: r - c_next = 1 > s = 0)
SHORT_K = ((7, 13, 1), (4, 17, 2), (8, 9, 1))


def test_mutant_without_the_drain_hazard_is_caught(tmp_path) -> None:
    """A tile's last window no longer waits for the previous drain (R4b, both bounds):
    short-K tiles overwrite drain registers before they are drained, so outputs and cycles
    must differ."""
    b = mutant(r"= nleft <= \\\$\d+ ;", "= 1'h1;", "no-hazard", tmp_path)
    cases = [random_case(TINY, m, n, k, seed=SEED + i) for i, (m, n, k) in enumerate(SHORT_K)]
    outcomes = run_verilator(TINY, cases, seed=SEED + 4, build=b, log_file=tmp_path / "l")
    assert not any(o.outputs_equal for o in outcomes)
    assert all(o.cycles_rtl < o.cycles_sim for o in outcomes)


def test_mutant_without_the_capture_bound_is_caught(tmp_path) -> None:
    """R4b's capture bound removed (only the drain-port bound left, a tile's last window
    may end once the drain leaves room for the next): on the tiny engine (r = 2 < c = 4) the
    next tile's capture reaches drain registers before the second drain descriptor's tile
    was read, so outputs must differ and the GEMMs end early."""
    b = mutant(r"assign may_capture = nleft <= \\\$\d+ ;", "assign may_capture = 1'h1;",
               "no-capture-bound", tmp_path)
    cases = [random_case(TINY, m, n, k, seed=SEED + i) for i, (m, n, k) in enumerate(SHORT_K)]
    outcomes = run_verilator(TINY, cases, seed=SEED + 5, build=b, log_file=tmp_path / "l")
    assert not any(o.outputs_equal for o in outcomes)
    assert all(o.cycles_rtl < o.cycles_sim for o in outcomes)


def transparent_case(m: int, n: int, seed: int, tiling: tuple[int, int] | None = None):
    """A one-step GEMM (K = 1) whose outputs are its accumulators (multiplier 2**14, shift
    14, no bias, no ReLU, 16-bit signed outputs), so every activation shows in the output;
    unlimited DRAM, no latency; ``tiling`` the command's instead of the host's (R3)."""
    rng = np.random.default_rng(seed)
    e = TINY.engine
    rows = msq_assign(rng.normal(size=(m, 1)), 0.5, e.weight_bits, lut_scheme=e.lut_scheme)
    x = rng.integers(e.act_format.qmin, e.act_format.qmax + 1, size=(1, n))
    one = np.ones(m, dtype=np.int64)
    return make_case(f"transparent-{seed}", seed, rows, x, TINY, one << 14, 14 * one,
                     0 * one, 0 * one, bw=None, lat=0, out_fmt=ActFormat(16, True),
                     tiling=tiling)


def test_mutant_with_a_larger_ring_is_caught(tmp_path) -> None:
    """The loader's room check (R6) lets 48 steps into each 32-word ring: with unlimited
    DRAM and one-step blocks on tiles of four cycles (R4b: c + max(r - c', s) > K) the loads
    run ahead of the windows by three steps a tile; with more than 48 tiles (F >= 2 row
    steps of at least 25 column blocks) they get over 32 steps ahead and overwrite blocks
    not yet read, so outputs must differ. (Not 32 column blocks: the block 32 loads later
    has the same columns.) The command carries tiling order 1, not resident (R3's choice
    before R5b), which loads an activation block on every tile: the host now makes these
    GEMMs' weights resident (R5b), which loads only 30 activation blocks and 2 weight
    blocks, never 32 steps ahead."""
    b = mutant(r"_free = (\\\$\d+ \[\d+:0\]) <= 6'h20;", r"_free = \1 <= 6'h30;", "big-ring",
               tmp_path)
    cases = [transparent_case(m, n, SEED + i, tiling=(1, 0))
             for i, (m, n) in enumerate(((8, 120), (7, 112), (8, 100)))]
    good = run_verilator(TINY, cases, seed=SEED + 6, log_file=tmp_path / "good")
    check_all(good)
    outcomes = run_verilator(TINY, cases, seed=SEED + 6, build=b, log_file=tmp_path / "l")
    assert not any(o.outputs_equal for o in outcomes)


def test_mutant_presenting_a_step_before_its_word_is_caught(tmp_path) -> None:
    """The word check of R8 off by one (``in + beat - pos >= step`` instead of ``>``): a
    window presents step ``i`` once ``i`` words of its block are written, one cycle before
    word ``i`` is, so on a bandwidth-limited DRAM (words further apart than a cycle) some
    step reads a word not yet written: outputs and cycles must differ."""
    b = mutant(r"= (\\\$\d+ \[\d+:0\]) > step;", r"= \1 >= step;", "early-word", tmp_path)
    cases = [random_case(TINY, m, n, k, seed=SEED + 20 + i, bw=1, lat=3)
             for i, (m, n, k) in enumerate(((4, 4, 8), (7, 9, 20), (3, 6, 33)))]
    good = run_verilator(TINY, cases, seed=SEED + 20, log_file=tmp_path / "good")
    check_all(good)
    outcomes = run_verilator(TINY, cases, seed=SEED + 20, build=b, log_file=tmp_path / "l")
    assert not any(o.outputs_equal for o in outcomes)
    assert any(o.cycles_rtl < o.cycles_sim for o in outcomes)


# Q == 1 GEMMs whose inner loop's blocks fit a ring (R5b), both orders, K > 1 and K = 1
RESIDENT = ((12, 13, 5, (0, 1)), (12, 10, 8, (1, 1)), (3, 14, 1, (0, 1)), (9, 11, 1, (1, 1)))


def test_mutant_resident_base_off_by_one_block_is_caught(tmp_path) -> None:
    """The resident buffer's read base (R5b) no longer returns to word 0 at the inner loop's
    first tile but runs on ``K`` words past the previous tile's block, a block too far:
    later outer iterations read words no block of theirs was loaded into, so outputs must
    differ (the same cases pass on the unmutated top)."""
    b = mutant(r"(\w)_home(_next)? \? (?:5'h00|w_org) : (\\\$\d+) ;", r"\3 ;",
               "resident-base", tmp_path)
    cases = [random_case(TINY, m, n, k, seed=SEED + i, tiling=t)
             for i, (m, n, k, t) in enumerate(RESIDENT)]
    good = run_verilator(TINY, cases, seed=SEED + 7, log_file=tmp_path / "good")
    check_all(good)
    assert all(o.cycles_rtl == o.cycles_sim for o in good)
    outcomes = run_verilator(TINY, cases, seed=SEED + 7, build=b, log_file=tmp_path / "l")
    assert not any(o.outputs_equal for o in outcomes)


def test_mutant_unsigned_matmul_port_is_caught(tmp_path) -> None:
    """The DSP PEs' weight-role port ignores ``a_signed`` (a signed operand's values enter
    zero-extended, as if the act_bits + 1-bit port were unsigned): matmuls with a negative
    weight-role value must differ, while ordinary GEMMs stay exact."""
    b = mutant(r"= \\port\$\d+\$\d+ \[\d+\] & (\\port\$\d+\$0 \[\d+\]);", r"= 1'h0 & \1;",
               "unsigned-matmul-port", tmp_path, matmul=True)
    cases = matmul_mix(SEED + 12)
    outcomes = run_verilator(TINY, cases, seed=SEED + 12, build=b, log_file=tmp_path / "l")
    signed_a = [o for o, c in zip(outcomes, cases, strict=True)
                if c.matmul and c.a_signed and (c.words < 0).any()]
    assert signed_a and not any(o.outputs_equal for o in signed_a)
    assert all(o.passed for o, c in zip(outcomes, cases, strict=True) if not c.matmul)


def test_mutant_bypass_dropping_a_bit_is_caught(tmp_path) -> None:
    """The DSP post-processor's bypass drops the accumulators' lowest bit (R11d): matmuls
    with an odd accumulator must differ, while ordinary GEMMs stay exact."""
    b = mutant(r"(acc\[\d+:\d+\] \}) :", r"\1 & ~1 :", "bypass-bit", tmp_path, matmul=True)
    cases = matmul_mix(SEED + 13)
    outcomes = run_verilator(TINY, cases, seed=SEED + 13, build=b, log_file=tmp_path / "l")
    odd = [o for o, c in zip(outcomes, cases, strict=True) if c.matmul and (c.want % 2).any()]
    assert odd and not any(o.outputs_equal for o in odd)
    assert all(o.passed for o, c in zip(outcomes, cases, strict=True) if not c.matmul)


def test_mutant_prefetch_origin_is_caught(tmp_path) -> None:
    """A preloaded command reads its first weight block from ring word 0 instead of where
    the prefetch wrote it (after the previous GEMM's blocks, R10b): outputs must differ."""
    b = mutant(r"assign org_in = cmd__payload\[\d+\] \? \\\$\d+ \[\d+:0\] : 5'h00;",
               "assign org_in = 5'h00;", "prefetch-origin", tmp_path)
    cases = prefetch_chains(SEED + 30)
    assert sum(c.preloaded for c in cases) >= 4
    outcomes = run_verilator(TINY, cases, seed=SEED + 30, build=b, log_file=tmp_path / "l")
    assert not all(o.outputs_equal for o in outcomes)


def test_mutant_done_before_the_prefetch_is_in_is_caught(tmp_path) -> None:
    """``busy`` falls at the last drain even while the prefetched block still arrives (R10b:
    the GEMM is done one cycle after its last word): a forced prefetch that ends late must
    show in the cycle count."""
    b = mutant(r"(\\\$\d+ ) & pf_ok;", r"\1;", "prefetch-done", tmp_path)
    cases = prefetch_chains(SEED + 31)
    assert any(c.prefetch is not None for c in cases)
    outcomes = run_verilator(TINY, cases, seed=SEED + 31, build=b, log_file=tmp_path / "l")
    assert any(o.cycles_rtl != o.cycles_sim for o in outcomes)
    assert not all(o.passed for o in outcomes)
