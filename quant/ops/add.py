"""``add``: the residual sum of two values.

Each input is brought to a common finer scale by ``round_shift(q_i * in_mult[i],
in_shift[i])`` (unclamped), the two are summed and the sum is requantized by
``requantize(sum, 1, out_shift, out_fmt, relu=relu)``. Tensors ``in_mult`` and ``in_shift``,
shape (2,), int64; attributes ``out_shift``, ``relu``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ArtifactError
from quant.ops.base import GemmFn, OpDef
from quant.ref import requantize, round_shift

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


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
        parts = [round_shift(x * int(m), int(s))
                 for x, m, s in zip(xs, t["in_mult"], t["in_shift"], strict=True)]
        return requantize(parts[0] + parts[1], 1, int(layer.attrs["out_shift"]),
                          layer.out.fmt, relu=layer.relu)


ADD = Add()
