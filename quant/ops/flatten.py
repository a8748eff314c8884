"""``flatten``: each sample reshaped to one dimension (C, H, W order); codes and scale unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from quant.ops.base import GemmFn, OpDef

if TYPE_CHECKING:
    from quant.artifact import Layer


class Flatten(OpDef):
    name = "flatten"

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        return xs[0].reshape(xs[0].shape[0], -1)


FLATTEN = Flatten()
