# amaranth: UnusedElaboratable=no
"""The accelerator top runs whole GEMMs: outputs bit-exact vs quant.ref, cycles == sim.timing.

The testbench is the DRAM of sim.timing rule R7 (see docs/rtl.md): it accepts a load
request when its one read channel is free, completes each block ``L + ceil(bytes / B)``
cycles after its start (0 when unlimited) and sends the block's beats in the cycles R7
gives its words. The count of ``busy`` cycles must equal the simulator's cycle mode
(:func:`sim.timing.schedule_cycles`) for the same shape.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from hw.accel import GemmAccelerator
from hw.tb.amaranth_bench import run_case
from hw.tb.cases import random_case, with_memory
from quant.errors import ConfigError
from sim.config import load_accelerator, replace_engine
from sim.timing import GemmShape, compute_cycles, gemm_tiling, transfer_cycles

pytestmark = pytest.mark.filterwarnings("error")


TINY = load_accelerator("tiny")
# (M, N, K, DRAM bytes/cycle, latency): both loop orders, Q = 1 and Q > 1, ragged tiles.
CASES = [
    (7, 6, 20, None, 0),
    (5, 9, 7, None, 0),
    (6, 10, 35, 4, 4),   # the tiny preset's memory
    (9, 13, 3, 4, 4),
    (3, 5, 9, 1, 0),
    (7, 9, 16, None, 3),
    (4, 17, 1, 2, 1),
    (8, 6, 12, None, 12),  # an activation block that must wait behind a weight block (R7)
]


def check_requests(run, case, bw: int | None, lat: int) -> None:
    """R5/R7: the blocks the simulator loads, in order on the channel, each accepted no
    earlier than L before the previous one completes and complete L + its transfer after."""
    assert sum(r[3] for r in run.requests) == case.dram_read
    assert all(b[1] >= a[2] - lat for a, b in itertools.pairwise(run.requests))
    assert all(r[2] == r[1] + lat + transfer_cycles(r[3], bw) for r in run.requests)


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), CASES,
                         ids=[f"m{m}n{n}k{k}-bw{bw}-lat{lat}" for m, n, k, bw, lat in CASES])
def test_gemm_bit_exact_and_cycles_equal_sim(m, n, k, bw, lat) -> None:
    case = random_case(TINY, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
    run = run_case(with_memory(TINY, bw, lat), case)
    np.testing.assert_array_equal(run.y, case.want)
    assert run.cycles == case.cycles
    check_requests(run, case, bw, lat)
    e = TINY.engine
    mf = len(case.fixed_rows)
    shape = GemmShape(mf, m - mf, n, k)
    order = gemm_tiling(shape, e.dsp_rows, e.lut_rows, e.cols, TINY.memory.k_tile,
                        e.weight_bits, e.act_bits).order
    compute = compute_cycles(shape, e.dsp_rows, e.lut_rows, e.cols, order, e.dsp_packing)
    if bw is None and lat == 0:
        assert run.cycles == compute
    else:
        assert run.cycles > compute


# (M, N, K, DRAM bytes/cycle, latency): Q == 1 GEMMs where residency (R5b) applies in both
# orders (F = 3 or 4, J = 3 or 4, F*K and J*K within the 32-word rings), run in every tiling
# a command may carry (the host's R3 choice and the others).
TILED = [(12, 10, 8, None, 0), (12, 13, 5, 4, 4), (16, 9, 7, 1, 0), (14, 16, 2, None, 3),
         (9, 11, 9, 8, 12), (3, 14, 1, 2, 1)]


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), TILED,
                         ids=[f"m{m}n{n}k{k}-bw{bw}-lat{lat}" for m, n, k, bw, lat in TILED])
def test_every_tiling_bit_exact_and_cycles_equal_sim(m, n, k, bw, lat) -> None:
    """R3/R5b: the command's order and residency bit, whichever allowed tiling it carries:
    outputs, busy cycles and the blocks requested (a resident buffer's only in the first
    outer iteration) as the simulator's cycle mode for that tiling."""
    from hw.tb.cases import allowed_tilings, case_command

    base = random_case(TINY, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
    mf = len(base.fixed_rows)
    tilings = allowed_tilings(TINY, mf, m - mf, n, k)
    assert {t[1] for t in tilings} == {0, 1}
    for tiling in tilings:
        case = random_case(TINY, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat,
                           tiling=tiling)
        assert case_command(TINY, case)["order"] == tiling[0]
        assert case_command(TINY, case)["resident"] == tiling[1]
        run = run_case(with_memory(TINY, bw, lat), case)
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()
        check_requests(run, case, bw, lat)


def test_random_cases_cover_every_tiling() -> None:
    """The random cases (fpim verify, the cocotb suites) include resident GEMMs in both
    orders and non-resident ones in both, host-chosen and random tilings."""
    from hw.tb.cases import case_command, random_cases

    seen = {(d["order"], d["resident"]) for d in (
        case_command(TINY, c) for c in random_cases(TINY, 60, seed=7))}
    assert seen == {(0, 0), (1, 0), (0, 1), (1, 1)}


def test_accelerator_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^accel must be a sim\.arch\.Accelerator, not 3$"):
        GemmAccelerator(3)
    with pytest.raises(ConfigError, match=r"^param_depth must be an integer in"):
        GemmAccelerator(TINY, param_depth=0)


def test_a_core_without_rows_is_absent_from_the_top() -> None:
    """DSP-only and LUT-only engines build (they were refused before issue 13): the missing
    core has no fields in the weight beats, the load requests and the output rows."""
    for rows, cores in (({"lut_rows": 0}, ("dsp",)), ({"dsp_rows": 0}, ("lut",))):
        top = GemmAccelerator(replace_engine(TINY, **rows))
        assert top.cores == cores
        assert set(top.w_beat_layout.members) == set(cores)
        names = set(top.out_layout.members)
        assert names == {*cores, *(f"row_{c}" for c in cores), *(f"{c}_en" for c in cores),
                         "col0", "cols"}
    assert GemmAccelerator(TINY).cores == ("dsp", "lut")


def test_random_gemms_bit_exact_and_cycles_equal_sim() -> None:
    """30 random cases (every memory timing, every-row-on-one-core splits included).

    The eight hand-picked cases above missed a stale read address in the cycle before a
    first window that starts in the first busy cycle (blocks loading in zero cycles); these
    random ones found it.
    """
    from hw.tb.cases import random_cases

    for case in random_cases(TINY, 30, seed=7):
        run = run_case(with_memory(TINY, case.bw, case.lat), case)
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()


# Attention matmuls (sim.timing R11): the tiny engine (act_bits = weight_bits), one whose
# weight words carry two 4-bit values each (8-bit weights) and one whose 6-bit values span
# word boundaries (3 DSP rows of 4-bit weights hold 2 of them), with signed activations.
DENSE = dataclasses.replace(replace_engine(TINY, weight_bits=8, lut_rows=1, acc_bits=32),
                            name="tiny_w8")
WIDE = dataclasses.replace(replace_engine(TINY, dsp_rows=3, act_bits=6, act_signed=True),
                           name="tiny_a6")
# (engine, heads, M, N, K, DRAM bytes/cycle, latency, seed)
MATMULS = [
    (TINY, 2, 7, 6, 20, None, 0, 1),
    (TINY, 3, 4, 9, 35, 4, 4, 2),
    (TINY, 1, 2, 17, 1, 2, 1, 3),
    (TINY, 2, 5, 3, 16, None, 12, 4),
    (DENSE, 2, 5, 10, 9, 3, 7, 5),
    (DENSE, 1, 2, 4, 40, 1, 0, 6),
    (WIDE, 2, 4, 7, 18, 4, 4, 7),
    (WIDE, 1, 2, 13, 5, None, 3, 8),
]


@pytest.mark.parametrize(("accel", "g", "m", "n", "k", "bw", "lat", "seed"), MATMULS,
                         ids=[f"{a.name}-g{g}m{m}n{n}k{k}-bw{bw}-lat{lat}"
                              for a, g, m, n, k, bw, lat, _ in MATMULS])
def test_matmul_bit_exact_and_cycles_equal_sim(accel, g, m, n, k, bw, lat, seed) -> None:
    """Each head is one command: accumulators equal quant.ops.matmul's, busy cycles and bytes
    requested the simulator's, and the heads together what sim.engine.simulate times for
    the matmul layer (R11: weight role at act_bits, groups x one group)."""
    from hw.tb.cases import random_matmul_cases
    from sim.engine import simulate
    from sim.workload import GemmOp, Workload

    cases = random_matmul_cases(accel, g, m, n, k, seed, bw=bw, lat=lat)
    mem = with_memory(accel, bw, lat)
    assert GemmAccelerator(mem, matmul=True).runs_matmul
    total = 0
    for case in cases:
        run = run_case(mem, case)
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()
        check_requests(run, case, bw, lat)
        total += run.cycles
    op = GemmOp("attn", "matmul", m=m, n=n, k=k, groups=g, splits=((m, 0, g),))
    layer = simulate(Workload("mm", (op,)), mem, "cycle").layers[0]
    assert layer.cycles == total


def test_matmul_operands_cover_signs_and_extremes() -> None:
    """The random matmuls draw every signedness pair and the formats' extreme values."""
    from hw.tb.cases import random_matmul_groups

    cases = [c for grp in random_matmul_groups(TINY, 24, seed=3) for c in grp]
    assert {(c.a_signed, c.b_signed) for c in cases} == {
        (False, False), (False, True), (True, False), (True, True)}
    act = TINY.engine.act_bits
    assert any(c.words.min() == -(1 << (act - 1)) + 1 for c in cases)
    assert any(c.x.max() == (1 << act) - 1 for c in cases)
    assert {c.words.shape[0] for c in cases} >= {1, 2, 3, 4}


def test_matmul_refused_where_the_top_cannot_run_it() -> None:
    """A packed DSP core has no matmul path (sim.resources.rtl_runs_matmul), and a block
    that does not fit the weight words (sim.resources.matmul_block_violation) is refused."""
    from hw.tb.cases import random_matmul_cases

    packed = replace_engine(TINY, dsp_packing=2)
    with pytest.raises(ConfigError, match=r"^matmul must be False for an engine with "
                                          r"dsp_rows 2, dsp_packing 2 and acc_bits 24 "):
        GemmAccelerator(packed, matmul=True)
    with pytest.raises(ConfigError, match=r"^matmul must be a bool, not 1$"):
        GemmAccelerator(TINY, matmul=1)
    with pytest.raises(ConfigError, match=r"^engine must have the generated top's matmul "):
        random_matmul_cases(packed, 1, 2, 3, 4, seed=0)
    with pytest.raises(ConfigError, match=r"need 18 bits of a weight-buffer word, but its "
                                          r"DSP rows have 12"):
        random_matmul_cases(WIDE, 1, 3, 3, 4, seed=0)


def test_ordinary_gemms_unchanged_on_the_matmul_path() -> None:
    """A top with the matmul path runs ordinary GEMMs exactly and on time (its widened DSP
    operands, wider DSP lanes and bypass; signed activations and 8-bit weights included),
    and without the path the top has none of its fields."""
    from hw.tb.cases import random_cases

    plain, mm = GemmAccelerator(TINY), GemmAccelerator(TINY, matmul=True)
    assert not plain.runs_matmul and mm.runs_matmul
    assert "matmul" not in plain.cmd.payload.shape().members
    assert {"matmul", "a_signed", "b_signed"} <= set(mm.cmd.payload.shape().members)
    for accel in (TINY, DENSE, WIDE):
        for case in random_cases(accel, 4, seed=11):
            mem = with_memory(accel, case.bw, case.lat)
            run = run_case(mem, case, dut=GemmAccelerator(mem, matmul=True))
            np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
            assert run.cycles == case.cycles, case.describe()


@pytest.mark.parametrize(("bw", "lat", "seed"), [(4, 4, 1), (1, 0, 2), (None, 3, 3),
                                                 (2, 9, 4), (8, 12, 5)])
def test_prefetch_chains_bit_exact_and_cycles_equal_sim(bw, lat, seed) -> None:
    """R10b: GEMMs back to back on one top, each command prefetching the next one's first
    weight block where the host's rule allows (and, in every third, forced even where it
    lengthens the GEMM): outputs, busy cycles and the bytes each command requests equal the
    simulator's run of the whole sequence; the preloaded commands request no first weight
    block, and every ring position a chain leaves is reached (the prefetched block starts
    where the ring's write position is)."""
    from hw.tb.amaranth_bench import run_cases
    from hw.tb.cases import chained, random_chain
    from sim.timing import CHAIN_NONE

    mem = with_memory(TINY, bw, lat)
    cases = random_chain(TINY, 7, seed, bw=bw, lat=lat)
    assert any(c.preloaded for c in cases)
    runs = run_cases(mem, cases)
    for case, run in zip(cases, runs, strict=True):
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()
        assert sum(r[3] for r in run.requests) == case.dram_read, case.describe()
    # without the prefetches the same GEMMs take at least as long, one by one
    plain = chained(TINY, cases, [CHAIN_NONE] * len(cases))
    assert all(c.cycles <= p.cycles or c.prefetch is not None
               for c, p in zip(cases, plain, strict=True))


#: The tiny engine with column group B on its last column (R3c: groups of 3 + 1 columns).
GROUPED = replace_engine(TINY, group_b_cols=1)
# (M, N, K, DRAM bytes/cycle, latency) for dealt GEMMs: random legal deals of each
DEALT = [(7, 6, 16, None, 0), (9, 13, 12, 4, 4), (12, 10, 8, None, 3), (5, 9, 16, 1, 0),
         (16, 7, 6, 8, 12), (4, 3, 9, 2, 1), (13, 11, 14, None, 0)]


def _legal_deals(accel, m_fixed: int, m_lut: int, n: int, count: int, seed: int):
    from hw.tb.cases import random_deal

    rng = np.random.default_rng(seed)
    return [random_deal(accel, m_fixed, m_lut, n, rng) for _ in range(count)]


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), DEALT,
                         ids=[f"m{m}n{n}k{k}-bw{bw}-lat{lat}" for m, n, k, bw, lat in DEALT])
