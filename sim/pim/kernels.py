"""The PIM macro's functional kernel: a layer's integer GEMM as the crossbar computes it.

Groups of ``group_size`` rows are summed and converted by the ADC
(:func:`quant.pim.kernels.convert`), then recombined by the periphery's shift-and-add;
bit-serial inputs use the popcount kernel of :mod:`quant.pim.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

from quant.errors import ConfigError, ShapeError
from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.pim.kernels import _bit_serial_gemm, _pack_cols, _pack_weights, convert, plan_arrays

_SCHEME_CODE = {"native": 0, "differential": 1, "bit_serial": 2}


@numba.njit(cache=True)
def _pim_gemm(w: np.ndarray, x: np.ndarray, group: int, scheme: int, shift: int, mult: int,
              oshift: int, cmin: int, cmax: int, beta: float, sigma: float,
              seed: int) -> np.ndarray:
    """Native (scheme 0) and differential (1) GEMM; bit-serial is :func:`_bit_serial_gemm`."""
    m_rows, k_len = w.shape
    n_cols = x.shape[1]
    np.random.seed(seed)
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
    for m in range(m_rows):
        for n in range(n_cols):
            acc = np.int64(0)
            for g0 in range(0, k_len, group):
                g1 = min(g0 + group, k_len)
                if scheme == 0:  # native: one signed conversion
                    p = np.int64(0)
                    for k in range(g0, g1):
                        p += w[m, k] * x[k, n]
                    acc += convert(p * mult, shift, cmin, cmax, beta, sigma) << oshift
                else:  # differential: two unsigned conversions
                    pp = np.int64(0)
                    pn = np.int64(0)
                    for k in range(g0, g1):
                        wk = w[m, k]
                        if wk > 0:
                            pp += wk * x[k, n]
                        else:
                            pn -= wk * x[k, n]
                    cp = convert(pp * mult, shift, cmin, cmax, beta, sigma)
                    cn = convert(pn * mult, shift, cmin, cmax, beta, sigma)
                    acc += (cp - cn) << oshift
            out[m, n] = acc
    return out


def pim_gemm(w_int: np.ndarray, x: np.ndarray, w_bits: int, x_fmt: ActFormat,
             arith: PimArith, seed: int = 0, adc_range: float | None = None) -> np.ndarray:
    """``W · X`` computed the way the macro does: groups, ADC, periphery shift-add.

    ``w_int`` holds (M, K) signed integers of ``w_bits`` bits (e.g. fixed-point levels),
    ``x`` (K, N) integers of ``x_fmt``; ``adc_range`` a calibrated ADC range
    (:func:`quant.pim.plan`). Noise draws follow ``seed``. Returns (M, N) int64 in units of
    the plan's ``step`` (1 in power-of-two mode).
    """
    w = np.asarray(w_int)
    xa = x_fmt.check(x)
    if w.dtype.kind not in "iu":
        raise ShapeError(f"weights must be integers, not dtype {w.dtype}")
    if w.ndim != 2 or xa.ndim != 2 or w.shape[1] != xa.shape[0]:
        raise ShapeError(f"cannot multiply weights {w.shape} by activations {xa.shape}: "
                         "need (M, K) and (K, N)")
    pl = plan(arith, w_bits, x_fmt.bits, x_fmt.signed, adc_range)
    lim = (1 << (w_bits - 1)) - 1
    if w.size and int(np.abs(w).max()) > lim:
        raise ConfigError(f"weights must lie in -{lim}..{lim} for w_bits={w_bits}, "
                          f"not {int(w[np.abs(w) > lim].flat[0])}")
    beta, sigma = float(arith.nonlinearity), float(arith.noise_lsb)
    if arith.scheme != "bit_serial":
        return _pim_gemm(w.astype(np.int64), xa, arith.group_size, _SCHEME_CODE[arith.scheme],
                         pl.adc_shift[0], pl.adc_mult, pl.out_shift[0], arith.code_min,
                         arith.code_max, beta, sigma, int(seed))
    # bit-serial: every group sum of 1-bit inputs and a weight slice is popcounts of the
    # bit-packed operands; one conversion per (group, plane, slice)
    slices, planes, shifts, oshifts = plan_arrays(pl)
    wp = _pack_weights(w.astype(np.int64), w_bits, arith.group_size)
    xp = _pack_cols(np.ascontiguousarray(xa, dtype=np.int64), x_fmt.bits, arith.group_size,
                    planes)
    return _bit_serial_gemm(wp, xp, slices, planes, shifts, pl.adc_mult, oshifts,
                            arith.code_min, arith.code_max, beta, sigma, int(seed))

