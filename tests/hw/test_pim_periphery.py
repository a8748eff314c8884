# amaranth: UnusedElaboratable=no
"""PIM periphery in the Amaranth simulator against the numba PIM kernel."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.pim_periphery import PimPeriphery, code_sequence
from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.pim.arith import calibrate_range, clip_count, group_sums, sum_histogram
from quant.ref import round_shift
from sim.pim import pim_gemm

pytestmark = pytest.mark.filterwarnings("error")


def conversion_codes(w_row, x_col, pl) -> list[int]:
    """ADC codes of one output in code_sequence order (ideal ADC), from quant.pim's rules."""
    a = pl.arith
    codes = []
    wmask, amask = (1 << pl.w_bits) - 1, (1 << pl.a_bits) - 1

    def adc(p: int, shift: int) -> int:
        v = int(round_shift(np.int64(p * pl.adc_mult), shift))
        return min(max(v, a.code_min), a.code_max)

    for g0 in range(0, len(w_row), a.group_size):
        ws = [int(v) for v in w_row[g0:g0 + a.group_size]]
        xs = [int(v) for v in x_col[g0:g0 + a.group_size]]
        if a.scheme == "native":
            codes.append(adc(sum(p * q for p, q in zip(ws, xs, strict=True)), pl.adc_shift[0]))
        elif a.scheme == "differential":
            codes.append(adc(sum(max(p, 0) * q for p, q in zip(ws, xs, strict=True)),
                             pl.adc_shift[0]))
            codes.append(adc(sum(max(-p, 0) * q for p, q in zip(ws, xs, strict=True)),
                             pl.adc_shift[0]))
        else:
            for _, pshift in pl.planes:
                for si, (_, _, lo, hi) in enumerate(pl.slices):
                    p = sum((((v & wmask) >> lo) & ((1 << (hi - lo)) - 1)) *
                            (((q & amask) >> pshift) & 1) for v, q in zip(ws, xs, strict=True))
                    codes.append(adc(p, pl.adc_shift[si]))
    return codes


EXACT = {"pot_step": False}  # exact (non-power-of-two) steps; small ranges, so sums clip
CASES = [
    ("native", 3, 16, 6, ActFormat(4, True), {}),
    ("differential", 3, 16, 5, ActFormat(4), {}),
    ("bit_serial", 1, 16, 5, ActFormat(4), {}),
    ("bit_serial", 2, 8, 6, ActFormat(3, True), {}),
    ("native", 3, 16, 4, ActFormat(4, True), {**EXACT, "adc_step": 13.7}),
    ("differential", 3, 16, 4, ActFormat(4), {**EXACT, "adc_step": 21.3}),
    ("bit_serial", 1, 16, 3, ActFormat(4), {**EXACT, "adc_step": 1.3}),
    ("bit_serial", 2, 8, 3, ActFormat(3, True), {**EXACT, "adc_step": 0.7}),
    # ranges calibrated on the operands' own group sums (a percentile; the rest clip)
    ("native", 3, 16, 5, ActFormat(4, True), {**EXACT, "percentile": 80.0}),
    ("differential", 3, 16, 4, ActFormat(4), {**EXACT, "percentile": 75.0}),
    ("bit_serial", 1, 16, 3, ActFormat(4), {**EXACT, "percentile": 80.0}),
]


@pytest.mark.parametrize(("scheme", "cell_bits", "group", "adc_bits", "act", "step"), CASES,
                         ids=[c[0] + str(c[1]) + ("-calibrated" if "percentile" in c[5] else
                                                  "-exact" if c[5] else "") for c in CASES])
def test_periphery_equals_kernel(scheme, cell_bits, group, adc_bits, act, step) -> None:
    seed = 1234 + cell_bits
    rng = np.random.default_rng(seed)
    step = dict(step)
    pct = step.pop("percentile", None)
    arith = PimArith(scheme=scheme, group_size=group, cell_bits=cell_bits, adc_bits=adc_bits,
                     range_fraction=0.5, **step)
    w_bits = 4
    m, k, n = 3, 37, 2  # K not a multiple of the group
    w = rng.integers(-7, 8, size=(m, k))
    x = rng.integers(act.qmin, act.qmax + 1, size=(k, n))
    adc_range = None
    if pct is not None:  # the layer's range from the histogram of its group sums
        pl0 = plan(arith, w_bits, act.bits, act.signed)
        adc_range = calibrate_range(sum_histogram(group_sums(w, x, pl0), pl0), pl0, pct)
    pl = plan(arith, w_bits, act.bits, act.signed, adc_range)
    expected = pim_gemm(w, x, w_bits, act, arith, adc_range=adc_range)
    outputs = [(i, j) for i in range(m) for j in range(n)]
    streams = [conversion_codes(w[i], x[:, j], pl) for i, j in outputs]
    if step:  # a non-power-of-two step, and some conversions clip
        assert pl.adc_mult & (pl.adc_mult - 1)
        assert any(c == arith.code_max for codes in streams for c in codes)
    if pct is not None:  # and conversions beyond the calibrated range clip
        assert clip_count(group_sums(w, x, pl), pl)[1] > 0
    dut = PimPeriphery(pl, acc_bits=32)
    got: list[int] = []

    async def bench(ctx):
        for codes in streams:
            for t, c in enumerate(codes):
                while rng.random() < 0.3:  # idle cycles on the code stream
                    ctx.set(dut.codes.valid, 0)
                    await ctx.tick()
                ctx.set(dut.codes.valid, 1)
                ctx.set(dut.codes.payload, {"code": c, "last": int(t == len(codes) - 1)})
                await ctx.tick().until(dut.codes.ready)
            ctx.set(dut.codes.valid, 0)

    async def sink(ctx):
        while len(got) < len(outputs):
            ctx.set(dut.result.ready, int(rng.random() < 0.6))  # back-pressure
            _, _, valid, ready, payload = await ctx.tick().sample(
                dut.result.valid, dut.result.ready, dut.result.payload)
            if valid and ready:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(sink)
    sim.run()
    assert got == [int(expected[i, j]) for i, j in outputs]


def test_code_sequence_order() -> None:
    pl = plan(PimArith(scheme="bit_serial", cell_bits=2, group_size=8, adc_bits=6), 4, 2)
    # planes outer (x bit 0, 1), slices inner: sign bit (-8), low bits 0-1, low bit 2
    assert code_sequence(pl) == [(-1, 3), (1, 0), (1, 2), (-1, 4), (1, 1), (1, 3)]


def test_periphery_rejects_narrow_accumulator() -> None:
    pl = plan(PimArith(scheme="native", cell_bits=3, adc_bits=7), 4, 4)
    with pytest.raises(ConfigError, match="acc_bits must be an integer in"):
        PimPeriphery(pl, acc_bits=4)
