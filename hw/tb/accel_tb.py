"""cocotb testbench of the whole accelerator top (Verilator), run by ``hw.tb.engine``.

This module is imported inside the cocotb process. It reads the cases and settings from
the JSON file named by ``FPIM_TB_CASES``, runs every case back to back on one DUT (no reset
between GEMMs, so stale state shows), and writes per-case outputs and cycle counts to
``FPIM_TB_RESULTS``. The scoreboard checks each output row as it leaves ``out`` against the
case's reference and logs the first mismatch; the parent process compares again.

Timing discipline per clock cycle (the clock is 10 ns): at the falling edge the testbench
reads the DUT's outputs, then drives every input for the rising edge that
follows, in the order of :mod:`hw.tb.amaranth_bench` (the Amaranth twin of this bench).

Stimulus patterns (``patterns`` in the settings):

* ``params``/``cmd`` sources: random idle cycles (valid low) before each transfer.
* ``w_load``/``x_load``: each block's beats in the cycles of rule R7
  (:meth:`sim.timing.DramChannel.word_cycles`), one per cycle per stream at most; the
  beats' timing is the DRAM's, so it is not a stimulus choice.
* ``out`` sink: ``always`` ready, ``mild`` back-pressure (not ready one cycle in four; the
  output buffer absorbs it, so cycles must still equal the simulator's), or ``heavy``
  (ready 30 % of cycles: outputs are checked, cycles may exceed the simulator's).
"""

from __future__ import annotations

import json
import os
from collections import deque

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hw.tb.cases import core_rows, weight_beat
from sim.timing import DramChannel

OUT_READY = {"always": None, "mild": 4, "heavy": 0.3}

_driven: dict[int, int] = {}


def drive(sig, value: int) -> None:
    """Write ``sig`` only when the value changes (each cocotb write costs a scheduler pass)."""
    key = id(sig)
    if _driven.get(key) != value:
        _driven[key] = value
        sig.value = value


