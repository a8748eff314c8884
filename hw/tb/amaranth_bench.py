"""Run a :class:`~hw.tb.cases.GemmCase` on :class:`hw.accel.GemmAccelerator` in Amaranth's
simulator, the testbench playing the DRAM of sim.timing rule R7 (docs/rtl.md).

The DRAM accepts a load request when its one read channel is free, completes each block
``L + ceil(bytes / B)`` cycles after its start, and sends the block's beats (one word each)
in the cycles :meth:`sim.timing.DramChannel.word_cycles` gives, one per cycle per stream at
most (a beat due while earlier ones wait follows them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from hw.tb.cases import GemmCase, case_command, command_deal, core_rows, weight_beat
from sim.timing import DramChannel


@dataclass(frozen=True)
class RtlRun:
    """What one GEMM did on the RTL: outputs, ``busy`` cycles, and the load requests
    ``(kind, start cycle, completion cycle, bytes)`` in channel order."""

    y: np.ndarray
    cycles: int
    requests: tuple[tuple[str, int, int, int], ...]


def run_bench(dut, bench, *, vcd: str | None = None) -> None:
    """Simulate ``dut`` with one 100 MHz clock and the async testbench ``bench(ctx)``."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


def run_case(accel, case: GemmCase, *, dut=None, vcd: str | None = None) -> RtlRun:
    """Run one case on the accelerator top (``dut``, default a fresh one, with the matmul
    path for a matmul case) in Amaranth."""
    return run_cases(accel, [case], dut=dut, vcd=vcd)[0]


