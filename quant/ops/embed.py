"""``pos_embed``: prepend the class token, add the position embedding, requantize.

timm's ``_pos_embed`` (``x = cat(cls_token, x) + pos_embed``) on channel-first tokens: the
input is the patch tokens ``(D, Np)`` (the patch embedding's conv output, reshaped), the
output ``(D, T)`` with ``T = Np + 1`` when ``cls`` (else ``Np``). The constants live in one
tensor at the common scale ``S_c = S_out * 2**-out_shift``; column 0 holds the class token
plus its position embedding::

    t   = round_shift(x * mult, shift)                 # patches at S_c (quant.ops.add)
    t   = concat([0], t) along the tokens if cls       # the class token's slot
    out = requantize(t + table, 1, out_shift, out_fmt)  # round half to even, clamp

==============  ======  =======  =============================================================
field           shape   dtype    meaning
==============  ======  =======  =============================================================
``cls``         attr    bool     whether a class token is prepended
``mult``        attr    int      dyadic multiplier of ``S_in / S_c``, 0..2**31 - 1
``shift``       attr    int      its shift, -62..62
``out_shift``   attr    int      ``S_c = S_out * 2**-out_shift``, 0..62
``table``       (D, T)  int64    ``round(pos / S_c)``, column 0 ``round((cls + pos_0) / S_c)``
==============  ======  =======  =============================================================

**Overflow proof**: ``max|x| * mult << max(0, -shift) < 2**62`` (before computing and on
load) and ``|table| <= 2**62`` (on load), so the sum fits int64.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from quant.errors import OverflowRiskError
from quant.ops.add import BRANCH_LIMIT, to_common
from quant.ops.base import GemmFn, OpDef, bool_attr, int_attr, layer_error
from quant.ops.intmath import INT32_MAX, check_scaled, dyadic
from quant.ref import requantize

if TYPE_CHECKING:
    from quant.artifact import Layer, Value


def pos_embed_params(in_scale: float, out_scale: float, pos: np.ndarray,
                     cls: np.ndarray | None, out_shift: int = 8) -> tuple[dict, dict]:
    """``(attrs, tensors)`` of a ``pos_embed`` layer from float ``pos`` (D, T) and ``cls``
    (D,) or None (no class token)."""
    common = out_scale * 2.0 ** -out_shift
    mult, shift = dyadic(in_scale / common)
    table = np.asarray(pos, np.float64).copy()
    if cls is not None:
        table[:, 0] += np.asarray(cls, np.float64)
    attrs = {"cls": cls is not None, "mult": mult, "shift": shift, "out_shift": int(out_shift)}
    return attrs, {"table": np.round(table / common).astype(np.int64)}


class PosEmbed(OpDef):
    name = "pos_embed"
    attrs = MappingProxyType({"cls": "bool", "mult": "size", "shift": "int",
                              "out_shift": "size"})
    tensors = MappingProxyType({"table": ("int64", "out")})

    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        d, tokens = ins[0].shape
        return (d, tokens + int(layer.attrs["cls"]))

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        src, out = ins[0], layer.out
        cls = bool_attr(layer, "cls")
        mult = int_attr(layer, "mult", 0, INT32_MAX)
        shift = int_attr(layer, "shift", -62, 62)
        int_attr(layer, "out_shift", 0, 62)
        if src.fmt is None or out.fmt is None or len(src.shape) != 2 \
                or out.shape != (src.shape[0], src.shape[1] + cls):
            raise layer_error(layer, f"input must be clamped (D, Np) tokens and the output "
                                     f"(D, Np + cls), not {src.fmt} {src.shape} -> {out.fmt} "
                                     f"{out.shape}")
        try:
            check_scaled("a branch x * mult", src.fmt.max_abs, mult, shift, BRANCH_LIMIT)
        except OverflowRiskError as exc:
            raise layer_error(layer, str(exc)) from None

    def check_tensors(self, layer: Layer) -> None:
        worst = int(np.abs(layer.tensors["table"]).max(initial=0))
        if worst > BRANCH_LIMIT:
            raise layer_error(layer, f"table must lie within +-2**62, not {worst}")

    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        a = layer.attrs
        t = to_common(xs[0], in_fmts[0], int(a["mult"]), int(a["shift"]))
        if a["cls"]:
            t = np.concatenate([np.zeros((*t.shape[:-1], 1), np.int64), t], axis=-1)
        return requantize(t + layer.tensors["table"], 1, int(a["out_shift"]), layer.out.fmt)


POS_EMBED = PosEmbed()
