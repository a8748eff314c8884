"""The artifact ops, one module each, and their registry :data:`OPS` (name → :class:`OpDef`).

============  =====================  ===================================================
op            module                 what a layer of it does
============  =====================  ===================================================
conv          :mod:`.gemm`           im2col GEMM with per-row schemes, then requantization
linear        :mod:`.gemm`           GEMM with per-row schemes, then requantization
add           :mod:`.add`            residual sum of two values at a common scale
avgpool       :mod:`.pool`           window sums, then requantization
maxpool       :mod:`.pool`           window maxima
flatten       :mod:`.flatten`        reshape to (features,)
token_linear  :mod:`.token_linear`   the same GEMM on every token of (features, tokens)
matmul        :mod:`.matmul`         activation x activation per head (QK^T, A·V)
softmax       :mod:`.softmax`        I-ViT Shiftmax over the feature axis
layernorm     :mod:`.layernorm`      I-ViT I-LayerNorm (Newton integer sqrt) per token
gelu          :mod:`.gelu`           I-ViT ShiftGELU, element-wise, requantized
pos_embed     :mod:`.embed`          class token and position embedding, requantized
reshape       :mod:`.layout`         each sample to the output shape (tokens, heads)
slice         :mod:`.layout`         a range of one axis (q/k/v, the class token)
============  =====================  ===================================================

The transformer ops keep tokens channel-first, ``(features, tokens)``; docs/vit.md draws a
ViT's artifact graph and gathers their constants and bounds. Their integer primitives
(shift-exp, Newton square root, dyadic multipliers) are :mod:`.intmath`.

Each op owns its arity, tensors, checks and integer reference (:class:`OpDef`);
:mod:`quant.artifact` and :mod:`quant.infer` only dispatch through :data:`OPS`. The other
levels keep one table each keyed by the same names (``quant.torch.export``,
``quant.torch.twin``, ``sim.ops``, ``hw.ops``); :func:`missing_entries` lists the gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from quant.errors import ArtifactError
from quant.ops.add import ADD
from quant.ops.base import GemmFn, OpDef
from quant.ops.embed import POS_EMBED
from quant.ops.flatten import FLATTEN
from quant.ops.gelu import GELU
from quant.ops.gemm import CONV, LINEAR, Gemm
from quant.ops.layernorm import LAYERNORM
from quant.ops.layout import RESHAPE, SLICE
from quant.ops.matmul import MATMUL
from quant.ops.pool import AVGPOOL, MAXPOOL
from quant.ops.softmax import SOFTMAX
from quant.ops.token_linear import TOKEN_LINEAR

if TYPE_CHECKING:
    from quant.artifact import Layer

T = TypeVar("T")

OPS: dict[str, OpDef] = {op.name: op for op in (
    CONV, LINEAR, ADD, AVGPOOL, MAXPOOL, FLATTEN,
    TOKEN_LINEAR, MATMUL, SOFTMAX, LAYERNORM, GELU, POS_EMBED, RESHAPE, SLICE)}


def op_of(layer: Layer) -> OpDef:
    """The definition of ``layer.op``; :class:`ArtifactError` naming the layer if unknown."""
    op = OPS.get(layer.op)
    if op is None:
        raise ArtifactError(f"layer {layer.name!r}: op must be one of {', '.join(OPS)}, "
                            f"not {layer.op!r}")
    return op


def gemm_of(layer: Layer) -> Gemm:
    """The GEMM definition of ``layer`` (conv, linear, token_linear); :class:`ArtifactError`
    otherwise."""
    op = op_of(layer)
    if not isinstance(op, Gemm):
        gemms = ", ".join(k for k, v in OPS.items() if v.gemm)
        raise ArtifactError(f"layer {layer.name!r}: op must be a GEMM ({gemms}), "
                            f"not {layer.op!r}")
    return op


def level_entry(table: Mapping[str, T], op: str, level: str) -> T:
    """``table[op]``: how ``level`` runs ``op``; :class:`ArtifactError` naming both if the
    level has no entry for it."""
    if op not in table:
        raise ArtifactError(f"op must be one of {', '.join(table)} at {level}, not {op!r}")
    return table[op]


def missing_entries(tables: Mapping[str, Mapping[str, object]]) -> list[str]:
    """What keeps the levels' tables from being keyed by exactly the registry's op names.

    ``tables`` maps a level's name to its table keyed by op name. Returns one line per gap
    (``"<level> has no entry for op 'x'"``) or stray key; empty when every level is complete.
    """
    gaps = []
    for k, op in OPS.items():
        if not (isinstance(op, OpDef) and op.name == k):
            gaps.append(f"quant.ops.OPS entry {k!r} is not an OpDef named {k!r}")
        elif getattr(type(op).run, "__isabstractmethod__", False):
            gaps.append(f"quant.ops.OPS entry {k!r} has no integer reference (run)")
    for level, table in tables.items():
        gaps += [f"{level} has no entry for op {k!r}" for k in OPS if k not in table]
        gaps += [f"{level} has an entry for {k!r}, which is not a registered op"
                 for k in table if k not in OPS]
    return gaps


__all__ = ["OPS", "Gemm", "GemmFn", "OpDef", "gemm_of", "level_entry", "missing_entries",
           "op_of"]
