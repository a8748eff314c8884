"""``softmax``: I-ViT's Shiftmax, integer-only, over the second-to-last axis.

In fpim's channel-first token layout (:mod:`quant.ops.token_linear`) attention scores are
``(heads, keys, queries)`` per sample, so the softmax runs over the keys, axis -2 (the same
feature axis LayerNorm normalizes). One input of any signed or unsigned format, at least 2-D;
the output has the input's shape, an unsigned ``p``-bit format and scale exactly ``2**-p``.

=========  =====  ==========================================================================
attr       type   meaning
=========  =====  ==========================================================================
``x0``     int    ``floor(-1/S_in)`` (:func:`~quant.ops.intmath.exp_x0` of the input scale)
``n``      int    exp precision bits, 0..30 (:func:`~quant.ops.intmath.shift_exp`)
=========  =====  ==========================================================================

Per column (``L`` = the length of axis -2)::

    d   = x - max(x)                      # <= 0
    e   = shift_exp(d, x0, n)             # |x0| <= e <= |x0| * 2**n
    f   = INT32_MAX // sum(e)             # integer reciprocal
    out = (e * f) >> (31 - p)             # floor; scale 2**-p

**Overflow proof** (checked before computing, :class:`~quant.errors.OverflowRiskError`
otherwise, and on load): ``sum(e) <= L * |x0| * 2**n <= INT32_MAX`` is required, so the sum
fits int32; then ``e * f <= sum(e) * INT32_MAX / sum(e) = INT32_MAX`` and
``out <= 2**p - 1`` fits the output format. I-ViT clamps the sum at ``2**31 - 1`` instead;
a clamped sum makes a row add up to more than one, so fpim proves the clamp never acts.

**Row sums.** ``sum(out) <= 2**p - 1`` always, and ``sum(out) * 2**(31-p) > INT32_MAX -
L |x0| 2**n - L * 2**(31-p)`` (each floor loses less than one step; the reciprocal's floor
loses less than ``sum(e)``). With the ``n`` of :func:`softmax_params` (every exp at most
``2**(31-p)``) that is ``2**p - 2L <= sum(out) <= 2**p - 1``.

**Float agreement**: ``|out * 2**-p - softmax(x * S_in)| <= SOFTMAX_ERROR +
SOFTMAX_SCALE_ERROR * S_in + L * 2**-n + 2**(1-p)`` per element. The first constant covers
the chord of ``2**t`` and the 1.4375 factor, the second the floors of ``x0`` and of the
log2(e) shifts (both a fraction of one input step, relative to one unit), ``L * 2**-n`` the
exps floored at ``2**-n`` and ``2**(1-p)`` the two floors of the output. Measured maximum
beside the last two terms: 0.012 + 0.6 S over 40,000 random rows (scales ``2**-12 .. 1``,
lengths up to 256, all formats); tests/quant/test_vit_ops.py checks the bound with
hypothesis over scales ``2**-12 .. 1``, lengths 1..64 and codes including the extremes.

I-ViT's output is a signed ``b``-bit integer at scale ``2**-(b-1)``; fpim's ``p = b - 1``
unsigned bits hold the same integers.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import OverflowRiskError
from quant.ops.base import GemmFn, OpDef, int_attr, layer_error
from quant.ops.intmath import INT32_MAX, check_exp_sum, exp_bits, exp_x0, shift_exp

if TYPE_CHECKING:
    from quant.artifact import Layer, Value

#: Largest exp precision: I-ViT's PyTorch ``n``.
N_MAX = 15
#: Float-vs-integer error bound per element: constant and input-scale coefficient
#: (module docstring).
SOFTMAX_ERROR = 0.02
SOFTMAX_SCALE_ERROR = 0.6


def out_scale(out_bits: int) -> float:
    """The output scale of a ``softmax`` with ``out_bits`` unsigned output bits."""
    return 2.0 ** -out_bits


def softmax_params(in_scale: float, length: int, out_bits: int, n_max: int = N_MAX) -> dict:
    """The attrs of a ``softmax`` layer: ``x0`` of the input scale, the largest ``n <=
    n_max`` that keeps the reciprocal at least ``2**out_bits`` (:func:`exp_bits`)."""
    x0 = exp_x0(in_scale)
    return {"x0": x0, "n": exp_bits(length, x0, out_bits, n_max)}


def shiftmax(x: np.ndarray, x0: int, n: int, out_bits: int) -> np.ndarray:
    """Integer softmax of ``x`` over axis -2 (module docstring); proves the sum bound first."""
    x = np.asarray(x, dtype=np.int64)
    check_exp_sum(x.shape[-2], x0, n)
    e = shift_exp(x - x.max(axis=-2, keepdims=True), x0, n)
    f = INT32_MAX // e.sum(axis=-2, keepdims=True)
    return (e * f) >> (31 - out_bits)


class Softmax(OpDef):
    name = "softmax"
    attrs = MappingProxyType({"x0": "int", "n": "size"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return ins[0].shape

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src, out = ins[0], layer.out
        if src.fmt is None or len(src.shape) < 2 or out.shape != src.shape:
            raise layer_error(layer, f"input must be a clamped value of 2 or more dimensions "
                                     f"with the output's shape {out.shape}, not {src.fmt} "
                                     f"{src.shape}")
        if out.fmt is None or out.fmt.signed or out.scale != out_scale(out.fmt.bits):
            raise layer_error(layer, f"output must be unsigned p-bit at scale 2**-p, not "
                                     f"{out.fmt} at {out.scale!r}")
        x0 = int_attr(layer, "x0", -INT32_MAX, -1)
        n = int_attr(layer, "n", 0, 30)
        if x0 != exp_x0(src.scale):
            raise layer_error(layer, f"attrs.x0 must be floor(-1/{src.scale!r}) = "
                                     f"{exp_x0(src.scale)}, not {x0}")
        try:
            check_exp_sum(src.shape[-2], x0, n)
        except OverflowRiskError as exc:
            raise layer_error(layer, str(exc)) from None

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        return shiftmax(xs[0], int(a["x0"]), int(a["n"]), layer.out.fmt.bits)


SOFTMAX = Softmax()
