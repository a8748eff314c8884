"""cocotb side of the vector-unit components (hw.vector) on Verilator: the stream driver the
unit testbenches (tests/cocotb/vector_*) and ``fpim verify --block`` share, and the cocotb
test :func:`run_ops` that :mod:`hw.tb.block` runs.

:class:`VectorStreams` drives beats of ``lanes`` words into the ``inp`` stream with random
idle cycles, takes the ``out`` stream with random back-pressure and counts cycles, so that
a test can measure cycles from the first beat taken to the last beat given (both included).

:func:`run_ops` reads the ops from the JSON file named by ``FPIM_TB_CASES`` (each: the
command inputs, the coefficient beats to write first, the input beats and how many output
beats to take), runs them one after the other on one DUT with the input always valid and
the output always ready, and writes each op's output words and cycles to
``FPIM_TB_RESULTS``.

Sampling discipline (cocotb 1.9 on Verilator): inputs change after ``FallingEdge(clk)``;
outputs are read 1 ns later (:func:`settle`), when combinational paths have settled and
before the rising edge that registers them (the clock period is 10 ns).
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer

CLOCK_NS = 10


async def start_clock_and_reset(dut, cycles: int = 2) -> None:
    """Start ``clk`` and hold the synchronous ``rst`` high for ``cycles`` rising edges; returns
    just after a falling edge with ``rst`` low (the caller's inputs must be set already)."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, units="ns").start())
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


async def settle() -> None:
    """Wait 1 ns after the inputs changed, so outputs read now are this cycle's values."""
    await Timer(1, units="ns")


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def pack(values, bits: int) -> int:
    """Elements (element 0 in the least significant bits) as one flat vector value."""
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return word


def unpack(word: int, bits: int, n: int, signed: bool) -> list[int]:
    """Inverse of :func:`pack`."""
    out = [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(n)]
    return [to_signed(v, bits) for v in out] if signed else out


class VectorStreams:
    """``inp``/``out`` stream driver of one vector-unit DUT with ``lanes`` lanes of
    ``in_bits`` (signed) in and ``out_bits`` out."""

    def __init__(self, dut, rng, lanes: int, in_bits: int, out_bits: int,
                 out_signed: bool) -> None:
        self.dut = dut
        self.rng = rng
        self.lanes = lanes
        self.in_bits = in_bits
        self.out_bits = out_bits
        self.out_signed = out_signed
        self.cycle = 0
        self.first: int | None = None
        self.last: int | None = None

    async def reset(self, setup: dict) -> None:
        dut = self.dut
        dut.inp__valid.value = 0
        dut.inp__payload.value = 0
        dut.out__ready.value = 0
        for name, value in setup.items():
            getattr(dut, name).value = value
        await start_clock_and_reset(dut)

    async def count(self) -> None:
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    def set_command(self, setup: dict) -> None:
        for name, value in setup.items():
            getattr(self.dut, name).value = value

    async def source(self, beats: list[list[int]], idle: float) -> None:
        dut, rng = self.dut, self.rng
        for beat in beats:
            while rng.random() < idle:
                dut.inp__valid.value = 0
                width = min(62, self.lanes * self.in_bits)
                dut.inp__payload.value = int(rng.integers(0, 1 << width))  # garbage
                await FallingEdge(dut.clk)
            dut.inp__valid.value = 1
            dut.inp__payload.value = pack(beat, self.in_bits)
            await settle()
            while not dut.inp__ready.value:  # hold the beat until it is taken
                await FallingEdge(dut.clk)
                await settle()
            if self.first is None:
                self.first = self.cycle
            await FallingEdge(dut.clk)
        dut.inp__valid.value = 0

    async def sink(self, n: int, ready: float) -> list[list[int]]:
        dut = self.dut
        got = []
        while len(got) < n:
            take = int(self.rng.random() < ready)
            dut.out__ready.value = take
            await settle()
            if take and dut.out__valid.value:
                got.append(unpack(dut.out__payload.value.integer, self.out_bits, self.lanes,
                                  self.out_signed))
                self.last = self.cycle
            await FallingEdge(dut.clk)
        dut.out__ready.value = 0
        return got

    def span(self) -> int:
        """Cycles from the first beat taken to the last beat given, both included."""
        return self.last - self.first + 1


async def write_coefs(dut, coefs: list[dict]) -> None:
    """Write coefficient beats (``{"addr": a, "<port>": packed, ...}``) through ``coef_*``."""
    for beat in coefs:
        dut.coef_we.value = 1
        for name, value in beat.items():
            getattr(dut, f"coef_{name}").value = value
        await FallingEdge(dut.clk)
    dut.coef_we.value = 0


@cocotb.test(timeout_time=2000, timeout_unit="ms")
async def run_ops(dut):
    """Every op of ``FPIM_TB_CASES`` back to back, stall-free; results to ``FPIM_TB_RESULTS``."""
    spec = json.loads(open(os.environ["FPIM_TB_CASES"]).read())
    s = spec["settings"]
    io = VectorStreams(dut, np.random.default_rng(0), s["lanes"], s["in_bits"],
                       s["out_bits"], s["out_signed"])
    await io.reset({"coef_we": 0} if s["coefs"] else {})
    cocotb.start_soon(io.count())
    results = []
    for op in spec["ops"]:
        io.set_command(op["command"])
        if op["coefs"]:
            await write_coefs(dut, op["coefs"])
        io.first = io.last = None
        src = cocotb.start_soon(io.source(op["beats"], 0.0))
        got = await io.sink(op["out_beats"], 1.0)
        await src
        results.append({"out": got, "cycles": io.span()})
        await FallingEdge(dut.clk)
    with open(os.environ["FPIM_TB_RESULTS"], "w") as f:
        json.dump(results, f)
