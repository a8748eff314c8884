# amaranth: UnusedElaboratable=no
"""The vector unit (hw.vector) in the Amaranth simulator: outputs exact against quant.ref /
quant.ops, cycles exact against sim.timing R14/R15, with idle cycles and back-pressure."""

from __future__ import annotations

import numpy as np
import pytest

from hw.vector.requant import DyadicRequant
from quant.errors import ConfigError
from quant.formats import ActFormat
from sim.timing import REQ_DEPTH, vector_op_cycles
from tests.hw.simutil import run_bench
from tests.hw.vector_cases import chunks, requant_cases

pytestmark = pytest.mark.filterwarnings("error")


def stream_run(dut, setup: dict, beats: list[list[int]], n_out: int, rng, idle: float,
               ready: float, coefs: list | None = None) -> tuple[list[list[int]], int]:
    """Drive ``beats`` into ``dut.inp`` (a random idle cycle with probability ``idle``
    before each) and take ``n_out`` beats from ``dut.out`` (ready with probability
    ``ready``). Returns the output beats and the cycles from the first beat taken to the
    last beat given, both included. ``coefs``: (gamma, beta) beats written into a
    LayerNorm's coefficient memory first."""
    lanes = len(beats[0])
    got: list[list[int]] = []
    span: list[int] = []

    async def bench(ctx):
        for name, value in setup.items():
            ctx.set(getattr(dut, name), value)
        for addr, (gamma, beta) in enumerate(coefs or []):
            ctx.set(dut.coef_we, 1)
            ctx.set(dut.coef_addr, addr)
            for lane in range(lanes):
                ctx.set(dut.coef_gamma[lane], gamma[lane])
                ctx.set(dut.coef_beta[lane], beta[lane])
            await ctx.tick()
        if coefs:
            ctx.set(dut.coef_we, 0)
        cycle = 0
        i = 0
        first = last = None
        while len(got) < n_out:
            offer = i < len(beats) and rng.random() >= idle
            ctx.set(dut.inp.valid, int(offer))
            if offer:
                for lane, v in enumerate(beats[i]):
                    ctx.set(dut.inp.payload[lane], v)
            take = rng.random() < ready
            ctx.set(dut.out.ready, int(take))
            if offer and ctx.get(dut.inp.ready):
                first = cycle if first is None else first
                i += 1
            if take and ctx.get(dut.out.valid):
                got.append([ctx.get(dut.out.payload[lane]) for lane in range(lanes)])
                last = cycle
            await ctx.tick()
            cycle += 1
            assert cycle < 100_000, "the unit hangs"
        span.append(last - first + 1)

    run_bench(dut, bench)
    return got, span[0]


@pytest.mark.parametrize(("lanes", "acc_bits"), [(1, 32), (4, 24), (3, 32)])
def test_requant_matches_reference_and_r15(lanes, acc_bits) -> None:
    rng = np.random.default_rng(lanes * 100 + acc_bits)
    dut = DyadicRequant(lanes, acc_bits)
    cases = requant_cases(rng, acc_bits, 12, 11)
    for k, case in enumerate(cases):
        setup = {"mult": case.mult, "shift": case.shift, "out_bits": case.fmt.bits,
                 "out_signed": int(case.fmt.signed)}
        beats = chunks(case.acc, lanes)
        stall = k % 2 == 1
        got, cycles = stream_run(dut, setup, beats, len(beats), rng,
                                 idle=0.3 if stall else 0.0, ready=0.6 if stall else 1.0)
        flat = [v for b in got for v in b][:len(case.acc)]
        assert flat == case.expected.tolist(), f"case {k}: {case}"
        if not stall:
            want = vector_op_cycles("requant", len(case.acc), 0, 0, lanes, 1)
            assert cycles == want == len(beats) + REQ_DEPTH


