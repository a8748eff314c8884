"""Helpers for the Amaranth-simulator tests: run an async testbench on a component."""

from __future__ import annotations

from amaranth.sim import Simulator


def run_bench(dut, bench, *, vcd: str | None = None) -> None:
    """Simulate ``dut`` with one clock and the async testbench ``bench(ctx)``."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
