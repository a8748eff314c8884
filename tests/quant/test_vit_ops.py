"""The transformer ops of quant.ops, one section each: the integer reference against float
within the bound its module documents (random scales and codes, extremes included), the
overflow checks firing exactly above their bounds, the Newton square root equal to
math.isqrt, softmax row sums, and the torch twin (quant.torch) equal bit for bit."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import erf

from quant.artifact import Layer, Value
from quant.errors import ArtifactError, ConfigError, OverflowRiskError
from quant.formats import ActFormat
from quant.ops import OPS, intmath
from quant.ops.add import BRANCH_LIMIT, residual_params
from quant.ops.embed import pos_embed_params
from quant.ops.gelu import (
    GELU_ERROR,
    GELU_SCALE_ERROR,
    SIGMOID_SLOPE,
    gelu_params,
    shift_gelu,
)
from quant.ops.layernorm import GAMMA_BITS, LN_ERROR, check_variance, layernorm_params
from quant.ops.matmul import matmul_params
from quant.ops.softmax import (
    SOFTMAX_ERROR,
    SOFTMAX_SCALE_ERROR,
    out_scale,
    shiftmax,
    softmax_params,
)
from quant.rows import quantize_rows
from quant.torch import intops
from quant.torch.twin import TWIN

I4, I8, I16, U8 = ActFormat(4, True), ActFormat(8, True), ActFormat(16, True), ActFormat(8)
FORMATS = st.sampled_from([I4, I8, I16])
INT64_MAX = (1 << 63) - 1
NOTE = settings(deadline=None, max_examples=150)


def run_both(layer: Layer, xs: list[np.ndarray], fmts: list) -> np.ndarray:
    """The op's numpy reference; asserts its torch twin gives the same integers."""
    want = OPS[layer.op].run(layer, xs, fmts, None)
    got = TWIN[layer.op](layer, [torch.from_numpy(np.asarray(x, np.int64)) for x in xs], fmts)
    assert np.array_equal(got.numpy(), want)
    return want


def codes(data: st.DataObject, fmt: ActFormat, shape: tuple[int, ...]) -> np.ndarray:
    """Codes of ``fmt``; hypothesis reaches the extremes (qmin, qmax, 0) by itself."""
    return data.draw(hnp.arrays(np.int64, shape, elements=st.integers(fmt.qmin, fmt.qmax)))


