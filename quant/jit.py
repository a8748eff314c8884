"""Numba scalar integer arithmetic shared by the kernels of ``quant`` and ``sim``.

One definition of the hardware's rounding shift, usable inside ``@njit`` code; the numpy
array form is :func:`quant.ref.round_shift`, and the two agree on every int64 input whose
result fits.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def round_shift_scalar(p: int, s: int) -> int:
    """Round-half-to-even ``p / 2**s`` (a left shift for ``s <= 0``)."""
    if s <= 0:
        return p << (-s)
    q = p >> s
    r = p - (q << s)
    half = np.int64(1) << (s - 1)
    if r > half or (r == half and (q & 1) == 1):
        q += 1
    return q
