"""PIM kernel against a slow reference written here from quant/pim/arith.py's docstring alone."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ConfigError, ShapeError
from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.pim.kernels import bit_serial_conv
from sim.pim import (
    PimMacro,
    layer_cost,
    load_macro,
    macro_from_dict,
    pim_gemm,
)


def ref_round(v: Fraction) -> int:
    fl = math.floor(v)
    r = v - fl
    return fl + (1 if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2) else 0)


def ref_adc(p: int, worst: int, bits: int, signed: bool, rho: float) -> int:
    """One ideal conversion, dequantized (code * step)."""
    top = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    low = -top if signed else 0
    step = 1
    while Fraction(rho) * worst / top > step:  # smallest power of two >= rho * P / R
        step *= 2
    code = min(max(ref_round(Fraction(p, step)), low), top)
    return code * step


def ref_pim(w: np.ndarray, x: np.ndarray, w_bits: int, a_bits: int, a_signed: bool,
            a: PimArith) -> np.ndarray:
    m, k = w.shape
    n = x.shape[1]
    g = a.group_size
    wmax, amax = 2 ** (w_bits - 1) - 1, (2 ** (a_bits - 1) - 1 if a_signed else 2**a_bits - 1)
    out = np.zeros((m, n), dtype=object)
    for i in range(m):
        for j in range(n):
            total = 0
            for g0 in range(0, k, g):
                ws = [int(v) for v in w[i, g0:g0 + g]]
                xs = [int(v) for v in x[g0:g0 + g, j]]
                if a.scheme == "native":
                    p = sum(p * q for p, q in zip(ws, xs, strict=True))
                    total += ref_adc(p, g * wmax * amax, a.adc_bits, True, a.range_fraction)
                elif a.scheme == "differential":
                    pos = sum(max(p, 0) * q for p, q in zip(ws, xs, strict=True))
                    neg = sum(max(-p, 0) * q for p, q in zip(ws, xs, strict=True))
                    for part, sign in ((pos, 1), (neg, -1)):
                        total += sign * ref_adc(part, g * wmax * amax, a.adc_bits, False,
                                                a.range_fraction)
                else:
                    # weight = -2**(w_bits-1) * sign_bit + sum of cell_bits-wide low slices
                    tw = [v % 2**w_bits for v in ws]
                    tx = [v % 2**a_bits for v in xs]
                    slices = [(-(2 ** (w_bits - 1)), [(v >> (w_bits - 1)) & 1 for v in tw], 1)]
                    for lo in range(0, w_bits - 1, a.cell_bits):
                        width = min(a.cell_bits, w_bits - 1 - lo)
                        vals = [(v >> lo) & (2**width - 1) for v in tw]
                        slices.append((2**lo, vals, 2**width - 1))
                    for b in range(a_bits):
                        bw = -(2**b) if (a_signed and b == a_bits - 1) else 2**b
                        bits = [(v >> b) & 1 for v in tx]
                        for sw, vals, vmax in slices:
                            p = sum(v * q for v, q in zip(vals, bits, strict=True))
                            conv = ref_adc(p, g * vmax, a.adc_bits, False, a.range_fraction)
                            total += bw * sw * conv
            out[i, j] = total
    return out


schemes = st.sampled_from(["native", "differential", "bit_serial"])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), schemes, st.integers(1, 5), st.integers(1, 70),
       st.integers(1, 3), st.integers(1, 33), st.integers(2, 9), st.sampled_from([3, 4, 5]),
       st.sampled_from([(4, False), (3, False), (4, True)]), st.sampled_from([1.0, 0.5, 0.2]))
def test_kernel_equals_independent_reference(seed, scheme, m, k, n, group, adc_bits, w_bits,
                                             act, rho) -> None:
    a_bits, a_signed = act
    if scheme == "differential" and a_signed:
        a_signed = False
    a = PimArith(scheme=scheme, group_size=group, cell_bits=w_bits if scheme == "native"
                 else (w_bits - 1 if scheme == "differential" else 2), adc_bits=adc_bits,
                 range_fraction=rho)
    rng = np.random.default_rng(seed)
    lim = 2 ** (w_bits - 1) - 1
    w = rng.integers(-lim, lim + 1, size=(m, k))
    fmt = ActFormat(a_bits, a_signed)
    x = rng.integers(fmt.qmin, fmt.qmax + 1, size=(k, n))
    got = pim_gemm(w, x, w_bits, fmt, a)
    assert got.tolist() == ref_pim(w, x, w_bits, a_bits, a_signed, a).tolist()


def _im2col_t(x: np.ndarray, k: int, pad: int, stride: int) -> np.ndarray:
    """(B, C, H, W) → (C*k*k, B*L) columns, written out loop by loop (F.unfold's order)."""
    b_n, c_n, h, w = x.shape
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.zeros((c_n * k * k, b_n * oh * ow), dtype=np.int64)
    for b in range(b_n):
        for oy in range(oh):
            for ox in range(ow):
                patch = xp[b, :, oy * stride:oy * stride + k, ox * stride:ox * stride + k]
                cols[:, (b * oh + oy) * ow + ox] = patch.reshape(-1)
    return cols


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 9), st.integers(1, 6),
       st.sampled_from([1, 3]), st.integers(0, 1), st.integers(1, 2), st.integers(1, 150),
       st.integers(1, 3), st.integers(2, 7), st.integers(3, 5), st.integers(1, 10),
       st.sampled_from([1.0, 0.5, 0.2]))
