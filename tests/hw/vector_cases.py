"""Stimulus and reference results for the vector-unit tests (Amaranth simulator and cocotb):
seeded random operands with the extremes, and what quant.ops / quant.ref compute for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.formats import ActFormat
from quant.ops.intmath import dyadic, exp_bits, exp_x0
from quant.ops.softmax import shiftmax
from quant.ref import requantize


def chunks(values, lanes: int) -> list[list[int]]:
    """``values`` as beats of ``lanes`` elements, the last padded with zeros."""
    v = [int(x) for x in values]
    out = []
    for i in range(0, len(v), lanes):
        b = v[i:i + lanes]
        out.append(b + [0] * (lanes - len(b)))
    return out


@dataclass
class RequantCase:
    """One requant op: accumulators, ``(mult, shift)``, output format, expected outputs."""

    acc: np.ndarray
    mult: int
    shift: int
    fmt: ActFormat

    @property
    def expected(self) -> np.ndarray:
        return requantize(self.acc, self.mult, self.shift, self.fmt)


def requant_cases(rng: np.random.Generator, acc_bits: int, count: int, elems: int
                  ) -> list[RequantCase]:
    """Edge ops first (the accumulator extremes with the largest multiplier, ties at both
    signs, ``mult = 0``, shift 0 and 62), then random ops with ratios of realistic matmuls."""
    hi, lo = (1 << (acc_bits - 1)) - 1, -(1 << (acc_bits - 1))
    mmax = (1 << 31) - 1
    fmts = [ActFormat(8, True), ActFormat(8), ActFormat(4, True), ActFormat(16, True),
            ActFormat(2, True), ActFormat(1)]
    edge = np.array([hi, lo, 0, 1, -1] * elems)[:elems]
    ties = (2 * rng.integers(-40, 40, size=elems) + 1) << 6
    out = [RequantCase(edge, mmax, 62, ActFormat(16, True)),
           RequantCase(edge, mmax, 31, ActFormat(8, True)),
           RequantCase(edge, 0, 0, ActFormat(8, True)),
           RequantCase(edge, 1, 0, ActFormat(16, True)),
           RequantCase(np.clip(ties, lo, hi), 1, 7, ActFormat(16, True)),
           RequantCase(np.clip(ties, lo, hi), 3, 8, ActFormat(8, True))]
    while len(out) < count:
        ratio = 2.0 ** rng.uniform(-24, 0)
        mult, shift = dyadic(ratio)
        span = int(min(hi, 2.0 ** rng.uniform(4, acc_bits - 1)))
        acc = rng.integers(max(lo, -span), span + 1, size=elems)
        if rng.random() < 0.2:
            acc[rng.integers(0, elems)] = lo if rng.random() < 0.5 else hi
        out.append(RequantCase(acc, mult, shift, fmts[int(rng.integers(0, len(fmts)))]))
    return out


@dataclass
class SoftmaxCase:
    """One softmax op over ``rows`` rows of scores (accumulators of a QK^T matmul), with the
    matmul's requantizer ``(mult, shift, fmt)`` applied first (R11d, R14)."""

    acc: np.ndarray  # (rows, n)
    mult: int
    shift: int
    fmt: ActFormat
    x0: int
    n: int
    out_bits: int

    @property
    def x(self) -> np.ndarray:
        return requantize(self.acc, self.mult, self.shift, self.fmt)

    @property
    def expected(self) -> np.ndarray:
        return shiftmax(self.x.T, self.x0, self.n, self.out_bits).T


