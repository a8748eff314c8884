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
"""

from __future__ import annotations

import math

import numpy as np

from quant.errors import check_choice, check_fraction
from quant.formats import Scheme, weight_format
from quant.rows import QuantizedRows, check_weight_matrix, search_alpha

RULES = ("mse", "variance")


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