def test_bit_packed_bit_serial_equals_kernel(seed, b, c, hw, k, pad, stride, group, cell,
                                             adc_bits, w_bits, a_bits, rho) -> None:
    """The popcount kernel of the PIM-QAT forward equals pim_gemm on the im2col columns
    (groups of more than 64 rows span several words; multi-bit cells; K % group != 0;
    inputs of more than 8 bits take the im2col + column-packing path)."""
    if hw + 2 * pad < k:
        hw = k
    a = PimArith(scheme="bit_serial", group_size=group, cell_bits=cell, adc_bits=adc_bits,
                 range_fraction=rho)
    rng = np.random.default_rng(seed)
    lim = 2 ** (w_bits - 1) - 1
    x = rng.integers(0, 2**a_bits, size=(b, c, hw, hw))
    x[rng.random(x.shape) < 0.3] = 0  # ReLU outputs: many zeros
    w = rng.integers(-lim, lim + 1, size=(rng.integers(1, 6), c * k * k))
    cols = _im2col_t(x, k, pad, stride)
    want = pim_gemm(w, cols, w_bits, ActFormat(a_bits), a)
    got = bit_serial_conv(x, w, plan(a, w_bits, a_bits), (k, k), pad, stride)
    assert got.tolist() == want.tolist()


def test_bit_packed_bit_serial_refuses_what_it_cannot_do() -> None:
    a = PimArith(scheme="bit_serial", cell_bits=1, group_size=8, adc_bits=4)
    x = np.zeros((1, 1, 3, 3), dtype=np.int64)
    w = np.zeros((2, 9), dtype=np.int64)
    with pytest.raises(ConfigError, match="ideal arithmetic"):
        bit_serial_conv(x, w, plan(a.with_(noise_lsb=0.5), 4, 4), (3, 3))
    with pytest.raises(ConfigError, match="bit_serial scheme"):
        bit_serial_conv(x, w, plan(a.with_(scheme="native", cell_bits=3), 4, 4), (3, 3))
    with pytest.raises(ShapeError, match="cannot apply"):
        bit_serial_conv(x, w[:, :4], plan(a, 4, 4), (3, 3))
    with pytest.raises(ShapeError, match="integers"):
        bit_serial_conv(x.astype(float), w, plan(a, 4, 4), (3, 3))


@pytest.mark.parametrize("scheme", ["native", "differential", "bit_serial"])
@pytest.mark.parametrize(("m", "k", "n", "group"), [(7, 129, 3, 64), (3, 10, 2, 128)])
def test_enough_adc_bits_equals_integer_gemm(scheme, m, k, n, group) -> None:
    rng = np.random.default_rng(k)
    w = rng.integers(-7, 8, size=(m, k))
    x = rng.integers(0, 16, size=(k, n))
    a = PimArith(scheme=scheme, group_size=group, cell_bits=3 if scheme != "bit_serial" else 1,
                 adc_bits=16)
    assert np.array_equal(pim_gemm(w, x, 4, ActFormat(4), a), w @ x)
    assert all(s == 0 for s in plan(a, 4, 4).adc_shift)


def test_low_adc_bits_lose_information() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-7, 8, size=(8, 256))
    x = rng.integers(0, 16, size=(256, 4))
    a = PimArith(scheme="native", group_size=256, cell_bits=3, adc_bits=4)
    assert not np.array_equal(pim_gemm(w, x, 4, ActFormat(4), a), w @ x)


def test_noise_is_seeded_and_redrawn() -> None:
    rng = np.random.default_rng(5)
    w = rng.integers(-7, 8, size=(6, 100))
    x = rng.integers(0, 16, size=(100, 4))
    a = PimArith(scheme="bit_serial", group_size=32, cell_bits=1, adc_bits=5, noise_lsb=0.7)
    y1 = pim_gemm(w, x, 4, ActFormat(4), a, seed=11)
    assert np.array_equal(y1, pim_gemm(w, x, 4, ActFormat(4), a, seed=11))
    assert not np.array_equal(y1, pim_gemm(w, x, 4, ActFormat(4), a, seed=12))
    ideal = pim_gemm(w, x, 4, ActFormat(4), a.with_(noise_lsb=0.0))
    assert not np.array_equal(y1, ideal)


