"""Row-wise mixed-scheme quantization (MSQ, "Mix and Match", arXiv 2012.04240).

Each row of a layer's weight matrix gets either fixed point (DSP core) or a LUT-friendly
scheme (SP2 for CNNs; PoT for ViTs, arXiv 2208.05163). The paper fixes the LUT fraction from
the FPGA's LUT/DSP budget; which rows get it is not specified there, so fpim offers:

* ``mse`` (default): quantize every row both ways, each with its own best scale; give the
  LUT scheme to the rows where it lowers the squared error the most
  (``err_fixed - err_lut`` largest). For a given number of LUT rows this minimizes the
  layer's total squared error exactly.
* ``variance``: give the LUT scheme to the rows with the lowest variance of
  ``w / max|w|`` (concentrated, Gaussian-like rows suit SP2's dense levels near zero).
  Normalizing by the row's max makes the rule independent of the row's scale, which the
  per-row alpha absorbs anyway.

The number of LUT rows is ``floor(fraction * M + 1/2)`` (round half up), so fraction 0
gives pure fixed point and fraction 1 pure LUT scheme. Ties in the ranking go to the lower
row index.

**Row groups** (:func:`msq_assign_grouped`): a layer's rows may be split into contiguous groups
that each get the same LUT fraction, ranked within the group. For a ViT's ``qkv`` the groups
are the heads within each of q, k and v (:func:`head_row_groups`), so every head's engine
gets the same fixed/LUT split ("same ratio per head", Auto-ViT-Acc, arXiv 2208.05163). Each
group of ``g`` rows gets ``lut_row_count(fraction, g)`` LUT rows, so the layer's total can
differ from ``lut_row_count(fraction, M)`` by up to half a row per group.
"""

from __future__ import annotations

import math

import numpy as np

from quant.errors import ConfigError, ShapeError, check_choice, check_fraction, check_int_range
from quant.formats import Scheme, weight_format
from quant.rows import QuantizedRows, check_weight_matrix, search_alpha

RULES = ("mse", "variance")

#: Contiguous row ranges ``(start, stop)`` that partition a layer's rows, in order.
RowGroups = tuple[tuple[int, int], ...]


def lut_row_count(fraction: float, rows: int) -> int:
    """Number of rows that get the LUT scheme: round half up of ``fraction * rows``."""
    f = check_fraction("sp2_fraction", fraction)
    return min(rows, math.floor(f * rows + 0.5))


def msq_assign(w: object, sp2_fraction: float, bits: int, rule: str = "mse",
               lut_scheme: object = Scheme.SP2) -> QuantizedRows:
    """Assign each row a scheme and quantize it; returns per-row scheme ids, scales, codes.

    Parameters:
        w: (M, K) float weights (conv weights reshaped to ``C_out x C_in*kh*kw``).
        sp2_fraction: fraction of rows for the LUT scheme, in [0, 1].
        bits: weight bit width (both schemes).
        rule: ``"mse"`` or ``"variance"`` (see the module docstring).
        lut_scheme: ``Scheme.SP2`` (default) or ``Scheme.POT``.
    """
    wa = check_weight_matrix(w)
    check_choice("rule", rule, RULES)
    lut = Scheme.parse(lut_scheme)
    check_choice("lut_scheme", lut.label, ("sp2", "pot"))
    n_lut = lut_row_count(sp2_fraction, wa.shape[0])
    f_fix = weight_format(Scheme.FIXED, bits)
    f_lut = weight_format(lut, bits)

    a_fix, e_fix = search_alpha(wa, f_fix)
    a_lut, e_lut = search_alpha(wa, f_lut)
    if rule == "mse":
        key = -(e_fix - e_lut)  # most gain first
    else:
        amax = np.max(np.abs(wa), axis=1)
        key = np.var(wa / np.where(amax == 0, 1.0, amax)[:, None], axis=1)
    order = np.argsort(key, kind="stable")
    is_lut = np.zeros(wa.shape[0], dtype=bool)
    is_lut[order[:n_lut]] = True

    alphas = np.where(is_lut, a_lut, a_fix)
    words = np.empty(wa.shape, dtype=np.int64)
    words[~is_lut] = f_fix.encode(wa[~is_lut] / a_fix[~is_lut, None])
    words[is_lut] = f_lut.encode(wa[is_lut] / a_lut[is_lut, None])
    ids = np.where(is_lut, int(lut), int(Scheme.FIXED)).astype(np.int8)
    return QuantizedRows(words=words, scheme_ids=ids, alphas=alphas, bits=f_fix.bits)


def head_row_groups(rows: int, heads: int, parts: int = 1) -> RowGroups:
    """Row groups of a matrix of ``parts`` stacked blocks, each ordered by ``heads`` heads.

    ``rows = parts * heads * d``; group ``(p, h)`` is ``[p*heads*d + h*d, p*heads*d +
    (h+1)*d)``, in row order. A ViT's ``qkv`` is ``parts=3`` (q, k, v); ``heads=1, parts=1``
    is the whole matrix as one group.
    """
    check_int_range("rows", rows, 1, 2**31)
    check_int_range("heads", heads, 1, rows)
    check_int_range("parts", parts, 1, rows)
    if rows % (heads * parts):
        raise ShapeError(f"rows must be a multiple of parts x heads = {parts * heads}, "
                         f"not {rows}")
    d = rows // (heads * parts)
    return tuple((g * d, (g + 1) * d) for g in range(parts * heads))


def check_row_groups(groups: object, rows: int) -> RowGroups:
    """``groups`` as a tuple of (start, stop) if they partition ``range(rows)`` in order."""
    try:
        out = tuple((int(a), int(b)) for a, b in groups)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"groups must be (start, stop) pairs, not {groups!r}") from None
    stops = [0] + [b for _, b in out]
    if not out or any(a != s or b <= a for (a, b), s in zip(out, stops, strict=False)) \
            or stops[-1] != rows:
        raise ConfigError(f"groups must be non-empty contiguous row ranges covering 0..{rows} "
                          f"in order, not {out!r}")
    return out


def msq_assign_grouped(w: object, groups: object, sp2_fraction: float, bits: int,
                       rule: str = "mse", lut_scheme: object = Scheme.SP2) -> QuantizedRows:
    """:func:`msq_assign` within each row group: every group gets the same LUT fraction.

    ``groups``: (start, stop) row ranges partitioning the rows in order (e.g.
    :func:`head_row_groups`). Rows keep their order; the other parameters are
    :func:`msq_assign`'s.
    """
    wa = check_weight_matrix(w)
    parts = [msq_assign(wa[a:b], sp2_fraction, bits, rule, lut_scheme)
             for a, b in check_row_groups(groups, wa.shape[0])]
    return QuantizedRows(words=np.concatenate([p.words for p in parts]),
                         scheme_ids=np.concatenate([p.scheme_ids for p in parts]),
                         alphas=np.concatenate([p.alphas for p in parts]),
                         bits=parts[0].bits)
