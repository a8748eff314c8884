"""Reference kernels against exact Python-integer computations."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant import ref
from quant.errors import ConfigError, OverflowRiskError, ShapeError
from quant.formats import ActFormat, Scheme, weight_format
from quant.rows import QuantizedRows

seeds = st.integers(0, 2**31 - 1)


def random_rows(rng: np.random.Generator, m: int, k: int, bits: int,
                schemes=(Scheme.FIXED, Scheme.SP2, Scheme.POT)) -> QuantizedRows:
    ids = rng.choice([int(s) for s in schemes if bits in range(*_bits(s))], size=m)
    words = np.empty((m, k), dtype=np.int64)
    for r in range(m):
        fmt = weight_format(int(ids[r]), bits)
        words[r] = rng.choice(np.flatnonzero(fmt.valid_words), size=k)
    return QuantizedRows(words, ids.astype(np.int8), rng.uniform(0.1, 2, size=m), bits)


def _bits(s: Scheme) -> tuple[int, int]:
    from quant.formats import WEIGHT_BITS
    r = WEIGHT_BITS[s]
    return r.start, r.stop


def exact_gemm(rows: QuantizedRows, x: np.ndarray) -> list[list[int]]:
    w = [[int(v) for v in row] for row in rows.int_weights()]
    xs = [[int(v) for v in row] for row in x]
    return [[sum(w[i][t] * xs[t][j] for t in range(len(xs))) for j in range(len(xs[0]))]
            for i in range(len(w))]


@settings(max_examples=60, deadline=None)
@given(seeds, st.integers(1, 9), st.integers(1, 40), st.integers(1, 7),
       st.sampled_from([3, 4, 5, 6]), st.sampled_from([(4, False), (8, False), (8, True)]))
def test_gemm_equals_exact_integers(seed, m, k, n, bits, act) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, m, k, bits)
    x_fmt = ActFormat(*act)
    x = rng.integers(x_fmt.qmin, x_fmt.qmax + 1, size=(k, n))
    acc_bits = ref.required_acc_bits(k, rows.max_abs_int(), x_fmt.max_abs)
    got = ref.gemm(rows, x, x_fmt, acc_bits=acc_bits)
    assert got.tolist() == exact_gemm(rows, x)
    assert np.array_equal(ref.gemm_hw(rows, x, x_fmt, acc_bits=acc_bits), got)


@pytest.mark.parametrize("bound_bits", [20, 30, 60])
def test_gemm_paths_float32_float64_int64_are_exact(bound_bits) -> None:
    """Pick K and formats so each exact path (float32, float64, int64) is exercised."""
    rng = np.random.default_rng(bound_bits)
    bits = {20: 4, 30: 8, 60: 16}[bound_bits]
    x_fmt = ActFormat(16 if bound_bits == 60 else 8)
    k = 33
    m = 5
    fmt = weight_format("fixed", bits)
    words = fmt.encode(rng.uniform(-1, 1, size=(m, k)))
    rows = QuantizedRows(words, np.zeros(m, np.int8), np.ones(m), bits)
    x = rng.integers(0, x_fmt.qmax + 1, size=(k, 3))
    got = ref.gemm(rows, x, x_fmt, acc_bits=64)
    assert got.tolist() == exact_gemm(rows, x)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10_000), st.integers(1, 2**16), st.integers(1, 2**16))
def test_overflow_check_fires_exactly_when_bound_exceeded(k, wmax, xmax) -> None:
    bound = k * wmax * xmax
    need = ref.required_acc_bits(k, wmax, xmax)
    assert bound <= 2 ** (need - 1) - 1 and (need == 2 or bound > 2 ** (need - 2) - 1)
    assert ref.check_accumulator(k, wmax, xmax, need) == bound
    if need > 2:
        with pytest.raises(OverflowRiskError, match=f"acc_bits must be at least {need}"):
            ref.check_accumulator(k, wmax, xmax, need - 1)


def test_overflow_at_exact_limit() -> None:
    # 8-bit fixed weights (max 127), uint8 activations (255): K * 127 * 255 vs 2**31 - 1
    k_ok = (2**31 - 1) // (127 * 255)
    ref.check_accumulator(k_ok, 127, 255, 32)
    with pytest.raises(OverflowRiskError):
        ref.check_accumulator(k_ok + 1, 127, 255, 32)
    rows = QuantizedRows(np.zeros((1, k_ok + 1), np.int64), np.zeros(1, np.int8), np.ones(1), 8)
    with pytest.raises(OverflowRiskError, match="acc_bits must be at least 33"):
        ref.gemm(rows, np.zeros((k_ok + 1, 1), np.int64), ActFormat(8), acc_bits=32)


def direct_conv(w: np.ndarray, x: np.ndarray, stride: int, pad: int) -> np.ndarray:
    co, _, kh, kw = w.shape
    b, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((b, co, ho, wo), dtype=object)
    for n in range(b):
        for o in range(co):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, o, i, j] = int(np.sum(patch.astype(object) * w[o].astype(object)))
    return out


@settings(max_examples=25, deadline=None)
@given(seeds, st.integers(1, 3), st.integers(1, 5), st.sampled_from([1, 3]),
       st.integers(1, 2), st.integers(0, 1), st.integers(3, 7))
def test_conv2d_equals_direct_convolution(seed, ci, co, ks, stride, pad, size) -> None:
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, co, ci * ks * ks, 4)
    x_fmt = ActFormat(4)
    x = rng.integers(0, 16, size=(2, ci, size, size))
    got = ref.conv2d(rows, x, x_fmt, (ks, ks), stride, pad)
    w = rows.int_weights().reshape(co, ci, ks, ks)
    assert got.tolist() == direct_conv(w, x, stride, pad).tolist()


def exact_requant(v: int, mult: int, shift: int) -> int:
    t = Fraction(v * mult, 2**shift) if shift >= 0 else Fraction(v * mult * 2**-shift)
    fl = t.numerator // t.denominator
    rem = t - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return fl


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-(2**30), 2**30), min_size=1, max_size=8),
       st.integers(0, 2**15), st.integers(-4, 40), st.integers(-1000, 1000), st.booleans())
def test_requantize_equals_exact_rounding(accs, mult, shift, bias, relu) -> None:
    out = ActFormat(8, signed=True)
    got = ref.requantize(np.array(accs), mult, shift, out, bias=bias, relu=relu)
    for a, g in zip(accs, got, strict=True):
        e = exact_requant(a + bias, mult, shift)
        e = max(e, 0) if relu else e
        assert g == min(max(e, out.qmin), out.qmax)


def test_requantize_half_even_and_per_row() -> None:
    acc = np.array([[5, 7, -5, -7], [3, 3, 3, 3]])
    got = ref.requantize(acc, np.array([1, 3]), np.array([1, 2]), ActFormat(8, True))
    assert got.tolist() == [[2, 4, -2, -4], [2, 2, 2, 2]]  # 9/4 = 2.25 -> 2


def test_requantize_errors() -> None:
    with pytest.raises(ShapeError, match="mult must be a scalar or have 2 entries"):
        ref.requantize(np.zeros((2, 3), np.int64), np.array([1, 2, 3]), 0, ActFormat(8))
    with pytest.raises(OverflowRiskError, match="does not fit int64"):
        ref.requantize(np.array([2**40]), 2**30, 0, ActFormat(8))
    with pytest.raises(ShapeError, match="accumulators must be integers"):
        ref.requantize(np.array([1.5]), 1, 0, ActFormat(8))


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-9, 1e6), st.integers(8, 24))
def test_quantize_multiplier_relative_error(scale, mult_bits) -> None:
    mult, shift = ref.quantize_multiplier(scale, mult_bits)
    assert 0 < mult < 2**mult_bits
    approx = mult * 2.0**-shift
    assert abs(approx - scale) <= scale * 2.0**-(mult_bits - 1)


def test_quantize_multiplier_errors() -> None:
    with pytest.raises(ConfigError, match="scale must be a positive finite number"):
        ref.quantize_multiplier(-1.0)
    with pytest.raises(ConfigError, match="mult_bits must be an integer in 2..31"):
        ref.quantize_multiplier(0.5, mult_bits=40)


def test_gemm_shape_and_range_errors() -> None:
    rng = np.random.default_rng(0)
    rows = random_rows(rng, 3, 4, 4)
    with pytest.raises(ShapeError, match=r"cannot multiply weights \(3, 4\) by activations"):
        ref.gemm(rows, np.zeros((5, 2), np.int64), ActFormat(4))
    with pytest.raises(ConfigError, match="activations must lie in 0..15 for uint4, not -1"):
        ref.gemm(rows, -np.ones((4, 2), np.int64), ActFormat(4))
    with pytest.raises(ShapeError, match="kernel 5x5 does not fit input 3x3"):
        ref.im2col(np.zeros((1, 1, 3, 3), np.int64), (5, 5))
