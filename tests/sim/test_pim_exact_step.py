"""Exact (non-power-of-two) ADC steps and calibrated ranges: the numba kernel against a
reference written from quant/pim/arith.py's docstring with fractions, the torch forward and
the popcount kernel against the numba kernel, clipping, calibration, and the step folded
into the requantizer."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.pim.arith import calibrate_range, clip_count, group_sums, sum_histogram
from quant.pim.kernels import bit_serial_conv
from quant.torch.pim_qat import pim_matmul
from sim.pim import pim_gemm
from tests.sim.test_pim import ref_round


def ref_exact(w: np.ndarray, x: np.ndarray, w_bits: int, fmt: ActFormat, a: PimArith,
              adc_range: float | None = None) -> tuple[list[list[int]], int]:
    """The exact-mode GEMM in units of the step, and how many conversions clip. The step
    is taken from the plan's gain (``Δ = 2**frac / mult``), everything else from the
    docstring: slices, planes, e_s, rounding half to even, clipping."""
    pl = plan(a, w_bits, fmt.bits, fmt.signed, adc_range)
    step = Fraction(1 << (pl.adc_shift[0] - pl.out_shift[0]), pl.adc_mult)
    top = 2 ** (a.adc_bits - 1) - 1 if a.scheme == "native" else 2**a.adc_bits - 1
    low = -top if a.scheme == "native" else 0
    clipped = [0]

    def conv(p: int, e: int) -> int:
        v = ref_round(Fraction(p) / (step * 2**e))
        clipped[0] += not low <= v <= top
        return min(max(v, low), top) * 2**e

    m, k = w.shape
    g = a.group_size
    out = [[0] * x.shape[1] for _ in range(m)]
    for i in range(m):
        for j in range(x.shape[1]):
            for g0 in range(0, k, g):
                ws = [int(v) for v in w[i, g0:g0 + g]]
                xs = [int(v) for v in x[g0:g0 + g, j]]
                if a.scheme == "native":
                    out[i][j] += conv(sum(p * q for p, q in zip(ws, xs, strict=True)), 0)
                elif a.scheme == "differential":
                    out[i][j] += conv(sum(max(p, 0) * q for p, q in zip(ws, xs, strict=True)), 0)
                    out[i][j] -= conv(sum(max(-p, 0) * q for p, q in zip(ws, xs, strict=True)),
                                      0)
                else:
                    tw = [v % 2**w_bits for v in ws]
                    tx = [v % 2**fmt.bits for v in xs]
                    sl = [(-(2 ** (w_bits - 1)), [(v >> (w_bits - 1)) & 1 for v in tw], 1)]
                    for lo in range(0, w_bits - 1, a.cell_bits):
                        width = min(a.cell_bits, w_bits - 1 - lo)
                        sl.append((2**lo, [(v >> lo) & (2**width - 1) for v in tw],
                                   2**width - 1))
                    for b in range(fmt.bits):
                        bw = -(2**b) if (fmt.signed and b == fmt.bits - 1) else 2**b
                        bits = [(v >> b) & 1 for v in tx]
                        for sw, vals, vmax in sl:
                            e = math.ceil(math.log2(vmax))  # worst cases g*vmax over g*1
                            p = sum(v * q for v, q in zip(vals, bits, strict=True))
                            out[i][j] += bw * sw * conv(p, e)
    return out, clipped[0]


schemes = st.sampled_from(["native", "differential", "bit_serial"])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), schemes, st.integers(1, 4), st.integers(1, 50),
       st.integers(1, 3), st.integers(1, 24), st.integers(3, 7),
       st.sampled_from([(4, False), (3, True)]), st.floats(0.3, 40.0))
def test_exact_step_kernel_equals_reference(seed, scheme, m, k, n, group, adc_bits, act,
                                            step) -> None:
    a_bits, a_signed = act
    if scheme == "differential":
        a_signed = False
    a = PimArith(scheme=scheme, group_size=group, cell_bits=3 if scheme != "bit_serial" else 2,
                 adc_bits=adc_bits, adc_step=step, pot_step=False)
    rng = np.random.default_rng(seed)
    w = rng.integers(-7, 8, size=(m, k))
    fmt = ActFormat(a_bits, a_signed)
    x = rng.integers(fmt.qmin, fmt.qmax + 1, size=(k, n))
    want, clipped = ref_exact(w, x, 4, fmt, a)
    assert pim_gemm(w, x, 4, fmt, a).tolist() == want
    pl = plan(a, 4, a_bits, a_signed)
    assert clip_count(group_sums(w, x, pl), pl)[1] == clipped


@pytest.mark.parametrize("scheme", ["native", "differential", "bit_serial"])
def test_exact_step_clips_and_is_not_a_power_of_two(scheme) -> None:
    """A step of 37.3 (native/differential) or 1.3 (bit-serial) with few ADC bits: the
    kernel matches the reference, and conversions do clip."""
    rng = np.random.default_rng(7)
    step = 1.3 if scheme == "bit_serial" else 37.3
    a = PimArith(scheme=scheme, group_size=16, cell_bits=3 if scheme != "bit_serial" else 2,
                 adc_bits=2 if scheme == "bit_serial" else 3, adc_step=step, pot_step=False)
    w = rng.integers(-7, 8, size=(4, 40))
    fmt = ActFormat(4)
    x = rng.integers(0, 16, size=(40, 6))
    pl = plan(a, 4, 4)
    assert pl.step != 1 and pl.step.denominator & (pl.step.denominator - 1)  # not 2**k
    want, clipped = ref_exact(w, x, 4, fmt, a)
    assert clipped > 0
    assert pim_gemm(w, x, 4, fmt, a).tolist() == want
    got = pim_matmul(torch.from_numpy(w).double(), torch.from_numpy(x).double(), pl)
    assert got.numpy().astype(np.int64).tolist() == want
    got32 = pim_matmul(torch.from_numpy(w).float(), torch.from_numpy(x).float(), pl)
    assert got32.numpy().astype(np.int64).tolist() == want


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 3), st.integers(1, 6), st.integers(3, 6),
       st.integers(1, 80), st.integers(1, 3), st.integers(2, 7), st.floats(0.4, 9.0))
def test_exact_step_popcount_kernel_equals_kernel(seed, b, c, hw, group, cell, adc_bits,
                                                  step) -> None:
    a = PimArith(scheme="bit_serial", group_size=group, cell_bits=cell, adc_bits=adc_bits,
                 adc_step=step, pot_step=False)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, size=(b, c, hw, hw))
    w = rng.integers(-7, 8, size=(5, c * 9))
    pl = plan(a, 4, 4)
    from tests.sim.test_pim import _im2col_t

    want = pim_gemm(w, _im2col_t(x, 3, 1, 1), 4, ActFormat(4), a)
    assert np.array_equal(bit_serial_conv(x, w, pl, (3, 3), 1, 1), want)


def test_calibrated_range_sets_the_step_and_clipping() -> None:
    rng = np.random.default_rng(3)
    w = rng.integers(-7, 8, size=(8, 64))
    x = rng.integers(0, 16, size=(64, 50))
    a = PimArith(scheme="native", group_size=16, cell_bits=3, adc_bits=5, pot_step=False)
    pl0 = plan(a, 4, 4)
    sums = group_sums(w, x, pl0)
    hist = sum_histogram(sums, pl0)
    flat = np.abs(sums[0]).ravel()
    for q in (50.0, 99.0, 100.0):
        r = calibrate_range(hist, pl0, q)
        assert r == max(1, np.percentile(flat, q, method="inverted_cdf"))
        pl = plan(a, 4, 4, adc_range=r)
        assert abs(pl.adc_steps[0] - r / 15) < r / 15 * 2**-15
        n, clipped = clip_count(group_sums(w, x, pl), pl)
        assert n == flat.size
        beyond = int(np.count_nonzero(flat > r * (1 + 2**-14) + pl.adc_steps[0] / 2))
        assert beyond <= clipped <= int(np.count_nonzero(flat > r - pl.adc_steps[0] / 2))
        assert (clipped == 0) == (q == 100.0)
        want, ref_clipped = ref_exact(w, x, 4, ActFormat(4), a, r)
        assert pim_gemm(w, x, 4, ActFormat(4), a, adc_range=r).tolist() == want
        assert ref_clipped == clipped
        got = pim_matmul(torch.from_numpy(w).double(), torch.from_numpy(x).double(), pl)
        assert got.numpy().astype(np.int64).tolist() == want  # the torch forward, too


def test_pot_mode_with_a_step_rounds_up() -> None:
    a = PimArith(scheme="native", group_size=16, cell_bits=3, adc_bits=5, adc_step=37.3)
    pl = plan(a, 4, 4)
    assert pl.adc_mult == 1 and pl.adc_shift == (6,) and pl.step == 1


@pytest.mark.parametrize("kw", [{"adc_step": -1.0}, {"adc_step": 0.01}, {"pot_step": "no"},
                                {"adc_step": float("nan")}])
def test_bad_step_settings_are_refused(kw) -> None:
    field = next(iter(kw))
    with pytest.raises(ConfigError, match=field):
        PimArith(**kw)
    with pytest.raises(ConfigError, match="adc_range"):
        plan(PimArith(cell_bits=3), 4, 4, adc_range=0.0)


def test_step_folded_into_the_requantizer() -> None:
    """The folded requantizer on the periphery's sum (units of Δ, shifted left by
    FOLD_FRAC_BITS) gives the requantization of the sum times Δ, up to one code from the
    16-bit multiplier and the rounded bias; a bias below one step survives."""
    from quant.infer import quantize_input, run_layer
    from sim.pim.deploy import FOLD_FRAC_BITS, fold_steps, layer_w_bits
    from tests.sim.conftest import make_small_artifact

    art = make_small_artifact()
    a = PimArith(scheme="bit_serial", group_size=16, cell_bits=2, adc_bits=6, adc_step=9.37,
                 pot_step=False)
    layer = art.gemm_layers()[0]
    q = quantize_input(art, np.random.default_rng(0).random((3, 3, 8, 8)))
    folded = fold_steps(art, a).layer(layer.name)
    assert not np.array_equal(folded.tensors["mult"], layer.tensors["mult"])
    fmt = art.input.fmt
    seen = {}

    def on_pim(lay, w, cols, f):
        seen["acc"] = pim_gemm(w, cols, layer_w_bits(lay), f, a)
        return seen["acc"] << FOLD_FRAC_BITS

    got = run_layer(folded, [q], [fmt], on_pim)
    pl = plan(a, layer_w_bits(layer), fmt.bits, fmt.signed)
    step = pl.step
    exact = run_layer(layer, [q], [fmt], lambda lay, w, cols, f: np.array(
        [[round(Fraction(int(v)) * step) for v in row] for row in seen["acc"]], dtype=np.int64))
    diff = np.abs(got.astype(np.int64) - exact.astype(np.int64))
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.995
    # the bias survives to 1/512 of a step (8 fractional bits), not to half a step
    err = folded.tensors["bias"] * float(step) / 256 - layer.tensors["bias"]
    assert np.abs(err).max() <= float(step) / 512
    pot = a.with_(pot_step=True)
    assert all(x is y for x, y in zip(fold_steps(art, pot).layers, art.layers, strict=True))


def test_calibrated_ranges_and_clip_counts_on_an_artifact() -> None:
    from sim.pim.deploy import calibrate_ranges, run_artifact_pim
    from tests.sim.conftest import make_small_artifact

    art = make_small_artifact()
    x = np.random.default_rng(4).random((6, 3, 8, 8))
    a = PimArith(scheme="bit_serial", group_size=16, cell_bits=2, adc_bits=3, pot_step=False)
    full = calibrate_ranges(art, x, a, 100.0)
    assert set(full) == {layer.name for layer in art.gemm_layers()}
    clips: dict[str, list[int]] = {}
    run_artifact_pim(art, x, a, ranges=full, clips=clips)
    assert all(n > 0 for n, _ in clips.values())
    first = art.gemm_layers()[0].name  # its inputs are the calibration images' own codes
    assert clips[first][1] == 0
    low = calibrate_ranges(art, x, a, 60.0)
    assert all(low[k] <= full[k] for k in full) and low != full
    clips_low: dict[str, list[int]] = {}
    y = run_artifact_pim(art, x, a, ranges=low, clips=clips_low)
    assert sum(c for _, c in clips_low.values()) > 0
    assert [n for n, _ in clips_low.values()] == [n for n, _ in clips.values()]
    assert np.array_equal(y, run_artifact_pim(art, x, a, ranges=low))
    with pytest.raises(ConfigError, match="adc_ranges names 'nope'"):
        run_artifact_pim(art, x, a, ranges={"nope": 3.0})


def test_digital_layers_keep_the_exact_gemm() -> None:
    from quant.infer import run_artifact
    from sim.pim.deploy import run_artifact_pim
    from tests.sim.conftest import make_small_artifact

    art = make_small_artifact()
    x = np.random.default_rng(5).random((4, 3, 8, 8))
    a = PimArith(scheme="bit_serial", group_size=16, cell_bits=2, adc_bits=2, adc_step=1.7,
                 pot_step=False)
    names = frozenset(layer.name for layer in art.gemm_layers())
    assert np.array_equal(run_artifact_pim(art, x, a, digital=names), run_artifact(art, x))
    some = run_artifact_pim(art, x, a, digital=frozenset({"c1", "fc"}))
    assert not np.array_equal(some, run_artifact(art, x))
    assert not np.array_equal(some, run_artifact_pim(art, x, a))
    with pytest.raises(ConfigError, match="digital layers must be conv/linear layers of the "
                                          "artifact, not 'zz'"):
        run_artifact_pim(art, x, a, digital=frozenset({"zz"}))
