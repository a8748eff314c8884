# amaranth: UnusedElaboratable=no
"""Post-processing unit against quant.ref.requantize (exact, with ties and edge values); the
engine's post-processor over the whole range the simulator accepts, edges included."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.postproc import PostProcessor
from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.ref import requantize, round_shift
from quant.requant import REQUANTIZER
from tests.hw.requant_space import draw_row, edge_rows, hypothesis_pick, refusals
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


def cases(acc_bits: int, cols: int, mult_bits: int, max_shift: int, n: int, seed: int):
    """Rows of (acc[cols], mult, shift, bias, relu): edges first, then random with ties."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (acc_bits - 1)) + 1, (1 << (acc_bits - 1)) - 1
    mmax = (1 << mult_bits) - 1
    out = [
        (np.full(cols, hi), mmax, max_shift, 0, 0),
        (np.full(cols, lo), mmax, max_shift, 0, 0),
        (np.full(cols, lo), mmax, max_shift, 0, 1),
        (np.zeros(cols, dtype=np.int64), 0, 0, 0, 0),
        (np.arange(cols) - cols // 2, 1, 0, 0, 0),
        (np.array([(2 * (i - cols // 2) + 1) * 2 ** 3 for i in range(cols)]), 1, 4,
         0, 0),  # exact halves: ties to even, both signs
    ]
    for _ in range(n):
        shift = int(rng.integers(0, max_shift + 1))
        mult = int(rng.integers(0, mmax + 1)) if rng.random() < 0.8 else 1
        small = rng.random() < 0.5
        span = (1 << 12) if small else hi // 2
        acc = rng.integers(-span, span + 1, size=cols)
        if rng.random() < 0.3 and shift > 0:  # force ties
            acc = (2 * rng.integers(-50, 50, size=cols) + 1) << (shift - 1)
            acc = np.clip(acc, -span, span)
            mult = 1
        bias = int(rng.integers(-span, span + 1)) if rng.random() < 0.5 else 0
        out.append((acc, mult, shift, bias, int(rng.random() < 0.5)))
    return out


@pytest.mark.parametrize(("acc_bits", "cols", "out_fmt", "mult_bits"), [
    (24, 4, ActFormat(4), 16), (32, 3, ActFormat(8, True), 16), (20, 2, ActFormat(8), 8),
])
def test_postproc_matches_requantize(acc_bits, cols, out_fmt, mult_bits) -> None:
    max_shift = min(30, acc_bits + mult_bits)
    dut = PostProcessor(acc_bits, cols, out_fmt, mult_bits=mult_bits, max_shift=max_shift)
    rows = cases(acc_bits - 1, cols, mult_bits, max_shift, 220, seed=acc_bits + cols)
    bad = mismatches(dut, rows)
    assert len(rows) >= 200
    assert not bad, bad[:3]


def mismatches(dut: PostProcessor, rows, fmt: ActFormat | None = None,
               unclamped: bool = False) -> list[tuple]:
    """Rows on which ``dut`` (Amaranth simulator) and quant.ref.requantize differ, with both
    outputs. A DUT whose format is an input gets ``fmt`` (or, ``unclamped``, the logits'
    format ``REQUANTIZER.output_format(None)``, the output lane at which they saturate,
    without ReLU)."""
    bad = []
    if unclamped:
        fmt = REQUANTIZER.output_format(None)

    def reference(acc, mult, shift, bias, relu):
        return requantize(np.asarray(acc, dtype=np.int64), mult, shift, fmt or dut.out_fmt,
                          bias=bias, relu=bool(relu))

    async def bench(ctx):
        if fmt is not None:
            ctx.set(dut.out_bits, fmt.bits)
            ctx.set(dut.out_signed, int(fmt.signed))
        for acc, mult, shift, bias, relu in rows:
            for c in range(dut.cols):
                ctx.set(dut.acc[c], int(acc[c]))
            ctx.set(dut.mult, mult)
            ctx.set(dut.shift, shift)
            ctx.set(dut.bias, bias)
            ctx.set(dut.relu, 0 if unclamped else relu)
            ctx.set(dut.valid, 1)
            await ctx.tick()
            assert ctx.get(dut.y_valid) == 1
            got = [ctx.get(dut.y[c]) for c in range(dut.cols)]
            want = reference(acc, mult, shift, bias, 0 if unclamped else relu)
            if got != [int(v) for v in want]:
                bad.append((list(acc), mult, shift, bias, relu, got, list(want)))

    run_bench(dut, bench)
    return bad


# The engine's post-processor over what the simulator accepts (quant.requant.REQUANTIZER).

#: One line naming the field and its row, the allowed range and the value.
REFUSAL = re.compile(r"row: (mult|shift|bias)\[0\] must be (in -?\d+\.\.-?\d+|at most \d+) "
                     r"\([^()]*(\([^()]*\)[^()]*)?\), not -?\d+")


@pytest.mark.parametrize(("acc_bits", "out_fmt"), [
    (8, ActFormat(4, True)), (15, ActFormat(1)), (24, ActFormat(4)), (32, ActFormat(8, True)),
    (48, ActFormat(8)), (64, ActFormat(16, True)),
])
def test_engine_postproc_at_every_edge(acc_bits, out_fmt) -> None:
    rows = edge_rows(acc_bits, 3)
    assert len(rows) >= 250  # at 64 bits the int64 rule refuses about half
    assert not mismatches(PostProcessor.for_engine(acc_bits, 3, out_fmt), rows)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_engine_postproc_over_the_accepted_range(data) -> None:
    """Random rows over the accepted range and just beyond it: each is either refused by the
    simulator's check with one line, or computed by the RTL exactly as quant.ref does."""
    pick = hypothesis_pick(data)
    acc_bits = pick(*REQUANTIZER.acc_bits, (8, 15, 16, 24, 32, 47, 48, 64))
    signed = bool(pick(0, 1, ()))
    out_fmt = ActFormat(pick(2 if signed else 1, REQUANTIZER.max_out_bits, ()), signed)
    cols = pick(1, 3, ())
    rows = [draw_row(pick, acc_bits, cols) for _ in range(pick(1, 8, ()))]
    run = []
    for row in rows:
        refused = refusals(row, acc_bits)
        assert all(REFUSAL.fullmatch(line) for line in refused), refused
        if not refused:
            run.append(row)
    if run:
        assert not mismatches(PostProcessor.for_engine(acc_bits, cols, out_fmt), run)


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_engine_postproc_clamps_to_the_commanded_format(data) -> None:
    """The engine's post-processor takes the output format as an input (one per GEMM
    command): for every format up to ``max_out_bits`` bits, signed or not, and for the logits
    (the widest signed format, at which they saturate: also rows whose logits leave it), the
    RTL computes what quant.ref computes over the accepted range."""
    pick = hypothesis_pick(data)
    acc_bits = pick(*REQUANTIZER.acc_bits, (8, 16, 24, 32, 64))
    unclamped = bool(pick(0, 3, ()) == 0)
    signed = bool(pick(0, 1, ()))
    fmt = None if unclamped else ActFormat(
        pick(2 if signed else 1, REQUANTIZER.max_out_bits, (1 + signed, 4, 16)), signed)
    cols = pick(1, 3, ())
    run = []
    for _ in range(pick(1, 8, ())):
        row = draw_row(pick, acc_bits, cols)
        acc, mult, shift, bias, _ = row
        refused = REQUANTIZER.violations("row", acc_bits, mult, shift, bias,
                                         acc_max=max(abs(int(a)) for a in acc))
        if not refused:
            run.append(row)
    if run:
        dut = PostProcessor.for_engine(acc_bits, cols)
        assert not mismatches(dut, run, fmt, unclamped)


def test_every_output_format_clamps_at_its_edges() -> None:
    """Each of the 31 output formats, at and beyond both of its ends."""
    dut = PostProcessor.for_engine(24, 4)
    for signed in (False, True):
        for bits in range(1 + signed, REQUANTIZER.max_out_bits + 1):
            f = ActFormat(bits, signed)
            acc = np.array([f.qmin - 1, f.qmin, f.qmax, f.qmax + 1])
            assert not mismatches(dut, [(acc, 1, 0, 0, 0), (-acc, 1, 0, 0, 1)], f), str(f)


def test_unclamped_outputs_beyond_the_lane_are_refused() -> None:
    """REQUANTIZER's static proof that a layer's logits never saturate at the widest signed
    format names, in one line, a layer whose logits may; one that stays inside passes."""
    hi = REQUANTIZER.output_format(None).qmax
    bad = REQUANTIZER.violations("layer 'fc'", 24, 1, 0, 0, acc_max=hi + 1, unclamped=True)
    assert len(bad) == 1 and bad[0].startswith("layer 'fc': out.format null (unclamped) needs "
                                               f"|output| at most {hi}")
    assert not REQUANTIZER.violations("fc", 24, 1, 0, 0, acc_max=hi, unclamped=True)
    assert REQUANTIZER.violations("fc", 24, 1, 0, 0, acc_max=hi + 1) == []


def test_postproc_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^max_shift must be an integer in 0\.\.40, not 41$"):
        PostProcessor(24, 4, ActFormat(8), mult_bits=16, max_shift=41)
    with pytest.raises(ConfigError, match=r"^out must be an ActFormat, not 'int8'$"):
        PostProcessor(24, 4, "int8")


def test_logits_beyond_the_lane_saturate_alike_in_the_reference_and_the_rtl() -> None:
    """The logits (out.format null) saturate at the output lane. The shipped artifact's head
    with logits 2**7 times larger, on random inputs: quant.ops (the reference) gives the
    rounded logits clipped to ±32,767, and the accelerator top in Amaranth's simulator, run
    with the command the RTL host writes for the layer (hw.tb.cases.layer_case), computes
    the same. (The host used to refuse such a layer: REQUANTIZER.check_lane.)"""
    from dataclasses import replace

    from hw.tb.amaranth_bench import run_case
    from hw.tb.cases import layer_case, with_memory
    from quant.artifact import load_artifact
    from quant.ops import gemm_of
    from quant.ops.gemm import gemm_requant, output_columns
    from sim.config import CONFIG_DIR, load_accelerator

    art = load_artifact(CONFIG_DIR / "artifacts" / "cnn_msq4_digits")
    fc = art.layer("fc")
    lane = REQUANTIZER.output_format(None)
    assert gemm_requant(fc) == (lane, False) and (lane.qmin, lane.qmax) == (-32767, 32767)
    t = fc.tensors
    head = replace(fc, tensors={**t, "shift": np.maximum(t["shift"] - 7, 0)})
    src = art.value(fc.inputs[0])
    x = np.random.default_rng(5).integers(src.fmt.qmin, src.fmt.qmax + 1, size=(6, *src.shape))
    op = gemm_of(head)
    acc = op.reference(head, x, src.fmt, int(head.attrs["acc_bits"]))
    ht = head.tensors
    raw = round_shift((acc + ht["bias"]) * ht["mult"], ht["shift"])
    assert (raw > lane.qmax).any() and (raw < -lane.qmax).any()  # the lane, left both ways
    assert (np.abs(raw) < lane.qmax).any()
    want = op.run(head, [x], [src.fmt], None)
    assert np.array_equal(want, np.clip(raw, -lane.qmax, lane.qmax))
    tiny = load_accelerator("tiny")
    cols, _ = op.to_columns(head, x)
    case = layer_case(tiny, head, cols, output_columns(want), bw=None, lat=0)
    np.testing.assert_array_equal(run_case(with_memory(tiny, None, 0), case).y, case.want)
