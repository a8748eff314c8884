"""Integer-only inference from a quantized-model artifact with the reference kernels.

Every layer runs in integers with its op's reference (:mod:`quant.ops`, on the
:mod:`quant.ref` kernels: ``conv2d``/``gemm`` for the GEMMs, ``requantize``/``round_shift``
for scaling); the only float step is quantizing the input images (:func:`quantize_input`).
The result is the int64 logits of the artifact's output
value; ``logits * artifact.value(artifact.output).scale`` are the real logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from quant.artifact import Artifact, Layer, Value
from quant.errors import ShapeError
from quant.ops import GemmFn, gemm_of, op_of
from quant.ref import quantize_multiplier, round_shift
from quant.requant import REQUANTIZER

#: Most random images of a whole-network check (``fpim simulate --images``) and of a ViT's
#: calibration from its shape (:func:`quant.torch.vit_artifact.ptq_vit_artifact`).
MAX_IMAGES = 4096


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


def run_layer(layer: Layer, xs: list[np.ndarray], in_fmts: list,
              gemm_fn: GemmFn | None = None) -> np.ndarray:
    """One layer on integer inputs (batch first); returns its integer output (the op's
    reference, :meth:`quant.ops.OpDef.run`).

    ``gemm_fn`` replaces the conv/linear GEMM (see :data:`GemmFn`); None uses the reference.
    """
    return op_of(layer).run(layer, xs, in_fmts, gemm_fn)


def run_artifact(art: Artifact, images: object, batch_size: int = 256,
                 return_values: bool = False, gemm_fn: GemmFn | None = None,
                 on_batch: Callable[[int, int], None] | None = None
                 ) -> np.ndarray | dict[str, np.ndarray]:
    """Integer logits ``(B, classes)`` int64 of the artifact on ``images``.

    ``images`` are float (quantized with :func:`quantize_input`) or already integer input
    codes. With ``return_values`` the integer value of every layer is returned by name
    (for one batch; use a small input). ``gemm_fn`` replaces every conv/linear GEMM
    (:data:`GemmFn`; e.g. the PIM kernel in ``fpim pim eval``); None uses the reference.
    ``on_batch(done, total)`` is called after each batch with the images done so far.
    """
    q = quantize_input(art, images)
    if return_values:
        return _run(art, q, keep=True, gemm_fn=gemm_fn)
    outs = []
    for i in range(0, q.shape[0], batch_size):
        outs.append(_run(art, q[i:i + batch_size], keep=False, gemm_fn=gemm_fn)[art.output])
        if on_batch is not None:
            on_batch(min(i + batch_size, q.shape[0]), q.shape[0])
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


def logit_peak(art: Artifact, images: object, batch_size: int = 256) -> int:
    """The largest ``|logit|`` of ``art`` on ``images`` before the logits saturate at the
    engine's output lane (:func:`quant.ops.gemm.gemm_requant`): the head's rounding alone,
    ``round_shift((acc + bias) * mult, shift)``. 0 for an artifact whose output has a format
    (it never saturates)."""
    head = art.layer(art.output)
    if head.out.fmt is not None:
        return 0
    src = head.inputs[0]
    if src == "input":
        x = quantize_input(art, images)
    else:
        upto = replace(art, layers=art.layers[:art.layers.index(head)], output=src)
        x = run_artifact(upto, images, batch_size=batch_size)
    if x.size == 0:
        return 0
    acc = gemm_of(head).reference(head, x, art.value(src).fmt, int(head.attrs["acc_bits"]))
    t = head.tensors
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    raw = round_shift((acc + t["bias"].reshape(shape)) * t["mult"].reshape(shape),
                      t["shift"].reshape(shape))
    return int(np.abs(raw).max())


def fit_logits(art: Artifact, images: object) -> Artifact:
    """``art`` with its logits ``2**k`` times coarser, ``k >= 0`` the smallest that keeps the
    largest ``|logit|`` on ``images`` (:func:`logit_peak`) within half of the engine's output
    lane (``REQUANTIZER.output_format(None)``, where the logits saturate), so that other
    images of the kind stay inside it too; ``art`` itself when ``k = 0``.

    Each row of the head shifts ``k`` further right (its multiplier requantized within the
    engine's range if the shift would pass ``REQUANTIZER.max_shift``), the output value's
    scale grows by ``2**k`` and ``meta["logit_shift"] = k`` records it. The exporter calls it
    with training images (:func:`quant.torch.export.export`)."""
    peak = logit_peak(art, images)
    half = REQUANTIZER.output_format(None).qmax // 2
    k = 0
    while peak > half << k:
        k += 1
    if k == 0:
        return art
    head = art.layer(art.output)
    t = head.tensors
    mults, shifts = [], []
    for m, s in zip(t["mult"].tolist(), t["shift"].tolist(), strict=True):
        if s + k <= REQUANTIZER.max_shift:
            mults.append(m)
            shifts.append(s + k)
        else:
            fm, fs = quantize_multiplier(m / 2.0 ** (s + k), REQUANTIZER.mult_bits,
                                         min_shift=0, max_shift=REQUANTIZER.max_shift)
            mults.append(fm)
            shifts.append(fs)
    tensors = {**t, "mult": np.array(mults, dtype=t["mult"].dtype),
               "shift": np.array(shifts, dtype=t["shift"].dtype)}
    out = Value(None, head.out.scale * 2 ** k, head.out.shape)
    new = replace(head, out=out, tensors=tensors)
    return replace(art, layers=tuple(new if la is head else la for la in art.layers),
                   meta={**art.meta, "logit_shift": k})