def scale(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Log-uniform scales ``2**lo .. 2**hi``."""
    return st.floats(lo, hi).map(lambda e: 2.0 ** e)


# ---- integer primitives --------------------------------------------------------------------

def test_newton_isqrt_is_math_isqrt_on_every_value_below_2_20():
    v = np.arange(1 << 20)
    want = np.array([math.isqrt(int(a)) for a in v])
    assert np.array_equal(intmath.isqrt(v), want)
    assert np.array_equal(intops.isqrt(torch.from_numpy(v)).numpy(), want)


@NOTE
@given(st.lists(st.one_of(st.integers(0, INT64_MAX), st.integers(1, 3037000499).flatmap(
    lambda m: st.sampled_from([m * m - 1, m * m, min(m * m + 1, INT64_MAX)]))), min_size=1))
def test_newton_isqrt_is_math_isqrt_on_int64(values):
    v = np.array(values, np.int64)
    want = np.array([math.isqrt(a) for a in values])
    assert np.array_equal(intmath.isqrt(v), want)
    assert np.array_equal(intops.isqrt(torch.from_numpy(v)).numpy(), want)


def test_six_newton_steps_are_needed(monkeypatch):
    v = np.array([(m + 1) ** 2 - 1 for m in (2 ** 31, 2 ** 21)], np.int64)  # from 2**62, 2**42
    want = np.array([math.isqrt(int(a)) for a in v])
    assert np.array_equal(intmath.isqrt(v), want)
    monkeypatch.setattr(intmath, "NEWTON_STEPS", 5)
    assert not np.array_equal(intmath.isqrt(v), want)


@given(st.lists(st.one_of(st.integers(0, INT64_MAX), st.integers(0, 62).flatmap(
    lambda k: st.sampled_from([(1 << k) - 1, 1 << k, (1 << k) + 1]))), min_size=1))
def test_bit_length_is_exact(values):
    assert intmath.bit_length(np.array(values, np.int64)).tolist() == \
        [v.bit_length() for v in values]


@given(st.integers(1, 1000).flatmap(lambda d: st.tuples(st.just(d), st.lists(st.one_of(
    st.integers(-(1 << 40), 1 << 40), st.integers(-(1 << 30), 1 << 30).map(
        lambda q: q * d + d // 2)), min_size=1))))  # ties when d is even
def test_round_div_rounds_half_to_even(case):
    d, values = case
    want = [round(Fraction(v, d)) for v in values]  # exact, half to even
    a = np.array(values, np.int64)
    assert intmath.round_div(a, d).tolist() == want
    assert intops.round_div(torch.from_numpy(a), d).tolist() == want


@NOTE
@given(st.integers(-2000, -1), st.integers(0, 20))
def test_shift_exp_is_monotone_and_within_its_bounds(x0, n):
    if -x0 << n > intmath.INT32_MAX:
        return
    x = np.arange(-(n + 2) * -x0, 1)  # increasing, from below n * x0 / 1.4375 up to 0
    e = intmath.shift_exp(x, x0, n)
    assert np.all(np.diff(e) >= 0)
    assert e.min() == -x0 and e.max() == -x0 << n
    assert np.array_equal(intops.shift_exp(torch.from_numpy(x), x0, n).numpy(), e)


# ---- softmax -------------------------------------------------------------------------------

def softmax_layer(src: Value, attrs: dict, p: int) -> Layer:
    return Layer("sm", "softmax", ("x",), Value(ActFormat(p), out_scale(p), src.shape), attrs)


@NOTE
@given(st.data(), scale(-12, 0), FORMATS, st.integers(2, 16), st.integers(1, 64))
def test_softmax_matches_float_softmax(data, s, fmt, p, length):
    x = codes(data, fmt, (2, length, 3))
    attrs = softmax_params(s, length, p)
    out = run_both(softmax_layer(Value(fmt, s, (length, 3)), attrs, p), [x], [fmt])
    real = x * s
    ref = np.exp(real - real.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    bound = SOFTMAX_ERROR + SOFTMAX_SCALE_ERROR * s + length * 2.0 ** -attrs["n"] + 2.0 ** (1 - p)
    assert np.abs(out * 2.0 ** -p - ref).max() <= bound


@NOTE
@given(st.data(), st.integers(-5000, -1), FORMATS, st.integers(1, 16), st.integers(1, 64))
def test_softmax_rows_sum_to_2_p_within_the_documented_bound(data, x0, fmt, p, length):
    top = (intmath.INT32_MAX // (length * -x0)).bit_length() - 1
    if top < 0:
        return
    n = data.draw(st.integers(0, min(top, 30)))
    sums = shiftmax(codes(data, fmt, (2, length, 3)), x0, n, p).sum(axis=1)
    b = intmath.exp_terms_bound(length, x0, n)
    assert sums.max() <= (1 << p) - 1
    assert np.all(sums << (31 - p) > intmath.INT32_MAX - b - (length << (31 - p)))
    if n == intmath.exp_bits(length, x0, p, 30):  # the exporter's n: at most 2L steps short
        assert sums.min() >= (1 << p) - 2 * length


@pytest.mark.parametrize(("x0", "n", "length"), [(-intmath.INT32_MAX, 0, 1), (-1, 30, 1),
                                                 (-3, 28, 2), (-1, 15, 65535)])
def test_softmax_overflow_check_fires_exactly_above_its_bound(x0, n, length):
    assert length * -x0 << n <= intmath.INT32_MAX < (length + 1) * -x0 << n
    x = np.zeros((1, length, 1), np.int64)  # equal codes: every exp at its maximum
    assert shiftmax(x, x0, n, 8).sum() <= 255
    assert np.array_equal(intops.shiftmax(torch.from_numpy(x), x0, n, 8).numpy(),
                          shiftmax(x, x0, n, 8))
    wider = np.zeros((1, length + 1, 1), np.int64)
    for fn in (shiftmax, intops.shiftmax):
        with pytest.raises(OverflowRiskError, match=f"not n={n} with x0={x0}"):
            fn(wider if fn is shiftmax else torch.from_numpy(wider), x0, n, 8)


def test_softmax_layer_refuses_an_unsafe_n_on_load():
    src = Value(I8, 0.5, (3, 4))  # x0 = -2; 3 * 2 * 2**29 > INT32_MAX
    layer = softmax_layer(src, {"x0": -2, "n": 29}, 8)
    with pytest.raises(ArtifactError, match=r"layer 'sm': exp bits n must make 3 x \|x0\| x "
                                            r"2\*\*n at most 2147483647"):
        OPS["softmax"].check_attrs(layer, [src])
    OPS["softmax"].check_attrs(softmax_layer(src, {"x0": -2, "n": 28}, 8), [src])


# ---- GELU ----------------------------------------------------------------------------------

def gelu_layer(src: Value, out: Value, attrs: dict) -> Layer:
    return Layer("g", "gelu", ("x",), out, attrs)


@NOTE
@given(st.data(), scale(-10, -1), st.sampled_from([I8, I16]), st.integers(2, 16))
def test_gelu_matches_exact_erf_gelu(data, s, fmt, p):
    x = codes(data, fmt, (300,))
    if fmt is I8:
        x = np.arange(fmt.qmin, fmt.qmax + 1)  # every int8 code
    real = x * s
    ref = 0.5 * real * (1 + erf(real / math.sqrt(2)))
    s_out = (float(np.abs(ref).max()) + s) / 127
    attrs = gelu_params(s, s_out, p)
    out = run_both(gelu_layer(Value(fmt, s, x.shape), Value(I8, s_out, x.shape), attrs),
                   [x[None]], [fmt])[0]
    bound = (s_out / 2 + GELU_ERROR + GELU_SCALE_ERROR * s
             + np.abs(real) * (2.0 ** (1 - p) + 2.0 ** -attrs["n"]))
    assert np.all(np.abs(out * s_out - ref) <= bound)


@pytest.mark.parametrize(("x0", "n"), [(-1, 29), (-(intmath.INT32_MAX // 2), 0), (-15, 26)])
def test_gelu_overflow_check_fires_exactly_above_its_bound(x0, n):
    assert 2 * -x0 << n <= intmath.INT32_MAX < 2 * (-x0 + 1) << n
    x = np.array([-(1 << 14), -1, 0, 1, 1 << 14])
    assert np.array_equal(shift_gelu(x, x0, n, 8),
                          intops.shift_gelu(torch.from_numpy(x), x0, n, 8).numpy())
    for fn, arr in ((shift_gelu, x), (intops.shift_gelu, torch.from_numpy(x))):
        with pytest.raises(OverflowRiskError, match=f"not n={n} with x0={x0 - 1}"):
            fn(arr, x0 - 1, n, 8)


# ---- LayerNorm -----------------------------------------------------------------------------

@NOTE
@given(st.data(), st.sampled_from([I4, I8, I16]), st.integers(1, 64), scale(-12, 0),
       st.integers(0, 2 ** 32 - 1))
def test_layernorm_matches_float_layernorm(data, fmt, c, s, seed):
    x = codes(data, fmt, (2, c, 3))
    rng = np.random.default_rng(seed)
    gamma, beta = rng.uniform(-2, 2, c), rng.uniform(-1, 1, c)
    s_out = (np.abs(gamma).max() * math.sqrt(c) + 1) / I16.qmax
    attrs, tensors = layernorm_params(gamma, beta, s_out)
    src = Value(fmt, s, (c, 3))
    out = run_both(Layer("ln", "layernorm", ("x",), Value(I16, s_out, (c, 3)), attrs, tensors),
                   [x], [fmt])
    real = x * s
    dev = real - real.mean(axis=1, keepdims=True)
    sd = np.sqrt((dev ** 2).mean(axis=1, keepdims=True))
    ref = np.divide(dev, sd, out=np.zeros_like(dev), where=sd > 0) * gamma[:, None] \
        + beta[:, None]
    sigma = sd / src.scale  # the token's spread in input steps
    err = np.abs(out * s_out - ref) - s_out / 2
    spread = np.divide(LN_ERROR, sigma, out=np.zeros_like(sigma), where=sigma > 0)
    assert np.all(err <= np.abs(gamma).max() * (spread + math.sqrt(c) * 2.0 ** -GAMMA_BITS))
    assert np.all(out[np.broadcast_to(sigma == 0, out.shape)] ==
                  np.broadcast_to(np.round(tensors["beta"] / 2.0 ** attrs["shift"])[:, None],
                                  out.shape)[np.broadcast_to(sigma == 0, out.shape)])


@pytest.mark.parametrize("fmt", [I8, I16, U8])
def test_layernorm_overflow_check_fires_exactly_above_its_bound(fmt):
    c = INT64_MAX // (fmt.qmax - fmt.qmin) ** 2
    assert check_variance(c, fmt) <= INT64_MAX
    with pytest.raises(OverflowRiskError, match=f"not C={c + 1}"):
        check_variance(c + 1, fmt)
    src = Value(fmt, 1.0, (c + 1, 1))
    layer = Layer("ln", "layernorm", ("x",), Value(I8, 1.0, src.shape), {"shift": 0})
    with pytest.raises(ArtifactError, match="layer 'ln': channels must keep"):
        OPS["layernorm"].check_attrs(layer, [src])


def test_layernorm_at_the_variance_extreme_equals_the_twin():
    x = np.array([[[I16.qmax], [I16.qmin]] * 64], np.int64).reshape(1, 128, 1)
    attrs, tensors = layernorm_params(np.ones(128), np.zeros(128), 12 / I16.qmax)
    layer = Layer("ln", "layernorm", ("x",), Value(I16, 12 / I16.qmax, (128, 1)), attrs,
                  tensors)
    out = run_both(layer, [x], [I16])  # normalized values +-1 exactly, at 12 / qmax
    assert np.all(np.abs(np.abs(out) - I16.qmax / 12) <= 1)


# ---- matmul --------------------------------------------------------------------------------

def matmul_layer(g: int, m: int, k: int, n: int, transpose_a: bool, attrs: dict,
                 out: Value) -> Layer:
    return Layer("mm", "matmul", ("a", "b"), out,
                 {"transpose_a": transpose_a, "gemm": {"M": m, "K": k, "N": n}, **attrs})


@NOTE
@given(st.data(), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6),
       st.booleans(), st.sampled_from([(I8, U8), (I16, I16), (I4, I8)]))
def test_matmul_is_the_exact_product_requantized(data, g, m, k, n, transpose_a, fmts):
    fa, fb = fmts
    a = codes(data, fa, (2, g, k, m) if transpose_a else (2, g, m, k))
    b = codes(data, fb, (2, g, k, n))
    out = Value(I16, 1.0, (g, m, n))
    attrs = {"acc_bits": 40, **matmul_params(0.01, 0.02, 0.05)}
    got = run_both(matmul_layer(g, m, k, n, transpose_a, attrs, out), [a, b], [fa, fb])
    lhs = np.swapaxes(a, -1, -2) if transpose_a else a
    acc = np.array([[[[sum(int(lhs[i, h, r, t]) * int(b[i, h, t, c]) for t in range(k))
                       for c in range(n)] for r in range(m)] for h in range(g)]
                    for i in range(2)], dtype=object)
    want = [min(max(round(int(v) * attrs["mult"] / 2 ** attrs["shift"]), -32767), 32767)
            for v in acc.ravel()]  # Python rounds half to even, like round_shift
    assert got.ravel().tolist() == want


@pytest.mark.parametrize(("fa", "fb", "acc_bits", "k"), [(I8, U8, 16, 1), (I16, I16, 32, 2)])
def test_matmul_overflow_check_fires_exactly_above_its_bound(fa, fb, acc_bits, k):
    assert k * fa.max_abs * fb.max_abs <= (1 << (acc_bits - 1)) - 1 \
        < (k + 1) * fa.max_abs * fb.max_abs
    attrs = {"acc_bits": acc_bits, "mult": 1, "shift": 0}
    for kk, fits in ((k, True), (k + 1, False)):
        layer = matmul_layer(1, 1, kk, 1, False, attrs, Value(ActFormat(16, True), 1.0, (1, 1, 1)))
        a = np.full((1, 1, 1, kk), fa.qmax)
        b = np.full((1, 1, kk, 1), fb.qmax)
        ins = [Value(fa, 1.0, (1, 1, kk)), Value(fb, 1.0, (1, kk, 1))]
        if fits:
            OPS["matmul"].check_attrs(layer, ins)
            run_both(layer, [a, b], [fa, fb])
        else:
            with pytest.raises(ArtifactError, match=f"acc_bits must be at least {acc_bits + 1}"):
                OPS["matmul"].check_attrs(layer, ins)
            with pytest.raises(OverflowRiskError, match=f"not {acc_bits}"):
                OPS["matmul"].run(layer, [a, b], [fa, fb], None)


# ---- residual add (dyadic) and position embedding -----------------------------------------

@NOTE
@given(st.data(), scale(-14, 0), scale(-14, 0), scale(-12, 0), st.integers(0, 8))
def test_dyadic_residual_add_matches_the_real_sum(data, s0, s1, s_out, out_shift):
    x0, x1 = codes(data, I16, (4, 5)), codes(data, I8, (4, 5))
    attrs, tensors = residual_params((s0, s1), s_out, out_shift)
    layer = Layer("r", "add", ("a", "b"), Value(I16, s_out, (5,)), attrs, tensors)
    real = x0 * s0 + x1 * s1
    inside = np.abs(real) <= I16.qmax * s_out
    out = run_both(layer, [x0, x1], [I16, I8])
    bound = s_out * (0.5 + 2.0 ** -out_shift) + (np.abs(x0) * s0 + np.abs(x1) * s1) * 2.0 ** -30
    assert np.all(np.abs(out * s_out - real)[inside] <= bound[inside])


def test_residual_branch_overflow_check_fires_exactly_above_its_bound():
    mult, top = intmath.INT32_MAX, I16.max_abs
    left = next(k for k in range(64) if top * mult << (k + 1) >= BRANCH_LIMIT)
    x = np.full((1, 2), top)
    tensors = {"in_mult": np.array([mult, 1], np.int64), "in_shift": np.array([-left, 0])}
    layer = Layer("r", "add", ("a", "b"), Value(I16, 1.0, (2,)), {"out_shift": 0}, tensors)
    run_both(layer, [x, x], [I16, I16])
    tensors["in_shift"][0] = -left - 1
    with pytest.raises(OverflowRiskError, match="a branch x \\* mult must stay below"):
        OPS["add"].run(layer, [x, x], [I16, I16], None)


@NOTE
@given(st.data(), scale(-14, -4), st.booleans(), st.integers(0, 8), st.integers(0, 2 ** 32 - 1))
def test_pos_embed_adds_class_token_and_positions(data, s_in, cls, out_shift, seed):
    x = codes(data, I16, (2, 3, 4))
    rng = np.random.default_rng(seed)
    t = 4 + cls
    pos, tok = rng.normal(0, 1, (3, t)), rng.normal(0, 1, 3) if cls else None
    s_out = (I16.qmax * s_in + 8) / I16.qmax  # no clamping: |pos|, |cls| < 8 here
    attrs, tensors = pos_embed_params(s_in, s_out, pos, tok, out_shift)
    layer = Layer("e", "pos_embed", ("x",), Value(I16, s_out, (3, t)), attrs, tensors)
    OPS["pos_embed"].check_attrs(layer, [Value(I16, s_in, (3, 4))])
    out = run_both(layer, [x], [I16])
    real = pos + np.concatenate([np.broadcast_to(tok[:, None], (2, 3, 1)), x * s_in], axis=2) \
        if cls else pos + x * s_in
    assert np.all(np.abs(out * s_out - real) <= s_out * (0.5 + 2.0 ** -out_shift) + 1e-9)


# ---- layout and token_linear -----------------------------------------------------------

@given(st.data())
def test_reshape_and_slice_move_codes_only(data):
    x = codes(data, I8, (2, 6, 4))
    src = Value(I8, 0.5, (6, 4))
    heads = Layer("h", "reshape", ("x",), Value(I8, 0.5, (2, 3, 4)))
    OPS["reshape"].check_attrs(heads, [src])
    assert np.array_equal(run_both(heads, [x], [I8]), x.reshape(2, 2, 3, 4))
    axis = data.draw(st.integers(0, 1))
    start = data.draw(st.integers(0, src.shape[axis] - 1))
    stop = data.draw(st.integers(start + 1, src.shape[axis]))
    shape = (stop - start, 4) if axis == 0 else (6, stop - start)
    sl = Layer("s", "slice", ("x",), Value(I8, 0.5, shape),
               {"axis": axis, "start": start, "stop": stop})
    OPS["slice"].check_attrs(sl, [src])
    want = x[:, start:stop] if axis == 0 else x[:, :, start:stop]
    assert np.array_equal(run_both(sl, [x], [I8]), want)


@given(st.data(), st.integers(1, 5), st.integers(1, 6), st.integers(1, 7))
def test_token_linear_is_one_gemm_per_token(data, m, k, t):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    rows = quantize_rows(rng.normal(0, 1, (m, k)), "fixed", 8)
    tensors = {"words": rows.words.astype(np.int32), "scheme_ids": rows.scheme_ids,
               "alphas": rows.alphas, "mult": np.full(m, 3, np.int64),
               "shift": np.full(m, 4, np.int64), "bias": rng.integers(-50, 50, m)}
    layer = Layer("tl", "token_linear", ("x",), Value(I16, 1.0, (m, t)),
                  {"relu": False, "weight_bits": 8, "acc_bits": 32,
                   "gemm": {"M": m, "K": k, "N": t}}, tensors)
    OPS["token_linear"].check_attrs(layer, [Value(I8, 1.0, (k, t))])
    x = codes(data, I8, (2, k, t))
    got = run_both(layer, [x], [I8])
    acc = np.einsum("mk,bkt->bmt", rows.int_weights(), x) + tensors["bias"][:, None]
    want = np.clip(np.round(acc * 3 / 16), I16.qmin, I16.qmax)  # numpy rounds half to even
    assert np.array_equal(got, want)
    hooked = OPS["token_linear"].run(layer, [x], [I8], lambda lay, w, cols, f: w @ cols)
    assert np.array_equal(hooked, got)


# ---- attribute checks: one line naming the layer, the field and the value ----------------

SRC = Value(I8, 0.25, (4, 5))


@pytest.mark.parametrize(("op", "src", "out", "attrs", "match"), [
    ("softmax", SRC, Value(U8, 1 / 256, (4, 5)), {"x0": -4, "n": 31},
     r"attrs.n must be an integer in 0..30, not 31"),
    ("softmax", SRC, Value(U8, 1 / 256, (4, 5)), {"x0": -3, "n": 8},
     r"attrs.x0 must be floor\(-1/0.25\) = -4, not -3"),
    ("softmax", SRC, Value(U8, 1 / 128, (4, 5)), {"x0": -4, "n": 8},
     r"output must be unsigned p-bit at scale 2\*\*-p, not uint8 at 0.0078125"),
    ("gelu", SRC, Value(I8, 0.1, (4, 5)), {"x0": -2, "n": 8, "p": 8, "mult": 1, "shift": 0},
     r"attrs.x0 must be floor\(-1/\(1.702 \* 0.25\)\) = -3, not -2"),
    ("gelu", SRC, Value(I8, 0.1, (4, 5)), {"x0": -3, "n": 8, "p": 17, "mult": 1, "shift": 0},
     r"attrs.p must be an integer in 1..16, not 17"),
    ("layernorm", SRC, Value(I8, 0.1, (4, 6)), {"shift": 3},
     r"input and output must be clamped \(C, T\) values of one shape, "
     r"not int8 \(4, 5\) -> int8 \(4, 6\)"),
    ("layernorm", SRC, Value(I8, 0.1, (4, 5)), {"shift": 63},
     r"attrs.shift must be an integer in 0..62, not 63"),
    ("reshape", SRC, Value(I8, 0.25, (3, 7)), {},
     r"output shape must hold the input's 20 elements, not \(3, 7\)"),
    ("reshape", SRC, Value(I8, 0.5, (20,)), {},
     r"output format and scale must be the input's int8 at 0.25, not int8 at 0.5"),
    ("slice", SRC, Value(I8, 0.25, (2, 5)), {"axis": 0, "start": 1, "stop": 1},
     r"attrs.stop must be an integer in 2..4, not 1"),
    ("slice", SRC, Value(I8, 0.25, (2, 5)), {"axis": 2, "start": 0, "stop": 1},
     r"attrs.axis must be an integer in 0..1, not 2"),
    ("pos_embed", SRC, Value(I8, 0.25, (4, 5)),
     {"cls": 1, "mult": 1, "shift": 0, "out_shift": 0}, r"attrs.cls must be true or false"),
    ("pos_embed", SRC, Value(I8, 0.25, (4, 5)),
     {"cls": True, "mult": 1, "shift": 0, "out_shift": 0},
     r"input must be clamped \(D, Np\) tokens and the output \(D, Np \+ cls\), "
     r"not int8 \(4, 5\) -> int8 \(4, 5\)"),
    ("token_linear", Value(I8, 1.0, (4,)), Value(I8, 1.0, (3, 1)),
     {"gemm": {"M": 3, "K": 4, "N": 1}, "weight_bits": 8},
     r"input must be \(features, tokens\), not shape \(4,\)"),
])
def test_attribute_checks_name_layer_field_and_value(op, src, out, attrs, match):
    with pytest.raises(ArtifactError, match=f"^layer 'x1': {match}"):
        OPS[op].check_attrs(Layer("x1", op, ("x",), out, attrs), [src])


def test_matmul_checks_shapes_against_gemm():
    a, b = Value(I8, 1.0, (2, 3, 4)), Value(U8, 1.0, (2, 3, 5))
    attrs = {"acc_bits": 32, "mult": 1, "shift": 0}
    layer = matmul_layer(2, 4, 3, 5, True, attrs, Value(I8, 1.0, (2, 4, 5)))
    OPS["matmul"].check_attrs(layer, [a, b])
    with pytest.raises(ArtifactError, match=r"^layer 'mm': inputs and output must have shapes "
                                            r"\(2, 4, 3\), \(2, 3, 5\) and \(2, 4, 5\)"):
        OPS["matmul"].check_attrs(matmul_layer(2, 4, 3, 5, False, attrs, layer.out),
                                  [a, b])


def test_layernorm_and_pos_embed_check_their_tensors():
    layer = Layer("ln", "layernorm", ("x",), Value(I8, 1.0, (2, 3)), {"shift": 0},
                  {"gamma": np.array([1, 1 << 31]), "beta": np.zeros(2, np.int64)})
    with pytest.raises(ArtifactError, match="^layer 'ln': gamma must lie within "
                                            r"\+-2147483647, not 2147483648"):
        OPS["layernorm"].check_tensors(layer)


def test_parameter_functions_refuse_impossible_scales():
    with pytest.raises(ConfigError, match="scale must be a positive finite number, not 0.0"):
        softmax_params(0.0, 4, 8)
    with pytest.raises(ConfigError, match="x0 must give 65536 x |x0| at most"):
        softmax_params(1e-6, 65536, 8)
    assert gelu_params(0.1, 0.1)["x0"] == math.floor(-1 / (SIGMOID_SLOPE * 0.1))
