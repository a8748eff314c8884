"""Integer-exact numpy reference kernels: the golden model every other level is checked against.

GEMM ``Y[M x N] = W[M x K] · X[K x N]`` with integer weight levels (one scheme per row, see
:mod:`quant.formats`) and integer activations, accumulating in a signed accumulator of
``acc_bits`` bits. Before computing, the kernel *proves* from the shapes and bit widths that
no partial sum can overflow::

    bound = K * max|int_level| * max|x|     (over the formats involved, not the data)
    requires bound <= 2**(acc_bits - 1) - 1

and raises :class:`~quant.errors.OverflowRiskError` otherwise. Every partial sum of the
GEMM is an integer with magnitude at most ``bound``, so when ``bound < 2**24`` a float32 BLAS
product is exact, and when ``bound < 2**53`` a float64 one is (integers below the mantissa
limit add and multiply exactly, in any order, FMA or not). Larger bounds use int64 numpy,
which is exact because ``acc_bits <= 64`` is enforced.

Requantization (:func:`requantize`): ``y = clamp(relu(round((acc + bias) * mult / 2**shift)))``
with round half to even, all in integers. F8Net's pure-shift form is ``mult = 1`` (a negative
``shift`` is a left shift).
"""

from __future__ import annotations

import math

import numpy as np

from quant.errors import ConfigError, OverflowRiskError, ShapeError, check_int_range
from quant.formats import ActFormat
from quant.rows import QuantizedRows

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53


def accumulator_bound(k: int, w_max_abs: int, x_max_abs: int) -> int:
    """Worst-case |partial sum| of a K-long dot product (Python int, no overflow)."""
    return int(k) * int(w_max_abs) * int(x_max_abs)


def required_acc_bits(k: int, w_max_abs: int, x_max_abs: int) -> int:
    """Smallest signed accumulator width that holds every partial sum."""
    return max(2, accumulator_bound(k, w_max_abs, x_max_abs).bit_length() + 1)


def check_accumulator(k: int, w_max_abs: int, x_max_abs: int, acc_bits: int) -> int:
    """Return the bound, or raise if a signed ``acc_bits`` accumulator could overflow."""
    check_int_range("acc_bits", acc_bits, 2, 64)
    bound = accumulator_bound(k, w_max_abs, x_max_abs)
    limit = (1 << (acc_bits - 1)) - 1
    if bound > limit:
        raise OverflowRiskError(
            f"acc_bits must be at least {required_acc_bits(k, w_max_abs, x_max_abs)} for "
            f"K={k}, max|w|={w_max_abs}, max|x|={x_max_abs} (bound {bound} > {limit}), "
            f"not {acc_bits}"
        )
    return bound


def gemm_int(w_int: np.ndarray, x: np.ndarray, *, w_max_abs: int, x_max_abs: int,
             acc_bits: int = 32) -> np.ndarray:
    """Exact ``w_int @ x`` (int64 result) after proving the accumulator bound.

    ``w_max_abs``/``x_max_abs`` are the format bounds (not the data's); the data must lie
    within them.
    """
    if w_int.ndim != 2 or x.ndim != 2 or w_int.shape[1] != x.shape[0]:
        raise ShapeError(f"cannot multiply weights {w_int.shape} by activations {x.shape}: "
                         "need (M, K) and (K, N)")
    k = w_int.shape[1]
    bound = check_accumulator(k, w_max_abs, x_max_abs, acc_bits)
    if w_int.size and int(np.abs(w_int).max()) > w_max_abs:
        raise ConfigError(f"weights exceed their format bound {w_max_abs}")
    if x.size and int(np.abs(x).max()) > x_max_abs:
        raise ConfigError(f"activations exceed their format bound {x_max_abs}")
    if bound < FLOAT32_EXACT:
        return (w_int.astype(np.float32) @ x.astype(np.float32)).astype(np.int64)
    if bound < FLOAT64_EXACT:
        return (w_int.astype(np.float64) @ x.astype(np.float64)).astype(np.int64)
    return w_int.astype(np.int64) @ x.astype(np.int64)


