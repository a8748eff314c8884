"""Quantization-aware training and PTQ of vision transformers (torch).

:func:`quantize_vit` turns a float :class:`~quant.torch.vit.VisionTransformer` into a
:class:`QuantViT`: the graph of docs/vit.md ("The graph of a ViT") as fake-quant modules, one
module per artifact layer, on fpim's channel-first tokens (a value of T tokens with D features
is ``(B, D, T)``), so that :func:`quant.torch.export.export` turns it into the integer
artifact through its :data:`~quant.torch.export.EXPORTERS` entries.

* **Weights** of every weight-bearing linear (``patch_embed.proj``, ``qkv``, ``proj``,
  ``fc1``, ``fc2``, ``head``) are fake-quantized per row like the CNNs' (``WeightQuantizer``):
  one scheme, or MSQ (``QATConfig.scheme="msq"``, ``lut_scheme`` ``pot`` or ``sp2``) with
  **the same split within every head** (:func:`quant.torch.vit.row_groups`: each head of q,
  k and v is a row group with the same LUT fraction). The patch embedding and the head are
  ``first_last_bits`` fixed point unless that is None.
* **Values** are symmetric fixed point with a learnable (PACT-style) clip: ``act_bits`` at
  every GEMM input (the LayerNorm outputs, the GELU output, q/k/v and the attention context),
  16 bits for the residual stream and the GEMM outputs that feed it or the GELU (I-ViT keeps
  residuals at 16 bits); the softmax output is unsigned ``act_bits`` at ``2**-act_bits``.
* **Non-linear ops**: with ``QATConfig.int_ops`` (default) the forward computes softmax,
  LayerNorm and GELU with the artifact's integer kernels (:mod:`quant.torch.intops`) on the
  integer codes of the current scales, and the gradient of the float op passes through
  (straight-through estimator), so training sees what the hardware computes. Without it the
  float ops run (the ablation of ``bench/vit_table.py``).
* The attention matmuls QKᵀ and A·V multiply two fixed-point activations (never a LUT scheme).

Calibration (:func:`calibrate_vit_`) sets every clip from values observed with float
non-linear ops on training images (min-MSE grid, as the CNNs); **PTQ** is calibration alone.
The integer predictions are the exported artifact's: they differ from this fake-quant
forward only in the requantizers' roundings and LayerNorm's 16-bit gamma.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quant.errors import ConfigError
from quant.ops.gelu import gelu_params
from quant.ops.layernorm import normalized_scale
from quant.ops.softmax import out_scale, softmax_params
from quant.torch import intops
from quant.torch.qat import (
    ActQuant,
    QATConfig,
    QConv2d,
    QLinear,
    calibrate_clips,
    make_q,
)
from quant.torch.vit import VisionTransformer, row_groups

#: Bits of the residual stream and of the GEMM outputs that feed it or the GELU.
WIDE_BITS = 16
#: Residual adds carry their branches at ``S_out / 2**RESIDUAL_SHIFT`` (quant.ops.add).
RESIDUAL_SHIFT = 4


def _ste(exact: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``exact``'s value (as ``surrogate``'s dtype, by the sum below) without a graph."""
    return surrogate + (exact.to(surrogate.dtype) - surrogate)


class _IntOp(torch.autograd.Function):
    """An integer non-linear op as one autograd node: the forward's value is the integer
    kernel's (through :func:`_ste`), the gradient the float surrogate's, computed in the
    backward from what ``op.surrogate`` saved: no autograd graph of the surrogate is built
    and nothing runs twice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, op: nn.Module) -> torch.Tensor:  # type: ignore[override]
        surrogate, saved = op.surrogate(x)
        ctx.op = op
        ctx.save_for_backward(*saved)
        return _ste(op.exact(x), surrogate)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        return ctx.op.surrogate_grad(grad, *ctx.saved_tensors), None


def _codes(x: torch.Tensor, scale: float) -> torch.Tensor:
    """The integer codes of a fake-quantized ``x`` (a multiple of ``scale``)."""
    return torch.round(x.detach().double() / scale).long()


class _Leaf(nn.Module):
    """A module the export's tracer keeps whole: it becomes one artifact layer."""

    fx_leaf = True


