# amaranth: UnusedElaboratable=no
"""The accelerator top runs whole GEMMs: outputs bit-exact vs quant.ref, cycles == sim.timing.

The testbench is the DRAM of sim.timing rule R7 (see docs/rtl.md): it accepts a load
request when its one read channel is free, pulses ``w_loaded``/``x_loaded`` exactly
``L + ceil(bytes / B)`` cycles after each block's start (0 when unlimited), and streams the
block's beats back to back from the accepted request on. The count of ``busy`` cycles must
equal the simulator's cycle mode (:func:`sim.timing.schedule_cycles`) for the same shape.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque

import numpy as np
import pytest

from hw.accel import GemmAccelerator
from quant.errors import ConfigError
from quant.formats import Scheme
from quant.msq import msq_assign
from quant.ref import gemm, requantize
from sim.arch import load_accelerator, replace_engine
from sim.timing import GemmShape, compute_cycles, gemm_loop_order, row_steps, schedule_cycles
from tests.hw.simutil import run_bench

pytestmark = pytest.mark.filterwarnings("error")


def make_case(accel, m, n, k, seed):
    """Random mixed-scheme weights (MSQ), activations and per-row requantization."""
    e = accel.engine
    rng = np.random.default_rng(seed)
    frac = float(rng.uniform(0.2, 0.8))
    rows = msq_assign(rng.normal(size=(m, k)), frac, e.weight_bits, lut_scheme=e.lut_scheme)
    act = e.act_format
    x = rng.integers(act.qmin, act.qmax + 1, size=(k, n))
    x[0, 0] = act.qmax  # an edge value in every case
    acc = gemm(rows, x, act, acc_bits=e.acc_bits)
    mult = rng.integers(1 << 14, 1 << 16, size=m)
    shift = rng.integers(10, 20, size=m)
    bias = rng.integers(-300, 301, size=m)
    relu = rng.integers(0, 2, size=m).astype(bool)
    y = np.where(relu[:, None],
                 requantize(acc, mult, shift, act, bias=bias, relu=True),
                 requantize(acc, mult, shift, act, bias=bias, relu=False))
    return rows, x, (mult, shift, bias, relu), y


def sim_cycles(accel, mf, ml, n, k):
    e, mem = accel.engine, accel.memory
    out, stop = schedule_cycles(np.array([[mf, ml, n, k, 1]]), e.dsp_rows, e.lut_rows, e.cols,
                                mem.k_tile, e.weight_bits, e.act_bits,
                                mem.dram_bytes_per_cycle, mem.dram_latency, None)
    assert stop == -1
    return int(out[0, 1]), int(out[0, 3])


def run_gemm(accel, rows, x, requant, *, dut=None):
    """Run one GEMM on the RTL; returns (Y, busy cycles, load requests)."""
    e, mem = accel.engine, accel.memory
    dut = dut or GemmAccelerator(accel)
    fixed = np.flatnonzero(rows.scheme_ids == int(Scheme.FIXED))
    lut = np.flatnonzero(rows.scheme_ids != int(Scheme.FIXED))
    mf, ml = len(fixed), len(lut)
    k, n = x.shape
    f = row_steps(mf, ml, e.dsp_rows, e.lut_rows)
    order = gemm_loop_order(GemmShape(mf, ml, n, k), e.dsp_rows, e.lut_rows, e.cols,
                            mem.k_tile, e.weight_bits, e.act_bits)
    wf, wl = rows.words[fixed], rows.words[lut]
    y = np.full((rows.shape[0], n), -999, dtype=np.int64)
    bw, lat = mem.dram_bytes_per_cycle, mem.dram_latency
    result = {}

    def load_time(nbytes):
        return lat + (0 if bw is None else -(-nbytes // bw))

    async def bench(ctx):
        mult, shift, bias, relu = requant
        for lut_core, idx in ((0, fixed), (1, lut)):
            for i, r in enumerate(idx):
                p = dut.params.payload
                ctx.set(p.lut, lut_core)
                ctx.set(p.row, i)
                ctx.set(p.p.mult, int(mult[r]))
                ctx.set(p.p.shift, int(shift[r]))
                ctx.set(p.p.bias, int(bias[r]) & ((1 << e.acc_bits) - 1))
                ctx.set(p.p.relu, int(relu[r]))
                ctx.set(dut.params.valid, 1)
                await ctx.tick()
        ctx.set(dut.params.valid, 0)
        c = dut.cmd.payload
        fields = {"m_fixed": mf, "m_lut": ml, "n": n, "k": k, "f": f, "order": order,
                  "qa": mf // f, "ra": mf % f, "qb": ml // f, "rb": ml % f}
        for name, v in fields.items():
            ctx.set(getattr(c, name), v)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.out.ready, 1)
        cycle = chan = busy = 0
        done_at = {"w": set(), "x": set()}
        beats = {"w": deque(), "x": deque()}
        requests = []
        after_done = None
        while after_done is None or cycle < after_done:
            if ctx.get(dut.done):
                assert after_done is None
                result["done_cycle"] = cycle
                after_done = cycle + 2 * max(e.dsp_rows, e.lut_rows) + 4
            busy += ctx.get(dut.busy)
            ready = 0
            if ctx.get(dut.load_req.valid) and cycle >= chan:
                ready = 1
                p = ctx.get(dut.load_req.payload)
                t = cycle
                if p.w.en:
                    t += load_time(p.w.bytes)
                    done_at["w"].add(t)
                    requests.append(("w", cycle, t, p.w.bytes))
                    for s in range(p.w.steps):
                        kk = p.w.k0 + s
                        dsp = [int(wf[p.w.row0_dsp + i, kk]) if i < p.w.rows_dsp else 0
                               for i in range(e.dsp_rows)]
                        lw = [int(wl[p.w.row0_lut + i, kk]) if i < p.w.rows_lut else 0
                              for i in range(e.lut_rows)]
                        beats["w"].append((dsp, lw, s == p.w.steps - 1))
                if p.x.en:
                    s0 = t
                    t += load_time(p.x.bytes)
                    done_at["x"].add(t)
                    requests.append(("x", s0, t, p.x.bytes))
                    for s in range(p.x.steps):
                        xs = [int(x[p.x.k0 + s, p.x.col0 + j]) if j < p.x.cols else 0
                              for j in range(e.cols)]
                        beats["x"].append((xs, s == p.x.steps - 1))
                chan = t
            ctx.set(dut.load_req.ready, ready)
            ctx.set(dut.w_loaded, int(cycle in done_at["w"]))
            ctx.set(dut.x_loaded, int(cycle in done_at["x"]))
            ctx.set(dut.w_load.valid, int(bool(beats["w"])))
            if beats["w"]:
                dsp, lw, last = beats["w"].popleft()
                for i, v in enumerate(dsp):
                    ctx.set(dut.w_load.payload.data.dsp[i], v)
                for i, v in enumerate(lw):
                    ctx.set(dut.w_load.payload.data.lut[i], v)
                ctx.set(dut.w_load.payload.last, int(last))
            ctx.set(dut.x_load.valid, int(bool(beats["x"])))
            if beats["x"]:
                xs, last = beats["x"].popleft()
                for j, v in enumerate(xs):
                    ctx.set(dut.x_load.payload.data[j], v)
                ctx.set(dut.x_load.payload.last, int(last))
            if ctx.get(dut.out.valid):
                o = ctx.get(dut.out.payload)
                for core, en, row, idx in (("dsp", o.dsp_en, o.row_dsp, fixed),
                                           ("lut", o.lut_en, o.row_lut, lut)):
                    if en:
                        vals = getattr(o, core)
                        for j in range(o.cols):
                            y[idx[row], o.col0 + j] = vals[j]
            await ctx.tick()
            cycle += 1
            assert cycle < 100_000
        result["busy"] = busy
        result["requests"] = requests

    run_bench(dut, bench)
    assert result["done_cycle"] == result["busy"]
    return y, result["busy"], result["requests"]


def memory(accel, bw, lat):
    return dataclasses.replace(accel, memory=dataclasses.replace(
        accel.memory, dram_bytes_per_cycle=bw, dram_latency=lat))


TINY = load_accelerator("tiny")
# (M, N, K, DRAM bytes/cycle, latency): both loop orders, Q = 1 and Q > 1, ragged tiles.
CASES = [
    (7, 6, 20, None, 0),
    (5, 9, 7, None, 0),
    (6, 10, 35, 4, 4),   # the tiny preset's memory
    (9, 13, 3, 4, 4),
    (3, 5, 9, 1, 0),
    (7, 9, 16, None, 3),
    (4, 17, 1, 2, 1),
    (8, 6, 12, None, 12),  # an activation block that must wait behind a weight block (R7)
]


@pytest.mark.parametrize(("m", "n", "k", "bw", "lat"), CASES,
                         ids=[f"m{m}n{n}k{k}-bw{bw}-lat{lat}" for m, n, k, bw, lat in CASES])
def test_gemm_bit_exact_and_cycles_equal_sim(m, n, k, bw, lat) -> None:
    accel = memory(TINY, bw, lat)
    rows, x, requant, want = make_case(accel, m, n, k, seed=m * 1000 + n * 10 + k)
    got, cycles, requests = run_gemm(accel, rows, x, requant)
    np.testing.assert_array_equal(got, want)
    mf = int(np.sum(rows.scheme_ids == int(Scheme.FIXED)))
    expected, dram_read = sim_cycles(accel, mf, m - mf, n, k)
    assert cycles == expected
    # R5/R7: the same blocks, one at a time in order on the channel.
    assert sum(r[3] for r in requests) == dram_read
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(requests))
    e = accel.engine
    if bw is None and lat == 0:
        assert cycles == compute_cycles(GemmShape(mf, m - mf, n, k), e.dsp_rows, e.lut_rows,
                                        e.cols)
    else:
        assert cycles > compute_cycles(GemmShape(mf, m - mf, n, k), e.dsp_rows, e.lut_rows,
                                       e.cols)


def test_accelerator_rejects_bad_parameters() -> None:
    with pytest.raises(ConfigError, match=r"^accel must be a sim\.arch\.Accelerator, not 3$"):
        GemmAccelerator(3)
    no_lut = replace_engine(TINY, lut_rows=0)
    with pytest.raises(ConfigError, match=r"^engine\.dsp_rows and engine\.lut_rows must both"):
        GemmAccelerator(no_lut)
    with pytest.raises(ConfigError, match=r"^param_depth must be an integer in"):
        GemmAccelerator(TINY, param_depth=0)
