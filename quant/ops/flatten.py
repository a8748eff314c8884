"""``flatten``: each sample reshaped to one dimension (C, H, W order); codes and scale unchanged."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from quant.ops.base import GemmFn, OpDef

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


class Flatten(OpDef):
    name = "flatten"
    keeps_codes = True

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return (math.prod(ins[0].shape),)

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        return xs[0].reshape(xs[0].shape[0], -1)


FLATTEN = Flatten()
