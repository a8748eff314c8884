"""Testbench support shared by the cocotb suites (tests/cocotb), the equivalence suite and
``fpim verify``: GEMM cases, Verilator builds through cocotb's runner, stream drivers."""

#: Harnesses the accelerator's cases run on (``fpim verify --harness``): the fast one
#: (:mod:`hw.tb.fast`), the stream-level cocotb one (:mod:`hw.tb.accel_tb`), or both.
HARNESSES = ("fast", "stream", "both")
