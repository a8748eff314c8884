"""The engine's requantizer definition (quant.requant): its ranges, its one-line refusals, and
the exporter's multipliers staying inside it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ArtifactError, ConfigError
from quant.ref import quantize_multiplier
from quant.requant import REQUANTIZER
from quant.torch.export import _multiplier

WHERE = "layer 'fc'"


def test_ranges() -> None:
    assert REQUANTIZER.mult_range() == (0, 65535)
    assert REQUANTIZER.shift_range(24) == (0, 31)
    assert REQUANTIZER.shift_range(8) == (0, 24)  # beyond acc_bits + mult_bits all is 0
    assert REQUANTIZER.bias_range(24) == (-2**23, 2**23 - 1)
    assert REQUANTIZER.product_bits(24) == 42
    assert REQUANTIZER.acc_bits == (8, 64) and REQUANTIZER.max_out_bits == 16


def test_edges_accepted() -> None:
    assert REQUANTIZER.violations(WHERE, 24, [0, 65535, 1], [0, 31, 0],
                                  [-2**23, 2**23 - 1, 0]) == []
    assert REQUANTIZER.violations(WHERE, 8, 65535, 24, -128) == []


@pytest.mark.parametrize(("acc_bits", "mult", "shift", "bias", "line"), [
    (24, [5, 70000], 3, 0,
     "mult[1] must be in 0..65535 (the engine's 16-bit unsigned multiplier), not 70000"),
    (24, -1, 3, 0,
     "mult[0] must be in 0..65535 (the engine's 16-bit unsigned multiplier), not -1"),
    (24, 1, [4, -1], 0,
     "shift[1] must be in 0..31 (right shifts only; a left shift by L is mult * 2**L), not -1"),
    (24, 1, 32, 0,
     "shift[0] must be in 0..31 (right shifts only; a left shift by L is mult * 2**L), not 32"),
    (8, 1, 25, 0,
     "shift[0] must be in 0..24 (right shifts only; a left shift by L is mult * 2**L), not 25"),
    (24, 1, 0, [0, 0, 2**23],
     "bias[2] must be in -8388608..8388607 (signed, engine.acc_bits = 24), not 8388608"),
    (24, 1, 0, -2**23 - 1,
     "bias[0] must be in -8388608..8388607 (signed, engine.acc_bits = 24), not -8388609"),
    (48, 65535, 0, -2**47,
     "mult[0] must be at most 32767 (so that (acc + bias) * mult fits int64 with bias "
     "-140737488355328 and |acc| up to 140737488355328), not 65535"),
])
def test_one_line_per_violation(acc_bits, mult, shift, bias, line) -> None:
    assert REQUANTIZER.violations(WHERE, acc_bits, mult, shift, bias) == [f"{WHERE}: {line}"]
    with pytest.raises(ArtifactError) as exc:
        REQUANTIZER.check(WHERE, acc_bits, mult, shift, bias)
    assert str(exc.value) == f"{WHERE}: {line}"


def test_every_bad_field_is_reported_and_check_raises_the_first() -> None:
    bad = REQUANTIZER.violations(WHERE, 24, 70000, -1, 2**30)
    assert [b.split(": ")[1].split("[")[0] for b in bad] == ["mult", "shift", "bias"]
    with pytest.raises(ArtifactError, match=r"^layer 'fc': mult\[0\] must be in 0\.\.65535"):
        REQUANTIZER.check(WHERE, 24, 70000, -1, 2**30)


def test_proven_accumulator_bound_relaxes_the_int64_rule() -> None:
    assert REQUANTIZER.violations(WHERE, 48, 65535, 0, -2**47, acc_max=2**20) == []
    assert REQUANTIZER.violations(WHERE, 64, 1, 0, 0)  # a full 64-bit accumulator
    assert REQUANTIZER.violations(WHERE, 64, 0, 0, -2**63) == []


def test_accumulator_width_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"^acc_bits must be an integer in 8\.\.64, not 65$"):
        REQUANTIZER.violations(WHERE, 65, 1, 0, 0)


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-15, 65535.4))
def test_engine_multipliers_are_accepted(scale) -> None:
    lo, hi = REQUANTIZER.shift_range(32)
    mult, shift = quantize_multiplier(scale, REQUANTIZER.mult_bits, min_shift=lo, max_shift=hi)
    assert REQUANTIZER.violations(WHERE, 32, mult, shift, 0) == []
    if shift < hi:  # not capped: full precision
        assert abs(mult * 2.0**-shift - scale) <= scale * 2.0**-REQUANTIZER.mult_bits


def test_engine_multiplier_ends() -> None:
    assert quantize_multiplier(65535.7, 16, min_shift=0, max_shift=31) == (65535, 0)
    with pytest.raises(ConfigError, match=r"^scale must be below 2\*\*16, not 65536\.0$"):
        quantize_multiplier(65536.0, 16, min_shift=0, max_shift=31)
    assert quantize_multiplier(2.0**-40, 16, min_shift=0, max_shift=31) == (0, 31)
    with pytest.raises(ConfigError, match=r"^min_shift must be an integer in -62\.\.31, not 32$"):
        quantize_multiplier(1.0, 16, min_shift=32, max_shift=31)


def test_exporter_writes_what_the_engine_runs() -> None:
    shifts = REQUANTIZER.shift_range(32)
    assert _multiplier(0.25, shifts) == (1, 2)  # F8Net's pure shift where it is in range
    assert _multiplier(4.0, shifts) == (32768, 13)  # a left shift becomes the multiplier
    assert _multiplier(4.0) == (1, -2)  # vector-unit ops keep quant.ref's whole range
    assert _multiplier(2.0**-40, shifts) == (0, 31)
