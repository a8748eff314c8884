"""Integer-only inference from a quantized-model artifact with the reference kernels.

Every layer runs in integers with :mod:`quant.ref` (``conv2d``/``gemm`` for the GEMMs,
``requantize``/``round_shift`` for scaling); the only float step is quantizing the input
images (:func:`quantize_input`). The result is the int64 logits of the artifact's output
value; ``logits * artifact.value(artifact.output).scale`` are the real logits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quant.artifact import Artifact, Layer
from quant.errors import OverflowRiskError, ShapeError
from quant.ref import conv2d, gemm, im2col, requantize, round_shift

# An alternative GEMM for the conv/linear layers (e.g. the PIM macro kernel):
# ``fn(layer, w_int (M, K) int64, x (K, N) int64, x_fmt) -> (M, N) int64 accumulators``.
GemmFn = Callable[[Layer, np.ndarray, np.ndarray, object], np.ndarray]


def quantize_input(art: Artifact, images: object) -> np.ndarray:
    """Float images ``(B, *input.shape)`` → input codes: clamp(round_half_even(x / scale))."""
    x = np.asarray(images)
    want = art.input.shape
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise ShapeError(f"images must have shape (B, {', '.join(map(str, want))}), "
                         f"not {x.shape}")
    if x.dtype.kind in "iu":
        return art.input.fmt.check(x, "input codes")  # type: ignore[union-attr]
    q = np.round(x.astype(np.float64) / art.input.scale)  # numpy rounds half to even
    fmt = art.input.fmt
    return np.clip(q, fmt.qmin, fmt.qmax).astype(np.int64)  # type: ignore[union-attr]


def _unclamped(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray,
               bias: np.ndarray) -> np.ndarray:
    """``round_shift((acc + bias) * mult, shift)`` per row (axis 1), no clamp: the logits."""
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    a = acc + bias.reshape(shape)
    worst = (int(np.abs(a).max()) if a.size else 0) * int(mult.max()) << max(0, -int(shift.min()))
    if worst >= 1 << 63:
        raise OverflowRiskError(f"(acc + bias) * mult reaches {worst}, which does not fit int64")
    return round_shift(a * mult.reshape(shape), shift.reshape(shape))


def _pool_windows(x: np.ndarray, kernel: list[int], stride: int, padding: int,
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


def run_layer(layer: Layer, xs: list[np.ndarray], in_fmts: list,
              gemm_fn: GemmFn | None = None) -> np.ndarray:
    """One layer on integer inputs (batch first); returns its integer output.

    ``gemm_fn`` replaces the conv/linear GEMM (see :data:`GemmFn`); None uses the reference.
    """
    a = layer.attrs
    t = layer.tensors
    if layer.op in ("conv", "linear"):
        rows = layer.rows
        acc_bits = int(a.get("acc_bits", 32))
        if gemm_fn is not None:
            x = in_fmts[0].check(xs[0])
            if layer.op == "conv":
                kh, kw = a["kernel"]
                stride, pad = int(a["stride"]), int(a["padding"])
                cols = im2col(x, (kh, kw), stride, pad)
                b, _, h, w = x.shape
                ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
                y = gemm_fn(layer, rows.int_weights(), cols, in_fmts[0])
                acc = y.reshape(rows.shape[0], b, ho, wo).transpose(1, 0, 2, 3)
            else:
                acc = gemm_fn(layer, rows.int_weights(), x.reshape(x.shape[0], -1).T,
                              in_fmts[0]).T
        elif layer.op == "conv":
            acc = conv2d(rows, xs[0], in_fmts[0], tuple(a["kernel"]), int(a["stride"]),
                         int(a["padding"]), acc_bits)
        else:
            x2 = xs[0].reshape(xs[0].shape[0], -1)
            acc = gemm(rows, x2.T, in_fmts[0], acc_bits).T
        if layer.out.fmt is None:
            return _unclamped(acc, t["mult"], t["shift"], t["bias"])
        return requantize(acc, t["mult"], t["shift"], layer.out.fmt, bias=t["bias"],
                          relu=layer.relu, axis=1)
    if layer.op == "add":
        parts = [round_shift(x * int(m), int(s))
                 for x, m, s in zip(xs, t["in_mult"], t["in_shift"], strict=True)]
        return requantize(parts[0] + parts[1], 1, int(a["out_shift"]), layer.out.fmt,
                          relu=layer.relu)
    if layer.op == "avgpool":
        sums = _pool_windows(xs[0], a["kernel"], int(a["stride"]), 0, 0).sum(axis=-1)
        return requantize(sums, int(a["mult"]), int(a["shift"]), layer.out.fmt)
    if layer.op == "maxpool":
        fill = in_fmts[0].qmin
        return _pool_windows(xs[0], a["kernel"], int(a["stride"]), int(a.get("padding", 0)),
                             fill).max(axis=-1)
    if layer.op == "flatten":
        return xs[0].reshape(xs[0].shape[0], -1)
    raise ShapeError(f"op must be a known artifact op, not {layer.op!r}")  # pragma: no cover


def run_artifact(art: Artifact, images: object, batch_size: int = 256,
                 return_values: bool = False, gemm_fn: GemmFn | None = None
                 ) -> np.ndarray | dict[str, np.ndarray]:
    """Integer logits ``(B, classes)`` int64 of the artifact on ``images``.

    ``images`` are float (quantized with :func:`quantize_input`) or already integer input
    codes. With ``return_values`` the integer value of every layer is returned by name
    (for one batch; use a small input). ``gemm_fn`` replaces every conv/linear GEMM
    (:data:`GemmFn`; e.g. the PIM kernel in ``fpim pim eval``); None uses the reference.
    """
    q = quantize_input(art, images)
    if return_values:
        return _run(art, q, keep=True, gemm_fn=gemm_fn)
    outs = [_run(art, q[i:i + batch_size], keep=False, gemm_fn=gemm_fn)[art.output]
            for i in range(0, q.shape[0], batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0,), np.int64)


def _run(art: Artifact, q: np.ndarray, keep: bool,
         gemm_fn: GemmFn | None = None) -> dict[str, np.ndarray]:
    vals: dict[str, np.ndarray] = {"input": q}
    fmts = {"input": art.input.fmt}
    # free a value after its last use unless all are kept
    last_use = {}
    for i, layer in enumerate(art.layers):
        for src in layer.inputs:
            last_use[src] = i
    for i, layer in enumerate(art.layers):
        vals[layer.name] = run_layer(layer, [vals[s] for s in layer.inputs],
                                     [fmts[s] for s in layer.inputs], gemm_fn)
        fmts[layer.name] = layer.out.fmt
        if not keep:
            for src in layer.inputs:
                if last_use[src] == i and src != art.output:
                    del vals[src]
    return vals


def predict(art: Artifact, images: object) -> np.ndarray:
    """Predicted class per image (argmax of the integer logits; ties → lowest index)."""
    return np.argmax(run_artifact(art, images), axis=1)
