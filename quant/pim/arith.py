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

ADC (per conversion, ``v`` the analog sum in units of the ADC step ``Δ = 2**adc_shift``)::

    v   = p / Δ
    v   = v * (1 − β * |v| / full_code)    (transfer curve; β = 0 is linear)
    v  += σ_lsb * N(0, 1)                   (thermal noise, redrawn per conversion)
    code = clip(round_half_even(v), code_min, code_max)

Signed conversions (native) use ``code_min = −(2**(b−1) − 1)``, ``code_max = 2**(b−1) − 1``;
unsigned ones ``0 .. 2**b − 1``. ``full_code`` is ``code_max``. The digital result is
``sum(code * Δ * weight)``, an integer. The step is a power of two chosen from the largest
possible group sum ``P`` (bounds of the formats, not the data) and the ADC range ``R``
(``code_max``), scaled by ``range_fraction`` ρ (the fraction of ``P`` the ADC covers;
real group sums rarely approach ``P``): ``adc_shift = max(0, ceil(log2(ρ * P / R)))``.
With enough ADC bits (``R >= P``) the step is 1, nothing clips, and the result equals the
integer GEMM exactly — tested.

With ``β = 0`` and ``σ = 0`` every step is integer arithmetic, so the kernel, the torch
forward and the independent test reference agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from quant.errors import ConfigError, check_choice, check_int_range, check_real

PIM_SCHEMES = ("native", "differential", "bit_serial")


@dataclass(frozen=True)
class PimArith:
    """What a PIM macro does to the numbers (see the module docstring).

    Members:
        scheme: ``native``, ``differential`` or ``bit_serial``.
        group_size: inputs summed per conversion (crossbar rows activated together),
            1..2^20 (at most the macro's rows).
        cell_bits: bits one cell stores (unsigned magnitude), 1..8.
        adc_bits: ADC resolution, 1..16.
        range_fraction: fraction of the worst-case group sum the ADC range covers, (0, 1].
        nonlinearity: β of the compressive transfer curve, [0, 1); 0 is linear.
        noise_lsb: standard deviation of thermal noise at the ADC input, in LSB, >= 0.
    """

    scheme: str = "native"
    group_size: int = 64
    cell_bits: int = 4
    adc_bits: int = 7
    range_fraction: float = 1.0
    nonlinearity: float = 0.0
    noise_lsb: float = 0.0

    def __post_init__(self) -> None:
        check_choice("scheme", self.scheme, PIM_SCHEMES)
        check_int_range("group_size", self.group_size, 1, 1 << 20)
        check_int_range("cell_bits", self.cell_bits, 1, 8)
        check_int_range("adc_bits", self.adc_bits, 1, 16)
        check_real("range_fraction", self.range_fraction, 0, 1, lo_open=True)
        check_real("nonlinearity", self.nonlinearity, 0, 1, hi_open=True)
        check_real("noise_lsb", self.noise_lsb, 0)

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
    ``(sign, shift)`` per input step. ``adc_shift`` is ``log2`` of the ADC step of each
    slice (one per slice).
    """

    arith: PimArith
    w_bits: int
    a_bits: int
    a_signed: bool
    slices: tuple[tuple[int, int, int, int], ...]
    planes: tuple[tuple[int, int], ...]
    adc_shift: tuple[int, ...]

    @property
    def conversions_per_group(self) -> int:
        """ADC conversions per (group, output column) of the GEMM, per activation vector."""
        cols = 2 if self.arith.scheme == "differential" else 1
        return cols * len(self.slices) * len(self.planes)

    @property
    def columns_per_output(self) -> int:
        """Crossbar columns one output (weight row) occupies."""
        return 2 if self.arith.scheme == "differential" else len(self.slices)


def plan(arith: PimArith, w_bits: int, a_bits: int, a_signed: bool = False) -> PimPlan:
    """Decompose ``w_bits`` signed weights and ``a_bits`` activations for ``arith``.

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
    shifts = tuple(
        max(0, math.ceil(math.log2(arith.range_fraction * p / r))) if p > 0 else 0
        for p in worst
    )
    return PimPlan(arith, w_bits, a_bits, a_signed, slices, planes, shifts)


def slice_values(w: int, lo: int, hi: int, w_bits: int) -> int:
    """Unsigned value of bits ``lo..hi-1`` of ``w`` in ``w_bits``-bit two's complement."""
    return ((w & ((1 << w_bits) - 1)) >> lo) & ((1 << (hi - lo)) - 1)