def test_requant_refuses_bad_parameters() -> None:
    with pytest.raises(ConfigError, match="lanes"):
        DyadicRequant(0, 32)
    with pytest.raises(ConfigError, match="acc_bits"):
        DyadicRequant(4, 65)


def softmax_setup(case) -> dict:
    return {"length": case.acc.shape[1], "mult": case.mult, "shift": case.shift,
            "x_bits": case.fmt.bits, "x_signed": int(case.fmt.signed), "x0": case.x0,
            "exp_n": case.n, "out_bits": case.out_bits}


def softmax_beats(case, lanes: int) -> tuple[list[list[int]], int]:
    """The input beats of an op (every row twice: passes 1 and 2) and its output beats."""
    beats = []
    for row in case.acc:
        beats += chunks(row, lanes) * 2
    return beats, case.acc.shape[0] * len(chunks(case.acc[0], lanes))


@pytest.mark.parametrize(("lanes", "length"), [(4, 13), (1, 5), (8, 8), (3, 1)])
def test_softmax_matches_shiftmax_and_r14(lanes, length) -> None:
    from hw.vector.softmax import Softmax
    from tests.hw.vector_cases import softmax_case

    rng = np.random.default_rng(lanes * 1000 + length)
    dut = Softmax(lanes, 32, 16)
    for k in range(6):
        case = softmax_case(rng, 3, length, 32, kind="extreme" if k < 2 else "random")
        beats, n_out = softmax_beats(case, lanes)
        stall = k % 2 == 1
        got, cycles = stream_run(dut, softmax_setup(case), beats, n_out, rng,
                                 idle=0.3 if stall else 0.0, ready=0.6 if stall else 1.0)
        per_row = n_out // case.acc.shape[0]
        rows = [[v for b in got[r * per_row:(r + 1) * per_row] for v in b][:length]
                for r in range(case.acc.shape[0])]
        assert rows == case.expected.tolist(), f"op {k}: {case}"
        if not stall:
            assert cycles == vector_op_cycles("softmax", case.acc.size, case.acc.shape[0],
                                              length, lanes, 1)


def gelu_setup(case) -> dict:
    a = case.attrs
    return {"x0": a["x0"], "exp_n": a["n"], "sigmoid_bits": a["p"], "mult": a["mult"],
            "shift": a["shift"], "out_bits": case.out_fmt.bits,
            "out_signed": int(case.out_fmt.signed)}


@pytest.mark.parametrize(("lanes", "fmt"), [(2, ActFormat(8, True)), (3, ActFormat(8))])
def test_gelu_matches_reference_and_r15(lanes, fmt) -> None:
    from hw.vector.gelu import Gelu
    from tests.hw.vector_cases import gelu_case

    rng = np.random.default_rng(lanes * 7 + fmt.bits)
    dut = Gelu(lanes, fmt)
    for k in range(6):
        case = gelu_case(rng, 19, fmt, extreme=k < 2)
        beats = chunks(case.x, lanes)
        stall = k % 2 == 1
        got, cycles = stream_run(dut, gelu_setup(case), beats, len(beats), rng,
                                 idle=0.3 if stall else 0.0, ready=0.6 if stall else 1.0)
        flat = [v for b in got for v in b][:len(case.x)]
        assert flat == case.expected.tolist(), f"op {k}: {case}"
        if not stall:
            assert cycles == vector_op_cycles("gelu", len(case.x), 0, 0, lanes, 1)


@pytest.mark.parametrize(("lanes", "channels", "fmt"),
                         [(4, 10, ActFormat(8, True)), (3, 4, ActFormat(8)),
                          (2, 8, ActFormat(16, True)), (1, 3, ActFormat(8, True))])
