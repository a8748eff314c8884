"""fpim.hw: Amaranth components of the accelerator, Verilog emission and Yosys synthesis."""
