"""Float accuracy and training time of the default ViT (vit_digits) on the bundled digits.

    .venv/bin/python bench/vit_float.py [--seeds 0 1 2] [--epochs N]

Trains with the model's recipe (``quant.torch.models.float_recipe``) on one torch thread,
through the same loop as ``fpim quantize`` (``fpim.flows.quantize.float_model``), and prints
test accuracy and wall-clock training time per seed, then mean ± std.
"""

from __future__ import annotations

import argparse
import statistics
import time

from fpim.flows.metrics import accuracy
from fpim.flows.quantize import float_model
from quant.data import load_digits
from quant.torch.models import float_recipe
from quant.torch.train import predict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_digits")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    data = load_digits()
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    accs, secs = [], []
    for seed in args.seeds:
        cfg = float_recipe(args.model, seed=seed, **overrides)
        t0 = time.perf_counter()
        model, _ = float_model(args.model, data, cfg, progress=args.progress)
        secs.append(time.perf_counter() - t0)
        accs.append(accuracy(predict(model, data.x_test), data.y_test))
        print(f"seed {seed}: float test accuracy {accs[-1]:.2f} %, {secs[-1]:.1f} s "
              f"({cfg.epochs} epochs)", flush=True)
    if len(accs) > 1:
        print(f"{args.model} on digits: {statistics.mean(accs):.2f} ± "
              f"{statistics.stdev(accs):.2f} %, {statistics.mean(secs):.1f} s per run "
              f"(one thread)")


if __name__ == "__main__":
    main()
