"""``gelu``: I-ViT's ShiftGELU, integer-only and element-wise, then a dyadic requantizer.

``GELU(x) ~ x * sigmoid(1.702 x)``, the sigmoid from two :func:`~quant.ops.intmath.shift_exp`
at the scale ``1.702 * S_in``. One input of any clamped format; the output has its shape and
the layer's output format.

==========  =====  =========================================================================
attr        type   meaning
==========  =====  =========================================================================
``x0``      int    ``floor(-1 / (1.702 * S_in))``
``n``       int    exp precision bits, 0..30
``p``       int    sigmoid bits, 1..16: ``sigma`` has scale ``2**-p``
``mult``    int    requantizer multiplier (dyadic, :func:`~quant.ops.intmath.dyadic`)
``shift``   int    requantizer shift, -62..62
==========  =====  =========================================================================

Per element, with ``m = max(x, 0)``::

    e1    = shift_exp(x - m, x0, n)            # exp(1.702 x S - m')
    e2    = shift_exp(-m, x0, n)               # exp(-m')
    sigma = (e1 * (INT32_MAX // (e1 + e2))) >> (31 - p)
    out   = requantize(x * sigma, mult, shift, out_fmt)    # x*sigma has scale S_in 2**-p

``sigma = e^z / (e^z + 1)`` written as ``e^(z-m) / (e^(z-m) + e^-m)``; both exponents are
at most 0 and one of them is exactly 0. I-ViT subtracts the row maximum instead of
``max(x, 0)``; the per-element form makes the op element-wise (an output never depends on
its neighbours) and keeps the larger exponential exact.

**Overflow proof** (before computing, and on load): ``e1 + e2 <= 2 |x0| 2**n <= INT32_MAX``
is required; then ``e1 * f <= INT32_MAX`` and ``sigma <= 2**p - 1``; ``|x * sigma| <
max|x| * 2**p`` and ``max|x| * (2**p - 1) * mult << max(0, -shift)`` must stay below
``2**63`` (:func:`~quant.ops.intmath.check_scaled`).

**Float agreement**: against the exact-erf GELU of the real input, per element
``|out * S_out - GELU(x S_in)| <= S_out / 2 + GELU_ERROR + GELU_SCALE_ERROR * S_in +
|x S_in| * (2**(1-p) + 2**-n)``: the output's rounding, the 1.702 form itself (0.0203) with
the chord of ``2**t``, the floors of ``x0`` and of the log2(e) shifts (a fraction of one
input step), and the two floors of ``sigma`` and its ``2**-n`` floor, which scale with
``x``. Measured beside the first and last terms: 0.022 + 0.6 S over 4,000 random tensors
(scales ``2**-10 .. 2**-1``); tests/quant/test_vit_ops.py checks the bound with hypothesis
(every int8 code, random int16 codes, sigmoid bits 2..16).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import OverflowRiskError
from quant.ops.base import GemmFn, OpDef, int_attr, layer_error
from quant.ops.intmath import (
    INT32_MAX,
    check_exp_sum,
    check_scaled,
    dyadic,
    exp_bits,
    exp_x0,
    shift_exp,
)
from quant.ref import requantize

if TYPE_CHECKING:
    from quant.artifact import Layer, Value

#: The sigmoid slope of the GELU approximation ``x * sigmoid(1.702 x)``.
SIGMOID_SLOPE = 1.702
#: Largest exp precision: I-ViT's ShiftGELU ``n``.
N_MAX = 23
#: Default sigmoid bits.
SIGMOID_BITS = 8
#: Float-vs-integer error bound: constant and input-scale coefficient (module docstring).
GELU_ERROR = 0.03
GELU_SCALE_ERROR = 0.6


def gelu_params(in_scale: float, out_scale: float, sigmoid_bits: int = SIGMOID_BITS,
                n_max: int = N_MAX) -> dict:
    """The attrs of a ``gelu`` layer from its input and output scales."""
    x0 = exp_x0(SIGMOID_SLOPE * in_scale)
    mult, shift = dyadic(in_scale * 2.0 ** -sigmoid_bits / out_scale)
    return {"x0": x0, "n": exp_bits(2, x0, sigmoid_bits, n_max), "p": sigmoid_bits,
            "mult": mult, "shift": shift}


def shift_gelu(x: np.ndarray, x0: int, n: int, p: int) -> np.ndarray:
    """``x * sigma(1.702 x)`` in integers at scale ``S_in * 2**-p`` (before requantization);
    proves the exp sum bound first."""
    check_exp_sum(2, x0, n)
    x = np.asarray(x, dtype=np.int64)
    m = np.maximum(x, 0)
    e1 = shift_exp(x - m, x0, n)
    e2 = shift_exp(-m, x0, n)
    sigma = (e1 * (INT32_MAX // (e1 + e2))) >> (31 - p)
    return x * sigma


class Gelu(OpDef):
    name = "gelu"
    attrs = MappingProxyType({"x0": "int", "n": "size", "p": "count", "mult": "size",
                              "shift": "int"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return ins[0].shape

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src, out = ins[0], layer.out
        if src.fmt is None or out.fmt is None or out.shape != src.shape:
            raise layer_error(layer, f"input and output must be clamped values of one shape, "
                                     f"not {src.fmt} {src.shape} -> {out.fmt} {out.shape}")
        x0 = int_attr(layer, "x0", -INT32_MAX, -1)
        n = int_attr(layer, "n", 0, 30)
        p = int_attr(layer, "p", 1, 16)
        mult = int_attr(layer, "mult", 0, INT32_MAX)
        shift = int_attr(layer, "shift", -62, 62)
        want = exp_x0(SIGMOID_SLOPE * src.scale)
        if x0 != want:
            raise layer_error(layer, f"attrs.x0 must be floor(-1/({SIGMOID_SLOPE} * "
                                     f"{src.scale!r})) = {want}, not {x0}")
        try:
            check_exp_sum(2, x0, n)
            check_scaled("x * sigma * mult", src.fmt.max_abs * ((1 << p) - 1), mult, shift)
        except OverflowRiskError as exc:
            raise layer_error(layer, str(exc)) from None

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        y = shift_gelu(in_fmts[0].check(xs[0]), int(a["x0"]), int(a["n"]), int(a["p"]))
        return requantize(y, int(a["mult"]), int(a["shift"]), layer.out.fmt)


GELU = Gelu()
