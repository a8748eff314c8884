"""The ViT quantization table: float vs fixed-8, mixed fixed/PoT and fixed/SP2, PTQ vs QAT,
integer vs float non-linear ops in training, for ``vit_digits`` on the bundled digits.

    .venv/bin/python bench/vit_table.py [--seeds 0 1 2] [--qat-epochs 3] [--rows all]

Per seed, the float ViT is trained with its recipe (``float_recipe``, 150 epochs; cached in
``--ckpt-dir`` so a rerun loads it), then every row converts it with ``quantize_vit``
(8-bit activations, 16-bit residual stream, calibrated fixed clips), runs QAT with the ViT's
QAT recipe (AdamW, lr 2e-4) for ``--qat-epochs`` epochs or, for the PTQ rows, calibration
only, exports the integer artifact, writes and reloads it and measures its accuracy with
integer-only inference (``quant.infer``). Rows:

* fixed-8: every weight 8-bit fixed point (W8A8);
* fixed/PoT-4 at 0.5: half of the rows of every head (and of every other weight-bearing
  linear) power-of-two, the rest fixed point, 4-bit words (W4A8), patch embedding and head
  8-bit fixed;
* fixed/PoT-8 at 0.5: the same with 8-bit words (W8A8): fixed-8 rows and PoT rows whose
  exponents stop at 2**-15 (``quant.formats.POT_MAX_EXPONENT``, what the requantizer can
  apply; docs/vit.md "PoT exponents");
* fixed/SP2-4 at 0.5: the same with SP2 (W4A8);
* float-ops ablation: fixed-8 QAT whose forward runs float softmax / LayerNorm / GELU
  instead of the integer kernels (the exported artifact is integer-only either way);
* fixed-4 (W4A8), and fixed-8 with 4-bit values (GEMM inputs, scores and softmax output;
  the residual stream stays 16-bit).

Prints one line per run as it goes, then a markdown table of mean ± std (sample) over the
seeds: integer-artifact accuracy, fake-quant accuracy and their difference to float.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fpim.flows.quantize import quantize_workflow
from quant.data import load_digits
from quant.torch.models import float_recipe, qat_recipe
from quant.torch.qat import QATConfig

_BASE = {"act_bits": 8, "learn_clip": False}
#: label -> (QATConfig fields, PTQ)
ROWS: dict[str, tuple[dict, bool]] = {
    "fixed-8, QAT": ({"scheme": "fixed", "bits": 8}, False),
    "fixed-8, PTQ": ({"scheme": "fixed", "bits": 8}, True),
    "fixed/PoT-4 at 0.5, QAT": ({"scheme": "msq", "lut_scheme": "pot", "bits": 4,
                                 "sp2_fraction": 0.5}, False),
    "fixed/PoT-4 at 0.5, PTQ": ({"scheme": "msq", "lut_scheme": "pot", "bits": 4,
                                 "sp2_fraction": 0.5}, True),
    "fixed/PoT-8 at 0.5, QAT": ({"scheme": "msq", "lut_scheme": "pot", "bits": 8,
                                 "sp2_fraction": 0.5}, False),
    "fixed/PoT-8 at 0.5, PTQ": ({"scheme": "msq", "lut_scheme": "pot", "bits": 8,
                                 "sp2_fraction": 0.5}, True),
    "fixed/SP2-4 at 0.5, QAT": ({"scheme": "msq", "lut_scheme": "sp2", "bits": 4,
                                 "sp2_fraction": 0.5}, False),
    "fixed-8, QAT, float non-linear ops": ({"scheme": "fixed", "bits": 8, "int_ops": False},
                                           False),
    "fixed-4, QAT": ({"scheme": "fixed", "bits": 4}, False),
    "fixed-8, 4-bit values, QAT": ({"scheme": "fixed", "bits": 8, "act_bits": 4}, False),
}


def _pm(xs: list[float]) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.2f} ± {sd:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--qat-epochs", type=int, default=qat_recipe("vit_digits").epochs)
    p.add_argument("--rows", nargs="+", default=["all"],
                   help="row numbers (1-based) to run, or all")
    p.add_argument("--ckpt-dir", default="build/vit_ckpt", help="float checkpoints")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    rows = list(ROWS.items())
    if args.rows != ["all"]:
        rows = [rows[int(i) - 1] for i in args.rows]
    data = load_digits()
    results: dict[str, list[dict]] = {label: [] for label, _ in rows}
    floats: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            fcfg = float_recipe("vit_digits", seed=seed)
            tcfg = qat_recipe("vit_digits", epochs=args.qat_epochs, seed=seed)
            ckpt = Path(args.ckpt_dir) / f"vit_digits_seed{seed}.pt"
            for label, (fields, ptq) in rows:
                t0 = time.perf_counter()
                r = quantize_workflow("vit_digits", data, QATConfig(**{**_BASE, **fields}), fcfg,
                                      tcfg, out=Path(tmp) / "art", float_checkpoint=ckpt,
                                      ptq=ptq, progress=args.progress)
                results[label].append(r)
                print(f"seed {seed} | {label}: float {r['float_accuracy']:.2f}, fake-quant "
                      f"{r['fakequant_accuracy']:.2f}, integer {r['quant_accuracy']:.2f} % "
                      f"({r['lut_rows']}/{r['rows']} LUT rows, "
                      f"{time.perf_counter() - t0:.0f} s)", flush=True)
            floats.append(r["float_accuracy"])
    print(f"\nvit_digits on digits ({len(data.y_test)} test images), seeds {args.seeds}, "
          f"{args.qat_epochs} QAT epochs; mean ± std over seeds, test accuracy %\n")
    print("| row | integer artifact | fake-quant | integer − float |")
    print("|---|---|---|---|")
    print(f"| float | {_pm(floats)} | | |")
    for label, rs in results.items():
        ints = [r["quant_accuracy"] for r in rs]
        fq = [r["fakequant_accuracy"] for r in rs]
        diff = [r["quant_accuracy"] - r["float_accuracy"] for r in rs]
        print(f"| {label} | {_pm(ints)} | {_pm(fq)} | {_pm(diff)} |")


if __name__ == "__main__":
    main()
