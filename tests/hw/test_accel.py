# amaranth: UnusedElaboratable=no
"""The accelerator top runs whole GEMMs: outputs bit-exact vs quant.ref, cycles == sim.timing.

The testbench is the DRAM of sim.timing rule R7 (see docs/rtl.md): it accepts a load
request when its one read channel is free, pulses ``w_loaded``/``x_loaded`` exactly
``L + ceil(bytes / B)`` cycles after each block's start (0 when unlimited), and streams the
block's beats back to back from the accepted request on. The count of ``busy`` cycles must
equal the simulator's cycle mode (:func:`sim.timing.schedule_cycles`) for the same shape.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hw.accel import GemmAccelerator
from hw.tb.amaranth_bench import run_case
from hw.tb.cases import random_case, with_memory
from quant.errors import ConfigError
from sim.config import load_accelerator, replace_engine
from sim.timing import GemmShape, compute_cycles, gemm_loop_order, transfer_cycles

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


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), CASES,
                         ids=[f"m{m}n{n}k{k}-bw{bw}-lat{lat}" for m, n, k, bw, lat in CASES])
def test_gemm_bit_exact_and_cycles_equal_sim(m, n, k, bw, lat) -> None:
    case = random_case(TINY, m, n, k, seed=m * 1000 + n * 10 + k, bw=bw, lat=lat)
    run = run_case(with_memory(TINY, bw, lat), case)
    np.testing.assert_array_equal(run.y, case.want)
    assert run.cycles == case.cycles
    # R5/R7: the same blocks, in order on the channel, each accepted no earlier than L
    # before the previous one completes and complete L + its transfer after.
    assert sum(r[3] for r in run.requests) == case.dram_read
    assert all(b[1] >= a[2] - lat for a, b in itertools.pairwise(run.requests))
    assert all(r[2] == r[1] + lat + transfer_cycles(r[3], bw) for r in run.requests)
    e = TINY.engine
    mf = len(case.fixed_rows)
    shape = GemmShape(mf, m - mf, n, k)
    order = gemm_loop_order(shape, e.dsp_rows, e.lut_rows, e.cols, TINY.memory.k_tile,
                            e.weight_bits, e.act_bits)
    compute = compute_cycles(shape, e.dsp_rows, e.lut_rows, e.cols, order, e.dsp_packing)
    if bw is None and lat == 0:
        assert run.cycles == compute
    else:
        assert run.cycles > compute


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
