"""README results table: float vs fixed / PoT / SP2 / MSQ / F8Net QAT of ResNet-20 on digits.

    .venv/bin/python bench/qat_table.py [--seed 0] [--float-epochs 60] [--qat-epochs 30]

Trains one float ResNet-20 on the sklearn digits train split (seeded, fixed split), then for
each row converts a copy with ``quantize_`` and runs QAT with the same seed, exports the
integer artifact, writes it to a temporary directory, loads it back and evaluates it with
integer-only inference (the "integer" column). 4-bit weights and 4-bit activations (first
conv and last linear 8-bit fixed), plus F8Net 8-bit. Same seed → same numbers on any x86-64
machine with AVX2 (docs/determinism.md). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fpim.flows.metrics import accuracy
from fpim.flows.quantize import float_model, quantize_workflow
from quant.data import load_digits
from quant.torch.qat import QATConfig
from quant.torch.train import TrainConfig, predict

ROWS = [
    ("fixed", 4, None), ("pot", 4, None), ("sp2", 4, None),
    ("msq", 4, 0.25), ("msq", 4, 0.5), ("msq", 4, 0.75), ("f8", 8, None),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--float-epochs", type=int, default=40)
    p.add_argument("--qat-epochs", type=int, default=20)
    p.add_argument("--qat-lr", type=float, default=0.01)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    data = load_digits()
    fcfg = TrainConfig(epochs=args.float_epochs, lr=0.1, seed=args.seed)
    qcfg = TrainConfig(epochs=args.qat_epochs, lr=args.qat_lr, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "float.pt"
        model, _ = float_model("resnet20", data, fcfg, checkpoint=ckpt, progress=args.progress)
        float_acc = accuracy(predict(model, data.x_test), data.y_test)
        lines = [
            "| weights | activations | SP2 rows | float acc. | fake-quant acc. | integer acc. "
            "(artifact) | Δ vs float | fq/int agree | seed |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| float32 | float32 | – | {float_acc:.2f} | – | – | – | – | {args.seed} |",
        ]
        for scheme, bits, frac in ROWS:
            cfg = QATConfig(scheme=scheme, bits=bits, act_bits=8 if scheme == "f8" else 4,
                            sp2_fraction=frac if frac is not None else 0.5)
            r = quantize_workflow("resnet20", data, cfg, fcfg, qcfg, out=Path(tmp) / scheme,
                                  float_checkpoint=ckpt, progress=args.progress)
            name = {"fixed": "fixed-4", "pot": "PoT-4", "sp2": "SP2-4",
                    "msq": f"MSQ-4 (SP2 {frac})", "f8": "F8Net 8-bit"}[scheme]
            acts = "F8Net uint8" if scheme == "f8" else "uint4 (PACT)"
            sp2 = f"{r['sp2_rows']}/{r['rows']}"
            lines.append(
                f"| {name} | {acts} | {sp2} | {r['float_accuracy']:.2f} | "
                f"{r['fakequant_accuracy']:.2f} | {r['quant_accuracy']:.2f} | "
                f"{r['quant_accuracy'] - r['float_accuracy']:+.2f} | {r['agreement']:.1f}% | "
                f"{args.seed} |")
            print(lines[-1], flush=True)
    print()
    print(f"ResNet-20 on sklearn digits ({len(data.y_train)} train / {len(data.y_test)} test "
          f"images, split seed 0); float {args.float_epochs} epochs, QAT {args.qat_epochs} "
          f"epochs at lr {args.qat_lr}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {time.perf_counter() - t0:.0f} s")
    print("command: .venv/bin/python bench/qat_table.py "
          f"--seed {args.seed} --float-epochs {args.float_epochs} "
          f"--qat-epochs {args.qat_epochs} --qat-lr {args.qat_lr}")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
