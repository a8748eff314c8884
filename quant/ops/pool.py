"""``avgpool`` and ``maxpool``: window reductions of a (C, H, W) value.

* ``avgpool``: window sums (``kernel`` [kh, kw], ``stride``, no padding) then
  ``requantize(sum, mult, shift, out_fmt)``; ``mult`` and ``shift`` are attributes.
* ``maxpool``: window maxima (``kernel``, ``stride``, ``padding``; padding reads the input
  format's minimum); the scale is unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from quant.ops.base import GemmFn, OpDef
from quant.ref import requantize

if TYPE_CHECKING:
    from quant.artifact import Layer


def pool_windows(x: np.ndarray, kernel: list[int], stride: int, padding: int,
                 fill: int) -> np.ndarray:
    """(B, C, Ho, Wo, kh*kw) windows of (B, C, H, W), padding with ``fill``."""
    kh, kw = kernel
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=fill)
    ho = (xp.shape[2] - kh) // stride + 1
    wo = (xp.shape[3] - kw) // stride + 1
    parts = [xp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
             for i in range(kh) for j in range(kw)]
    return np.stack(parts, axis=-1)


class AvgPool(OpDef):
    name = "avgpool"

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        sums = pool_windows(xs[0], a["kernel"], int(a["stride"]), 0, 0).sum(axis=-1)
        return requantize(sums, int(a["mult"]), int(a["shift"]), layer.out.fmt)


class MaxPool(OpDef):
    name = "maxpool"

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        fill = in_fmts[0].qmin
        return pool_windows(xs[0], a["kernel"], int(a["stride"]), int(a.get("padding", 0)),
                            fill).max(axis=-1)


AVGPOOL = AvgPool()
MAXPOOL = MaxPool()
