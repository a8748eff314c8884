"""Integer primitives of the transformer ops (softmax, GELU, LayerNorm, dyadic requantizers).

One definition each, on int64 numpy arrays; :mod:`quant.torch.intops` is their independent
torch twin. The recipes are I-ViT's (arXiv 2207.01405); where fpim departs from them the
docstring says so and why.

Constants
---------
``INT32_MAX = 2**31 - 1``
    The width of the exponential, its sums and the reciprocal's numerator (I-ViT's int32
    registers). :func:`shift_exp` results, their row sums and ``y * f`` in LayerNorm are
    proven to stay at or below it.
``x + (x >> 1) - (x >> 4)``
    ``1.4375 * x`` up to the two floors: log2(e) = 1.44270 with two shifts and two adds
    (-0.36 %).
``NEWTON_STEPS = 6``
    Newton steps of :func:`isqrt` (proof there).
``DYADIC_BITS = 31``
    Multiplier width of a dyadic requantizer (:func:`dyadic`).

**shift_exp** (I-ViT's ShiftExp). For ``x <= 0`` in units of a scale ``S`` (real value
``x*S``) and ``x0 = floor(-1/S)`` (:func:`exp_x0`, the integer closest below -1)::

    x' = max(x + (x >> 1) - (x >> 4), n * x0)      # x * log2(e) in units of S
    q  = x' // x0                                   # 0 <= q <= n (floor division)
    r  = x' - x0 * q                                # x0 < r <= 0
    e  = ((r - 2 * x0) << (n - q)) >> 1             # |x0| * 2**(n-q) * (1 + r / (2|x0|))

``e * S / 2**n`` approximates ``exp(x*S)``: ``2**(r/|x0|)`` is replaced by its chord
``1 + r/(2|x0|)`` on (-1, 0] (at most +6.1 % relative), ``|x0|*S`` lies in ``[1, 1 + S)``
(the floor), so the exponent is scaled by ``1.4375 / (|x0| S log2 e)`` (in ``(0.9964/(1+S),
0.9964]``); inputs below ``n * x0`` give the floor value ``|x0|``. I-ViT writes the last
step ``(r/2 - x0) * 2**(n-q)`` with a real ``r/2`` and floors at the end; the form above is
that value exactly, in integers (``(r >> 1) - x0`` would lose r's last bit). Bounds:
``|x0| <= e <= |x0| * 2**n`` (the upper one at ``x = 0``), so ``e >= 1`` always and I-ViT's
clamp at 0 is never needed.

**isqrt** (I-LayerNorm's square root). ``k <- min(k, (k + v // k) >> 1)``, six times, from
``k0 = 2**ceil(L/2)`` with ``L`` the bit length of ``v`` (a leading-zero count in hardware).
Proof that it returns ``floor(sqrt(v))`` for every ``0 <= v < 2**64``: let ``s = isqrt(v)``.
``k0**2 >= 2**L > v`` so ``k0 > sqrt(v)``, and ``k0 <= 2 sqrt(v)`` because ``v >= 2**(L-1)``.
For an integer ``k > sqrt(v)`` the step gives ``floor((k + v/k)/2)``, which is ``< k`` and, by
AM-GM, ``>= floor(sqrt(v)) = s``; at ``k = s`` it gives ``>= s`` and the ``min`` keeps ``s``
(without it, ``v = m**2 - 1`` would swing between ``m - 1`` and ``m``). The integer steps stay
at or below the real Newton steps from the same start (the map ``(k + v/k)/2`` rises for
``k > sqrt(v)``), whose relative error ``eps' = eps**2 / (2 (1 + eps))`` goes from ``eps <= 1``
to 0.25, 0.025, 3.05e-4, 4.65e-8, 1.08e-15 in five steps: then ``k - sqrt(v) < 1.08e-15 *
2**32 < 1``, so ``k`` is ``s`` or ``s + 1``, and the sixth step takes ``s + 1`` to ``s``. For
``v = 0`` the start is 1 and the first step gives 0 (the divisor is read as ``max(k, 1)``).
I-ViT's own start, a fixed ``2**16`` with 10 steps, does not converge for small variances.

**Dyadic requantization** (I-ViT): a real ratio ``S_in / S_out`` becomes ``(M, E)`` with
``(m, e) = frexp(ratio)``, ``M = round(m * 2**31)``, ``E = 31 - e`` (``M`` halved and ``E``
decreased when the rounding carries to ``2**31``), applied as ``round_shift(x * M, E)``: round
half to even, the one rounding rule of every requantizer in fpim (:func:`quant.ref.round_shift`).
It is :func:`quant.ref.quantize_multiplier` at 31 bits.
"""

from __future__ import annotations

import math

import numpy as np

from quant.errors import ConfigError, OverflowRiskError
from quant.ref import quantize_multiplier

