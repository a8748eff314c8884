"""fpim.sim: accelerator descriptions, workloads and the numba simulators (imports quant, never hw)."""