def test_layernorm_matches_reference_and_r14(lanes, channels, fmt) -> None:
    from hw.vector.layernorm import LayerNorm
    from tests.hw.vector_cases import layernorm_case

    rng = np.random.default_rng(lanes * 31 + channels)
    dut = LayerNorm(lanes, fmt, 12)
    tokens = 5
    for k in range(4):
        case = layernorm_case(rng, channels, tokens, fmt, extreme=k < 2)
        per_token = len(chunks(case.x[:, 0], lanes))
        setup = {"length": channels, "shift": case.shift, "out_bits": case.out_fmt.bits,
                 "out_signed": int(case.out_fmt.signed)}
        coefs = list(zip(chunks(case.gamma, lanes), chunks(case.beta, lanes), strict=True))
        beats = []
        for t in range(tokens):
            beats += chunks(case.x[:, t], lanes) * 3
        stall = k % 2 == 1
        got, cycles = stream_run(dut, setup, beats, tokens * per_token, rng,
                                 idle=0.3 if stall else 0.0, ready=0.6 if stall else 1.0,
                                 coefs=coefs)
        for t in range(tokens):
            row = [v for b in got[t * per_token:(t + 1) * per_token] for v in b][:channels]
            assert row == case.expected[:, t].tolist(), f"op {k} token {t}: {case}"
        if not stall:
            assert cycles == vector_op_cycles("layernorm", case.x.size, tokens, channels,
                                              lanes, 1)


def test_requant_shift_range_is_right_shifts_only() -> None:
    from hw.vector.requant import MAX_SHIFT, check_shift

    assert check_shift(0) == 0 and check_shift(MAX_SHIFT) == MAX_SHIFT
    for bad in (-1, MAX_SHIFT + 1):
        want = f"shift must be an integer in 0..{MAX_SHIFT} .*, not {bad}"
        with pytest.raises(ConfigError, match=want):
            check_shift(bad)


@pytest.mark.parametrize(("lanes", "features", "patches", "fmt"),
                         [(4, 5, 6, ActFormat(8, True)), (1, 3, 4, ActFormat(16, True)),
                          (3, 4, 2, ActFormat(8)), (8, 2, 1, ActFormat(4, True))])
def test_pos_embed_matches_reference_and_r15(lanes, features, patches, fmt) -> None:
    from hw.vector.posembed import PosEmbed
    from sim.timing import POS_EMBED_DEPTH
    from tests.hw.vector_cases import pos_embed_case

    rng = np.random.default_rng(lanes * 53 + features * 7 + patches)
    dut = PosEmbed(lanes, fmt)
    kinds = ["extreme", "extreme", "ties", "ties", "ends", "ends", "random", "random",
             "random", "random"]
    for k, kind in enumerate(kinds):
        case = pos_embed_case(rng, features, patches, fmt, kind=kind)
        a = case.attrs
        setup = {"mult": a["mult"], "shift": a["shift"], "out_shift": a["out_shift"],
                 "out_bits": case.out_fmt.bits, "out_signed": int(case.out_fmt.signed)}
        elems = case.lanes(rng)
        pad = {"x": 0, "cls": 0, "table": 0}
        beats = [(elems[i:i + lanes] + [pad] * lanes)[:lanes]
                 for i in range(0, len(elems), lanes)]
        stall = k % 2 == 1
        got, cycles = stream_run(dut, setup, beats, len(beats), rng,
                                 idle=0.3 if stall else 0.0, ready=0.6 if stall else 1.0)
        flat = [v for b in got for v in b][:len(elems)]
        assert flat == case.expected.reshape(-1).tolist(), f"op {k} ({kind}): {case}"
        if not stall:
            want = vector_op_cycles("pos_embed", len(elems), 0, 0, lanes, 1)
            assert cycles == want == len(beats) + POS_EMBED_DEPTH


def test_pos_embed_refuses_bad_parameters() -> None:
    from hw.vector.posembed import PosEmbed

    with pytest.raises(ConfigError, match="lanes"):
        PosEmbed(0, ActFormat(8, True))
    with pytest.raises(ConfigError, match="x_fmt"):
        PosEmbed(2, 8)
