"""``avgpool`` and ``maxpool``: window reductions of a (C, H, W) value.

* ``avgpool``: window sums (``kernel`` [kh, kw], ``stride``, no padding) then
  ``requantize(sum, mult, shift, out_fmt)``; ``mult`` and ``shift`` are attributes.
* ``maxpool``: window maxima (``kernel``, ``stride``, ``padding`` below the kernel size;
  padding reads the input format's minimum); the format and scale are unchanged.

The output is (C, Ho, Wo) with ``Ho = (H + 2*padding - kh) // stride + 1`` (likewise Wo).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ArtifactError
from quant.ops.base import GemmFn, OpDef, window_shape
from quant.ref import requantize

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


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
    attrs = MappingProxyType({"kernel": "pair", "stride": "count", "mult": "int",
                              "shift": "int"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return (ins[0].shape[0], *window_shape(layer, ins[0]))

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        sums = pool_windows(xs[0], a["kernel"], int(a["stride"]), 0, 0).sum(axis=-1)
        return requantize(sums, int(a["mult"]), int(a["shift"]), layer.out.fmt)


class MaxPool(OpDef):
    name = "maxpool"
    keeps_codes = True
    attrs = MappingProxyType({"kernel": "pair", "stride": "count", "padding": "size"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        pad = layer.attrs["padding"]
        if pad >= min(layer.attrs["kernel"]):
            raise ArtifactError(f"layer {layer.name!r}: padding must be below the kernel size "
                                f"{layer.attrs['kernel']}, not {pad}")
        return (ins[0].shape[0], *window_shape(layer, ins[0], pad))

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        fill = in_fmts[0].qmin
        return pool_windows(xs[0], a["kernel"], int(a["stride"]), int(a["padding"]),
                            fill).max(axis=-1)


AVGPOOL = AvgPool()
MAXPOOL = MaxPool()
