"""fpim.sim: accelerator descriptions, workloads, numba simulators (imports quant, never hw)."""