def test_nonlinearity_is_deterministic_and_compressive() -> None:
    w = np.full((1, 64), 7)
    x = np.full((64, 1), 15)
    a = PimArith(scheme="native", group_size=64, cell_bits=3, adc_bits=6)
    lin = pim_gemm(w, x, 4, ActFormat(4), a)
    nl = pim_gemm(w, x, 4, ActFormat(4), a.with_(nonlinearity=0.2))
    assert nl[0, 0] < lin[0, 0]
    assert np.array_equal(nl, pim_gemm(w, x, 4, ActFormat(4), a.with_(nonlinearity=0.2), seed=9))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"adc_bits": 0}, "adc_bits must be an integer in 1..16, not 0"),
     ({"scheme": "ternary"},
      "scheme must be one of native, differential, bit_serial, not 'ternary'"),
     ({"noise_lsb": -0.1}, "noise_lsb must be a finite number >= 0, not -0.1"),
     ({"group_size": 0}, "group_size must be an integer in 1..1048576, not 0")],
)
def test_arith_errors(kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        PimArith(**kwargs)
    assert str(info.value) == message


def test_weights_wider_than_cells() -> None:
    with pytest.raises(ConfigError, match="w_bits must be at most 4 for native cells of 3 bits"):
        plan(PimArith(scheme="native", cell_bits=3), 8, 4)
    with pytest.raises(ConfigError, match="w_bits must be at most 2 for differential cells"):
        plan(PimArith(scheme="differential", cell_bits=1), 4, 4)
    with pytest.raises(ConfigError, match="activations must be unsigned for the differential"):
        plan(PimArith(scheme="differential", cell_bits=3), 4, 4, a_signed=True)
    with pytest.raises(ConfigError, match="weights must lie in -7..7 for w_bits=4, not 9"):
        pim_gemm(np.array([[9]]), np.array([[1]]), 4, ActFormat(4), PimArith(cell_bits=3))
    with pytest.raises(ShapeError, match="cannot multiply"):
        pim_gemm(np.ones((2, 3), np.int64), np.ones((4, 1), np.int64), 4, ActFormat(4),
                 PimArith(cell_bits=3))


def test_group_larger_than_crossbar() -> None:
    with pytest.raises(ConfigError, match="group_size must be at most rows=64, not 128"):
        PimMacro(name="x", rows=64, cols=64, adcs=8, arith=PimArith(group_size=128))


def test_preset_and_yaml_errors(tmp_path) -> None:
    m = load_macro("sram512x128_adc7")
    assert (m.rows, m.cols, m.arith.adc_bits, m.approximation) == (512, 128, 7, True)
    assert m.input_mode == "bit_serial" and "energy_adc_pj" in m.sources
    with pytest.raises(ConfigError, match="unknown PIM macro field 'colums'"):
        macro_from_dict({"rows": 8, "colums": 8, "adcs": 1})
    with pytest.raises(ConfigError, match="macro must be a preset name"):
        load_macro("nonexistent")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows: 8\ncols: 8\nadcs: 9\n")
    with pytest.raises(ConfigError, match=r"adcs must be an integer in 1..8 \(at most cols=8\)"):
        load_macro(str(bad))


def test_cost_model_counts() -> None:
    m = PimMacro(name="t", rows=64, cols=32, adcs=4, adc_latency=2, macros=8,
                 arith=PimArith(scheme="bit_serial", group_size=32, cell_bits=1, adc_bits=6))
    c = layer_cost(m, "l", 16, 100, 10, 4, 4)
    # bit-serial 4-bit weights: sign + 3 one-bit slices -> 4 columns per output, 8 per macro
    assert (c.tiles, c.passes, c.replication) == (2 * 2, 1, 2)
    per_vector = 4 * 2 * (32 // 4) * 2  # planes x groups x columns per ADC x latency
    assert c.cycles == 5 * per_vector
    assert c.conversions == 10 * 16 * math.ceil(100 / 32) * 4 * 4
    small = PimMacro(name="s", rows=64, cols=32, adcs=4, adc_latency=2, macros=1,
                     arith=m.arith)
    c2 = layer_cost(small, "l", 16, 100, 10, 4, 4)
    assert c2.passes == 4 and c2.cycles == 4 * (10 * per_vector + 64)
