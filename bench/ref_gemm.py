"""Throughput of the reference GEMM on one core, checked bit-exact against plain int64.

Workload (issue 2): a 768 x 768 x 197 mixed-scheme GEMM (DeiT-base attention projection
size: M = 768 output rows, K = 768, N = 197 tokens), 4-bit weights (half the rows SP2, half
fixed, by the MSQ `mse` rule), unsigned 8-bit activations. The accumulator bound
768 * 8 * 255 < 2**24 lets `quant.ref.gemm` use an exact float32 BLAS product (see the
quant/ref.py docstring); the int64 numpy product is the exact yardstick.

Usage: python bench/ref_gemm.py [--repeat N] [--seed S] [--json]
"""

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"  # one core, as the target says; must precede the numpy import

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from quant import ref  # noqa: E402
from quant.formats import ActFormat  # noqa: E402
from quant.msq import msq_assign  # noqa: E402


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7, help="timed runs; the best is reported")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    m, k, n = 768, 768, 197
    rng = np.random.default_rng(args.seed)
    rows = msq_assign(rng.normal(size=(m, k)), 0.5, 4)
    x_fmt = ActFormat(8)
    x = rng.integers(0, 256, size=(k, n))
    w_int = rows.int_weights()

    y = ref.gemm(rows, x, x_fmt, acc_bits=32)
    exact = w_int @ x  # int64, cannot overflow: bound < 2**24
    assert y.dtype == np.int64
    mismatches = int(np.count_nonzero(y != exact))

    t_ref = best_time(lambda: ref.gemm(rows, x, x_fmt, acc_bits=32), args.repeat)
    t_int = best_time(lambda: w_int @ x, max(1, args.repeat // 3))
    macs = m * k * n
    result = {
        "shape": [m, k, n], "sp2_rows": rows.count(1), "fixed_rows": rows.count(0),
        "bound": ref.accumulator_bound(k, rows.max_abs_int(), x_fmt.max_abs),
        "seconds": t_ref, "gmac_per_s": macs / t_ref / 1e9,
        "int64_numpy_gmac_per_s": macs / t_int / 1e9,
        "mismatches_vs_int64": mismatches, "threads": 1,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"reference GEMM {m}x{k}x{n}, 4-bit MSQ weights ({result['sp2_rows']} SP2 / "
              f"{result['fixed_rows']} fixed rows), uint8 activations, 1 thread")
        print(f"  accumulator bound {result['bound']} (< 2**24: exact float32 path)")
        print(f"  quant.ref.gemm     {t_ref * 1e3:8.2f} ms  {result['gmac_per_s']:7.2f} GMAC/s")
        print(f"  int64 numpy @      {t_int * 1e3:8.2f} ms  "
              f"{result['int64_numpy_gmac_per_s']:7.2f} GMAC/s")
        print(f"  bit-exact vs int64: {'yes' if mismatches == 0 else f'NO ({mismatches})'}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
