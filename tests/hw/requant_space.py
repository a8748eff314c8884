"""Requantization rows over the range the simulator accepts (``quant.requant.REQUANTIZER``),
edges included, for the Amaranth and the Verilator post-processor tests.

A row is ``(acc[cols], mult, shift, bias, relu)``. :func:`draw_row` draws one through a
``pick(lo, hi, edges)`` callback, so hypothesis (:func:`hypothesis_pick`) and a seeded
generator (:func:`seeded_pick`) share the same space: every field at the ends of its accepted
range and just beyond them (which the check must refuse), uniform values in between, and
rounding ties (``(acc + bias) * mult`` an odd multiple of ``2**(shift - 1)``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

from quant.requant import REQUANTIZER, signed_range

#: ``pick(lo, hi, edges)``: an integer, either one of ``edges`` or in ``lo..hi``.
Pick = Callable[[int, int, Sequence[int]], int]
Row = tuple[np.ndarray, int, int, int, int]


def field_edges(acc_bits: int) -> dict[str, tuple[int, ...]]:
    """Per field, the ends of what REQUANTIZER accepts with ``acc_bits``-bit accumulators
    and the values just outside (``acc`` only within its port: it is proven, not checked)."""
    (m0, m1), (s0, s1) = REQUANTIZER.mult_range(), REQUANTIZER.shift_range(acc_bits)
    b0, b1 = REQUANTIZER.bias_range(acc_bits)
    a0, a1 = signed_range(acc_bits)
    return {"mult": (m0, m0 + 1, m1, m0 - 1, m1 + 1),
            "shift": (s0, s0 + 1, s1, s0 - 1, s1 + 1),
            "bias": (b0, -1, 0, b1, b0 - 1, b1 + 1),
            "acc": (a0, a0 + 1, -1, 0, 1, a1)}


def tie(pick: Pick, acc_bits: int, cols: int) -> Row | None:
    """A row whose every lane is an exact half before rounding, or None when the shift
    drawn leaves no room for one."""
    s = pick(1, REQUANTIZER.shift_range(acc_bits)[1], ())
    k_lo, k_hi = max(0, s - REQUANTIZER.mult_bits), min(s - 1, acc_bits - 3)
    if k_lo > k_hi:
        return None
    k = pick(k_lo, k_hi, ())  # (acc + bias) = odd * 2**k, mult = 2**(s - 1 - k)
    room = 1 << (acc_bits - 2)
    v_max = min(40, ((room >> k) - 1) // 2)
    bias = pick(-room + 1, room - 1, (0,))
    acc = np.array([((2 * pick(-v_max - 1, v_max, ()) + 1) << k) - bias for _ in range(cols)])
    return acc, 1 << (s - 1 - k), s, bias, pick(0, 1, ())


def draw_row(pick: Pick, acc_bits: int, cols: int) -> Row:
    """One row over the accepted range and just beyond it (a tie one time in four)."""
    if pick(0, 3, ()) == 0:
        row = tie(pick, acc_bits, cols)
        if row is not None:
            return row
    e = field_edges(acc_bits)
    (m0, m1), (s0, s1) = REQUANTIZER.mult_range(), REQUANTIZER.shift_range(acc_bits)
    b0, b1 = REQUANTIZER.bias_range(acc_bits)
    a0, a1 = signed_range(acc_bits)
    acc = np.array([pick(a0, a1, e["acc"]) for _ in range(cols)])
    return (acc, pick(m0, m1, e["mult"]), pick(s0, s1, e["shift"]), pick(b0, b1, e["bias"]),
            pick(0, 1, ()))


def seeded_pick(seed: int) -> Pick:
    """Edges one time in three, else uniform (Python ints: 64-bit ranges work)."""
    rng = random.Random(seed)

    def pick(lo: int, hi: int, edges: Sequence[int]) -> int:
        if edges and rng.random() < 1 / 3:
            return rng.choice(list(edges))
        return rng.randint(lo, hi)
    return pick


def hypothesis_pick(data) -> Pick:
    """``pick`` drawing from hypothesis's ``st.data()`` (edges or the range, shrinking
    towards the edges)."""
    from hypothesis import strategies as st

    def pick(lo: int, hi: int, edges: Sequence[int]) -> int:
        values = st.integers(lo, hi)
        return data.draw(st.one_of(st.sampled_from(edges), values) if edges else values)
    return pick


def refusals(row: Row, acc_bits: int) -> list[str]:
    """What REQUANTIZER says of ``row`` given its accumulators (the simulator passes the
    layer's proven accumulator bound the same way)."""
    acc, mult, shift, bias, _ = row
    return REQUANTIZER.violations("row", acc_bits, mult, shift, bias,
                                  acc_max=max(abs(int(a)) for a in acc))


def accepted(rows: Sequence[Row], acc_bits: int) -> list[Row]:
    """The rows REQUANTIZER accepts (what the simulator lets reach the engine)."""
    return [r for r in rows if not refusals(r, acc_bits)]


def edge_rows(acc_bits: int, cols: int) -> list[Row]:
    """Every accepted combination of the field edges, ReLU on and off."""
    e = field_edges(acc_bits)
    lanes = [np.full(cols, a) for a in e["acc"]] + [np.resize(np.array(e["acc"]), cols)]
    rows = [(acc, m, s, b, r) for acc in lanes for m in e["mult"] for s in e["shift"]
            for b in e["bias"] for r in (0, 1)]
    return accepted(rows, acc_bits)
