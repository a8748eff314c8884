"""PIM kernel throughput and PIM-QAT training step time vs digital QAT, side by side.

    .venv/bin/python bench/pim_speed.py [--steps 15] [--batch 128] [--adc-bits 4] [--group 64]

1. Kernel: ``sim.pim.pim_gemm`` on a ResNet-20 stage-2 conv GEMM (M=32, K=288,
   N=16 pixels x 64 images) for each scheme, ideal and with noise (σ = 0.5 LSB); prints
   group conversions per second (``M * N * ceil(K / group) * conversions per group``).
   Bit-serial group sums are popcounts of bit-packed operands; with noise the rate is
   bound by the per-conversion normal draw.
2. Training: ResNet-20 on 8x8 single-channel inputs (the digits shape), batch 128, 4-bit
   fixed weights and activations on every layer. Steps alternate digital QAT / PIM-QAT of
   each scheme on the same random batches so machine load affects all alike; the median
   step time of each and the ratio to digital QAT are printed (target <= 3x). The
   bit-serial forward (ideal ADC) runs ``quant.pim.kernels.bit_serial_conv``: the input bit planes
   packed straight from the NCHW codes, all planes and slices of a group by popcount.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import numpy as np
import torch
from qat_step import step_fn  # the same timed SGD step as the QAT benchmark (bench/)

from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.torch.models import build_model
from quant.torch.pim_qat import pim_convert_
from quant.torch.qat import QATConfig, quantize_
from sim.pim import pim_gemm

SCHEMES = (("native", 3), ("differential", 3), ("bit_serial", 1))


def kernel_rate(arith: PimArith, m: int, k: int, n: int, repeat: int) -> float:
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, size=(m, k))
    x = rng.integers(0, 16, size=(k, n))
    pim_gemm(w[:2, :8], x[:8, :2], 4, ActFormat(4), arith)  # compile
    best = math.inf
    for r in range(repeat):
        t0 = time.perf_counter()
        pim_gemm(w, x, 4, ActFormat(4), arith, seed=r)
        best = min(best, time.perf_counter() - t0)
    conv = m * n * math.ceil(k / arith.group_size) * plan(arith, 4, 4).conversions_per_group
    return conv / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--adc-bits", type=int, default=4)
    p.add_argument("--group", type=int, default=64)
    args = p.parse_args()
    torch.set_num_threads(1)
    print(f"kernel: pim_gemm, M=32 K=288 N=1024, group {args.group}, {args.adc_bits}-bit ADC, "
          f"4-bit weights and inputs, best of 3")
    for scheme, cell in SCHEMES:
        a = PimArith(scheme=scheme, cell_bits=cell, group_size=args.group,
                     adc_bits=args.adc_bits)
        ideal = kernel_rate(a, 32, 288, 1024, 3)
        noisy = kernel_rate(a.with_(noise_lsb=0.5), 32, 288, 1024, 3)
        print(f"  {scheme:12s} {ideal / 1e6:8.1f} M conversions/s ideal, "
              f"{noisy / 1e6:8.1f} M/s with noise")

    torch.manual_seed(0)
    base = build_model("resnet20", 10, 1, 1, 8)
    calib = torch.rand(256, 1, 8, 8)
    quantize_(base, QATConfig(scheme="fixed", bits=4, act_bits=4, first_last_bits=None,
                              input_bits=4), calib)
    models = {"digital QAT": base}
    for scheme, cell in SCHEMES:
        m = copy.deepcopy(base)
        pim_convert_(m, PimArith(scheme=scheme, cell_bits=cell, group_size=args.group,
                                 adc_bits=args.adc_bits))
        models[f"PIM-QAT {scheme}"] = m
    steps = {}
    for name, m in models.items():
        m.train()
        steps[name] = step_fn(m, adamw=False)  # the SGD step (qat_step: AdamW for ViTs)
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.steps + 2):
        x = torch.rand(args.batch, 1, 8, 8)
        y = torch.randint(0, 10, (args.batch,))
        for name, step in steps.items():
            t = step(x, y)
            if i >= 2:  # warm-up
                times[name].append(t)
    ref = statistics.median(times["digital QAT"])
    print(f"training step: ResNet-20, batch {args.batch}, 1x8x8 input, torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread, median of {args.steps} steps")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:24s} {med * 1e3:8.1f} ms  {med / ref:5.2f}x"
              + ("" if name == "digital QAT" else "  (target <= 3x)"))


if __name__ == "__main__":
    main()