INT32_MAX = (1 << 31) - 1
NEWTON_STEPS = 6
DYADIC_BITS = 31
INT64_LIMIT = 1 << 63


def exp_x0(scale: float) -> int:
    """``floor(-1/scale)``: minus one in units of ``scale``, rounded down (I-ViT's ``x0``)."""
    if not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be a positive finite number, not {scale!r}")
    return math.floor(-1.0 / scale)


def shift_exp(x: np.ndarray, x0: int, n: int) -> np.ndarray:
    """I-ViT's ShiftExp of ``x <= 0`` (int64), scale ``S / 2**n``; see the module docstring.

    The caller proves ``|x0| * 2**n <= INT32_MAX`` (then every step fits int64).
    """
    x = np.asarray(x, dtype=np.int64)
    x = x + (x >> 1) - (x >> 4)
    x = np.maximum(x, n * x0)
    q = x // x0
    r = x - x0 * q
    return ((r - 2 * x0) << (n - q)) >> 1


def exp_terms_bound(terms: int, x0: int, n: int) -> int:
    """The largest sum of ``terms`` :func:`shift_exp` values: ``terms * |x0| * 2**n``."""
    return int(terms) * -int(x0) << int(n)


def check_exp_sum(terms: int, x0: int, n: int) -> int:
    """Raise :class:`OverflowRiskError` unless a sum of ``terms`` exps fits int32; the bound."""
    bound = exp_terms_bound(terms, x0, n)
    if bound > INT32_MAX:
        raise OverflowRiskError(
            f"exp bits n must make {terms} x |x0| x 2**n at most {INT32_MAX} (the int32 sum "
            f"of exps), not n={n} with x0={x0} (bound {bound})")
    return bound


def exp_bits(terms: int, x0: int, out_bits: int, n_max: int) -> int:
    """The exp precision ``n`` an exporter should use: the largest ``n <= n_max`` with
    ``|x0| * 2**n <= 2**(31 - out_bits)`` and ``terms * |x0| * 2**n <= INT32_MAX``.

    The first keeps every exp at most ``2**(31 - out_bits)``, so the floor of the reciprocal
    ``INT32_MAX // sum`` moves an output by less than one step; the second is the int32
    bound of :func:`check_exp_sum`. Values below ``2**-n`` of the largest exp are floored
    to it, so a larger ``n`` is more precise.
    """
    x0, terms = -int(x0), int(terms)
    room = min((1 << (31 - out_bits)) // x0, INT32_MAX // (terms * x0))
    if room < 1:
        raise ConfigError(f"x0 must give {terms} x |x0| at most {INT32_MAX} and |x0| at most "
                          f"2**{31 - out_bits}, not x0={-x0}")
    return min(int(n_max), room.bit_length() - 1)


def bit_length(v: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values, exactly (``frexp`` then one correction)."""
    v = np.asarray(v, dtype=np.int64)
    e = np.frexp(v.astype(np.float64))[1].astype(np.int64)
    # float64 may round v up to the next power of two; then v < 2**(e-1)
    return e - ((v >> np.maximum(e - 1, 0)) == 0) * (v > 0)


def isqrt(v: np.ndarray) -> np.ndarray:
    """``floor(sqrt(v))`` of int64 ``v >= 0`` by :data:`NEWTON_STEPS` Newton steps (proof in
    the module docstring)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and int(v.min()) < 0:
        raise ConfigError(f"isqrt input must be non-negative, not {int(v.min())}")
    k = np.left_shift(np.int64(1), (bit_length(v) + 1) >> 1)
    for _ in range(NEWTON_STEPS):
        k = np.minimum(k, (k + v // np.maximum(k, 1)) >> 1)
    return k


def round_div(a: np.ndarray, d: int) -> np.ndarray:
    """``a / d`` rounded half to even, in integers (``d > 0``)."""
    a = np.asarray(a, dtype=np.int64)
    q = a // d
    r = a - q * d
    return q + ((2 * r > d) | ((2 * r == d) & (q & 1 == 1)))


def dyadic(ratio: float, bits: int = DYADIC_BITS) -> tuple[int, int]:
    """I-ViT's dyadic ``(M, E)`` with ``M * 2**-E ~ ratio`` (see the module docstring)."""
    return quantize_multiplier(ratio, bits)


def check_scaled(what: str, max_abs: int, mult: int, shift: int,
                 limit: int = INT64_LIMIT) -> int:
    """Raise :class:`OverflowRiskError` if ``max_abs * mult << max(0, -shift)`` reaches
    ``limit``; the bound. The static form of ``quant.ref.requantize``'s data check."""
    worst = int(max_abs) * abs(int(mult)) << max(0, -int(shift))
    if worst >= limit:
        raise OverflowRiskError(f"{what} must stay below {limit}, not reach {worst}")
    return worst
