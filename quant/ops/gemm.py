"""``conv`` and ``linear``: a mixed-scheme GEMM followed by per-row requantization.

The weights are in GEMM form ``M x K`` with ``M = C_out`` and ``K = C_in*kh*kw`` (conv,
lowered by ``quant.ref.im2col``) or the in-features (linear). The accumulators are
requantized by ``quant.ref.requantize(acc, mult, shift, out_fmt, bias=bias, relu=relu)`` per
row; when ``out.fmt`` is None (the logits) the result is ``round_shift((acc + bias) * mult,
shift)`` without ReLU, saturated at the GEMM engine's output lane (±32,767:
:meth:`quant.requant.Requantizer.output_format`; :func:`gemm_requant` is the rule every level
uses). Attributes: ``kernel`` [kh, kw], ``stride``, ``padding`` (conv
only), ``relu``, ``weight_bits``, ``acc_bits``, ``gemm`` {M, K, N} with N = output pixels
per sample (1 for linear). Tensors, named ``<layer>.<field>``:

=============  ======  =======  ====================================================
field          shape   dtype    meaning
=============  ======  =======  ====================================================
``words``      (M, K)  int32    code words (``quant.formats``), one scheme per row
``scheme_ids`` (M,)    int8     :class:`~quant.formats.Scheme` value per row
``alphas``     (M,)    float64  per-row scale: real weight = alpha * int_level / den
``mult``       (M,)    int64    requantization multiplier (F8Net: 1, a pure shift)
``shift``      (M,)    int64    requantization right shift (negative = left shift)
``bias``       (M,)    int64    bias in accumulator units (added before ``mult``)
=============  ======  =======  ====================================================

quant.ref computes any non-negative ``mult`` and shifts -62..62, and the artifact allows them;
the GEMM engine runs the narrower range of :data:`quant.requant.REQUANTIZER` (no left shifts).

Every level that runs the GEMM on other kernels (``gemm_fn`` here, ``sim.functional``, the
RTL cases) lowers a batch with :meth:`Gemm.to_columns` and restores the layout with
:func:`from_columns` / :func:`output_columns`.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import ArtifactError, FpimError
from quant.formats import ActFormat
from quant.ops.base import GemmFn, OpDef, window_shape
from quant.ref import conv2d, conv_output_size, gemm, im2col, requantize
from quant.requant import REQUANTIZER

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


def gemm_requant(layer: Layer) -> tuple[ActFormat, bool]:
    """The format a GEMM layer's requantizer clamps to and whether it applies ReLU: the
    layer's output format and ReLU, or for the logits (``out.format`` null) the engine's
    output lane (:meth:`quant.requant.Requantizer.output_format`), without ReLU. The
    reference, the torch twin, the simulator and the RTL host all take it from here."""
    fmt = layer.out.fmt
    return REQUANTIZER.output_format(fmt), bool(layer.relu) and fmt is not None


def from_columns(y: np.ndarray, batch: int, spatial: tuple[int, ...]) -> np.ndarray:
    """(M, B*N) GEMM outputs → (B, M, *spatial), the layout of the layer's value."""
    return np.moveaxis(y.reshape(y.shape[0], batch, *spatial), 0, 1)


def output_columns(out: np.ndarray) -> np.ndarray:
    """(B, M, *spatial) layer value → (M, B*N) GEMM outputs (the inverse of
    :func:`from_columns`)."""
    b, m = out.shape[:2]
    return out.reshape(b, m, -1).transpose(1, 0, 2).reshape(m, -1)