def softmax_case(rng: np.random.Generator, rows: int, length: int, acc_bits: int, *,
                 kind: str = "random") -> SoftmaxCase:
    """A softmax op of ``rows x length`` scores. ``kind``: ``random`` (a random input scale
    ``2**-8 .. 1``, ratio and format), ``extreme`` (accumulators at both extremes so the
    requantized scores clamp, rows all equal, one spike; the coarsest and finest scales)."""
    hi, lo = (1 << (acc_bits - 1)) - 1, -(1 << (acc_bits - 1))
    fmt = [ActFormat(8, True), ActFormat(8), ActFormat(6, True), ActFormat(16, True)][
        int(rng.integers(0, 4))]
    out_bits = int(rng.choice([8, 7, 4, 16]))
    if kind == "extreme":
        scale = float(rng.choice([1.0, 2.0 ** -10, 0.75]))
        acc = rng.choice(np.array([hi, lo, 0]), size=(rows, length))
        acc[0] = hi
        if rows > 1:
            acc[1] = lo
            acc[1, length // 2] = hi
        mult, shift = dyadic(2.0 ** rng.uniform(-20, -8))
    else:
        scale = 2.0 ** rng.uniform(-8, 0)
        span = int(min(hi, 2.0 ** rng.uniform(8, acc_bits - 1)))
        acc = rng.integers(max(lo, -span), span + 1, size=(rows, length))
        mult, shift = dyadic(2.0 ** rng.uniform(-16, -4) * (1 << 12) / span)
    x0 = exp_x0(scale)
    n = exp_bits(length, x0, out_bits, 15)
    return SoftmaxCase(acc, mult, shift, fmt, x0, n, out_bits)


@dataclass
class GeluCase:
    """One gelu op: inputs of ``fmt``, the layer's attrs and output format."""

    x: np.ndarray
    fmt: ActFormat
    attrs: dict
    out_fmt: ActFormat

    @property
    def expected(self) -> np.ndarray:
        from quant.ops.gelu import shift_gelu

        a = self.attrs
        y = shift_gelu(self.x, a["x0"], a["n"], a["p"])
        return requantize(y, a["mult"], a["shift"], self.out_fmt)


def gelu_case(rng: np.random.Generator, elems: int, fmt: ActFormat, *,
              extreme: bool = False) -> GeluCase:
    """A gelu op of ``elems`` inputs of ``fmt``: random input and output scales and sigmoid
    bits; ``extreme``: the format's ends, 0 and ±1 first, the coarsest and finest scales."""
    from quant.ops.gelu import gelu_params

    out_fmt = [ActFormat(8, True), ActFormat(8), ActFormat(4, True), ActFormat(16, True)][
        int(rng.integers(0, 4))]
    x = rng.integers(fmt.qmin, fmt.qmax + 1, size=elems)
    if extreme:
        ends = np.array([fmt.qmin, fmt.qmax, 0, 1, -1 if fmt.signed else 2])
        x[:len(ends)] = ends[:elems]
        s_in = float(rng.choice([1.0, 2.0 ** -10, 0.3]))
    else:
        s_in = 2.0 ** rng.uniform(-10, -1)
    p = 16 if extreme else int(rng.integers(2, 17))
    s_out = s_in * 2.0 ** rng.uniform(-2, 4)
    return GeluCase(x, fmt, gelu_params(s_in, s_out, p), out_fmt)


@dataclass
class LayerNormCase:
    """One layernorm op: ``x (C, T)`` of ``fmt``, the layer's shift, gamma, beta and output
    format; the unit normalizes token (column) by token."""

    x: np.ndarray
    fmt: ActFormat
    shift: int
    gamma: np.ndarray
    beta: np.ndarray
    out_fmt: ActFormat

    @property
    def expected(self) -> np.ndarray:
        from quant.ops.layernorm import normalize

        z = normalize(self.x)
        return requantize(z * self.gamma[:, None] + self.beta[:, None], 1, self.shift,
                          self.out_fmt)


def layernorm_case(rng: np.random.Generator, channels: int, tokens: int, fmt: ActFormat, *,
                   extreme: bool = False) -> LayerNormCase:
    """A layernorm op of ``tokens`` tokens of ``channels`` features: random float gamma
    (some exactly 0), beta and output scale through ``layernorm_params``; ``extreme``: a
    constant token (variance 0), a token at both ends of the format, a single outlier, and
    tokens whose mean is a tie of round half to even (of both signs)."""
    from quant.ops.layernorm import layernorm_params

    x = rng.integers(fmt.qmin, fmt.qmax + 1, size=(channels, tokens))
    if extreme:
        x[:, 0] = fmt.qmax
        if tokens > 1:
            x[:, 1] = np.where(np.arange(channels) % 2 == 0, fmt.qmin, fmt.qmax)
        if tokens > 2:
            x[:, 2] = fmt.qmin
            x[channels // 2, 2] = fmt.qmax
        half = channels // 2
        if tokens > 3:  # sum = 1.5 C (C even): the mean's tie, rounded up to the even 2
            x[:, 3] = 1
            x[0, 3] = 1 + half
        if tokens > 4 and fmt.signed:  # sum = -1.5 C: rounded down to the even -2
            x[:, 4] = -1
            x[0, 4] = -1 - half
    gamma = rng.normal(1.0, 0.5, size=channels)
    gamma[rng.random(channels) < 0.1] = 0.0
    beta = rng.normal(0.0, 0.5, size=channels)
    out_fmt = [ActFormat(8, True), ActFormat(8), ActFormat(4, True), ActFormat(16, True)][
        int(rng.integers(0, 4))]
    attrs, t = layernorm_params(gamma, beta, 2.0 ** rng.uniform(-6, -1))
    return LayerNormCase(x, fmt, attrs["shift"], t["gamma"], t["beta"], out_fmt)


@dataclass
class PosEmbedCase:
    """One pos_embed op: patch tokens ``x (D, Np)`` of ``fmt``, the layer's attrs (``cls``,
    ``mult``, ``shift``, ``out_shift``), its table ``(D, T)`` and output format."""

    x: np.ndarray
    fmt: ActFormat
    attrs: dict
    table: np.ndarray
    out_fmt: ActFormat

    @property
    def expected(self) -> np.ndarray:
        """What :data:`quant.ops.embed.POS_EMBED` computes, ``(D, T)``."""
        from types import SimpleNamespace

        from quant.ops.embed import POS_EMBED

        layer = SimpleNamespace(attrs=self.attrs, tensors={"table": self.table},
                                out=SimpleNamespace(fmt=self.out_fmt))
        return POS_EMBED.run(layer, [self.x], [self.fmt], None)

    def lanes(self, rng: np.random.Generator) -> list[dict]:
        """The op's input stream, element by element in output order (``d * T + t``): the
        table word, the class-token flag and ``x`` (random in a class-token slot, which the
        unit must ignore)."""
        d, tokens = self.table.shape
        cls = int(bool(self.attrs["cls"]))
        out = []
        for f in range(d):
            for t in range(tokens):
                slot = cls and t == 0
                x = int(rng.integers(self.fmt.qmin, self.fmt.qmax + 1)) if slot \
                    else int(self.x[f, t - cls])
                out.append({"x": x, "cls": int(slot), "table": int(self.table[f, t])})
        return out


def pos_embed_case(rng: np.random.Generator, features: int, patches: int, fmt: ActFormat, *,
                   kind: str = "random") -> PosEmbedCase:
    """A pos_embed op of ``features x patches`` patch tokens of ``fmt``. ``random``: float
    position embeddings and class token through ``pos_embed_params`` at random scales, with
    or without the class token; ``extreme``: the format's ends with the largest multiplier
    and shift 0, tables at +-2**62 (the largest the op allows), 0 and +-1, out_shift 0, 62
    or the one that spreads ``x * mult`` over the output range, the class token; ``ends``:
    multiplier 0 or the largest with shift 31 or 62, small tables; ``ties``:
    branch products and sums at rounding ties of both signs."""
    from quant.ops.add import BRANCH_LIMIT
    from quant.ops.embed import pos_embed_params

    out_fmt = [ActFormat(8, True), ActFormat(8), ActFormat(4, True), ActFormat(16, True)][
        int(rng.integers(0, 4))]
    x = rng.integers(fmt.qmin, fmt.qmax + 1, size=(features, patches))
    if kind == "random":
        cls = bool(rng.random() < 0.7)
        tokens = patches + int(cls)
        s_in = 2.0 ** rng.uniform(-8, -1)
        s_out = s_in * 2.0 ** rng.uniform(-2, 3)
        pos = rng.normal(0.0, 0.5, size=(features, tokens)) * s_out * 64
        cvec = rng.normal(0.0, 1.0, size=features) * s_out * 64 if cls else None
        attrs, t = pos_embed_params(s_in, s_out, pos, cvec, int(rng.integers(0, 13)))
        return PosEmbedCase(x, fmt, attrs, t["table"], out_fmt)
    tokens = patches + 1
    if kind == "ends":  # the other ends of the branch's attrs: mult 0, shifts 31 and 62
        mult = int(rng.choice([0, (1 << 31) - 1]))
        attrs = {"cls": True, "mult": mult, "shift": int(rng.choice([31, 62])),
                 "out_shift": int(rng.choice([0, 1, 2]))}
        table = rng.integers(-300, 301, size=(features, tokens))
        return PosEmbedCase(x, fmt, attrs, table.astype(np.int64), out_fmt)
    if kind == "ties":  # x * mult / 2**shift and the sum / 2**out_shift land on halves
        attrs = {"cls": True, "mult": 3, "shift": 1, "out_shift": 1}
        table = (2 * rng.integers(-40, 40, size=(features, tokens)) + 1)
        return PosEmbedCase(x, fmt, attrs, table.astype(np.int64), ActFormat(16, True))
    ends = np.array([fmt.qmin, fmt.qmax, 0, 1, fmt.qmax - 1])
    x.flat[:min(x.size, len(ends))] = ends[:x.size]
    table = rng.choice(np.array([BRANCH_LIMIT, -BRANCH_LIMIT, 0, 1, -1], np.int64),
                       size=(features, tokens))
    table[0, :] = BRANCH_LIMIT
    table[-1, :] = -BRANCH_LIMIT
    # 0: every sum clamps; 62: the table alone decides; else x * mult spans the output range
    out_shift = int(rng.choice([0, 62, fmt.bits + 31 - out_fmt.bits]))
    attrs = {"cls": True, "mult": (1 << 31) - 1, "shift": 0, "out_shift": out_shift}
    return PosEmbedCase(x, fmt, attrs, table, out_fmt)
