"""Vision transformers of DeiT structure with timm's state-dict layout (torch).

:class:`VisionTransformer` is the ViT of Dosovitskiy et al. (arXiv 2010.11929) as DeiT
(arXiv 2012.12877) trains it and timm (``timm.models.vision_transformer``) stores it, so a
user's timm/DeiT checkpoint loads with :func:`quant.torch.checkpoint.load_weights`:

* ``patch_embed.proj``: a ``patch x patch`` convolution with stride ``patch``; its output
  is flattened to tokens in row-major patch order;
* ``cls_token`` (1, 1, D) is prepended and ``pos_embed`` (1, 1 + patches, D) added;
* ``blocks.i``: pre-norm blocks ``x = x + attn(norm1(x)); x = x + mlp(norm2(x))`` with
  LayerNorm eps 1e-6, attention with a biased ``qkv`` linear whose 3D output rows are ordered
  [q | k | v] and, within each, by head (head ``h`` owns rows ``[h*d, (h+1)*d)``, ``d = D /
  heads``), scale ``d**-0.5``, softmax over keys, then ``proj``; the MLP is ``fc1`` (D → r·D),
  exact-erf GELU, ``fc2``;
* ``norm`` then ``head`` on the class token: logits = ``head(norm(x)[:, 0])``.

No dropout or stochastic depth (they hold no weights; fpim trains small models without
them). The softmax and GELU are modules (``attn.softmax``, ``mlp.act``) so a quantizing
conversion can replace them. 152 state-dict keys for 12 blocks (4 + 12 per block + 4).

:func:`row_groups` gives, for each weight-bearing linear, the row groups that mixed-scheme
quantization splits alike (one per head and per q/k/v in ``qkv``; see docs/vit.md), and
:func:`msq_assign_vit` assigns every layer's rows with the same split within every head.
"""

from __future__ import annotations

import torch
from torch import nn

from quant.errors import ConfigError, check_int_range
from quant.formats import Scheme
from quant.msq import RowGroups, head_row_groups, msq_assign_grouped
from quant.rows import QuantizedRows