def run_cases(accel, cases: list[GemmCase], *, dut=None, vcd: str | None = None
              ) -> list[RtlRun]:
    """Run ``cases`` back to back on one top (no reset between them: a case's prefetch,
    R10b, serves the next one, :func:`hw.tb.cases.chained`)."""
    from hw.accel import GemmAccelerator

    e = accel.engine
    dut = dut or GemmAccelerator(accel, matmul=any(c.matmul for c in cases))
    results: list[dict] = [{} for _ in cases]
    ys = [np.full(c.want.shape, -999, dtype=np.int64) for c in cases]

    def core_words(case: GemmCase) -> dict[str, np.ndarray]:
        """Layer rows of each core, in core order."""
        return {core: case.words[idx] for core, idx in core_rows(case.scheme_ids).items()}

    async def one(ctx, i: int) -> None:
        case, result, y = cases[i], results[i], ys[i]
        nxt = cases[i + 1] if i + 1 < len(cases) else None
        rows_of = core_rows(case.scheme_ids)
        words = core_words(case)
        x = case.x
        for lut_core, idx in ((0, case.fixed_rows), (1, case.lut_rows)):
            for j, r in enumerate(idx):
                p = dut.params.payload
                ctx.set(p.lut, lut_core)
                ctx.set(p.row, j)
                ctx.set(p.p.mult, int(case.mult[r]))
                ctx.set(p.p.shift, int(case.shift[r]))
                ctx.set(p.p.bias, int(case.bias[r]) & ((1 << e.acc_bits) - 1))
                ctx.set(p.p.relu, int(case.relu[r]))
                ctx.set(dut.params.valid, 1)
                await ctx.tick()
        ctx.set(dut.params.valid, 0)
        for f, v in enumerate(command_deal(accel, case)):  # R3c: the deal table
            ctx.set(dut.deal.payload.f, f)
            ctx.set(dut.deal.payload.n, v)
            ctx.set(dut.deal.valid, 1)
            await ctx.tick()
        if e.group_b_cols:
            ctx.set(dut.deal.valid, 0)
        for name, v in case_command(accel, case).items():
            ctx.set(getattr(dut.cmd.payload, name), v)
        ctx.set(dut.cmd.valid, 1)
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        ctx.set(dut.out.ready, 1)
        cycle = busy = 0
        dram = DramChannel(case.bw, case.lat)
        beats: dict[str, deque] = {"w": deque(), "x": deque()}  # (cycle due, beat, last)
        requests = []
        after_done = None
        while after_done is None or cycle < after_done:
            if ctx.get(dut.done):
                assert after_done is None
                result["done_cycle"] = cycle
                after_done = cycle + 2 * max(e.dsp_rows, e.lut_rows) + 4
            busy += ctx.get(dut.busy)
            ready = 0
            if ctx.get(dut.load_req.valid) and dram.accepts(cycle):
                ready = 1
                p = ctx.get(dut.load_req.payload)
                if p.w.en:
                    s0, t = dram.serve(cycle, p.w.bytes)
                    requests.append(("w", s0, t, p.w.bytes))
                    due = dram.word_cycles(s0, p.w.bytes, p.w.steps)
                    # R10b: a prefetch carries the next case's first weight block
                    src = core_words(nxt) if p.w.next else words
                    matmul = (nxt if p.w.next else case).matmul
                    for s in range(p.w.steps):
                        kk = p.w.k0 + s
                        beat = {}
                        for core in dut.cores:
                            row0 = getattr(p.w, f"row0_{core}")
                            used = getattr(p.w, f"rows_{core}")
                            beat[core] = weight_beat(
                                accel, core,
                                [int(src[core][row0 + r, kk]) for r in range(used)], matmul)
                        beats["w"].append((due[s], beat, s == p.w.steps - 1))
                if p.x.en:
                    s0, t = dram.serve(cycle, p.x.bytes)
                    requests.append(("x", s0, t, p.x.bytes))
                    due = dram.word_cycles(s0, p.x.bytes, p.x.steps)
                    ca = e.cols - e.group_b_cols
                    for s in range(p.x.steps):
                        xs = [int(x[p.x.k0 + s, p.x.col0 + j]) if j < p.x.cols else 0
                              for j in range(e.cols)]
                        for j in range(p.x.cols_b if e.group_b_cols else 0):  # R3c
                            xs[ca + j] = int(x[p.x.k0 + s, p.x.col0_b + j])
                        beats["x"].append((due[s], xs, s == p.x.steps - 1))
            ctx.set(dut.load_req.ready, ready)
            send = {k: bool(q) and q[0][0] <= cycle for k, q in beats.items()}
            ctx.set(dut.w_load.valid, int(send["w"]))
            if send["w"]:
                _, beat, last = beats["w"].popleft()
                for core, vals in beat.items():
                    for r, v in enumerate(vals):
                        ctx.set(getattr(dut.w_load.payload.data, core)[r], v)
                ctx.set(dut.w_load.payload.last, int(last))
            ctx.set(dut.x_load.valid, int(send["x"]))
            if send["x"]:
                _, xs, last = beats["x"].popleft()
                for j, v in enumerate(xs):
                    ctx.set(dut.x_load.payload.data[j], v)
                ctx.set(dut.x_load.payload.last, int(last))
            if ctx.get(dut.out.valid):
                o = ctx.get(dut.out.payload)
                ca = e.cols - e.group_b_cols
                for core in dut.cores:
                    vals = getattr(o, core)
                    if getattr(o, f"{core}_en"):
                        row = rows_of[core][getattr(o, f"row_{core}")]
                        for j in range(o.cols):
                            y[row, o.col0 + j] = vals[j]
                    if e.group_b_cols and getattr(o, f"{core}_en_b"):  # R3c: group B's
                        row = rows_of[core][getattr(o, f"row_{core}_b")]
                        for j in range(o.cols_b):
                            y[row, o.col0_b + j] = vals[ca + j]
            await ctx.tick()
            cycle += 1
            if cycle >= 10 * case.cycles + 1000:
                raise RuntimeError(f"{case.name}: no done after {cycle} cycles")
        if any(beats.values()):
            raise RuntimeError(f"{case.name}: beats left after done")
        result["busy"] = busy
        result["requests"] = tuple(requests)

    async def bench(ctx):
        for i in range(len(cases)):
            await one(ctx, i)

    run_bench(dut, bench, vcd=vcd)
    out = []
    for case, result, y in zip(cases, results, ys, strict=True):
        if result["done_cycle"] != result["busy"]:
            raise RuntimeError(f"{case.name}: done pulsed after {result['done_cycle']} "
                               f"cycles but busy was high for {result['busy']}")
        out.append(RtlRun(y, result["busy"], result["requests"]))
    return out