def gemm(rows: QuantizedRows, x: object, x_fmt: ActFormat, acc_bits: int = 32) -> np.ndarray:
    """Mixed-scheme GEMM: (M, K) quantized rows times (K, N) integer activations → (M, N) int64."""
    xa = x_fmt.check(x)
    if xa.ndim != 2:
        raise ShapeError(f"activations must be 2-D (K, N), not shape {xa.shape}")
    return gemm_int(rows.int_weights(), xa, w_max_abs=rows.max_abs_int(),
                    x_max_abs=x_fmt.max_abs, acc_bits=acc_bits)


def gemm_hw(rows: QuantizedRows, x: object, x_fmt: ActFormat, acc_bits: int = 32) -> np.ndarray:
    """The same GEMM computed the way the PEs do: each product by its scheme's hardware op.

    Slow (materializes M x K x N products); for tests that tie the fast path to the PE ops.
    """
    xa = x_fmt.check(x)
    m, k = rows.shape
    check_accumulator(k, rows.max_abs_int(), x_fmt.max_abs, acc_bits)
    out = np.zeros((m, xa.shape[1]), dtype=np.int64)
    for s, fmt in rows.formats().items():
        sel = np.flatnonzero(rows.scheme_ids == s)
        prods = fmt.hw_mul(rows.words[sel][:, :, None], xa[None, :, :])
        out[sel] = prods.sum(axis=1)
    return out


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: int = 1,
           padding: int = 0) -> np.ndarray:
    """Lower (B, C, H, W) activations to the (C*kh*kw, B*Ho*Wo) GEMM operand.

    Row order matches weights reshaped from (C_out, C, kh, kw); column order is
    (batch, out_y, out_x). Padding inserts zeros (activation code 0).
    """
    if x.ndim != 4:
        raise ShapeError(f"conv activations must be (B, C, H, W), not shape {x.shape}")
    kh, kw = kernel
    check_int_range("stride", stride, 1, 1 << 16)
    check_int_range("padding", padding, 0, 1 << 16)
    b, c, h, w = x.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    if ho < 1 or wo < 1:
        raise ShapeError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {padding}")
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, kh, kw, b, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] \
                .transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, b * ho * wo)


def conv2d(rows: QuantizedRows, x: object, x_fmt: ActFormat, kernel: tuple[int, int],
           stride: int = 1, padding: int = 0, acc_bits: int = 32) -> np.ndarray:
    """Convolution lowered to :func:`gemm`: (B, C, H, W) → (B, C_out, Ho, Wo) int64 accumulators.

    ``rows`` holds the weights reshaped to (C_out, C*kh*kw).
    """
    xa = x_fmt.check(x)
    cols = im2col(xa, kernel, stride, padding)
    if cols.shape[0] != rows.shape[1]:
        raise ShapeError(f"weights have K={rows.shape[1]} but input channels x kernel give "
                         f"{cols.shape[0]}")
    b, _, h, w = xa.shape
    ho = conv_output_size(h, kernel[0], stride, padding)
    wo = conv_output_size(w, kernel[1], stride, padding)
    y = gemm(rows, cols, x_fmt, acc_bits)
    return y.reshape(rows.shape[0], b, ho, wo).transpose(1, 0, 2, 3)


def round_shift(p: np.ndarray, shift: np.ndarray | int) -> np.ndarray:
    """``round(p / 2**shift)`` with round half to even, exactly in int64.

    A negative shift multiplies by ``2**-shift``.
    """
    p = np.asarray(p, dtype=np.int64)
    s = np.broadcast_to(np.asarray(shift, dtype=np.int64), p.shape)
    right = np.maximum(s, 0)
    q = p >> right  # floor
    r = p - (q << right)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    up = (right > 0) & ((r > half) | ((r == half) & ((q & 1) == 1)))
    q = q + up
    return np.where(s < 0, p << np.maximum(-s, 0), q)


