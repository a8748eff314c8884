"""The integer form of an artifact evaluated with torch kernels: an independent twin of
:func:`quant.infer.run_artifact`, which uses the numpy reference.

Every op has one twin in :data:`TWIN` (keyed by the op names of :mod:`quant.ops`): GEMMs are
float64 conv/matmul, exact while the accumulator bound stays below 2**53 (checked), and every
requantization is int64 round-half-even (:func:`_t_round_shift`); the transformer ops'
integer steps are :mod:`quant.torch.intops`. The two paths agree bit for bit (tested on the
whole digits test split, and op by op in tests/quant/test_vit_ops.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from quant.artifact import Artifact, Layer
from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.ops import level_entry
from quant.ops.gemm import gemm_requant
from quant.ref import FLOAT64_EXACT, accumulator_bound, check_accumulator
from quant.torch import intops

LEVEL = "the torch twin (quant.torch.twin.TWIN)"


def _t_round_shift(p: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Round-half-even ``p / 2**s`` in int64 (negative ``s``: left shift)."""
    s = s.expand_as(p) if s.dim() else s.expand(p.shape)
    right = s.clamp_min(0)
    q = p >> right
    r = p - (q << right)
    half = torch.where(right > 0, torch.ones_like(right) << (right - 1).clamp_min(0),
                       torch.zeros_like(right))
    up = (right > 0) & ((r > half) | ((r == half) & ((q & 1) == 1)))
    return torch.where(s < 0, p << (-s).clamp_min(0), q + up.long())


def _t_requant(acc: torch.Tensor, mult, shift, fmt: ActFormat, bias=None,
               relu: bool = False) -> torch.Tensor:
    def per_row(v) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(v, dtype=np.int64))
        return t.reshape(1, -1, *([1] * (acc.dim() - 2))) if t.dim() else t

    a = acc + (per_row(bias) if bias is not None else 0)
    y = _t_round_shift(a * per_row(mult), per_row(shift))
    if relu:
        y = y.clamp_min(0)
    return y.clamp(fmt.qmin, fmt.qmax)


# (layer, integer inputs, their formats) -> integer output
TwinFn = Callable[[Layer, list[torch.Tensor], list], torch.Tensor]
# (layer, float64 input, float64 (M, K) weights) -> float64 accumulators
_AccFn = Callable[[Layer, torch.Tensor, torch.Tensor], torch.Tensor]


def _gemm(acc_fn: _AccFn) -> TwinFn:
    """The twin of a GEMM op whose float64 accumulators ``acc_fn`` computes."""
    def run(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
        w = torch.from_numpy(layer.rows.int_weights()).double()
        _, k, _ = layer.gemm_dims
        x_max = max(abs(in_fmts[0].qmin), in_fmts[0].qmax)
        if accumulator_bound(k, int(w.abs().max()), x_max) >= FLOAT64_EXACT:
            raise ConfigError(f"layer {layer.name!r} is too wide for float64 conv")
        t = layer.tensors
        fmt, relu = gemm_requant(layer)  # the logits saturate at the engine's output lane
        return _t_requant(acc_fn(layer, xs[0].double(), w).round().long(), t["mult"],
                          t["shift"], fmt, bias=t["bias"], relu=relu)
    return run


def _conv_acc(layer: Layer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    a = layer.attrs
    kh, kw = a["kernel"]
    return F.conv2d(x, w.reshape(w.shape[0], -1, kh, kw), None, a["stride"], a["padding"])


def _linear_acc(layer: Layer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1) @ w.T


def _add(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    t = layer.tensors
    parts = [_t_round_shift(v * int(mm), torch.tensor(int(ss)))
             for v, mm, ss in zip(xs, t["in_mult"], t["in_shift"], strict=True)]
    return _t_requant(parts[0] + parts[1], 1, layer.attrs["out_shift"], layer.out.fmt,
                      relu=layer.relu)


def _avgpool(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    sums = F.avg_pool2d(xs[0].double(), a["kernel"], a["stride"],
                        divisor_override=1).round().long()
    return _t_requant(sums, a["mult"], a["shift"], layer.out.fmt)


def _maxpool(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    return F.max_pool2d(xs[0].double(), a["kernel"], a["stride"], a["padding"]).long()


def _flatten(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    return xs[0].reshape(xs[0].shape[0], -1)


def _token_linear_acc(layer: Layer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.einsum("mk,bkt->bmt", w, x)


def _matmul(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    bound = check_accumulator(int(a["gemm"]["K"]), in_fmts[0].max_abs, in_fmts[1].max_abs,
                              int(a["acc_bits"]))
    acc = intops.matmul_acc(xs[0], xs[1], bool(a["transpose_a"]), bound)
    return _t_requant(acc, a["mult"], a["shift"], layer.out.fmt)


def _softmax(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    return intops.shiftmax(xs[0], int(a["x0"]), int(a["n"]), layer.out.fmt.bits)


def _layernorm(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    t = {k: torch.from_numpy(v)[:, None] for k, v in layer.tensors.items()}
    return _t_requant(intops.normalize(xs[0]) * t["gamma"] + t["beta"], 1,
                      layer.attrs["shift"], layer.out.fmt)


def _gelu(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    y = intops.shift_gelu(xs[0], int(a["x0"]), int(a["n"]), int(a["p"]))
    return _t_requant(y, a["mult"], a["shift"], layer.out.fmt)


def _pos_embed(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    t = _t_round_shift(xs[0] * int(a["mult"]), torch.tensor(int(a["shift"])))
    if a["cls"]:
        t = F.pad(t, (1, 0))
    return _t_requant(t + torch.from_numpy(layer.tensors["table"]), 1, a["out_shift"],
                      layer.out.fmt)


def _reshape(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    return xs[0].reshape(xs[0].shape[0], *layer.out.shape)


def _slice(layer: Layer, xs: list[torch.Tensor], in_fmts: list) -> torch.Tensor:
    a = layer.attrs
    return xs[0].narrow(int(a["axis"]) + 1, int(a["start"]), int(a["stop"]) - int(a["start"]))


#: The torch twin of every artifact op (keys: :data:`quant.ops.OPS`).
TWIN: dict[str, TwinFn] = {
    "conv": _gemm(_conv_acc),
    "linear": _gemm(_linear_acc),
    "add": _add,
    "avgpool": _avgpool,
    "maxpool": _maxpool,
    "flatten": _flatten,
    "token_linear": _gemm(_token_linear_acc),
    "matmul": _matmul,
    "softmax": _softmax,
    "layernorm": _layernorm,
    "gelu": _gelu,
    "pos_embed": _pos_embed,
    "reshape": _reshape,
    "slice": _slice,
}


@torch.no_grad()
def integer_logits_torch(art: Artifact, images: torch.Tensor | np.ndarray,
                         batch_size: int = 256) -> np.ndarray:
    """The artifact's integer logits computed with torch kernels (see the module docstring)."""
    twins = [level_entry(TWIN, layer.op, LEVEL) for layer in art.layers]
    x_all = torch.as_tensor(np.asarray(images, dtype=np.float64))
    outs = []
    for i in range(0, x_all.shape[0], batch_size):
        x = x_all[i:i + batch_size]
        fmt = art.input.fmt
        vals = {"input": torch.round(x / art.input.scale).clamp(fmt.qmin, fmt.qmax).long()}
        for layer, twin in zip(art.layers, twins, strict=True):
            vals[layer.name] = twin(layer, [vals[s] for s in layer.inputs],
                                    [art.value(s).fmt for s in layer.inputs])
        outs.append(vals[art.output].numpy())
    return np.concatenate(outs)
