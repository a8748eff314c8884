"""Number formats against definitions written independently from the paper's text."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ConfigError, ShapeError
from quant.formats import (
    POT_MAX_EXPONENT,
    WEIGHT_BITS,
    ActFormat,
    F8Format,
    Scheme,
    format_table,
    weight_format,
)
from quant.requant import REQUANTIZER

ALL_FORMATS = [(s, b) for s, r in WEIGHT_BITS.items() for b in r]


def paper_levels(scheme: Scheme, m: int) -> set[Fraction]:
    """Level sets exactly as arXiv 2012.04240 states them."""
    if scheme is Scheme.FIXED:
        d = 2 ** (m - 1) - 1
        return {Fraction(k, d) for k in range(-d, d + 1)}
    if scheme is Scheme.POT:
        top = min(2 ** (m - 1) - 2, POT_MAX_EXPONENT)  # the paper's 2**(m-1)-2, capped
        mags = {Fraction(0)} | {Fraction(1, 2**p) for p in range(0, top + 1)}
    else:
        m1, m2 = (m - 1 + 1) // 2, (m - 1) // 2
        q1 = {Fraction(0)} | {Fraction(1, 2**j) for j in range(1, 2**m1)}
        q2 = {Fraction(0)} | {Fraction(1, 2**j) for j in range(1, 2**m2)}
        mags = {a + b for a in q1 for b in q2}
    return mags | {-v for v in mags}


@pytest.mark.parametrize(("scheme", "bits"), ALL_FORMATS)
def test_levels_match_paper_definition(scheme: Scheme, bits: int) -> None:
    fmt = weight_format(scheme, bits)
    got = {Fraction(int(v), fmt.denominator) for v in fmt.int_levels}
    assert got == paper_levels(scheme, bits)
    assert np.array_equal(fmt.levels, np.array(sorted(float(v) for v in got)))
    assert fmt.levels[-1] == 1.0 and fmt.levels[0] == -1.0


def test_level_counts() -> None:
    assert weight_format("sp2", 4).levels.size == 13
    assert weight_format("sp2", 8).levels.size == 187
    for m in range(2, 17):
        assert weight_format("fixed", m).levels.size == 2**m - 1
    for m in range(2, 6):
        assert weight_format("pot", m).levels.size == 2**m - 1
    # PoT-6's exponents stop at POT_MAX_EXPONENT: 2 * 16 + 1 levels, not 63
    assert weight_format("pot", 6).levels.size == 2 * (POT_MAX_EXPONENT + 1) + 1


def test_pot_exponents_fit_the_requantizer() -> None:
    # the smallest PoT magnitude 2**-E is a right shift the requantizer applies on top of a
    # full multiplier; words beyond it are not codes, and the hardware shift is unchanged
    assert POT_MAX_EXPONENT == REQUANTIZER.max_shift - REQUANTIZER.mult_bits
    f6 = weight_format("pot", 6)
    assert f6.denominator == 2**POT_MAX_EXPONENT and f6.levels.min() == -1.0
    assert f6.levels[f6.levels > 0].min() == 2.0**-POT_MAX_EXPONENT
    assert f6.valid_words.sum() == 2 * (POT_MAX_EXPONENT + 2)  # e = 0 .. 16, both signs
    words = np.flatnonzero(f6.valid_words)
    np.testing.assert_array_equal(f6.hw_mul(words, 3), 3 * f6.int_level(words))
    with pytest.raises(ConfigError, match="code word 17 is not a valid pot-6 code"):
        f6.int_level(17)
    for m in (7, 8):  # wider words, the same levels
        np.testing.assert_array_equal(weight_format("pot", m).levels, f6.levels)
    for m in (3, 4, 5):  # below the cap: unchanged
        assert weight_format("pot", m).denominator == 2 ** (2 ** (m - 1) - 2)


def test_sp2_field_split() -> None:
    f4, f8 = weight_format("sp2", 4), weight_format("sp2", 8)
    assert (f4.m1, f4.m2) == (2, 1)
    assert (f8.m1, f8.m2) == (4, 3)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ALL_FORMATS),
       st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=50))
def test_encode_is_nearest_level_by_brute_force(fmt_id, xs) -> None:
    fmt = weight_format(*fmt_id)
    x = np.array(xs)
    got = fmt.decode(fmt.encode(x))
    xc = np.clip(x, -1, 1)
    for xi, gi in zip(xc, got, strict=True):
        d = np.abs(xi - fmt.levels)
        best = d.min()
        ties = fmt.levels[d == best]
        assert gi == ties[np.argmin(np.abs(ties))]


@pytest.mark.parametrize(("scheme", "bits"), ALL_FORMATS)
def test_midpoints_go_to_smaller_magnitude(scheme: Scheme, bits: int) -> None:
    fmt = weight_format(scheme, bits)
    lv = fmt.levels
    mids = (lv[:-1] + lv[1:]) / 2
    exact = (mids - lv[:-1]) == (lv[1:] - mids)  # midpoint representable exactly
    got = fmt.decode(fmt.encode(mids[exact]))
    lo, hi = lv[:-1][exact], lv[1:][exact]
    assert np.array_equal(got, np.where(np.abs(hi) < np.abs(lo), hi, lo))


@pytest.mark.parametrize(("scheme", "bits"), ALL_FORMATS)
def test_code_level_code_round_trip(scheme: Scheme, bits: int) -> None:
    fmt = weight_format(scheme, bits)
    words = np.flatnonzero(fmt.valid_words)
    again = fmt.encode(fmt.decode(words))
    assert np.array_equal(fmt.decode(again), fmt.decode(words))
    canon = fmt.canonical_words
    assert np.array_equal(fmt.encode(fmt.decode(canon)), canon)
    ints = fmt.int_level(words)  # canonical word is the smallest alias
    smallest = {int(v): int(words[ints == v].min()) for v in np.unique(ints)}
    assert fmt.encode(fmt.decode(words)).tolist() == [smallest[int(v)] for v in ints]
    assert fmt.encode(0.0) == 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(ALL_FORMATS), st.integers(0, 2**31 - 1))
def test_hardware_op_equals_exact_product(fmt_id, seed) -> None:
    fmt = weight_format(*fmt_id)
    rng = np.random.default_rng(seed)
    words = np.flatnonzero(fmt.valid_words)
    x = rng.integers(-(2**15), 2**15, size=words.size)
    got = fmt.hw_mul(words, x)
    for w, xi, g in zip(words, x, got, strict=True):
        level = Fraction(int(fmt.int_level(w)), fmt.denominator)
        assert Fraction(int(g), fmt.denominator) == level * int(xi)


def test_fixed_words_are_twos_complement() -> None:
    fmt = weight_format("fixed", 4)
    assert fmt.int_level(np.array([0b0111, 0b1001, 0b1111])).tolist() == [7, -7, -1]
    assert not fmt.valid_words[0b1000]
    with pytest.raises(ConfigError, match="code word 8 is not a valid fixed-4 code"):
        fmt.int_level(8)


def test_sp2_op_is_two_shifts_and_add() -> None:
    fmt = weight_format("sp2", 4)  # word 0b0111: i1=3 (1/8), i2=1 (1/2) -> 5/8
    assert fmt.int_level(0b0111) == 5
    assert fmt.hw_mul(0b0111, 3) == (3 << 0) + (3 << 2)
    assert fmt.hw_mul(0b1111, 3) == -15


@pytest.mark.parametrize(
    ("scheme", "bits", "message"),
    [("sp2", 2, "bits must be an integer in 3..8 for sp2, not 2"),
     ("sp2", 9, "bits must be an integer in 3..8 for sp2, not 9"),
     ("pot", 9, "bits must be an integer in 2..8 for pot, not 9"),
     ("fixed", 1, "bits must be an integer in 2..16 for fixed, not 1"),
     ("ternary", 4, "scheme must be one of fixed, sp2, pot, not 'ternary'")],
)
def test_invalid_format_arguments(scheme, bits, message) -> None:
    with pytest.raises(ConfigError) as info:
        weight_format(scheme, bits)
    assert str(info.value) == message


def test_encode_rejects_non_finite() -> None:
    with pytest.raises(ConfigError, match="finite"):
        weight_format("sp2", 4).encode([0.1, np.nan])


def test_words_out_of_range_and_wrong_dtype() -> None:
    fmt = weight_format("pot", 4)
    with pytest.raises(ConfigError, match="code word must be in 0..15 for 4 bits, not 16"):
        fmt.decode([16])
    with pytest.raises(ShapeError, match="integer array"):
        fmt.decode([0.5])


class TestF8:
    def test_ranges(self) -> None:
        s, u = F8Format(fl=3), F8Format(fl=8, signed=False)
        assert (s.qmin, s.qmax, u.qmin, u.qmax) == (-127, 127, 0, 255)
        assert s.levels.size == 255 and u.levels[-1] == 255 / 256

    @pytest.mark.parametrize(("fl", "signed"), [(8, True), (-1, True), (9, False)])
    def test_invalid_fl(self, fl, signed) -> None:
        with pytest.raises(ConfigError, match="fl must be an integer in"):
            F8Format(fl=fl, signed=signed)

    def test_bits_must_be_8(self) -> None:
        with pytest.raises(ConfigError, match="bits must be an integer in 8..8"):
            F8Format(fl=3, bits=4)

    def test_std_rule(self) -> None:
        assert F8Format.fl_from_std(1.0) == 5  # floor(log2(40)) = 5
        assert F8Format.fl_from_std(1.0, signed=False) == 6  # floor(log2(70)) = 6
        assert F8Format.fl_from_std(0.01) == 7  # clamped
        assert F8Format.fl_from_std(1000.0) == 0

    @settings(max_examples=30, deadline=None)
    @given(st.integers(0, 2**31 - 1), st.floats(0.01, 50), st.booleans())
    def test_search_fl_is_best_of_all(self, seed, sigma, signed) -> None:
        x = np.random.default_rng(seed).normal(size=64) * sigma
        x = x if signed else np.abs(x)
        fl = F8Format.search_fl(x, signed)

        def err(f: int) -> float:
            fmt = F8Format(fl=f, signed=signed)
            return float(np.sum((x - fmt.decode(fmt.encode(x))) ** 2))

        assert err(fl) <= min(err(f) for f in range(8 if signed else 9))
        assert err(fl) <= err(F8Format.fl_from_std(float(np.std(x)), signed))

    @settings(max_examples=50, deadline=None)
    @given(st.integers(0, 7), st.lists(st.floats(-200, 200), min_size=1, max_size=20))
    def test_encode_nearest_and_clamped(self, fl, xs) -> None:
        f = F8Format(fl=fl)
        q = f.encode(xs)
        for x, qi in zip(xs, q, strict=True):
            t = Fraction(x) * 2**fl
            lo = int(np.floor(float(t)))
            best = min(range(lo - 1, lo + 3), key=lambda c: (abs(Fraction(c) - t), abs(c)))
            assert qi == max(-127, min(127, best))

    def test_signed_f8_weight_is_fixed8_at_alpha(self) -> None:
        fixed8 = weight_format("fixed", 8)
        f = F8Format(fl=5)
        q = np.arange(-127, 128)
        assert np.array_equal(fixed8.int_level(f.word(q)), q)
        assert np.allclose(fixed8.decode(f.word(q)) * 127 * 2.0**-5, f.decode(q), rtol=0, atol=0)


def test_act_format() -> None:
    assert (ActFormat(4).qmin, ActFormat(4).qmax) == (0, 15)
    assert (ActFormat(8, signed=True).qmin, ActFormat(8, signed=True).qmax) == (-127, 127)
    with pytest.raises(ConfigError, match="activations must lie in 0..15 for uint4, not 16"):
        ActFormat(4).check(np.array([1, 16]))
    with pytest.raises(ShapeError, match="integer array"):
        ActFormat(4).check(np.array([1.0]))


def test_format_table_data() -> None:
    t = format_table("sp2", 4)
    assert t["scheme"] == "sp2" and t["bits"] == 4 and len(t["levels"]) == 13
    assert len(t["codes"]) == 16 and sum(c["canonical"] for c in t["codes"]) == 13
    f8 = format_table("f8", 8, fl=2, signed=False)
    assert len(f8["codes"]) == 256 and f8["levels"][-1] == 255 / 4
    with pytest.raises(ConfigError, match="fl applies only to scheme f8"):
        format_table("sp2", 4, fl=3)


def test_all_sp2_words_enumerated_once() -> None:
    fmt = weight_format("sp2", 5)
    pairs = set(itertools.product(range(2), range(4), range(4)))
    got = {tuple(int(a) for a in fmt.fields(w)) for w in range(32)}
    assert got == pairs
