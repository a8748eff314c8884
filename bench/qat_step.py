"""Time per training step of QAT vs float for ResNet-20 (or a ViT) on CPU, side by side.

    .venv/bin/python bench/qat_step.py [--scheme msq] [--steps 30] [--batch 128] [--size 8]
    .venv/bin/python bench/qat_step.py --model vit_digits --scheme fixed --bits 8 --batch 64

Both models see the same random batches (8x8 single-channel images, the digits shape, by
default; ``--size 32 --channels 3`` for CIFAR-shaped input). Steps alternate float / QAT so
machine load affects both alike; the median step time of each is printed with the ratio.
Target (issue 3): QAT step <= 2x the float step. For a ViT (``--model vit_digits``; issue 14:
<= 2.5x) the QAT model is :func:`quant.torch.vit_qat.quantize_vit`'s, with the integer
softmax / LayerNorm / GELU in its forward, 8-bit activations and calibrated fixed clips (the
CLI's ViT defaults); both models train with AdamW, as the ViT recipes do.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from quant.torch.models import build_model
from quant.torch.qat import QATConfig, quantize_
from quant.torch.vit import VITS
from quant.torch.vit_qat import quantize_vit


def step_fn(model: torch.nn.Module, adamw: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if adamw else \
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet20", choices=("resnet20", *VITS))
    p.add_argument("--scheme", default="msq", choices=("fixed", "pot", "sp2", "msq", "f8"))
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--size", type=int, default=8)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (training uses 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bits = 8 if args.scheme == "f8" else args.bits
    vit = args.model in VITS
    fmodel = build_model(args.model, 10, args.channels, 1, args.size)
    calib = torch.rand(256, args.channels, args.size, args.size)
    if vit:
        qmodel = quantize_vit(fmodel, QATConfig(scheme=args.scheme, bits=bits, act_bits=8,
                                                learn_clip=False), calib)
    else:
        qmodel = copy.deepcopy(fmodel)
        quantize_(qmodel, QATConfig(scheme=args.scheme, bits=bits, act_bits=bits), calib)
    fmodel.train()
    qmodel.train()
    fstep, qstep = step_fn(fmodel, vit), step_fn(qmodel, vit)
    ft, qt = [], []
    for i in range(args.steps + 3):
        x = torch.rand(args.batch, args.channels, args.size, args.size)
        y = torch.randint(0, 10, (args.batch,))
        a, b = fstep(x, y), qstep(x, y)
        if i >= 3:  # warm-up
            ft.append(a)
            qt.append(b)
    f, q = statistics.median(ft), statistics.median(qt)
    print(f"{args.model}, batch {args.batch}, input {args.channels}x{args.size}x{args.size}, "
          f"{args.scheme} {bits}-bit, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, median of {args.steps} steps")
    print(f"float step: {f * 1e3:8.1f} ms")
    print(f"QAT step:   {q * 1e3:8.1f} ms")
    print(f"ratio:      {q / f:8.2f}x  (target <= {2.5 if vit else 2}x)")


if __name__ == "__main__":
    main()
