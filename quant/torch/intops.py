"""Torch integer kernels of the transformer ops: the independent twin of
:mod:`quant.ops.intmath` and of the ViT ops' numpy references.

Written from the ops' docstrings with torch's own operations (floor divisions where the
numpy code shifts, a comparison count for the bit length), on int64 tensors, and equal to
the numpy references bit for bit (tests/quant/test_vit_ops.py). The constants and the
overflow proofs are imported, not restated. Requantization (round half to even) is the
twin's (:mod:`quant.torch.twin`); these kernels stop before it.

For a QAT forward, call them on the integer codes of the current scales (the attributes
come from ``quant.ops.softmax.softmax_params`` and its siblings) behind a straight-through
estimator; the result is what the artifact computes.
"""

from __future__ import annotations

import torch

from quant.errors import OverflowRiskError
from quant.ops.intmath import INT32_MAX, NEWTON_STEPS, check_exp_sum
from quant.ref import FLOAT64_EXACT

_POWERS = 2 ** torch.arange(63, dtype=torch.int64)


def _floor_div(a: torch.Tensor, b: torch.Tensor | int) -> torch.Tensor:
    return torch.div(a, b, rounding_mode="floor")


def shift_exp(x: torch.Tensor, x0: int, n: int) -> torch.Tensor:
    """I-ViT's ShiftExp of ``x <= 0`` (see :mod:`quant.ops.intmath`)."""
    x = (x + _floor_div(x, 2) - _floor_div(x, 16)).clamp_min(n * x0)
    q = _floor_div(x, x0)
    r = x - x0 * q
    return _floor_div((r - 2 * x0) * 2 ** (n - q), 2)


def isqrt(v: torch.Tensor) -> torch.Tensor:
    """``floor(sqrt(v))`` by Newton steps from ``2**ceil(bit_length / 2)``."""
    length = (v.unsqueeze(-1) >= _POWERS).sum(-1)
    k = 2 ** _floor_div(length + 1, 2)
    for _ in range(NEWTON_STEPS):
        k = torch.minimum(k, _floor_div(k + _floor_div(v, k.clamp_min(1)), 2))
    return k


def round_div(a: torch.Tensor, d: int) -> torch.Tensor:
    """``a / d`` rounded half to even: half up, then ties that landed on an odd value down."""
    q = _floor_div(2 * a + d, 2 * d)
    tie = torch.remainder(2 * a + d, 2 * d) == 0
    return q - (tie & (torch.remainder(q, 2) == 1)).long()


def shiftmax(x: torch.Tensor, x0: int, n: int, out_bits: int) -> torch.Tensor:
    """The ``softmax`` op over dim -2 (:mod:`quant.ops.softmax`)."""
    check_exp_sum(x.shape[-2], x0, n)
    e = shift_exp(x - x.amax(dim=-2, keepdim=True), x0, n)
    f = _floor_div(torch.full_like(e[..., :1, :], INT32_MAX), e.sum(dim=-2, keepdim=True))
    return _floor_div(e * f, 2 ** (31 - out_bits))


def normalize(x: torch.Tensor) -> torch.Tensor:
    """The ``layernorm`` op's normalized ``z`` over dim -2, scale ``sqrt(C) / 2**30``."""
    y = x - round_div(x.sum(dim=-2, keepdim=True), x.shape[-2])
    std = isqrt((y * y).sum(dim=-2, keepdim=True))
    return _floor_div(y * _floor_div(torch.full_like(std, INT32_MAX), std.clamp_min(1)), 2)


def shift_gelu(x: torch.Tensor, x0: int, n: int, p: int) -> torch.Tensor:
    """The ``gelu`` op's ``x * sigma(1.702 x)`` at scale ``S_in * 2**-p`` (before
    requantization)."""
    check_exp_sum(2, x0, n)
    m = x.clamp_min(0)
    e1 = shift_exp(x - m, x0, n)
    e2 = shift_exp(-m, x0, n)
    sigma = _floor_div(e1 * _floor_div(torch.full_like(e1, INT32_MAX), e1 + e2), 2 ** (31 - p))
    return x * sigma


def matmul_acc(a: torch.Tensor, b: torch.Tensor, transpose_a: bool, bound: int) -> torch.Tensor:
    """``op(a) @ b`` over the last two dims in float64, exact because ``bound`` (the proven
    accumulator bound) is below ``2**53``."""
    if bound >= FLOAT64_EXACT:
        raise OverflowRiskError(f"matmul accumulator bound must be below 2**53 for the float64 "
                                f"twin, not {bound}")
    lhs = a.transpose(-1, -2) if transpose_a else a
    return torch.matmul(lhs.double(), b.double()).round().long()