LN_EPS = 1e-6


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` patches → tokens (B, patches, D) by one conv."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention; ``qkv`` rows are [q | k | v], each ordered by head."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (B, heads, N, d)
        attn = self.softmax((q * self.scale) @ k.transpose(-2, -1))
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """fc1 → exact GELU → fc2."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, mlp_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _pair(name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    hw = (value, value) if isinstance(value, int) else tuple(value)
    if len(hw) != 2:
        raise ConfigError(f"{name} must be an integer or (height, width), not {value!r}")
    for v in hw:
        check_int_range(name, v, 1, 65536)
    return hw  # type: ignore[return-value]


class VisionTransformer(nn.Module):
    """A ViT classifier of DeiT structure; parameters named as in timm.

    Parameters:
        img_size: input height and width (an int for square images), each a multiple of
            ``patch_size``.
        patch_size: side of the square patches.
        in_chans: input channels.
        num_classes: classifier outputs.
        embed_dim: token width D, a multiple of ``num_heads``.
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of D (hidden = int(D * mlp_ratio)).
    """

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16,
                 in_chans: int = 3, num_classes: int = 1000, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        h, w = _pair("img_size", img_size)
        check_int_range("patch_size", patch_size, 1, 65536)
        if h % patch_size or w % patch_size:
            raise ConfigError(f"img_size must be a multiple of patch_size {patch_size} in "
                              f"both dimensions, not {h}x{w}")
        check_int_range("in_chans", in_chans, 1, 4096)
        check_int_range("num_classes", num_classes, 1, 100_000)
        check_int_range("embed_dim", embed_dim, 1, 65536)
        check_int_range("depth", depth, 1, 1024)
        check_int_range("num_heads", num_heads, 1, embed_dim)
        if embed_dim % num_heads:
            raise ConfigError(f"embed_dim must be a multiple of num_heads {num_heads}, "
                              f"not {embed_dim}")
        if not (isinstance(mlp_ratio, int | float) and 0 < mlp_ratio <= 64
                and int(embed_dim * mlp_ratio) >= 1):
            raise ConfigError(f"mlp_ratio must be a number in (0, 64], not {mlp_ratio!r}")
        self.img_size = (h, w)
        self.patch_size = patch_size
        self.num_heads = num_heads
        self.embed_dim = embed_dim
        self.num_patches = (h // patch_size) * (w // patch_size)
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + 1, embed_dim))
        hidden = int(embed_dim * mlp_ratio)
        self.blocks = nn.Sequential(*(Block(embed_dim, num_heads, hidden)
                                      for _ in range(depth)))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # timm's ViT initialization: truncated normal (std 0.02) for the position embedding
        # and the linears, zero biases, a near-zero class token.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def deit_tiny(**kwargs) -> VisionTransformer:
    """DeiT-Tiny: D 192, 12 blocks, 3 heads, patch 16, 224x224, 1000 classes (5.717 M)."""
    return VisionTransformer(**{"embed_dim": 192, "depth": 12, "num_heads": 3, **kwargs})


def deit_small(**kwargs) -> VisionTransformer:
    """DeiT-Small: D 384, 12 blocks, 6 heads, patch 16, 224x224, 1000 classes (22.05 M)."""
    return VisionTransformer(**{"embed_dim": 384, "depth": 12, "num_heads": 6, **kwargs})


def deit_base(**kwargs) -> VisionTransformer:
    """DeiT-Base: D 768, 12 blocks, 12 heads, patch 16, 224x224, 1000 classes (86.57 M)."""
    return VisionTransformer(**{"embed_dim": 768, "depth": 12, "num_heads": 12, **kwargs})


def vit_digits(**kwargs) -> VisionTransformer:
    """The small default for the bundled 8x8 digits: patch 4 (4 tokens + CLS), D 64,
    2 blocks, 4 heads, MLP ratio 2, 10 classes, one input channel (docs/vit.md: why)."""
    return VisionTransformer(**{"img_size": 8, "patch_size": 4, "in_chans": 1,
                                "num_classes": 10, "embed_dim": 64, "depth": 2,
                                "num_heads": 4, "mlp_ratio": 2.0, **kwargs})


VITS = {"vit_digits": vit_digits, "deit_tiny": deit_tiny, "deit_small": deit_small,
        "deit_base": deit_base}


def row_groups(model: VisionTransformer) -> dict[str, RowGroups]:
    """Row groups of every weight-bearing linear, by module name, in forward order.

    ``attn.qkv`` (3D rows) has one group per head within each of q, k and v:
    ``[s*D + h*d, s*D + (h+1)*d)`` for ``s`` in 0, 1, 2 and head ``h``. Every other layer
    (``patch_embed.proj``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``, ``head``) is one group:
    its output rows do not belong to a head. :func:`quant.msq.msq_assign_grouped` gives each
    group the same LUT fraction, so every head gets the same split.
    """
    if not isinstance(model, VisionTransformer):
        raise ConfigError(f"model must be a VisionTransformer, not {type(model).__name__}")
    groups: dict[str, RowGroups] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            rows = m.weight.shape[0]
            parts = 3 if name.endswith("attn.qkv") else 1
            heads = model.num_heads if parts == 3 else 1
            groups[name] = head_row_groups(rows, heads, parts)
    return groups


def msq_assign_vit(model: VisionTransformer, lut_fraction: float, bits: int, rule: str = "mse",
                   lut_scheme: object = Scheme.POT) -> dict[str, QuantizedRows]:
    """MSQ rows of every weight-bearing linear of ``model``, by module name: a fraction
    ``lut_fraction`` of each row group (:func:`row_groups`) on ``lut_scheme`` (PoT by default,
    as Auto-ViT-Acc), the rest fixed point; the same split within every head."""
    return {name: msq_assign_grouped(
                model.get_submodule(name).weight.detach().double().reshape(g[-1][1], -1).numpy(),
                g, lut_fraction, bits, rule, lut_scheme)
            for name, g in row_groups(model).items()}
