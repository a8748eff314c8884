"""``reshape`` and ``slice``: the layout steps of a transformer graph; codes, format and
scale unchanged (the output value must repeat the input's format and scale).

* ``reshape``: each sample to the output value's shape, C order, same element count. In a
  ViT: patch-embedding output ``(D, Hp, Wp)`` to tokens ``(D, Hp*Wp)``; ``(D, T)`` to heads
  ``(H, D/H, T)`` and back (timm orders a head's features contiguously).
* ``slice``: entries ``start .. stop-1`` of one per-sample axis; attrs ``axis``, ``start``,
  ``stop``. In a ViT: ``q``, ``k``, ``v`` as rows ``[0, D)``, ``[D, 2D)``, ``[2D, 3D)`` of the
  fused ``qkv`` output ``(3D, T)`` (axis 0), and the class token, column 0 of the final
  ``(D, T)`` (axis 1, giving ``(D, 1)``, which ``linear`` flattens).
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.ops.base import GemmFn, OpDef, int_attr, layer_error

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


def _same_codes(layer: Layer, src: Value) -> None:
    if (layer.out.fmt, layer.out.scale) != (src.fmt, src.scale):
        raise layer_error(layer, f"output format and scale must be the input's {src.fmt} at "
                                 f"{src.scale!r}, not {layer.out.fmt} at {layer.out.scale!r}")


class Reshape(OpDef):
    name = "reshape"
    keeps_codes = True

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return layer.out.shape  # the target shape; check_attrs proved it holds the elements

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        _same_codes(layer, ins[0])
        if math.prod(layer.out.shape) != math.prod(ins[0].shape):
            raise layer_error(layer, f"output shape must hold the input's "
                                     f"{math.prod(ins[0].shape)} elements, not "
                                     f"{layer.out.shape}")

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        return xs[0].reshape(xs[0].shape[0], *layer.out.shape)


class Slice(OpDef):
    name = "slice"
    keeps_codes = True
    attrs = MappingProxyType({"axis": "size", "start": "size", "stop": "count"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        a, src = layer.attrs, ins[0].shape
        return (*src[:a["axis"]], a["stop"] - a["start"], *src[a["axis"] + 1:])

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src = ins[0]
        _same_codes(layer, src)
        axis = int_attr(layer, "axis", 0, len(src.shape) - 1)
        start = int_attr(layer, "start", 0, src.shape[axis] - 1)
        stop = int_attr(layer, "stop", start + 1, src.shape[axis])
        want = (*src.shape[:axis], stop - start, *src.shape[axis + 1:])
        if layer.out.shape != want:
            raise layer_error(layer, f"output shape must be {want}, not {layer.out.shape}")

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        return np.take(xs[0], np.arange(a["start"], a["stop"]), axis=int(a["axis"]) + 1)


RESHAPE = Reshape()
SLICE = Slice()
