"""``token_linear``: one linear layer applied to every token, on the GEMM engine.

fpim stores a transformer's tokens **channel-first**: a value ``(C, T)`` per sample holds T
tokens of C features, one token per column. A per-token linear is then exactly the engine's
GEMM ``Y[M x T] = W[M x K] X[K x T]`` with ``K = C`` and the tokens as the GEMM's N, the
layout of a conv's output pixels: the op is a :class:`~quant.ops.gemm.Gemm` (same tensors,
per-row schemes, requantization, accumulator proof and ``gemm_fn`` hook as ``linear``), only
the lowering differs. Input ``(K, T)``, output ``(M, T)``; attributes as ``linear`` with
``gemm`` ``{M, K, N = T}``. timm's ``(out, in)`` weight matrices are the rows as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from quant.ops.base import layer_error
from quant.ops.gemm import LINEAR, Gemm, from_columns
from quant.ref import gemm

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


class TokenLinear(Gemm):
    name = "token_linear"
    attrs = LINEAR.attrs

    def spatial(self, layer: Layer, src: Value) -> tuple[int, ...]:
        return (src.shape[1],)

    def reduction(self, layer: Layer, src: Value) -> int:
        return src.shape[0]

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src = ins[0]
        if len(src.shape) != 2:
            raise layer_error(layer, f"input must be (features, tokens), not shape {src.shape}")
        super().check_attrs(layer, ins)  # K and N = tokens; the graph checks output_shape

    def to_columns(self, layer: Layer, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        b, k, t = x.shape
        return x.transpose(1, 0, 2).reshape(k, b * t), (t,)

    def reference(self, layer: Layer, x: np.ndarray, x_fmt: object,
                  acc_bits: int) -> np.ndarray:
        cols, spatial = self.to_columns(layer, x)
        return from_columns(gemm(layer.rows, cols, x_fmt, acc_bits), x.shape[0], spatial)


TOKEN_LINEAR = TokenLinear()