def test_dealt_gemms_bit_exact_and_cycles_equal_sim(m, n, k, bw, lat) -> None:
    """R3c on the top: two column groups, each on its own row steps' weights, for random
    legal deals (groups idle, steps to one group only): outputs, busy cycles and the
    blocks requested as the simulator's cycle mode for that deal."""
    base = random_case(GROUPED, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
    mf = len(base.fixed_rows)
    for deal in _legal_deals(GROUPED, mf, m - mf, n, 3, seed=m + n + k):
        case = random_case(GROUPED, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat,
                           tiling=(0, 0, *deal))
        run = run_case(with_memory(GROUPED, bw, lat), case)
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()
        check_requests(run, case, bw, lat)


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), CASES[:4] + TILED[:3],
                         ids=[f"m{m}n{n}k{k}" for m, n, k, _, _ in CASES[:4] + TILED[:3]])
def test_grouped_engine_runs_the_other_tilings(m, n, k, bw, lat) -> None:
    """On an engine with column group B the R3 tilings run as before, over three-bank
    rings, with the host's choice (dealt where R3c's condition holds)."""
    case = random_case(GROUPED, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
    run = run_case(with_memory(GROUPED, bw, lat), case)
    np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
    assert run.cycles == case.cycles, case.describe()
    check_requests(run, case, bw, lat)


GROUPED_PACKED = dataclasses.replace(
    replace_engine(dataclasses.replace(TINY, memory=dataclasses.replace(
        TINY.memory, weight_bank_kib=0.25, act_bank_kib=0.25, out_bank_kib=0.25)),
        dsp_rows=5, weight_bits=8, act_bits=8, dsp_packing=2, group_b_cols=2, acc_bits=32),
    name="tiny_p2_g2")


def test_dealt_gemms_on_a_packed_core() -> None:
    """R3c with R4b's capture lead on a DSP core packing two rows per multiplier: the
    larger of the groups' DSP rows sets it."""
    for m, n, k, bw, lat in [(11, 9, 12, None, 0), (14, 6, 16, 4, 3), (8, 11, 9, 2, 0)]:
        base = random_case(GROUPED_PACKED, m, n, k, seed=m + n + k, bw=bw, lat=lat)
        mf = len(base.fixed_rows)
        for deal in _legal_deals(GROUPED_PACKED, mf, m - mf, n, 2, seed=m * n * k):
            case = random_case(GROUPED_PACKED, m, n, k, seed=m + n + k, bw=bw, lat=lat,
                               tiling=(0, 0, *deal))
            run = run_case(with_memory(GROUPED_PACKED, bw, lat), case)
            np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
            assert run.cycles == case.cycles, case.describe()
            check_requests(run, case, bw, lat)


def test_grouped_matmuls_the_host_deals() -> None:
    """Matmuls (R11) on an engine with column group B, the host's tiling: dealt where R3c's
    condition holds (group B's weight-role words widened like group A's)."""
    from hw.tb.cases import command_deal, random_matmul_cases

    dealt = 0
    for g, m, n, k, bw, lat, seed in [(2, 7, 6, 20, None, 0, 1), (1, 8, 7, 12, 4, 2, 2),
                                      (2, 5, 9, 16, None, 3, 3)]:
        mem = with_memory(GROUPED, bw, lat)
        for case in random_matmul_cases(GROUPED, g, m, n, k, seed, bw=bw, lat=lat):
            dealt += bool(command_deal(GROUPED, case))
            run = run_case(mem, case)
            np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
            assert run.cycles == case.cycles, case.describe()
            check_requests(run, case, bw, lat)
    assert dealt >= 2


#: One post-processor for both cores (``engine.shared_post``, R4: a tile drains its DSP
#: rows, then its LUT rows; R4b's capture lead covers the later read of the LUT rows): on
#: the tiny engine, with column group B, and with column groups and a packed DSP core.
SHARED = dataclasses.replace(replace_engine(TINY, shared_post=True), name="tiny_shared")
SHARED_GROUPED = dataclasses.replace(replace_engine(GROUPED, shared_post=True),
                                     name="tiny_shared_groups")
SHARED_PACKED = dataclasses.replace(replace_engine(GROUPED_PACKED, shared_post=True),
                                    name="tiny_p2_g2_shared")


def test_shared_post_processor_bit_exact_and_cycles_equal_sim() -> None:
    """Random GEMMs (every tiling, memory timing and core split) on one post-processor:
    outputs, busy cycles and requests as the simulator's cycle mode, which charges each tile
    ``a_f + b_f`` drain cycles."""
    from hw.tb.cases import random_cases

    for case in random_cases(SHARED, 24, seed=21):
        run = run_case(with_memory(SHARED, case.bw, case.lat), case)
        np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
        assert run.cycles == case.cycles, case.describe()
        check_requests(run, case, case.bw, case.lat)


@pytest.mark.parametrize("accel", [SHARED_GROUPED, SHARED_PACKED], ids=lambda a: a.name)
def test_shared_post_processor_dealt_and_tiled(accel) -> None:
    """R3c's dealt tiles on one post-processor (the groups' larger DSP rows drain first,
    then their larger LUT rows) and the host's tilings on the same engine."""
    for m, n, k, bw, lat in DEALT[:5]:
        base = random_case(accel, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
        mf = len(base.fixed_rows)
        tilings = [None, *((0, 0, *d) for d in _legal_deals(accel, mf, m - mf, n, 2, m + k))]
        for tiling in tilings:
            case = random_case(accel, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat,
                               tiling=tiling)
            run = run_case(with_memory(accel, bw, lat), case)
            np.testing.assert_array_equal(run.y, case.want, err_msg=case.describe())
            assert run.cycles == case.cycles, case.describe()
            check_requests(run, case, bw, lat)
