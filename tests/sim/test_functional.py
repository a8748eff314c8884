"""Functional mode: numba outputs equal the reference kernels bit for bit, on random
mixed-scheme layers and on a whole artifact; and the kernels agree with NUMBA_DISABLE_JIT."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant import ref
from quant.artifact import load_artifact, save_artifact
from quant.errors import ArtifactError, ConfigError, OverflowRiskError
from quant.formats import WEIGHT_BITS, ActFormat, Scheme
from quant.infer import run_artifact as ref_run_artifact
from quant.rows import QuantizedRows
from sim import functional as F
from sim.config import load_accelerator
from sim.timing import RESULT_COLUMNS, ScheduleResult, _gemm_schedule
from tests.sim.conftest import with_value


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 24), st.integers(1, 40), st.integers(1, 30),
       st.sampled_from([Scheme.SP2, Scheme.POT]), st.integers(3, 8), st.booleans(),
       st.integers(2, 12), st.booleans())
def test_gemm_and_requant_equal_reference(seed, m, k, n, lut, bits, signed, abits, relu):
    if bits not in WEIGHT_BITS[lut]:
        bits = 4
    rng = np.random.default_rng(seed)
    rows = F.random_rows(rng, m, k, bits, int(rng.integers(0, m + 1)), lut)
    fmt = ActFormat(abits, signed)
    x = rng.integers(fmt.qmin, fmt.qmax + 1, (k, n))
    need = ref.required_acc_bits(k, rows.max_abs_int(), fmt.max_abs)
    acc_bits = int(rng.integers(need, 65))
    y = F.gemm(rows, x, fmt, acc_bits)
    assert np.array_equal(y, ref.gemm(rows, x, fmt, acc_bits))
    assert np.array_equal(y, ref.gemm_hw(rows, x, fmt, acc_bits))
    mult = rng.integers(0, 1 << 15, m)
    shift = rng.integers(-4, 40, m)
    bias = rng.integers(-1000, 1000, m)
    out = ActFormat(int(rng.integers(2, 17)), bool(rng.integers(0, 2)))
    assert np.array_equal(F.requantize(y, mult, shift, out, bias=bias, relu=relu),
                          ref.requantize(y, mult, shift, out, bias=bias, relu=relu))


def test_ties_round_half_to_even():
    acc = np.array([[5, 6, 7, -5, -6, -7, 2, -2]])
    for s in (1, 2):
        assert np.array_equal(F.requantize(acc, 1, s, ActFormat(8, True)),
                              ref.requantize(acc, 1, s, ActFormat(8, True)))


def test_kernels_match_pure_python():
    """The same integers with the JIT disabled (py_func), as NUMBA_DISABLE_JIT=1 would."""
    rng = np.random.default_rng(3)
    w = rng.integers(-7, 8, (5, 9))
    x = rng.integers(0, 16, (9, 4))
    assert np.array_equal(F._gemm.py_func(w, x), F._gemm(w, x))
    acc = rng.integers(-10**6, 10**6, (5, 4))
    args = (acc, rng.integers(1, 1 << 14, 5), rng.integers(-2, 20, 5),
            rng.integers(-9, 9, 5), True, 0, 255)
    assert np.array_equal(F._requant.py_func(*args), F._requant(*args))
    a, b = np.zeros(RESULT_COLUMNS, np.int64), np.zeros(RESULT_COLUMNS, np.int64)
    _gemm_schedule.py_func(3, 2, 6, 20, 0, 0, 2, 2, 4, 1, 16, 4, 4, 4, 4, 1 << 40, a)
    _gemm_schedule(3, 2, 6, 20, 0, 0, 2, 2, 4, 1, 16, 4, 4, 4, 4, 1 << 40, b)
    assert np.array_equal(a, b) and ScheduleResult.from_row(a).cycles == 111  # R4b, R8


def test_invalid_words_and_overflow():
    rows = QuantizedRows(words=np.array([[8, 1]]), scheme_ids=np.array([0], np.int8),
                         alphas=np.ones(1), bits=4)  # 8 = -8 is not a fixed-4 code
    with pytest.raises(ConfigError, match="code word 8 at row 0 is not a valid fixed-4 code"):
        F.gemm(rows, np.ones((2, 1), np.int64), ActFormat(4))
    ok = F.random_rows(np.random.default_rng(0), 2, 3000, 8, 1)
    with pytest.raises(OverflowRiskError, match="acc_bits must be at least"):
        F.gemm(ok, np.ones((3000, 1), np.int64), ActFormat(8), 24)


def test_whole_artifact_bit_exact(tmp_path, small_artifact):
    save_artifact(small_artifact, tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    codes = np.random.default_rng(1).integers(0, 16, (3, 3, 8, 8))
    want = ref_run_artifact(art, codes, return_values=True)
    got = F.run_artifact(art, codes, load_accelerator("tiny"))
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    for name in ("c1", "c2", "c3", "fc"):  # outputs vary, so a broken GEMM would show
        assert len(np.unique(got[name])) > 3, name


def test_artifact_accelerator_mismatch(small_artifact):
    art = small_artifact
    with pytest.raises(ArtifactError, match="weight_bits must match engine.weight_bits 8, not 4"):
        F.check_artifact(art, load_accelerator("xczu9eg"))
    with pytest.raises(ArtifactError, match="layer 'c1': rows use sp2 but the LUT core runs pot"):
        F.check_artifact(art, load_accelerator("tiny", ["engine.lut_scheme=pot"]))
    with pytest.raises(ArtifactError, match="input format uint4 must fit the engine's "
                                            "activations uint3"):
        F.check_artifact(art, load_accelerator("tiny", ["engine.act_bits=3"]))
    with pytest.raises(ArtifactError, match="engine.acc_bits must be at least"):
        F.check_artifact(art, load_accelerator("tiny", ["engine.acc_bits=8"]))


@pytest.mark.parametrize(("field", "inside", "outside", "allowed"), [
    ("mult", (0, 1, 65535), (65536, -1), "0..65535"),
    ("shift", (0, 31), (32, -1), "0..31"),
    ("bias", (-2**23, 2**23 - 1), (2**23, -2**23 - 1), "-8388608..8388607"),
])
def test_artifact_requantization_edges(small_artifact, field, inside, outside, allowed):
    """tiny's engine (24-bit accumulators) runs every requantization REQUANTIZER accepts,
    bit-exact, and refuses the values just beyond with one line: layer, field, value, range."""
    tiny = load_accelerator("tiny")
    codes = np.random.default_rng(2).integers(0, 16, (2, 3, 8, 8))
    for v in inside:
        art = with_value(small_artifact, "c2", field, 3, v)
        got = F.run_artifact(art, codes, tiny)
        assert all(np.array_equal(got[n], w)
                   for n, w in ref_run_artifact(art, codes, return_values=True).items())
    for v in outside:
        art = with_value(small_artifact, "c2", field, 3, v)
        with pytest.raises(ArtifactError, match=rf"^layer 'c2': {field}\[3\] must be in "
                                                rf"{allowed} \(.*\), not {v}$"):
            F.check_artifact(art, tiny)

