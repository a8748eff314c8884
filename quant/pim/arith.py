"""PIM arithmetic: the one definition of how a crossbar computes a quantized layer.

Processing-in-memory adds a quantization step that digital quantized models do not have
(PIM-QAT, arXiv 2209.08617): a GEMM ``Y = W · X`` (W: M x K signed integers of ``w_bits``,
X: K x N integers) is split along K into *groups* of ``group_size`` inputs whose products
are summed in the analog domain, and each group sum is converted by an ADC of ``adc_bits``.
The digital periphery then shifts and adds the ADC codes. This module fixes those steps;
the numba kernel (``sim.pim``) and the torch PIM-QAT layers compute exactly this.

Decomposition schemes (how signed multi-bit weights and inputs reach unipolar cells):

* ``native``: a (bipolar) cell holds the signed weight, sign plus ``cell_bits`` magnitude
  bits (``w_bits <= cell_bits + 1``); inputs are applied
  as multi-bit values at once. One signed conversion per (group, output):
  ``p = sum_k w[k] * x[k]``.
* ``differential``: ``w = w⁺ − w⁻`` with ``w⁺ = max(w, 0)``, ``w⁻ = max(−w, 0)`` in two
  columns (``w_bits − 1 <= cell_bits``); inputs must be unsigned; two unsigned
  conversions per (group, output), recombined as ``code⁺ − code⁻``.
* ``bit_serial``: inputs enter one bit plane per step (plane ``i`` has weight ``2**i``;
  for signed inputs the top plane has weight ``−2**(a_bits−1)``); the two's-complement
  weight is split into the sign bit (weight ``−2**(w_bits−1)``) and unsigned slices of
  ``cell_bits`` bits of its ``w_bits − 1`` low bits (slice ``s`` has weight
  ``2**(s*cell_bits)``), since ``w = −2**(w_bits−1)·b_sign + low_bits``. One unsigned
  conversion per (group, output, input plane, slice);
  the periphery accumulates ``±code << (i + slice_shift)``.

ADC (per conversion, ``v`` the analog sum in units of the ADC step ``Δ``)::

    v   = p / Δ
    v   = v * (1 − β * |v| / full_code)    (transfer curve; β = 0 is linear)
    v  += σ_lsb * N(0, 1)                   (thermal noise, redrawn per conversion)
    code = clip(round_half_even(v), code_min, code_max)

Signed conversions (native) use ``code_min = −(2**(b−1) − 1)``, ``code_max = 2**(b−1) − 1``;
unsigned ones ``0 .. 2**b − 1``. ``full_code`` is ``code_max``; the ADC range is
``code_max · Δ``, and a sum beyond it *clips*.

**The step** ``Δ`` comes from, in this order: the layer's calibrated range ``R`` (a
percentile of the group sums observed on calibration batches, :func:`calibrate_range`):
``Δ = R / code_max``; a fixed step ``adc_step``; else the worst-case group sum ``P`` of the
formats scaled by ``range_fraction`` ρ: ``Δ = ρ P / code_max``. Two step modes:

* ``pot_step`` (the power-of-two mode): ``Δ`` is rounded *up* to ``2**adc_shift``, so the
  conversion is a rounding right shift and the periphery shifts the code back: the result
  ``sum(code · Δ · weight)`` is the integer GEMM's scale.
* exact (``pot_step = False``): the ADC's gain is the fixed-point number ``1/Δ ≈ mult /
  2**frac`` (``mult`` with :data:`ADC_GAIN_BITS` significant bits), so ``Δ = 2**frac /
  mult`` exactly and ``code = round_half_even(p · mult / 2**frac)``. The periphery adds
  the codes unscaled (integers in units of ``Δ``) and ``Δ`` is folded into the per-row
  requantizer that follows (:attr:`PimPlan.step`).

A bit-serial weight slice of ``c`` bits has a larger worst case than the 1-bit sign slice;
in exact mode slice ``s`` converts with step ``Δ · 2**e_s`` (``e_s = ceil(log2(P_s/P_min))``)
so the periphery stays shift-and-add. With enough ADC bits (``R >= P``) and the worst-case
range, the power-of-two step is 1, nothing clips, and the result equals the integer GEMM
exactly — tested.

With ``β = 0`` and ``σ = 0`` every step is integer arithmetic (``p · mult`` then a rounding
shift), so the numba kernel, the torch forward, the periphery RTL and the independent test
reference agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from quant.errors import ConfigError, check_bool, check_choice, check_int_range, check_real
from quant.ref import round_shift

PIM_SCHEMES = ("native", "differential", "bit_serial")
#: Significant bits of the exact-mode ADC gain ``mult`` (``1/Δ ≈ mult / 2**frac``).
ADC_GAIN_BITS = 16
#: Smallest exact ADC step (keeps ``mult`` below ``2**(ADC_GAIN_BITS + 4)``).
MIN_ADC_STEP = 1 / 16


@dataclass(frozen=True)
class PimArith:
    """What a PIM macro does to the numbers (see the module docstring).

    Members:
        scheme: ``native``, ``differential`` or ``bit_serial``.
        group_size: inputs summed per conversion (crossbar rows activated together),
            1..2^20 (at most the macro's rows).
        cell_bits: bits one cell stores (unsigned magnitude), 1..8.
        adc_bits: ADC resolution, 1..16.
        range_fraction: fraction of the worst-case group sum the ADC range covers, (0, 1]
            (used when neither a calibrated range nor ``adc_step`` is given).
        nonlinearity: β of the compressive transfer curve, [0, 1); 0 is linear.
        noise_lsb: standard deviation of thermal noise at the ADC input, in LSB, >= 0.
        adc_step: the ADC step in units of the group sum, 0 (derive it from the range) or
            >= :data:`MIN_ADC_STEP`; overridden by a layer's calibrated range.
        pot_step: round the step up to a power of two (True) or keep it exact (False).
    """

    scheme: str = "native"
    group_size: int = 64
    cell_bits: int = 4
    adc_bits: int = 7
    range_fraction: float = 1.0
    nonlinearity: float = 0.0
    noise_lsb: float = 0.0
    adc_step: float = 0.0
    pot_step: bool = True

    def __post_init__(self) -> None:
        check_choice("scheme", self.scheme, PIM_SCHEMES)
        check_int_range("group_size", self.group_size, 1, 1 << 20)
        check_int_range("cell_bits", self.cell_bits, 1, 8)
        check_int_range("adc_bits", self.adc_bits, 1, 16)
        check_real("range_fraction", self.range_fraction, 0, 1, lo_open=True)
        check_real("nonlinearity", self.nonlinearity, 0, 1, hi_open=True)
        check_real("noise_lsb", self.noise_lsb, 0)
        check_real("adc_step", self.adc_step, 0)
        if 0 < self.adc_step < MIN_ADC_STEP:
            raise ConfigError(f"adc_step must be 0 (from the range) or at least "
                              f"{MIN_ADC_STEP:g}, not {self.adc_step!r}")
        check_bool("pot_step", self.pot_step)

    @property
    def signed_adc(self) -> bool:
        return self.scheme == "native"

    @property
    def code_min(self) -> int:
        return -((1 << (self.adc_bits - 1)) - 1) if self.signed_adc else 0

    @property
    def code_max(self) -> int:
        return (1 << (self.adc_bits - 1)) - 1 if self.signed_adc else (1 << self.adc_bits) - 1

    @property
    def ideal(self) -> bool:
        return self.nonlinearity == 0.0 and self.noise_lsb == 0.0

    def with_(self, **changes: object) -> PimArith:
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True)
class PimPlan:
    """How one layer's integers decompose on a macro: slices, planes and ADC steps.

    ``slices`` lists ``(weight_multiplier, shift, bits_lo, bits_hi)`` per weight slice:
    the slice holds bits ``bits_lo..bits_hi-1`` of the two's-complement weight and
    contributes ``weight_multiplier * 2**shift * code``. ``planes`` lists
    ``(sign, shift)`` per input step. Slice ``s`` converts its group sum ``p`` to
    ``round_half_even(p * adc_mult / 2**adc_shift[s])`` (clipped) and the periphery adds
    that code shifted left by ``out_shift[s]`` (plus the slice and plane shifts); the sum
    is in units of :attr:`step`. Power-of-two mode: ``adc_mult = 1``, ``out_shift =
    adc_shift``, step 1.
    """

    arith: PimArith
    w_bits: int
    a_bits: int
    a_signed: bool
    slices: tuple[tuple[int, int, int, int], ...]
    planes: tuple[tuple[int, int], ...]
    adc_shift: tuple[int, ...]
    adc_mult: int = 1
    out_shift: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.out_shift is None:
            object.__setattr__(self, "out_shift", self.adc_shift)

    @property
    def step(self) -> Fraction:
        """The factor the periphery's integer result is multiplied by to reach the integer
        GEMM's scale (``Δ`` of the first slice divided by its shift; 1 in power-of-two
        mode), folded into the requantizer."""
        return Fraction(1 << (self.adc_shift[0] - self.out_shift[0]), self.adc_mult)

    @property
    def adc_steps(self) -> tuple[float, ...]:
        """The ADC step ``Δ`` of each slice, in units of its group sum."""
        return tuple(float(Fraction(1 << s, self.adc_mult)) for s in self.adc_shift)

    def convert(self, p: np.ndarray, si: int = 0) -> np.ndarray:
        """Ideal ADC codes (int64) of the integer group sums ``p`` of slice ``si``."""
        v = round_shift(np.asarray(p, dtype=np.int64) * self.adc_mult, self.adc_shift[si])
        return np.clip(v, self.arith.code_min, self.arith.code_max)

    @property
    def conversions_per_group(self) -> int:
        """ADC conversions per (group, output column) of the GEMM, per activation vector."""
        cols = 2 if self.arith.scheme == "differential" else 1
        return cols * len(self.slices) * len(self.planes)

    @property
    def columns_per_output(self) -> int:
        """Crossbar columns one output (weight row) occupies."""
        return 2 if self.arith.scheme == "differential" else len(self.slices)


def plan(arith: PimArith, w_bits: int, a_bits: int, a_signed: bool = False,
         adc_range: float | None = None) -> PimPlan:
    """Decompose ``w_bits`` signed weights and ``a_bits`` activations for ``arith``;
    ``adc_range`` is the layer's calibrated ADC range (group-sum units, > 0), if any.

    Raises :class:`ConfigError` when the weights are wider than the cells can hold.
    """
    check_int_range("w_bits", w_bits, 2, 16)
    check_int_range("a_bits", a_bits, 1, 16)
    g, cb = arith.group_size, arith.cell_bits
    wmax = (1 << (w_bits - 1)) - 1
    amax = (1 << (a_bits - 1)) - 1 if a_signed else (1 << a_bits) - 1
    if arith.scheme == "native":
        if w_bits > cb + 1:
            raise ConfigError(f"w_bits must be at most {cb + 1} for native cells of {cb} bits "
                              f"(sign plus magnitude), not {w_bits}")
        slices = ((1, 0, 0, w_bits),)
        planes = ((1, 0),)
        worst = (g * wmax * amax,)
    elif arith.scheme == "differential":
        if w_bits - 1 > cb:
            raise ConfigError(f"w_bits must be at most {cb + 1} for differential cells of {cb} "
                              f"bits (magnitude in one cell), not {w_bits}")
        if a_signed:
            raise ConfigError("activations must be unsigned for the differential scheme "
                              "(unipolar inputs), not signed")
        slices = ((1, 0, 0, w_bits),)
        planes = ((1, 0),)
        worst = (g * wmax * amax,)
    else:
        low_bits = w_bits - 1
        s_list = [(-1, w_bits - 1, w_bits - 1, w_bits)]  # the sign bit, weight -2**(w-1)
        for lo in range(0, low_bits, cb):
            s_list.append((1, lo, lo, min(lo + cb, low_bits)))
        slices = tuple(s_list)
        planes = tuple((-1 if (a_signed and i == a_bits - 1) else 1, i) for i in range(a_bits))
        worst = tuple(g * ((1 << (hi - lo)) - 1) for _, _, lo, hi in slices)
    r = arith.code_max
    if adc_range is None and not arith.adc_step and arith.pot_step:  # each slice its own
        shifts = tuple(
            max(0, math.ceil(math.log2(arith.range_fraction * p / r))) if p > 0 else 0
            for p in worst
        )
        return PimPlan(arith, w_bits, a_bits, a_signed, slices, planes, shifts)
    rel = _slice_exponents(worst)
    if adc_range is not None:
        step = check_real("adc_range", adc_range, 0, lo_open=True) / r
    elif arith.adc_step:
        step = arith.adc_step
    else:
        step = arith.range_fraction * min(worst) / r
    if arith.pot_step:
        s0 = max(0, math.ceil(math.log2(step)))
        return PimPlan(arith, w_bits, a_bits, a_signed, slices, planes,
                       tuple(s0 + e for e in rel))
    mult, frac = adc_gain(max(step, MIN_ADC_STEP))
    return PimPlan(arith, w_bits, a_bits, a_signed, slices, planes,
                   tuple(frac + e for e in rel), mult, rel)


def adc_gain(step: float) -> tuple[int, int]:
    """``(mult, frac)`` with ``2**frac / mult ≈ step`` and ``mult`` of
    :data:`ADC_GAIN_BITS` significant bits (more for steps below 1)."""
    frac = ADC_GAIN_BITS + max(0, math.ceil(math.log2(step)))
    return max(1, round((1 << frac) / step)), frac


def _slice_exponents(worst: tuple[int, ...]) -> tuple[int, ...]:
    """``e_s = ceil(log2(P_s / P_min))`` of each slice's worst-case group sum ``P_s``."""
    base = max(1, min(worst))
    return tuple(math.ceil(math.log2(max(p, 1) / base)) for p in worst)