class Reshape(_Leaf):
    """``reshape``: each sample to ``shape`` (codes unchanged)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class Slice(_Leaf):
    """``slice``: entries ``start .. stop-1`` of per-sample axis ``axis``."""

    def __init__(self, axis: int, start: int, stop: int) -> None:
        super().__init__()
        self.axis, self.start, self.stop = axis, start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.narrow(self.axis + 1, self.start, self.stop - self.start)


class QTokenLinear(QLinear):
    """``token_linear``: a fake-quantized linear on every token of ``(B, K, T)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # one GEMM over all tokens
        return F.linear(x.transpose(1, 2), self.wq(self.weight), self.bias).transpose(1, 2)


class _Quantized(_Leaf):
    """A layer whose output has its own signed quantizer ``out``."""

    def __init__(self, bits: int, learnable: bool) -> None:
        super().__init__()
        self.out = ActQuant(bits, learnable=learnable, signed=True)
        self.int_ops = True

    def in_scale(self, x_quant: ActQuant) -> float:
        return x_quant.scale()


class QPosEmbed(_Quantized):
    """``pos_embed``: prepend the class token, add the position embedding, quantize."""

    def __init__(self, cls_token: torch.Tensor, pos_embed: torch.Tensor, learnable: bool) -> None:
        super().__init__(WIDE_BITS, learnable)
        self.cls_token = nn.Parameter(cls_token.detach().reshape(-1, 1).clone())  # (D, 1)
        self.pos_embed = nn.Parameter(pos_embed.detach()[0].T.clone())  # (D, T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return self.out(torch.cat([cls, x], dim=2) + self.pos_embed)