class Gemm(OpDef):
    """What conv and linear share: weights, tensors, checks and the requantization."""

    gemm = True
    tensors = MappingProxyType({
        "words": ("int32", "MK"), "scheme_ids": ("int8", "M"), "alphas": ("float64", "M"),
        "mult": ("int64", "M"), "shift": ("int64", "M"), "bias": ("int64", "M")})

    @abstractmethod
    def reduction(self, layer: Layer, src: Value) -> int:
        """K that the input value ``src`` gives this layer."""

    @abstractmethod
    def spatial(self, layer: Layer, src: Value) -> tuple[int, ...]:
        """The output's per-sample spatial shape for the input value ``src`` (``(Ho, Wo)``
        for conv, ``()`` for linear); N is its product."""

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        return (layer.gemm_dims[0], *self.spatial(layer, ins[0]))

    @abstractmethod
    def to_columns(self, layer: Layer, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        """The (K, B*N) GEMM operand of a batch ``x`` and the output's per-sample spatial
        shape (``(Ho, Wo)`` for conv, ``()`` for linear)."""

    @abstractmethod
    def reference(self, layer: Layer, x: np.ndarray, x_fmt: object,
                  acc_bits: int) -> np.ndarray:
        """(B, M, *spatial) accumulators with the ``quant.ref`` kernels."""

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        _m, k, n = layer.gemm_dims
        want = (self.reduction(layer, ins[0]), math.prod(self.spatial(layer, ins[0])))
        if (k, n) != want:
            raise ArtifactError(f"layer {layer.name!r}: gemm K, N must be {want[0]}, {want[1]} "
                                f"for input shape {ins[0].shape}, not {k}, {n}")

    def check_tensors(self, layer: Layer) -> None:
        try:
            layer.rows.int_weights()  # validates scheme ids, bits and every code word
        except FpimError as exc:
            raise ArtifactError(f"layer {layer.name!r}: invalid weights: {exc}") from None

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        t = layer.tensors
        rows = layer.rows
        acc_bits = int(layer.attrs.get("acc_bits", 32))
        if gemm_fn is not None:
            x = in_fmts[0].check(xs[0])
            cols, spatial = self.to_columns(layer, x)
            acc = from_columns(gemm_fn(layer, rows.int_weights(), cols, in_fmts[0]),
                               x.shape[0], spatial)
        else:
            acc = self.reference(layer, xs[0], in_fmts[0], acc_bits)
        fmt, relu = gemm_requant(layer)
        return requantize(acc, t["mult"], t["shift"], fmt, bias=t["bias"], relu=relu, axis=1)


class Conv(Gemm):
    name = "conv"
    attrs = MappingProxyType({"kernel": "pair", "stride": "count", "padding": "size",
                              "relu": "bool", "weight_bits": "bits", "acc_bits": "bits",
                              "gemm": "gemm"})

    def reduction(self, layer: Layer, src: Value) -> int:
        kh, kw = layer.attrs["kernel"]
        return src.shape[0] * kh * kw

    def spatial(self, layer: Layer, src: Value) -> tuple[int, ...]:
        return window_shape(layer, src, layer.attrs["padding"])

    def to_columns(self, layer: Layer, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        a = layer.attrs
        kh, kw = a["kernel"]
        stride, pad = int(a["stride"]), int(a["padding"])
        cols = im2col(x, (kh, kw), stride, pad)
        spatial = (conv_output_size(x.shape[2], kh, stride, pad),
                   conv_output_size(x.shape[3], kw, stride, pad))
        return cols, spatial

    def reference(self, layer: Layer, x: np.ndarray, x_fmt: object,
                  acc_bits: int) -> np.ndarray:
        a = layer.attrs
        return conv2d(layer.rows, x, x_fmt, tuple(a["kernel"]), int(a["stride"]),
                      int(a["padding"]), acc_bits)


class Linear(Gemm):
    name = "linear"
    attrs = MappingProxyType({"relu": "bool", "weight_bits": "bits", "acc_bits": "bits",
                              "gemm": "gemm"})

    def reduction(self, layer: Layer, src: Value) -> int:
        return math.prod(src.shape)

    def spatial(self, layer: Layer, src: Value) -> tuple[int, ...]:
        return ()

    def to_columns(self, layer: Layer, x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
        return x.reshape(x.shape[0], -1).T, ()

    def reference(self, layer: Layer, x: np.ndarray, x_fmt: object,
                  acc_bits: int) -> np.ndarray:
        return gemm(layer.rows, x.reshape(x.shape[0], -1).T, x_fmt, acc_bits).T


CONV = Conv()
LINEAR = Linear()
