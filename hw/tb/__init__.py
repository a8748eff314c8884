"""Testbench support shared by the cocotb suites (tests/cocotb), the equivalence suite and
``fpim verify``: GEMM cases, Verilator builds through cocotb's runner, stream drivers."""
