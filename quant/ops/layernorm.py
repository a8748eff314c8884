"""``layernorm``: I-ViT's I-LayerNorm, integer-only, over the feature axis of ``(C, T)`` tokens.

One input, a clamped ``(C, T)`` value (fpim's channel-first tokens: C features of T tokens,
:mod:`quant.ops.token_linear`); each token (column) is normalized over its C features. The
output has the input's shape and the layer's output format.

=========  =========  =======  =============================================================
field      shape      dtype    meaning
=========  =========  =======  =============================================================
``shift``  attr       int      right shift of the affine step, 0..62
``gamma``  (C,)       int64    ``round(gamma_c * sqrt(C) / 2**30 / S_out * 2**shift)``
``beta``   (C,)       int64    ``round(beta_c / S_out * 2**shift)``
=========  =========  =======  =============================================================

Per token::

    mean = round_div(sum(x), C)           # round half to even, in integers
    y    = x - mean
    var  = sum(y * y)
    std  = isqrt(var)                     # Newton, == math.isqrt (quant.ops.intmath)
    z    = (y * (INT32_MAX // max(std, 1))) >> 1        # scale sqrt(C) / 2**30
    out  = clamp(round_shift(z * gamma + beta, shift))  # round half to even

**Constants.** ``2**30``: ``z`` is I-ViT's ``floor(y * f / 2)`` with ``f = INT32_MAX // std``,
the normalized value ``y sqrt(C) / sqrt(var)`` at scale ``sqrt(C) / 2**30``. ``gamma`` has
:data:`GAMMA_BITS` signed bits by default (:func:`layernorm_params`); ``beta`` is added after
the multiply at the finer scale ``S_out * 2**-shift`` — I-ViT adds ``floor(beta/gamma/s)``
before it, which divides by gamma (zero for a pruned channel) and rounds twice. No ``eps``:
the variance is exact, and a constant token (``var = 0``) gives ``z = 0``, ``out = beta``.

**Overflow proof.** ``|y| <= qmax - qmin`` (the rounded mean lies between the extremes), so
``var <= C (qmax - qmin)**2``, which must fit int64 (:func:`check_variance`, before computing
and on load; within the domain of the Newton proof). ``y**2 <= var`` gives ``|y| <= std``, so
``|y * f| <= INT32_MAX`` and ``|z| <= 2**30``. ``|gamma| <= INT32_MAX`` and ``|beta| <= 2**61``
(checked on load) keep ``|z * gamma + beta| < 2**62``.

**Float agreement**: against float LayerNorm without eps (timm's 1e-6 moves it by less
than ``1e-6 / (2 var)`` relative) of the real input, per element ``|out * S_out - LN| <=
S_out / 2 + max|gamma_c| * (LN_ERROR / sigma + sqrt(C) * 2**-GAMMA_BITS)``, with ``sigma``
the token's standard deviation in input steps: rounding the mean and flooring the square
root each cost about one input step relative to the spread, and gamma's rounding is at most
half a step of its 16 bits. Measured: the ``1/sigma`` coefficient is 1.5 with 1.3e-4 to
spare over 6,000 random tokens (C up to 300, int4/8/16, spreads from 0 to full scale);
tests/quant/test_vit_ops.py checks the bound with hypothesis.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ConfigError, OverflowRiskError
from quant.ops.base import GemmFn, OpDef, int_attr, layer_error
from quant.ops.intmath import INT32_MAX, INT64_LIMIT, isqrt, round_div
from quant.ref import requantize

if TYPE_CHECKING:
    from quant.artifact import Layer, Value

#: Default signed width of the integer gamma.
GAMMA_BITS = 16
#: Largest integer beta (keeps the affine step below 2**62).
BETA_LIMIT = 1 << 61
#: Float-vs-integer error, in units of gamma over the token's spread (module docstring).
LN_ERROR = 1.5


def check_variance(channels: int, fmt: object) -> int:
    """Raise :class:`OverflowRiskError` unless ``C (qmax - qmin)**2`` fits int64; the bound."""
    bound = int(channels) * (fmt.qmax - fmt.qmin) ** 2
    if bound >= INT64_LIMIT:
        raise OverflowRiskError(f"channels must keep C x (qmax - qmin)**2 below 2**63 for "
                                f"{fmt}, not C={channels} (bound {bound})")
    return bound


def normalized_scale(channels: int) -> float:
    """The scale of the normalized ``z``: ``sqrt(C) / 2**30``."""
    return math.sqrt(channels) / 2.0 ** 30


def layernorm_params(gamma: np.ndarray, beta: np.ndarray, out_scale: float,
                     gamma_bits: int = GAMMA_BITS) -> tuple[dict, dict]:
    """``(attrs, tensors)`` of a ``layernorm`` layer from float ``gamma``, ``beta`` (C,).

    The shift is the largest that keeps every integer gamma within ``gamma_bits`` signed
    bits (at most 62).
    """
    g = np.asarray(gamma, np.float64) * normalized_scale(len(gamma)) / out_scale
    b = np.asarray(beta, np.float64) / out_scale
    top = float(np.abs(g).max()) if g.size else 0.0
    shift = 62 if top == 0 else min(62, gamma_bits - 1 - math.frexp(top)[1])
    if shift >= 0 and np.abs(np.round(g * 2.0 ** shift)).max(initial=0) >= 1 << (gamma_bits - 1):
        shift -= 1  # rounding carried to 2**(gamma_bits - 1)
    g_int = np.round(g * 2.0 ** shift)
    b_int = np.round(b * 2.0 ** shift)
    if shift < 0 or np.abs(b_int).max(initial=0) > BETA_LIMIT:
        raise ConfigError(f"out_scale must be fine enough for gamma and beta, not {out_scale!r}")
    return {"shift": int(shift)}, {"gamma": g_int.astype(np.int64),
                                   "beta": b_int.astype(np.int64)}


def normalize(x: np.ndarray) -> np.ndarray:
    """``z`` of every token of ``x`` (..., C, T) over axis -2 (module docstring)."""
    x = np.asarray(x, dtype=np.int64)
    y = x - round_div(x.sum(axis=-2, keepdims=True), x.shape[-2])
    std = isqrt((y * y).sum(axis=-2, keepdims=True))
    return (y * (INT32_MAX // np.maximum(std, 1))) >> 1


class LayerNorm(OpDef):
    name = "layernorm"
    attrs = MappingProxyType({"shift": "size"})
    tensors = MappingProxyType({"gamma": ("int64", "C"), "beta": ("int64", "C")})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return ins[0].shape

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src, out = ins[0], layer.out
        if src.fmt is None or out.fmt is None or len(src.shape) != 2 \
                or out.shape != src.shape:
            raise layer_error(layer, f"input and output must be clamped (C, T) values of one "
                                     f"shape, not {src.fmt} {src.shape} -> {out.fmt} "
                                     f"{out.shape}")
        int_attr(layer, "shift", 0, 62)
        try:
            check_variance(src.shape[0], src.fmt)
        except OverflowRiskError as exc:
            raise layer_error(layer, str(exc)) from None

    def check_tensors(self, layer: Layer) -> None:
        t = layer.tensors
        for field, limit in (("gamma", INT32_MAX), ("beta", BETA_LIMIT)):
            worst = int(np.abs(t[field]).max(initial=0))
            if worst > limit:
                raise layer_error(layer, f"{field} must lie within +-{limit}, not {worst}")

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        check_variance(xs[0].shape[-2], in_fmts[0])
        t = layer.tensors
        z = normalize(in_fmts[0].check(xs[0]))
        return requantize(z * t["gamma"][:, None] + t["beta"][:, None], 1,
                          int(layer.attrs["shift"]), layer.out.fmt)


LAYERNORM = LayerNorm()
