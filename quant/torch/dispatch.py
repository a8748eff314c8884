"""CPU kernel dispatch pinned so that float training gives the same bits on any x86-64 CPU with
AVX2, Intel or AMD.

torch's float kernels come from three libraries, and each picks its code by the CPU it runs
on: ATen's own vectorized kernels (elementwise ops, reductions, batch norm, pooling, the loss),
oneDNN (convolutions) and MKL (the GEMMs of linear layers). AVX-512 code sums in another order
than AVX2 code, so two machines with the same torch build, seed and thread count train
different weights. Each library reads one environment variable the first time it computes;
:func:`pin_cpu_dispatch` sets them to code paths that every AVX2 CPU runs alike. It runs when
:mod:`quant.torch` is imported (the fpim CLI imports it first), before torch computes
anything. docs/determinism.md says what is then bit-identical and what is not.

This module does not import torch.
"""

from __future__ import annotations

import os

#: Environment variable → pinned value. A value already in the environment is kept.
CPU_PINS: dict[str, str] = {
    # ATen: its AVX2 kernels, also on CPUs with AVX-512
    "ATEN_CPU_CAPABILITY": "avx2",
    # oneDNN: JIT kernels of at most AVX2
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # MKL: the reproducible branch that Intel and AMD CPUs both run (its AVX2 branch is
    # Intel-only: on AMD, MKL_CBWR=AVX2 falls back to the CPU-dependent automatic branch)
    "MKL_CBWR": "COMPATIBLE",
}

#: CPU flags the pinned paths need: ATen runs its AVX2 kernels when told to, without checking.
REQUIRED_CPU_FLAGS = frozenset({"avx2", "fma"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty where there is no /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def pin_cpu_dispatch() -> bool:
    """Set each of :data:`CPU_PINS` that is not set yet; True when the CPU can run them.

    On a CPU without AVX2 and FMA (or where its flags cannot be read) nothing is set and torch
    picks its own kernels: training is then reproducible on that machine only.
    """
    if not REQUIRED_CPU_FLAGS <= cpu_flags():
        return False
    for name, value in CPU_PINS.items():
        os.environ.setdefault(name, value)
    return True
