"""``matmul``: activation x activation, one GEMM per head, then a dyadic requantizer.

Two inputs ``a`` and ``b``, clamped 3-D values with the same leading (head) count ``G``;
per sample and head ``g``::

    acc[g] = op(a[g]) @ b[g]          # op(a) = a.T if transpose_a else a; (M, K) @ (K, N)
    out    = requantize(acc, mult, shift, out_fmt)            # round half to even

so ``a`` is ``(G, K, M)`` with ``transpose_a`` and ``(G, M, K)`` without, ``b`` is
``(G, K, N)`` and the output ``(G, M, N)``. In a ViT (channel-first tokens, ``q, k, v`` each
``(heads, head_dim, T)``): the attention scores ``(heads, keys, queries)`` are
``matmul(k, q, transpose_a=true)`` with the ``head_dim**-0.5`` folded into ``mult``; the
context ``(heads, head_dim, queries)`` is ``matmul(v, attn)``.

==============  ======  ====================================================================
attr            type    meaning
==============  ======  ====================================================================
``transpose_a`` bool    whether ``a`` is stored ``(K, M)`` per head
``gemm``        object  ``{M, K, N}`` per head (the heads are the output's first dimension)
``acc_bits``    int     signed accumulator width, 2..64
``mult``        int     requantizer multiplier, 0..2**31 - 1 (:func:`matmul_params`)
``shift``       int     requantizer shift, -62..62
==============  ======  ====================================================================

**Overflow proof**, as for the weight GEMMs (:func:`quant.ref.check_accumulator`): every
partial sum is at most ``K * max|a| * max|b|`` (the formats' bounds, the data is checked
against them), which must fit ``acc_bits`` signed bits, and ``that * mult << max(0,
-shift)`` must stay below ``2**63``; checked on load and before computing. Below ``2**24``
(``2**53``) a float32 (float64) product is exact and is used.

Both operands stream (neither is a stored weight): the simulator times it as a GEMM of kind
``matmul`` with every row fixed point, one group per head and sample; at the RTL level each
head is one command of the GEMM engine, whose accumulators the host requantizes
(:mod:`hw.ops`, :func:`matmul_out`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ConfigError, OverflowRiskError
from quant.ops.base import GemmFn, OpDef, bool_attr, int_attr, layer_error
from quant.ops.intmath import INT32_MAX, check_scaled, dyadic
from quant.ref import FLOAT32_EXACT, FLOAT64_EXACT, check_accumulator, requantize

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


def matmul_params(a_scale: float, b_scale: float, out_scale: float,
                  factor: float = 1.0) -> dict:
    """``mult`` and ``shift`` of a ``matmul`` whose real output is ``factor * a @ b``."""
    mult, shift = dyadic(a_scale * b_scale * factor / out_scale)
    return {"mult": mult, "shift": shift}


def matmul_dims(layer: Layer) -> tuple[int, int, int, int]:
    """``(G, M, K, N)`` of a ``matmul`` layer: heads and the GEMM of one head."""
    g = layer.attrs["gemm"]
    return layer.out.shape[0], int(g["M"]), int(g["K"]), int(g["N"])


def operand_shapes(g: int, m: int, k: int, n: int,
                   transpose_a: bool) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The per-sample shapes of ``a`` and ``b``."""
    return ((g, k, m) if transpose_a else (g, m, k)), (g, k, n)


def matmul_acc(a: np.ndarray, b: np.ndarray, a_fmt: object, b_fmt: object, transpose_a: bool,
               acc_bits: int) -> np.ndarray:
    """Exact ``op(a) @ b`` over the last two axes (int64), after proving the bound."""
    a, b = a_fmt.check(a), b_fmt.check(b)
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    bound = check_accumulator(b.shape[-2], a_fmt.max_abs, b_fmt.max_abs, acc_bits)
    if bound < FLOAT32_EXACT:
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.int64)
    if bound < FLOAT64_EXACT:
        return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.int64)
    return np.matmul(a, b)


def matmul_out(layer: Layer, acc: np.ndarray) -> np.ndarray:
    """The layer's output from its accumulators ``acc``: the dyadic requantizer (round half
    to even) to its output format."""
    a = layer.attrs
    return requantize(acc, int(a["mult"]), int(a["shift"]), layer.out.fmt)


class MatMul(OpDef):
    name = "matmul"
    arity = 2
    attrs = MappingProxyType({"transpose_a": "bool", "acc_bits": "bits", "gemm": "gemm",
                              "mult": "size", "shift": "int"})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        g = layer.attrs["gemm"]  # (heads, M, N); check_attrs matched the operands to it
        return (ins[0].shape[0], int(g["M"]), int(g["N"]))

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        a, b = ins
        t = bool_attr(layer, "transpose_a")
        try:
            g, m, k, n = matmul_dims(layer)
        except (KeyError, TypeError, ValueError, IndexError):
            raise layer_error(layer, f"attrs.gemm must be {{M, K, N}}, not "
                                     f"{layer.attrs.get('gemm')!r}") from None
        want_a, want_b = operand_shapes(g, m, k, n, t)
        if (a.shape, b.shape, layer.out.shape) != (want_a, want_b, (g, m, n)):
            raise layer_error(layer, f"inputs and output must have shapes {want_a}, {want_b} "
                                     f"and {(g, m, n)} for gemm M={m}, K={k}, N={n} and "
                                     f"transpose_a={t}, not {a.shape}, {b.shape} and "
                                     f"{layer.out.shape}")
        if a.fmt is None or b.fmt is None or layer.out.fmt is None:
            raise layer_error(layer, f"inputs and output must be clamped values, not "
                                     f"{a.fmt}, {b.fmt} -> {layer.out.fmt}")
        acc_bits = int_attr(layer, "acc_bits", 2, 64)
        mult = int_attr(layer, "mult", 0, INT32_MAX)
        shift = int_attr(layer, "shift", -62, 62)
        try:
            bound = check_accumulator(k, a.fmt.max_abs, b.fmt.max_abs, acc_bits)
            check_scaled("acc * mult", bound, mult, shift)
        except (OverflowRiskError, ConfigError) as exc:
            raise layer_error(layer, str(exc)) from None

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        acc = matmul_acc(xs[0], xs[1], in_fmts[0], in_fmts[1], bool(a["transpose_a"]),
                         int(a["acc_bits"]))
        return matmul_out(layer, acc)


MATMUL = MatMul()
