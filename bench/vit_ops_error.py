"""Measured float-vs-integer error of the transformer ops against their documented bounds.

    .venv/bin/python bench/vit_ops_error.py [--trials 2000] [--seed 0]

For each op (quant.ops.softmax, gelu, layernorm), random input scales and codes as in
tests/quant/test_vit_ops.py, many more of them: the largest error beside the terms the
module docstring states exactly (output floors, ``2**-n``, ``1/sigma``...), and the
documented constant it must stay under. Prints one row per op; the largest error of a bin
of input scales shows the ``scale`` coefficient.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.special import erf

from quant.formats import ActFormat
from quant.ops.gelu import GELU_ERROR, GELU_SCALE_ERROR, gelu_params, shift_gelu
from quant.ops.layernorm import GAMMA_BITS, LN_ERROR, layernorm_params, normalize
from quant.ops.softmax import SOFTMAX_ERROR, SOFTMAX_SCALE_ERROR, shiftmax, softmax_params
from quant.ref import requantize

I16 = ActFormat(16, True)


def softmax_excess(rng: np.random.Generator) -> tuple[float, float]:
    """(input scale, error beyond ``L 2**-n + 2**(1-p)``) of one random softmax."""
    s = 2.0 ** rng.uniform(-12, 0)
    length, p = int(rng.integers(1, 257)), int(rng.integers(2, 17))
    fmt = ActFormat(int(rng.choice([4, 8, 16])), True)
    r = min(fmt.qmax, max(1, int(rng.uniform(0.5, 30) / s)))
    x = rng.integers(-r, r + 1, size=(length, 4))
    a = softmax_params(s, length, p)
    real = x * s
    ref = np.exp(real - real.max(axis=0))
    ref /= ref.sum(axis=0)
    err = np.abs(shiftmax(x, a["x0"], a["n"], p) * 2.0 ** -p - ref).max()
    return s, err - length * 2.0 ** -a["n"] - 2.0 ** (1 - p)


def gelu_excess(rng: np.random.Generator) -> tuple[float, float]:
    """(input scale, error beyond ``|x| (2**(1-p) + 2**-n)``) of one random GELU."""
    s, p = 2.0 ** rng.uniform(-10, -1), int(rng.integers(2, 17))
    x = rng.integers(I16.qmin, I16.qmax + 1, 2000)
    a = gelu_params(s, s * 2.0 ** -p, p)  # output scale S 2**-p: no output rounding
    real = x * s
    ref = 0.5 * real * (1 + erf(real / math.sqrt(2)))
    err = np.abs(shift_gelu(x, a["x0"], a["n"], p) * s * 2.0 ** -p - ref)
    return s, float((err - np.abs(real) * (2.0 ** (1 - p) + 2.0 ** -a["n"])).max())


def layernorm_excess(rng: np.random.Generator) -> tuple[float, float]:
    """(1, largest error times sigma / max|gamma|) of one random LayerNorm, beyond the output
    rounding and gamma's rounding."""
    c = int(rng.integers(2, 300))
    fmt = ActFormat(int(rng.choice([4, 8, 16])), True)
    spread = int(rng.integers(1, fmt.qmax + 1))
    centre = int(rng.integers(fmt.qmin + spread // 2, fmt.qmax - spread // 2 + 1))
    x = np.clip(rng.integers(centre - spread, centre + spread + 1, size=(1, c, 4)), fmt.qmin,
                fmt.qmax)
    if rng.random() < 0.2:  # one outlier channel at full scale
        x[0, rng.integers(c)] = fmt.qmax
    gamma, beta = rng.uniform(-2, 2, c), rng.uniform(-1, 1, c)
    s_out = (np.abs(gamma).max() * math.sqrt(c) + 1) / I16.qmax
    attrs, t = layernorm_params(gamma, beta, s_out)
    y = requantize(normalize(x) * t["gamma"][:, None] + t["beta"][:, None], 1, attrs["shift"],
                   I16) * s_out
    dev = x - x.mean(axis=1, keepdims=True)
    sigma = np.sqrt((dev ** 2).mean(axis=1, keepdims=True))
    ref = np.divide(dev, sigma, out=np.zeros(dev.shape), where=sigma > 0) * gamma[:, None] \
        + beta[:, None]
    g = np.abs(gamma).max()
    err = (np.abs(y - ref) - s_out / 2) / g - math.sqrt(c) * 2.0 ** -GAMMA_BITS
    ok = np.broadcast_to(sigma > 0, err.shape)
    return 1.0, float((err * np.broadcast_to(sigma, err.shape))[ok].max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = [("softmax", softmax_excess, SOFTMAX_ERROR, SOFTMAX_SCALE_ERROR),
            ("gelu", gelu_excess, GELU_ERROR, GELU_SCALE_ERROR),
            ("layernorm (x sigma / max|gamma|)", layernorm_excess, LN_ERROR, 0.0)]
    print(f"{'op':34s} {'trials':>6s} {'max excess':>10s} {'- coef*S':>9s} {'bound':>6s} "
          f"{'coef':>5s}")
    for name, fn, const, coef in rows:
        pairs = np.array([fn(rng) for _ in range(args.trials)])
        worst = float(pairs[:, 1].max())
        beside = float((pairs[:, 1] - coef * pairs[:, 0]).max())
        print(f"{name:34s} {args.trials:6d} {worst:10.4f} {beside:9.4f} {const:6.3f} "
              f"{coef:5.2f}")


if __name__ == "__main__":
    main()