class StreamSource:
    """Drives ``<name>__valid/payload`` from a queue; a transfer is valid & ready at the edge.

    ``idle`` is the probability of holding valid low for a cycle before each item.
    """

    def __init__(self, dut, name: str, layout, rng: np.random.Generator, idle: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.layout = layout
        self.rng = rng
        self.idle = idle
        self.queue: deque = deque()
        self.showing = False

    def send(self, value: dict) -> None:
        self.queue.append(int(self.layout.const(value).as_bits()))

    def quiet(self) -> None:
        self.showing = False
        drive(self.valid, 0)

    def drive(self) -> bool:
        """Drive this cycle's valid/payload; True if the item transfers at the coming edge
        (``ready`` of these ports does not depend on ``valid``)."""
        self.showing = bool(self.queue) and not (self.idle and self.rng.random() < self.idle)
        drive(self.valid, int(self.showing))
        if not self.showing:
            return False
        drive(self.payload, self.queue[0])
        if int(self.ready.value):
            self.queue.popleft()
            return True
        return False


class BeatSource:
    """One load stream (``w_load``/``x_load``): beats queued with their earliest cycle."""

    def __init__(self, dut, name: str):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.queue: deque = deque()  # (earliest cycle, bits)

    def drive(self, cycle: int) -> None:
        if self.queue and self.queue[0][0] <= cycle:
            drive(self.valid, 1)
            drive(self.payload, self.queue.popleft()[1])
        else:
            drive(self.valid, 0)


class Dram:
    """The DRAM of sim.timing rule R7 (:class:`sim.timing.DramChannel`) with the beats."""

    def __init__(self, tb, case: dict, nxt: dict | None = None):
        self.tb = tb
        self.case = case
        self.nxt = nxt  # the next case, whose first weight block a prefetch reads (R10b)
        self.chan = DramChannel(case["bw"], case["lat"])
        self.requests: list[tuple[str, int, int, int]] = []

    def serve(self, cycle: int) -> None:
        """Sample ``load_req`` (valid/payload) and answer: ready, and the blocks' beats."""
        tb, dut = self.tb, self.tb.dut
        ready = 0
        if int(dut.load_req__valid.value) and self.chan.accepts(cycle):
            ready = 1
            p = tb.layouts["load_req"].from_bits(int(dut.load_req__payload.value))
            # the weight block first, then the activation block (R7)
            for kind, src, beat in (("w", tb.w_src, tb.w_beat), ("x", tb.x_src, tb.x_beat)):
                r = getattr(p, kind)
                if not r.en:
                    continue
                t, end = self.chan.serve(cycle, int(r.bytes))
                self.requests.append((kind, t, end, int(r.bytes)))
                due = self.chan.word_cycles(t, int(r.bytes), int(r.steps))
                case = self.nxt if kind == "w" and r.next else self.case
                src.queue.extend((due[s], beat(case, r, s)) for s in range(r.steps))
        drive(dut.load_req__ready, ready)


class TB:
    """Clock, reset, stream drivers, the DRAM model and the output scoreboard."""

    def __init__(self, dut, settings: dict):
        from amaranth.lib import data

        from hw.accel import GemmAccelerator
        from hw.generate import DIM_BITS, PARAM_DEPTH
        from sim.config import accelerator_from_dict

        self.dut = dut
        self.accel = accelerator_from_dict(settings["accel"], settings["accel"]["name"])
        top = GemmAccelerator(self.accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH,
                              matmul=bool(settings.get("matmul")))
        self.cores, self.rows_of = top.cores, top.rows_of
        self.grouped = self.accel.engine.group_b_cols > 0
        self.layouts = {n: data.Layout.cast(getattr(top, n).payload.shape())
                        for n in ("cmd", "params", "load_req", "w_load", "x_load", "out",
                                  *(("deal",) if self.grouped else ()))}
        self.seed = int(settings["seed"])
        self.rng = np.random.default_rng(self.seed)
        pat = settings["patterns"]
        self.out_ready = pat["out"]
        idle = float(pat["idle"])
        self.params_src = StreamSource(dut, "params", self.layouts["params"], self.rng, idle)
        self.cmd_src = StreamSource(dut, "cmd", self.layouts["cmd"], self.rng, idle)
        # R3c: the deal table, written like the parameters before a dealt command
        self.deal_src = (StreamSource(dut, "deal", self.layouts["deal"], self.rng, idle)
                         if self.grouped else None)
        self.w_src = BeatSource(dut, "w_load")
        self.x_src = BeatSource(dut, "x_load")
        self.cycle = 0
        self.log = dut._log

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, units="ns").start())
        d = self.dut
        for sig in (d.cmd__valid, d.params__valid, d.load_req__ready, d.w_load__valid,
                    d.x_load__valid, d.out__ready, *((d.deal__valid,) if self.grouped else ())):
            drive(sig, 0)
        d.rst.value = 1
        for _ in range(3):
            await RisingEdge(d.clk)
        d.rst.value = 0

    async def next_cycle(self) -> None:
        # Outputs are settled at the falling edge: nothing changed since the rising edge.
        await FallingEdge(self.dut.clk)
        self.cycle += 1

    def w_beat(self, case: dict, w, s: int) -> int:
        k = int(w.k0) + s
        beat = {}
        for core in self.cores:
            row0, used = int(getattr(w, f"row0_{core}")), int(getattr(w, f"rows_{core}"))
            beat[core] = weight_beat(self.accel, core, [case[f"w_{core}"][row0 + i][k]
                                                        for i in range(used)],
                                     bool(case.get("matmul")))
        return int(self.layouts["w_load"].const(
            {"data": beat, "last": int(s == w.steps - 1)}).as_bits())

    def x_beat(self, case: dict, xr, s: int) -> int:
        e = self.accel.engine
        c = e.cols
        k = int(xr.k0) + s
        xs = [case["x"][k][xr.col0 + j] if j < xr.cols else 0 for j in range(c)]
        for j in range(int(xr.cols_b) if self.grouped else 0):  # R3c: group B's lanes
            xs[c - e.group_b_cols + j] = case["x"][k][xr.col0_b + j]
        return int(self.layouts["x_load"].const(
            {"data": xs, "last": int(s == xr.steps - 1)}).as_bits())

    def out_ready_now(self) -> int:
        mode = self.out_ready
        if mode == "always":
            return 1
        if mode == "mild":
            return int(self.cycle % OUT_READY["mild"] != 0)
        return int(self.rng.random() < OUT_READY["heavy"])

    @staticmethod
    def with_core_words(case: dict) -> dict:
        """Layer rows of each core, in core order; the case gets each core's weight words."""
        rows_of = core_rows(case["scheme_ids"])
        words = np.asarray(case["words"])
        for core, idx in rows_of.items():
            case[f"w_{core}"] = words[idx].tolist()
        return rows_of

    async def run_case(self, case: dict, nxt: dict | None = None) -> dict:
        """Params, command, then the GEMM; returns outputs, busy cycles and requests.
        ``nxt``: the case that runs next (a prefetch reads its first weight block, R10b)."""
        acc_mask = (1 << self.accel.engine.acc_bits) - 1
        rows_of = self.with_core_words(case)
        fixed, lut = rows_of["dsp"], rows_of["lut"]
        if nxt is not None:
            self.with_core_words(nxt)
        for core, idx in ((0, fixed), (1, lut)):
            for i, r in enumerate(idx):
                self.params_src.send({"lut": core, "row": i, "p": {
                    "mult": case["mult"][r], "shift": case["shift"][r],
                    "bias": case["bias"][r] & acc_mask, "relu": case["relu"][r]}})
        for f, v in enumerate(case.get("deal", ())):
            self.deal_src.send({"f": f, "n": v})
        self.cmd_src.send(case["command"])
        want = np.asarray(case["want"])
        m, n = want.shape
        y = np.full((m, n), -999, dtype=np.int64)
        dram = Dram(self, case, nxt)
        busy = 0
        done_cycle = None
        t0 = None
        first_bad = None
        while True:
            await self.next_cycle()
            d = self.dut
            # sample
            if t0 is not None:
                busy += int(d.busy.value)
                if int(d.done.value) and done_cycle is None:
                    done_cycle = self.cycle - t0
            # drive, in the order of hw.tb.amaranth_bench
            sent = self.params_src.drive()
            if self.grouped and not sent and not self.params_src.queue:
                sent = self.deal_src.drive()
            elif self.grouped:
                self.deal_src.quiet()
            pending = self.params_src.queue or (self.grouped and self.deal_src.queue)
            if t0 is None and not sent and not pending:
                if self.cmd_src.drive():
                    t0 = self.cycle + 1  # busy rises in the cycle after the transfer
            else:
                self.cmd_src.quiet()
            if t0 is not None and self.cycle >= t0:
                dram.serve(self.cycle - t0)
            rel = self.cycle - (t0 if t0 is not None else self.cycle)
            self.w_src.drive(rel)
            self.x_src.drive(rel)
            ready = self.out_ready_now()
            drive(d.out__ready, ready)
            if int(d.out__valid.value) and ready:
                o = self.layouts["out"].from_bits(int(d.out__payload.value))
                ca = self.accel.engine.cols - self.accel.engine.group_b_cols
                for core in self.cores:
                    vals = getattr(o, core)
                    # group A's lanes, then (R3c) group B's from column ca on
                    for sfx, lane0 in (("", 0), *((("_b", ca),) if self.grouped else ())):
                        if not getattr(o, f"{core}_en{sfx}"):
                            continue
                        r = int(rows_of[core][int(getattr(o, f"row_{core}{sfx}"))])
                        for j in range(int(getattr(o, f"cols{sfx}"))):
                            c = int(getattr(o, f"col0{sfx}")) + j
                            y[r, c] = int(vals[lane0 + j])
                            if y[r, c] != want[r, c] and first_bad is None:
                                first_bad = (r, c, int(y[r, c]), int(want[r, c]))
                                self.log.error("%s: output[%d, %d] = %d, reference %d",
                                               case["name"], *first_bad)
            if done_cycle is not None and not int(d.busy.value) and not int(d.out__valid.value) \
                    and (y != -999).all():
                break
            if t0 is not None and self.cycle - t0 > 20 * case["cycles"] + 2000:
                self.log.error("%s: no done after %d cycles", case["name"], self.cycle - t0)
                break
        drive(d.out__ready, 0)
        return {"name": case["name"], "y": y.tolist(), "cycles": busy,
                "done_cycle": done_cycle, "requests": dram.requests,
                "first_mismatch": first_bad}


@cocotb.test()
async def run_cases(dut):
    """Every case of ``FPIM_TB_CASES`` back to back; results to ``FPIM_TB_RESULTS``."""
    with open(os.environ["FPIM_TB_CASES"]) as fh:
        spec = json.load(fh)
    tb = TB(dut, spec["settings"])
    tb.log.info("fpim engine testbench: %d cases, seed %d, patterns %s", len(spec["cases"]),
                tb.seed, spec["settings"]["patterns"])
    await tb.reset()
    results = []
    cases = spec["cases"]
    for i, case in enumerate(cases):
        results.append(await tb.run_case(case, cases[i + 1] if i + 1 < len(cases) else None))
    tmp = os.environ["FPIM_TB_RESULTS"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(results, fh)
    os.replace(tmp, os.environ["FPIM_TB_RESULTS"])
    bad = [r["name"] for r in results if r["first_mismatch"] is not None]
    assert not bad, f"output mismatches in {bad}"