def sum_histogram(sums: list[np.ndarray], pl: PimPlan) -> np.ndarray:
    """Counts of ``|p| / 2**e_s`` over the group sums ``sums`` (:func:`group_sums`) of slice
    ``s``, in units of ``2**-max(e)`` (index ``i`` counts the value ``i / 2**max(e)``); add
    the histograms of several batches with :func:`add_histograms`."""
    rel = _slice_exponents(tuple((1 << (hi - lo)) - 1 for _, _, lo, hi in pl.slices))
    top = max(rel)
    counts = np.zeros(1, dtype=np.int64)
    for p, e in zip(sums, rel, strict=True):
        counts = add_histograms(counts, np.bincount((np.abs(p) << (top - e)).ravel()))
    return counts


def add_histograms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum of two count arrays of different lengths."""
    out = np.zeros(max(a.size, b.size), dtype=np.int64)
    out[:a.size] += a
    out[:b.size] += b
    return out


def calibrate_range(counts: np.ndarray, pl: PimPlan, percentile: float) -> float:
    """A layer's ADC range from the histogram of its group sums (:func:`sum_histogram`):
    the smallest ``|p|`` at or below which ``percentile`` (0, 100] % of them lie; >= 1."""
    check_real("percentile", percentile, 0, 100, lo_open=True)
    rel = _slice_exponents(tuple((1 << (hi - lo)) - 1 for _, _, lo, hi in pl.slices))
    cum = np.cumsum(counts)
    if not cum.size or cum[-1] == 0:
        return 1.0
    i = int(np.searchsorted(cum, cum[-1] * percentile / 100.0))
    return max(1.0, i / (1 << max(rel)))


def group_sums(w: np.ndarray, x: np.ndarray, pl: PimPlan) -> list[np.ndarray]:
    """Every analog group sum of ``W (M, K) · X (K, N)`` on the plan, one int64 array per
    slice in conversion order (native: (G, M, N); differential: the w⁺ then w⁻ sums,
    (2, G, M, N); bit-serial: (G, planes, M, N)). Numpy, float64 products (exact below
    2**53); for calibration and clip counts."""
    a = pl.arith
    g = a.group_size
    w = np.asarray(w, dtype=np.int64)
    x = np.asarray(x, dtype=np.int64)
    starts = range(0, w.shape[1], g)

    def sums(wm: np.ndarray, xm: np.ndarray) -> np.ndarray:
        wf, xf = wm.astype(np.float64), xm.astype(np.float64)
        return np.stack([wf[:, i:i + g] @ xf[i:i + g] for i in starts]).astype(np.int64)

    if a.scheme == "native":
        return [sums(w, x)]
    if a.scheme == "differential":
        return [np.stack([sums(np.maximum(w, 0), x), sums(np.maximum(-w, 0), x)])]
    xu = x & ((1 << pl.a_bits) - 1)
    return [np.stack([sums(slice_values(w, lo, hi, pl.w_bits), (xu >> sh) & 1)
                      for _, sh in pl.planes], axis=1) for _, _, lo, hi in pl.slices]


def clip_count(sums: list[np.ndarray], pl: PimPlan) -> tuple[int, int]:
    """``(conversions, clipped)`` of the group sums ``sums`` (:func:`group_sums`) under the
    plan's ideal ADC: a conversion clips when its rounded value lies outside the codes."""
    a = pl.arith
    total = clipped = 0
    for si, p in enumerate(sums):
        v = round_shift(p * pl.adc_mult, pl.adc_shift[si])
        total += v.size
        clipped += int(np.count_nonzero((v < a.code_min) | (v > a.code_max)))
    return total, clipped


def slice_values(w: int | np.ndarray, lo: int, hi: int, w_bits: int) -> int | np.ndarray:
    """Unsigned value of bits ``lo..hi-1`` of ``w`` in ``w_bits``-bit two's complement."""
    return ((w & ((1 << w_bits) - 1)) >> lo) & ((1 << (hi - lo)) - 1)
