"""Row-wise weight quantization: per-row scale selection and the quantized-rows container.

A weight matrix in GEMM form (``M x K``; conv weights reshaped to ``C_out x C_in*kh*kw``) is
quantized row by row: each row ``r`` has a scheme id, a scale ``alpha[r]`` and code words, and
represents ``w[r] ≈ alpha[r] * level(words[r])`` (arXiv 2012.04240: ``w_q = alpha *
proj(clip(w / alpha, -1, 1))``).

Scale selection minimizes the row's squared quantization error. It starts from
``alpha0 = max|w_row|`` (no clipping), scans ``alpha = f * alpha0`` over a coarse grid of
``f`` in [0.1, 1.5] and then a fine grid around the best coarse point; the result is never
worse than ``alpha0`` itself, which is on the coarse grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import ConfigError, ShapeError
from quant.formats import Scheme, WeightFormat, weight_format

#: Coarse and fine grids of the alpha search (factors of max|w| per row).
ALPHA_COARSE = np.arange(4, 61) / 40.0  # 0.1 .. 1.5 in steps of 0.025; holds 1.0 exactly
ALPHA_FINE_STEPS = 11


def check_weight_matrix(w: object, name: str = "weights") -> np.ndarray:
    """Return ``w`` as a 2-D float64 array, or raise if it is not 2-D and finite."""
    wa = np.asarray(w, dtype=np.float64)
    if wa.ndim != 2 or wa.shape[0] == 0 or wa.shape[1] == 0:
        raise ShapeError(f"{name} must be a non-empty 2-D matrix (rows x reduction), "
                         f"not shape {wa.shape}")
    if not np.all(np.isfinite(wa)):
        raise ConfigError(f"{name} must be finite, not containing NaN or infinity")
    return wa


def row_errors(w: np.ndarray, fmt: WeightFormat, alpha: np.ndarray) -> np.ndarray:
    """Per-row sum of squared error of quantizing ``w`` with ``fmt`` at scales ``alpha``."""
    a = alpha[:, None]
    q = fmt.decode(fmt.encode(w / a)) * a
    return np.sum((w - q) ** 2, axis=1)


def search_alpha(w: object, fmt: WeightFormat) -> tuple[np.ndarray, np.ndarray]:
    """Per-row scale minimizing squared error; returns ``(alpha, error)``, each shape (M,).

    All-zero rows get ``alpha = 1`` and error 0.
    """
    wa = check_weight_matrix(w)
    amax = np.max(np.abs(wa), axis=1)
    zero = amax == 0
    base = np.where(zero, 1.0, amax)

    def scan(factors: np.ndarray, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best_f = np.ones_like(base)
        best_e = np.full_like(base, np.inf)
        for j in range(factors.shape[1]):
            f = centre * factors[:, j]
            e = row_errors(wa, fmt, base * f)
            better = e < best_e
            best_e = np.where(better, e, best_e)
            best_f = np.where(better, f, best_f)
        return best_f, best_e

    m = wa.shape[0]
    coarse = np.broadcast_to(ALPHA_COARSE, (m, ALPHA_COARSE.size))
    f1, e1 = scan(coarse, np.ones(m))
    step = ALPHA_COARSE[1] - ALPHA_COARSE[0]
    fine = 1.0 + np.linspace(-step, step, ALPHA_FINE_STEPS)[None, :] / f1[:, None]
    f2, e2 = scan(np.broadcast_to(fine, (m, ALPHA_FINE_STEPS)), f1)
    better = e2 < e1
    f = np.where(better, f2, f1)
    e = np.where(better, e2, e1)
    alpha = np.where(zero, 1.0, base * f)
    return alpha, np.where(zero, 0.0, e)


@dataclass(frozen=True, eq=False)
class QuantizedRows:
    """A weight matrix quantized row by row.

    Members:
        words: (M, K) int64 code words.
        scheme_ids: (M,) int8, a :class:`~quant.formats.Scheme` value per row.
        alphas: (M,) float64 per-row scale; ``w[r] ≈ alphas[r] * level(words[r])``.
        bits: weight bit width, shared by every row.
    """

    words: np.ndarray
    scheme_ids: np.ndarray
    alphas: np.ndarray
    bits: int

    def __post_init__(self) -> None:
        if self.words.ndim != 2:
            raise ShapeError(f"words must be 2-D, not shape {self.words.shape}")
        m = self.words.shape[0]
        if self.scheme_ids.shape != (m,) or self.alphas.shape != (m,):
            raise ShapeError(
                f"scheme_ids and alphas must have shape ({m},), not "
                f"{self.scheme_ids.shape} and {self.alphas.shape}"
            )
        for s in np.unique(self.scheme_ids):
            weight_format(Scheme.parse(int(s)), self.bits)  # validates the combination
        bad = ~(np.isfinite(self.alphas) & (self.alphas > 0))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"alphas must be positive finite scales, not {float(self.alphas[r])} "
                              f"at row {r}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.words.shape  # type: ignore[return-value]

    def formats(self) -> dict[Scheme, WeightFormat]:
        """The formats present, by scheme."""
        return {Scheme(int(s)): weight_format(int(s), self.bits)
                for s in np.unique(self.scheme_ids)}

    def int_weights(self) -> np.ndarray:
        """(M, K) int64 integer levels; row r's real weights are ``alphas[r]/denominators[r]``."""
        out = np.empty(self.words.shape, dtype=np.int64)
        for s, fmt in self.formats().items():
            rows = self.scheme_ids == s
            out[rows] = fmt.int_level(self.words[rows])
        return out

    def denominators(self) -> np.ndarray:
        """(M,) int64 denominator of each row's scheme."""
        out = np.empty(self.scheme_ids.shape, dtype=np.int64)
        for s, fmt in self.formats().items():
            out[self.scheme_ids == s] = fmt.denominator
        return out

    def max_abs_int(self) -> int:
        """Largest |int level| any row's scheme can hold (the bound the kernels use)."""
        return max(f.max_abs_int for f in self.formats().values())

    def dequantize(self) -> np.ndarray:
        """Float64 weights ``alpha * level``."""
        return self.int_weights() * (self.alphas / self.denominators())[:, None]

    def count(self, scheme: Scheme) -> int:
        return int(np.count_nonzero(self.scheme_ids == scheme))


def quantize_rows(w: object, scheme: object, bits: int,
                  alpha: np.ndarray | None = None) -> QuantizedRows:
    """Quantize every row of ``w`` with one scheme; ``alpha`` searched per row unless given."""
    wa = check_weight_matrix(w)
    fmt = weight_format(scheme, bits)
    if alpha is None:
        alpha, _ = search_alpha(wa, fmt)
    else:
        alpha = np.asarray(alpha, dtype=np.float64)
        if alpha.shape != (wa.shape[0],) or not np.all(alpha > 0) or not np.all(np.isfinite(alpha)):
            raise ConfigError(f"alpha must be {wa.shape[0]} positive finite scales, one per row")
    words = fmt.encode(wa / alpha[:, None])
    ids = np.full(wa.shape[0], int(fmt.scheme), dtype=np.int8)
    return QuantizedRows(words=words, scheme_ids=ids, alphas=alpha, bits=fmt.bits)
