"""``add``: the residual sum of two values, each brought to a common scale first.

Each input is brought to a common finer scale by ``t_i = round_shift(q_i * in_mult[i],
in_shift[i])`` (unclamped), the two are summed and the sum is requantized by
``requantize(t_0 + t_1, 1, out_shift, out_fmt, relu=relu)``. Tensors ``in_mult`` and
``in_shift``, shape (2,), int64; attributes ``out_shift``, ``relu``.

This is I-ViT's residual add with per-branch **dyadic requantization**
(:func:`residual_params`): ``(in_mult[i], in_shift[i])`` is the dyadic ``(M, E)`` of
``S_i / S_common`` (:func:`quant.ops.intmath.dyadic`: ``(m, e) = frexp(ratio)``, ``M =
round(m * 2**31)``, ``E = 31 - e``) with ``S_common = S_out * 2**-out_shift``; I-ViT's own
form is ``out_shift = 0``, and a positive ``out_shift`` rounds once more, at the end. Every
rounding is ``round_shift``'s round half to even.

**Overflow proof** (before computing): ``max|q_i| * in_mult[i] << max(0, -in_shift[i])``
must stay below ``2**62`` for each branch (:data:`BRANCH_LIMIT`), so the sum fits int64.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ArtifactError
from quant.ops.base import GemmFn, OpDef
from quant.ops.intmath import check_scaled, dyadic
from quant.ref import requantize, round_shift

if TYPE_CHECKING:
    from quant.artifact import Layer, Value

#: Bound of one branch at the common scale: two of them sum below 2**63.
BRANCH_LIMIT = 1 << 62


def to_common(x: np.ndarray, fmt: object, mult: int, shift: int) -> np.ndarray:
    """``round_shift(x * mult, shift)`` after proving it stays below :data:`BRANCH_LIMIT`
    for every code of ``fmt`` (the data is checked against ``fmt``)."""
    check_scaled("a branch x * mult", fmt.max_abs, mult, shift, BRANCH_LIMIT)
    return round_shift(fmt.check(x) * int(mult), int(shift))


def residual_params(in_scales: tuple[float, float], out_scale: float,
                    out_shift: int = 0) -> tuple[dict, dict]:
    """``(attrs, tensors)`` of an ``add`` of two values at ``in_scales`` (I-ViT's dyadic
    residual; see the module docstring)."""
    common = out_scale * 2.0 ** -out_shift
    mults, shifts = zip(*(dyadic(s / common) for s in in_scales), strict=True)
    return ({"out_shift": int(out_shift), "relu": False},
            {"in_mult": np.array(mults, np.int64), "in_shift": np.array(shifts, np.int64)})


class Add(OpDef):
    name = "add"
    arity = 2
    attrs = MappingProxyType({"relu": "bool", "out_shift": "int"})
    tensors = MappingProxyType({"in_mult": ("int64", "2"), "in_shift": ("int64", "2")})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        if ins[0].shape != ins[1].shape:
            raise ArtifactError(f"layer {layer.name!r}: add inputs must have one shape, "
                                f"not {ins[0].shape} and {ins[1].shape}")
        return ins[0].shape

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        t = layer.tensors
        parts = [to_common(x, f, m, s)
                 for x, f, m, s in zip(xs, in_fmts, t["in_mult"], t["in_shift"], strict=True)]
        return requantize(parts[0] + parts[1], 1, int(layer.attrs["out_shift"]),
                          layer.out.fmt, relu=layer.relu)


ADD = Add()