class QResidual(_Quantized):
    """``add``: the residual sum of two values, quantized (dyadic per branch in integers)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.out(x + y)


class QMatMul(_Quantized):
    """``matmul`` of two activations per head: ``factor * op(a) @ b``, quantized."""

    def __init__(self, transpose_a: bool, factor: float, bits: int, learnable: bool) -> None:
        super().__init__(bits, learnable)
        self.transpose_a, self.factor = transpose_a, factor

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lhs = a.transpose(-1, -2) if self.transpose_a else a
        return self.out(torch.matmul(lhs, b) * self.factor)


class QSoftmax(_Leaf):
    """``softmax`` over the keys (axis -2) of scores quantized by ``src``: Shiftmax codes at
    ``2**-bits`` in the forward."""

    def __init__(self, src: ActQuant, bits: int) -> None:
        super().__init__()
        self.src = [src]  # a reference, not a submodule
        self.bits = bits
        self.int_ops = True

    def surrogate(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        soft = torch.softmax(x, dim=-2)
        return soft, (soft,)

    def surrogate_grad(self, grad: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
        return torch._softmax_backward_data(grad, soft, -2, soft.dtype)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        s = self.src[0].scale()
        p = softmax_params(s, x.shape[-2], self.bits)
        return intops.shiftmax(_codes(x, s), p["x0"], p["n"], self.bits) * out_scale(self.bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _IntOp.apply(x, self) if self.int_ops else torch.softmax(x, dim=-2)


class QGelu(_Quantized):
    """``gelu`` of values quantized by ``src``: ShiftGELU in the forward, then quantized."""

    def __init__(self, src: ActQuant, bits: int, learnable: bool) -> None:
        super().__init__(bits, learnable)
        self.src = [src]
        self._table: tuple[tuple, torch.Tensor] | None = None

    def table(self, x0: int, n: int, p: int) -> torch.Tensor:
        """ShiftGELU of every input code ``qmin .. qmax`` (element-wise, so a lookup table;
        kept while the input scale, hence ``x0``, stays)."""
        fmt = self.src[0].fmt
        key = (fmt.qmin, fmt.qmax, x0, n, p)
        if self._table is None or self._table[0] != key:
            codes = torch.arange(fmt.qmin, fmt.qmax + 1, dtype=torch.int64)
            self._table = key, intops.shift_gelu(codes, x0, n, p)
        return self._table[1]

    def surrogate(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        return F.gelu(x), (x,)

    def surrogate_grad(self, grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten.gelu_backward(grad, x)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        s = self.src[0].scale()
        p = gelu_params(s, self.out.scale())
        fmt = self.src[0].fmt
        codes = _codes(x, s).clamp(fmt.qmin, fmt.qmax) - fmt.qmin
        return self.table(p["x0"], p["n"], p["p"])[codes].double() * (s * 2.0 ** -p["p"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(_IntOp.apply(x, self) if self.int_ops else F.gelu(x))


class QLayerNorm(_Quantized):
    """``layernorm`` over the features (axis -2) of values quantized by ``src``: I-LayerNorm's
    integer normalization in the forward, float affine, then quantized."""

    def __init__(self, ln: nn.LayerNorm, src: ActQuant, bits: int, learnable: bool) -> None:
        super().__init__(bits, learnable)
        self.src = [src]
        self.weight = nn.Parameter(ln.weight.detach().clone())
        self.bias = nn.Parameter(ln.bias.detach().clone())
        self.eps = ln.eps

    def surrogate(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        std = torch.sqrt(x.var(dim=-2, unbiased=False, keepdim=True) + self.eps)
        z = (x - x.mean(dim=-2, keepdim=True)) / std
        return z, (z, std)

    def surrogate_grad(self, grad: torch.Tensor, z: torch.Tensor, std: torch.Tensor
                       ) -> torch.Tensor:
        """The gradient of ``z = (x - mean) / std`` over the features: ``(g - mean(g) -
        z * mean(g * z)) / std``."""
        g = grad - grad.mean(dim=-2, keepdim=True)
        return (g - z * (grad * z).mean(dim=-2, keepdim=True)) / std

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        z = intops.normalize(_codes(x, self.src[0].scale())).double()
        return z * normalized_scale(x.shape[-2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = _IntOp.apply(x, self) if self.int_ops else self.surrogate(x)[0]
        return self.out(z * self.weight[:, None] + self.bias[:, None])


class QBlock(nn.Module):
    """A pre-norm transformer block as artifact layers (docs/vit.md's table)."""

    def __init__(self, blk: nn.Module, stream: ActQuant, cfg: QATConfig, tokens: int,
                 make: object) -> None:
        super().__init__()
        d, heads = blk.attn.qkv.in_features, blk.attn.num_heads
        hd = d // heads
        bits, learn = cfg.act_bits, cfg.learn_clip
        self.norm1 = QLayerNorm(blk.norm1, stream, bits, learn)
        self.qkv = make(blk.attn.qkv, "attn.qkv")
        self.qkv_q = ActQuant(bits, learnable=learn, signed=True)
        for j, part in enumerate("qkv"):
            setattr(self, part, Slice(0, j * d, (j + 1) * d))
            setattr(self, part + "h", Reshape((heads, hd, tokens)))
        self.scores = QMatMul(True, hd ** -0.5, bits, learn)
        self.attn = QSoftmax(self.scores.out, bits)
        self.ctx = QMatMul(False, 1.0, bits, learn)
        self.merge = Reshape((d, tokens))
        self.proj = make(blk.attn.proj, "attn.proj")
        self.proj_q = ActQuant(WIDE_BITS, learnable=learn, signed=True)
        self.res1 = QResidual(WIDE_BITS, learn)
        self.norm2 = QLayerNorm(blk.norm2, self.res1.out, bits, learn)
        self.fc1 = make(blk.mlp.fc1, "mlp.fc1")
        self.fc1_q = ActQuant(WIDE_BITS, learnable=learn, signed=True)
        self.act = QGelu(self.fc1_q, bits, learn)
        self.fc2 = make(blk.mlp.fc2, "mlp.fc2")
        self.fc2_q = ActQuant(WIDE_BITS, learnable=learn, signed=True)
        self.res2 = QResidual(WIDE_BITS, learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        qkv = self.qkv_q(self.qkv(self.norm1(x)))
        q, k, v = self.qh(self.q(qkv)), self.kh(self.k(qkv)), self.vh(self.v(qkv))
        ctx = self.ctx(v, self.attn(self.scores(k, q)))
        x = self.res1(x, self.proj_q(self.proj(self.merge(ctx))))
        f = self.act(self.fc1_q(self.fc1(self.norm2(x))))
        return self.res2(x, self.fc2_q(self.fc2(f)))


class QuantViT(nn.Module):
    """A vision transformer converted for QAT (module docstring); built by
    :func:`quantize_vit`. Input images ``(B, C, H, W)`` in [0, 1], output logits."""

    def __init__(self, model: VisionTransformer, cfg: QATConfig) -> None:
        super().__init__()
        groups = row_groups(model)
        prefix = ""

        def make(mod: nn.Module, name: str, edge: bool = False, first: bool = False,
                 cls: type = QTokenLinear) -> nn.Module:
            return make_q(mod, None, cfg, edge, first, cls, groups[prefix + name])

        d, gh = model.embed_dim, model.img_size[0] // model.patch_size
        gw = model.img_size[1] // model.patch_size
        tokens = model.num_patches + 1
        learn = cfg.learn_clip
        self.patch = make(model.patch_embed.proj, "patch_embed.proj", True, True)
        # images in [0, 1] as signed codes (0 .. 2**(b-1) - 1): every GEMM input of the ViT is
        # then in one signed format, which a signed engine takes as it is
        self.patch.in_quant = ActQuant(cfg.input_bits, clip=1.0, learnable=False, signed=True)
        self.patch_q = ActQuant(WIDE_BITS, learnable=learn, signed=True)
        self.tokens = Reshape((d, gh * gw))
        self.embed = QPosEmbed(model.cls_token, model.pos_embed, learn)
        stream, blocks = self.embed.out, []
        for i, blk in enumerate(model.blocks):
            prefix = f"blocks.{i}."
            blocks.append(QBlock(blk, stream, cfg, tokens, make))
            stream = blocks[-1].res2.out
        prefix = ""
        self.blocks = nn.Sequential(*blocks)
        self.norm = QLayerNorm(model.norm, stream, cfg.act_bits, learn)
        self.cls = Slice(1, 0, 1)
        self.flatten = nn.Flatten()
        self.head = make(model.head, "head", True, cls=QLinear)
        self.qat_config = cfg
        self.set_int_ops(cfg.int_ops)

    def set_int_ops(self, on: bool) -> None:
        """Run the non-linear ops with the integer kernels (True) or in float."""
        for m in self.modules():
            if hasattr(m, "int_ops") and m is not self:
                m.int_ops = on

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(self.tokens(self.patch_q(self.patch(x))))
        x = self.norm(self.blocks(x))
        return self.head(self.flatten(self.cls(x)))


def check_vit_config(cfg: QATConfig) -> None:
    """Raise ConfigError for a QATConfig a ViT cannot use (before any training)."""
    if not isinstance(cfg, QATConfig):
        raise ConfigError(f"config must be a QATConfig, not {type(cfg).__name__}")
    if cfg.scheme == "f8":
        raise ConfigError("scheme must be fixed, pot, sp2 or msq for a vision transformer, "
                          "not 'f8' (F8Net's shift-only requantizers are for CNNs)")
    if cfg.act_bits < 2:
        raise ConfigError(f"act_bits must be 2..16 for a vision transformer (signed values), "
                          f"not {cfg.act_bits}")


def quantize_vit(model: VisionTransformer, config: QATConfig, calibration: torch.Tensor, *,
                 progress: bool = False) -> QuantViT:
    """The :class:`QuantViT` of float ``model`` (left unchanged), clips calibrated on
    ``calibration`` images (float, [0, 1]); in eval mode. ``progress``: a bar on stderr."""
    if not isinstance(model, VisionTransformer):
        raise ConfigError(f"model must be a VisionTransformer, not {type(model).__name__}")
    check_vit_config(config)
    qmodel = QuantViT(model.eval(), config)
    calibrate_vit_(qmodel, calibration, progress=progress)
    return qmodel.eval()


@torch.no_grad()
def calibrate_vit_(model: QuantViT, images: torch.Tensor, batch_size: int = 256, *,
                   progress: bool = False) -> None:
    """Set every value quantizer's clip from the values it sees on ``images``, in one pass
    with float non-linear ops and every value unquantized (as the CNNs' ``calibrate_``)."""
    acts = [m for m in model.modules() if isinstance(m, ActQuant) and m.fmt.signed]
    model.set_int_ops(False)
    try:
        calibrate_clips(model, acts, images, batch_size, f8=False, progress=progress)
    finally:
        model.set_int_ops(model.qat_config.int_ops)


def vit_row_fraction(model: QuantViT) -> float:
    """Fraction of all weight rows on a LUT scheme (not fixed point)."""
    rows = [m.wq.scheme_ids.numpy() for m in model.modules() if isinstance(m, QLinear | QConv2d)]
    ids = np.concatenate(rows)
    return float(np.count_nonzero(ids != 0)) / max(1, ids.size)