def requantize(acc: np.ndarray, mult: object, shift: object, out_fmt: ActFormat, *,
               bias: object | None = None, relu: bool = False, axis: int = 0) -> np.ndarray:
    """Per-row integer requantization of accumulators to ``out_fmt``.

    ``y = clamp(relu(round_half_even((acc + bias) * mult / 2**shift)))``; ``mult``, ``shift``
    and ``bias`` are scalars or one value per row along ``axis`` (bias in accumulator
    units). F8Net's pure shift is ``mult = 1``. Raises if ``(acc + bias) * mult`` could leave
    int64.
    """
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise ShapeError(f"accumulators must be integers, not dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)

    def per_row(v: object, name: str) -> np.ndarray:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise ShapeError(f"{name} must be integers, not dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.ndim == 0:
            return arr
        if arr.ndim != 1 or arr.shape[0] != a.shape[axis]:
            raise ShapeError(f"{name} must be a scalar or have {a.shape[axis]} entries, "
                             f"not shape {arr.shape}")
        shape = [1] * a.ndim
        shape[axis] = -1
        return arr.reshape(shape)

    m = per_row(mult, "mult")
    s = per_row(shift, "shift")
    b = per_row(0 if bias is None else bias, "bias")
    if m.size and int(np.min(m)) < 0:
        raise ConfigError("mult must be non-negative")
    if s.size and (int(np.min(s)) < -62 or int(np.max(s)) > 62):
        raise ConfigError(f"shift must be in -62..62, not {int(np.max(np.abs(s)))}")
    amax = (int(np.abs(a).max()) if a.size else 0) + (int(np.abs(b).max()) if b.size else 0)
    left = max(0, -int(np.min(s))) if s.size else 0
    worst = amax * (int(np.max(m)) if m.size else 0) << left
    if worst >= 1 << 63:
        raise OverflowRiskError(f"(acc + bias) * mult reaches {worst}, which does not fit int64")
    y = round_shift((a + b) * m, s)
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, out_fmt.qmin, out_fmt.qmax)


def quantize_multiplier(scale: float, mult_bits: int = 16, *, min_shift: int = -62,
                        max_shift: int = 62) -> tuple[int, int]:
    """Integer ``(mult, shift)`` with ``mult * 2**-shift ≈ scale``, ``mult < 2**mult_bits`` and
    ``min_shift <= shift <= max_shift``.

    ``mult`` is normalized to ``[2**(mult_bits-1), 2**mult_bits)`` when possible, which keeps
    ``mult_bits`` significant bits; the relative error is at most ``2**-mult_bits``. A scale too
    small for ``max_shift`` keeps fewer bits (eventually ``mult = 0``); one of ``2**(mult_bits -
    min_shift)`` or more is refused. The engine's range is ``min_shift=0``, ``max_shift`` from
    :data:`quant.requant.REQUANTIZER`.
    """
    check_int_range("mult_bits", mult_bits, 2, 31)
    check_int_range("max_shift", max_shift, -62, 62)
    check_int_range("min_shift", min_shift, -62, max_shift)
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"scale must be a positive finite number, not {scale!r}")
    _, e = math.frexp(scale)  # scale = f * 2**e, f in [0.5, 1)
    shift = mult_bits - e
    if shift < min_shift:
        raise ConfigError(f"scale must be below 2**{mult_bits - min_shift}, not {scale!r}")
    mult = round(scale * 2.0 ** shift)
    if mult >= 1 << mult_bits:  # rounding carried into the next power
        if shift > min_shift:
            mult //= 2
            shift -= 1
        else:  # no room to shift less: the largest multiplier is the nearest
            mult -= 1
    if shift > max_shift:  # tiny scale: fewer significant bits, eventually zero
        mult = round(scale * 2.0 ** max_shift)
        shift = max_shift
    return int(mult), int(shift)
