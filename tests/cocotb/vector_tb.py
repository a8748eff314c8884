"""What the vector-unit cocotb testbenches share (tests/cocotb/vector_*): a source that
drives beats of ``lanes`` words into the ``inp`` stream with random idle cycles, a sink that
takes the ``out`` stream with random back-pressure, and a cycle counter, so that a test
can measure cycles from the first beat taken to the last beat given (both included)."""

from __future__ import annotations

from cocotb.triggers import FallingEdge, RisingEdge

from tests.cocotb.tbutil import pack, settle, start_clock_and_reset, unpack


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
