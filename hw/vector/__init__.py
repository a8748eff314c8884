"""The vector unit of sim.timing rules R12-R16: one component per op (docs/rtl.md)."""
