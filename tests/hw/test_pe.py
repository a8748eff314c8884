# amaranth: UnusedElaboratable=no
"""The three PEs against quant.formats' hardware ops (Amaranth simulator, exact comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from hw.pe_fixed import FixedMacPe
from hw.pe_packed import PackedFixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from quant.errors import ConfigError
from quant.formats import ActFormat, weight_format
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")

PE_OF = {"fixed": FixedMacPe, "sp2": Sp2Pe, "pot": PotPe}


def stimulus(fmt, act: ActFormat, n_random: int, seed: int):
    """Edge cases first (every valid word against the extreme activations), then random."""
    rng = np.random.default_rng(seed)
    words = np.flatnonzero(fmt.valid_words)
    xs_edge = sorted({act.qmin, act.qmax, 0, 1, act.qmin + 1, act.qmax - 1} &
                     set(range(act.qmin, act.qmax + 1)))
    cases = [(int(w), int(x), 1, 1) for w in words for x in xs_edge]
    # A run of largest-magnitude products accumulated back to back (no restart).
    big = int(words[np.argmax(np.abs(fmt.int_level_table[words]))])
    cases += [(big, act.qmax if act.qmax >= -act.qmin else act.qmin, 1, int(i == 0))
              for i in range(8)]
    for _ in range(n_random):
        cases.append((int(rng.choice(words)), int(rng.integers(act.qmin, act.qmax + 1)),
                      int(rng.random() < 0.85), int(rng.random() < 0.2)))
    return cases


CONFIGS = [
    ("fixed", 4, ActFormat(4)), ("fixed", 8, ActFormat(8)), ("fixed", 8, ActFormat(8, True)),
    ("sp2", 4, ActFormat(4)), ("sp2", 5, ActFormat(8, True)), ("sp2", 8, ActFormat(8)),
    ("pot", 4, ActFormat(4)), ("pot", 6, ActFormat(8, True)), ("pot", 2, ActFormat(3)),
    ("pot", 8, ActFormat(8, True)),
]


@pytest.mark.parametrize(("scheme", "bits", "act"), CONFIGS,
                         ids=[f"{s}{b}-{a}" for s, b, a in CONFIGS])
def test_pe_matches_hw_mul(scheme: str, bits: int, act: ActFormat) -> None:
    fmt = weight_format(scheme, bits)
    acc_bits = 48
    dut = PE_OF[scheme](fmt, act, acc_bits)
    cases = stimulus(fmt, act, 250, seed=bits * 31 + act.bits)
    assert len(cases) >= 200
    mismatches = []

    async def bench(ctx):
        model = 0
        for w, x, valid, first in cases:
            ctx.set(dut.w, w)
            ctx.set(dut.x, x)
            ctx.set(dut.valid, valid)
            ctx.set(dut.first, first)
            await ctx.tick()
            if valid:
                model = (0 if first else model) + int(fmt.hw_mul(np.array(w), np.array(x)))
            got = ctx.get(dut.acc)
            if got != model:
                mismatches.append((w, x, valid, first, got, model))

    run_bench(dut, bench)
    assert not mismatches, mismatches[:5]


def test_sp2_negative_terms_and_zero_codes_covered() -> None:
    fmt = weight_format("sp2", 4)
    cases = stimulus(fmt, ActFormat(4), 0, seed=0)
    sign, i1, i2 = fmt.fields(np.array([c[0] for c in cases]))
    assert (sign == 1).any() and (i1 == 0).any() and (i2 == 0).any()
    assert ((sign == 1) & (i1 > 0) & (i2 > 0)).any()


def test_pe_rejects_bad_parameters() -> None:
    act = ActFormat(8)
    with pytest.raises(ConfigError, match=r"^fmt must be an Sp2Format, not "):
        Sp2Pe(weight_format("fixed", 8), act, 32)
    with pytest.raises(ConfigError, match=r"^act must be an ActFormat, not 8$"):
        FixedMacPe(weight_format("fixed", 8), 8, 32)
    with pytest.raises(ConfigError, match=r"^acc_bits must be an integer in 16\.\.64 for "
                                          r"fixed-8 weights and uint8 activations, not 12$"):
        FixedMacPe(weight_format("fixed", 8), act, 12)
    with pytest.raises(ConfigError, match=r"^fmt must be a PotFormat, not "):
        PotPe(weight_format("sp2", 4), act, 32)


PACKED_CONFIGS = [(8, ActFormat(8), 2), (8, ActFormat(8, True), 2), (4, ActFormat(4), 2),
                  (4, ActFormat(4), 4), (4, ActFormat(4, True), 4), (4, ActFormat(4), 3),
                  (6, ActFormat(5, True), 2)]


@pytest.mark.parametrize(("bits", "act", "lanes"), PACKED_CONFIGS,
                         ids=[f"fixed{b}-{a}-x{n}" for b, a, n in PACKED_CONFIGS])
def test_packed_pe_matches_hw_mul(bits: int, act: ActFormat, lanes: int) -> None:
    """Every lane of one multiplier equals its own FixedFormat.hw_mul accumulation."""
    fmt = weight_format("fixed", bits)
    dut = PackedFixedMacPe(fmt, act, 40, lanes)
    rng = np.random.default_rng(bits * 101 + act.bits * 7 + lanes)
    most_neg = 1 << (bits - 1)  # the word -2**(bits-1): outside the format, but hw_mul has it
    words = np.arange(1 << bits)
    x_big = act.qmax if act.qmax >= -act.qmin else act.qmin
    # Edge cases: every word in lane 0 against the extreme activations while the other lanes
    # hold the largest magnitudes of both signs, zero, or the most negative word.
    others = [most_neg, (1 << (bits - 1)) - 1, 0, (1 << bits) - 1]
    cases = []
    for w0 in words:
        for x in sorted({act.qmin, act.qmax, 0, 1, act.qmax - 1}):
            ws = [int(w0)] + [others[(int(w0) + i) % len(others)] for i in range(1, lanes)]
            cases.append((ws, x, 1, 1))
    # Largest products accumulated back to back in every lane (no restart).
    cases += [([most_neg] * lanes, x_big, 1, int(i == 0)) for i in range(8)]
    cases += [([(1 << (bits - 1)) - 1] * lanes, x_big, 1, int(i == 0)) for i in range(8)]
    for _ in range(300):
        cases.append(([int(v) for v in rng.integers(0, 1 << bits, lanes)],
                      int(rng.integers(act.qmin, act.qmax + 1)),
                      int(rng.random() < 0.85), int(rng.random() < 0.2)))
    assert len(cases) >= 200
    mismatches = []

    async def bench(ctx):
        model = [0] * lanes
        for ws, x, valid, first in cases:
            for i, w in enumerate(ws):
                ctx.set(dut.w[i], w)
            ctx.set(dut.x, x)
            ctx.set(dut.valid, valid)
            ctx.set(dut.first, first)
            await ctx.tick()
            if valid:
                model = [(0 if first else model[i]) + int(fmt.hw_mul(np.array(w), np.array(x)))
                         for i, w in enumerate(ws)]
            got = [ctx.get(dut.acc[i]) for i in range(lanes)]
            if got != model:
                mismatches.append((ws, x, valid, first, got, model))

    run_bench(dut, bench)
    assert not mismatches, mismatches[:5]


def test_packed_pe_rejects_bad_parameters() -> None:
    act = ActFormat(8)
    with pytest.raises(ConfigError, match=r"^lanes must be an integer in 2\.\.4, not 1$"):
        PackedFixedMacPe(weight_format("fixed", 8), act, 32, 1)
    with pytest.raises(ConfigError, match=r"^weight and activation bits must be at most 4 for "
                                          r"4 lanes, not 8$"):
        PackedFixedMacPe(weight_format("fixed", 8), act, 32, 4)
    with pytest.raises(ConfigError, match=r"^weight and activation bits must be at most 8 for "
                                          r"2 lanes, not 9$"):
        PackedFixedMacPe(weight_format("fixed", 8), ActFormat(9), 32, 2)
    with pytest.raises(ConfigError, match=r"^fmt must be a FixedFormat, not "):
        PackedFixedMacPe(weight_format("sp2", 4), ActFormat(4), 32, 2)
    with pytest.raises(ConfigError, match=r"^acc_bits must be an integer in 8\.\.64 for fixed-4 "
                                          r"weights and uint4 activations, not 7$"):
        PackedFixedMacPe(weight_format("fixed", 4), ActFormat(4), 7, 2)
