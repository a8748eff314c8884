"""Number formats: the one definition of every weight and activation format in fpim.

Every weight format here is *normalized*: its levels lie in [-1, 1] and a per-row scale
``alpha`` maps them to real weights (``w ≈ alpha * level``, arXiv 2012.04240). Each level is
an integer divided by the format's ``denominator``::

    level = int_level / denominator

so a layer's accumulator holds ``sum(int_level * x)`` and the factor
``alpha / denominator`` (times the activation scale) is folded into the integer requantizer.

Code words are the ``bits``-wide bit patterns the hardware stores, held as non-negative
integers in ``[0, 2**bits)``:

* **fixed** (m bits): two's-complement ``k`` in ``-(2**(m-1)-1) .. 2**(m-1)-1`` (the most
  negative pattern is unused: the set is symmetric). ``int_level = k``,
  ``denominator = 2**(m-1) - 1``. Hardware: one signed multiply ``k * x`` (a DSP slice).
* **pot** (m bits): sign bit (MSB) and an (m-1)-bit exponent field ``e``; ``e = 0`` is zero,
  otherwise ``int_level = ±2**(e-1)`` with ``denominator = 2**E``, ``E = min(2**(m-1)-2,
  POT_MAX_EXPONENT)`` (magnitude ``2**-(E+1-e)``); the words with ``e - 1 > E`` are not codes.
  Hardware: ``±(x << (e-1))``, one shift. ``E`` is capped because the requantizer divides by
  the denominator: see :data:`POT_MAX_EXPONENT` (the cap binds from PoT-6 on).
* **sp2** (m = 1 + m1 + m2 bits, m1 = ceil((m-1)/2), m2 = floor((m-1)/2)): sign bit (MSB),
  an m1-bit field ``i1`` and an m2-bit field ``i2`` (LSBs). ``q1 = 0`` if ``i1 = 0`` else
  ``2**-i1``; likewise ``q2`` from ``i2``; magnitude ``q1 + q2``. With ``S = 2**m1 - 1``:
  ``int_level = ±((1 << (S-i1) if i1) + (1 << (S-i2) if i2))``, ``denominator = 2**S``.
  Hardware: ``±((x << (S-i1)) + (x << (S-i2)))``, two shifts and an add (LUTs and a carry
  chain). Some levels have two code words (e.g. 1/2 = 2^-1 + 0 = 0 + 2^-1); the
  *canonical* word of a level is the smallest word that represents it.

**Encoding** (float → code word) picks the nearest level after clipping to [-1, 1]; a value
exactly half-way between two levels (in float64 distance ``abs(x - level)``) goes to the
level of smaller magnitude. Zero is always encoded as word 0.

**F8Net** (arXiv 2202.05239): 8-bit words, value ``q * 2**-fl``; signed ``q`` in
``-127..127`` with ``fl`` in 0..7, unsigned ``q`` in ``0..255`` with ``fl`` in 0..8. A signed
F8Net weight is exactly a fixed-8 weight with ``alpha = 127 * 2**-fl`` (same words, same
multiply); what differs is that its requantization is a pure shift.

**Activations** are plain integers described by :class:`ActFormat` (unsigned after ReLU,
symmetric signed otherwise); their real scale lives in the layer, not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import ClassVar

import numpy as np

from quant.errors import ConfigError, ShapeError, check_bool, check_choice, check_int_range


class Scheme(IntEnum):
    """Per-row scheme id, as stored in artifacts and streamed to the hardware."""

    FIXED = 0
    SP2 = 1
    POT = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object) -> Scheme:
        """Accept a Scheme, its id or its name (``"fixed"``, ``"sp2"``, ``"pot"``)."""
        if isinstance(value, Scheme):
            return value
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls[value.upper()]
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            if int(value) in {s.value for s in cls}:
                return cls(int(value))
        names = ", ".join(s.label for s in cls)
        raise ConfigError(f"scheme must be one of {names}, not {value!r}")


#: Largest exponent ``E`` of a PoT denominator ``2**E`` (smallest magnitude ``2**-E``). The
#: requantizer applies a row's ``alpha / 2**E * S_in / S_out`` as ``mult * 2**-shift`` with a
#: ``mult_bits``-bit multiplier and a right shift of at most ``max_shift``
#: (:data:`quant.requant.REQUANTIZER`: 16 and 31); ``E = max_shift - mult_bits`` keeps all 16
#: multiplier bits whenever ``alpha * S_in / S_out >= 1/2`` (as for the fixed rows), where a
#: larger ``E`` would leave the multiplier a few bits or none: a PoT-6 row with ``2**30`` gave
#: multipliers of 0 .. 121. Smaller magnitudes contribute below one output step anyway.
#: tests/quant/test_formats.py checks the relation to REQUANTIZER (formats cannot import it).
POT_MAX_EXPONENT = 15

#: Allowed bit widths per weight scheme. SP2 needs m1, m2 >= 1 and its 8-bit form already
#: shifts by up to 15. PoT-7 and PoT-8 have PoT-6's levels (their further exponents lie beyond
#: POT_MAX_EXPONENT): the PoT rows of a layer whose fixed rows are 7 or 8 bits wide.
WEIGHT_BITS: dict[Scheme, range] = {
    Scheme.FIXED: range(2, 17),
    Scheme.SP2: range(3, 9),
    Scheme.POT: range(2, 9),
}


def _nearest_index(levels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of sorted ``levels`` for each ``x``; ties → smaller |level|."""
    n = levels.size
    i = np.clip(np.searchsorted(levels, x), 1, n - 1)
    lo = levels[i - 1]
    hi = levels[i]
    d_lo = np.abs(x - lo)
    d_hi = np.abs(x - hi)
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (np.abs(hi) < np.abs(lo)))
    return np.where(pick_hi, i, i - 1)


def _as_words(words: object, bits: int) -> np.ndarray:
    w = np.asarray(words)
    if w.dtype.kind not in "iu":
        raise ShapeError(f"code words must be an integer array, not dtype {w.dtype}")
    w = w.astype(np.int64, copy=False)
    if w.size and (w.min() < 0 or w.max() >= 1 << bits):
        bad = w[(w < 0) | (w >= 1 << bits)].flat[0]
        raise ConfigError(f"code word must be in 0..{(1 << bits) - 1} for {bits} bits, not {bad}")
    return w


@dataclass(frozen=True)
class WeightFormat:
    """A normalized weight format (levels in [-1, 1]); see the module docstring.

    Use :func:`weight_format` to build one; the subclasses differ only in how a code word
    decodes to an integer level and in the hardware operation they perform.
    """

    bits: int

    scheme: ClassVar[Scheme]

    # -- what a subclass defines -------------------------------------------------------
    @property
    def denominator(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def _int_level_of_word(self, word: int) -> int | None:  # pragma: no cover - abstract
        """Integer level of one word, or None if the word is not a valid code."""
        raise NotImplementedError

    def hw_mul(self, words: object, x: object) -> np.ndarray:  # pragma: no cover - abstract
        """The exact integer operation the hardware performs: ``int_level(word) * x``."""
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.scheme.label

    @property
    def max_abs_int(self) -> int:
        """Largest |int_level| (the level 1.0 is always present, so this is the denominator)."""
        return self.denominator

    @cached_property
    def int_level_table(self) -> np.ndarray:
        """int64 table indexed by code word; invalid words hold 0 (see :attr:`valid_words`)."""
        vals = [self._int_level_of_word(w) for w in range(1 << self.bits)]
        return np.array([0 if v is None else v for v in vals], dtype=np.int64)

    @cached_property
    def valid_words(self) -> np.ndarray:
        """Boolean mask over code words: True where the word is a code of this format."""
        return np.array(
            [self._int_level_of_word(w) is not None for w in range(1 << self.bits)], dtype=bool
        )

    @cached_property
    def int_levels(self) -> np.ndarray:
        """Sorted distinct integer levels."""
        return np.unique(self.int_level_table[self.valid_words])

    @cached_property
    def levels(self) -> np.ndarray:
        """Sorted distinct levels in [-1, 1] (float64, exact: int_level / denominator)."""
        return self.int_levels / float(self.denominator)

    @cached_property
    def canonical_words(self) -> np.ndarray:
        """For each entry of :attr:`levels`, the smallest word that encodes it."""
        table = self.int_level_table
        out = np.empty(self.int_levels.size, dtype=np.int64)
        for j, v in enumerate(self.int_levels):
            out[j] = np.flatnonzero((table == v) & self.valid_words)[0]
        return out

    def encode(self, x: object) -> np.ndarray:
        """Code words of the nearest levels to ``x`` (normalized floats; clipped to [-1, 1])."""
        xa = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(xa)):
            raise ConfigError("values to encode must be finite, not NaN or infinity")
        xa = np.clip(xa, -1.0, 1.0)
        return self.canonical_words[_nearest_index(self.levels, xa)]

    def int_level(self, words: object) -> np.ndarray:
        """Integer level of each code word (int64); invalid words raise."""
        w = _as_words(words, self.bits)
        if w.size and not self.valid_words[w].all():
            bad = w[~self.valid_words[w]].flat[0]
            raise ConfigError(f"code word {bad} is not a valid {self.name}-{self.bits} code")
        return self.int_level_table[w]

    def decode(self, words: object) -> np.ndarray:
        """Level of each code word, float64 in [-1, 1]."""
        return self.int_level(words) / float(self.denominator)

    def describe_op(self) -> str:
        """One line saying what the hardware does with a code word."""
        raise NotImplementedError  # pragma: no cover


def _sign_extend(w: np.ndarray, bits: int) -> np.ndarray:
    return np.where(w >= 1 << (bits - 1), w - (1 << bits), w)


@dataclass(frozen=True)
class FixedFormat(WeightFormat):
    """Symmetric fixed point: levels k / (2**(m-1) - 1). Hardware: one multiply (DSP)."""

    scheme: ClassVar[Scheme] = Scheme.FIXED

    @property
    def denominator(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def _int_level_of_word(self, word: int) -> int | None:
        k = word - (1 << self.bits) if word >= 1 << (self.bits - 1) else word
        return None if k == -(1 << (self.bits - 1)) else k

    def hw_mul(self, words: object, x: object) -> np.ndarray:
        k = _sign_extend(_as_words(words, self.bits), self.bits)
        return k * np.asarray(x, dtype=np.int64)

    def describe_op(self) -> str:
        return f"k * x, k = word as {self.bits}-bit two's complement (one multiplier)"


@dataclass(frozen=True)
class PotFormat(WeightFormat):
    """Power of two: ±{0, 2**-E, ..., 1/2, 1}, ``E = min(2**(m-1)-2, POT_MAX_EXPONENT)``.
    Hardware: one shift (LUTs)."""

    scheme: ClassVar[Scheme] = Scheme.POT

    @property
    def denominator(self) -> int:
        return 1 << min((1 << (self.bits - 1)) - 2, POT_MAX_EXPONENT)

    def fields(self, words: object) -> tuple[np.ndarray, np.ndarray]:
        """(sign, e) fields of each word."""
        w = _as_words(words, self.bits)
        return w >> (self.bits - 1), w & ((1 << (self.bits - 1)) - 1)

    def _int_level_of_word(self, word: int) -> int | None:
        sign, e = word >> (self.bits - 1), word & ((1 << (self.bits - 1)) - 1)
        mag = 0 if e == 0 else 1 << (e - 1)
        if mag > self.denominator:  # a level above 1: beyond POT_MAX_EXPONENT
            return None
        return -mag if sign else mag

    def hw_mul(self, words: object, x: object) -> np.ndarray:
        sign, e = self.fields(words)
        xa = np.asarray(x, dtype=np.int64)
        mag = np.where(e == 0, 0, np.left_shift(xa, np.maximum(e - 1, 0)))
        return np.where(sign == 1, -mag, mag)

    def describe_op(self) -> str:
        return "sign ? -(x << (e-1)) : (x << (e-1)), zero when e = 0 (one shifter)"


@dataclass(frozen=True)
class Sp2Format(WeightFormat):
    """Sum of two powers of two (arXiv 2012.04240). Hardware: two shifts and an add (LUTs)."""

    scheme: ClassVar[Scheme] = Scheme.SP2

    @property
    def m1(self) -> int:
        return (self.bits - 1 + 1) // 2

    @property
    def m2(self) -> int:
        return (self.bits - 1) // 2

    @property
    def shift_base(self) -> int:
        """S = 2**m1 - 1: a field value i becomes a left shift by S - i."""
        return (1 << self.m1) - 1

    @property
    def denominator(self) -> int:
        return 1 << self.shift_base

    def fields(self, words: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sign, i1, i2) fields of each word."""
        w = _as_words(words, self.bits)
        return w >> (self.bits - 1), (w >> self.m2) & ((1 << self.m1) - 1), w & ((1 << self.m2) - 1)

    def _int_level_of_word(self, word: int) -> int | None:
        sign, i1, i2 = (int(a) for a in self.fields(np.array(word)))
        s = self.shift_base
        mag = (1 << (s - i1) if i1 else 0) + (1 << (s - i2) if i2 else 0)
        return -mag if sign else mag

    def hw_mul(self, words: object, x: object) -> np.ndarray:
        sign, i1, i2 = self.fields(words)
        xa = np.asarray(x, dtype=np.int64)
        s = self.shift_base
        t1 = np.where(i1 == 0, 0, np.left_shift(xa, s - i1))
        t2 = np.where(i2 == 0, 0, np.left_shift(xa, s - i2))
        mag = t1 + t2
        return np.where(sign == 1, -mag, mag)

    def describe_op(self) -> str:
        s = self.shift_base
        return f"±((x << ({s}-i1)) + (x << ({s}-i2))), a term is 0 when its field is 0"


_FORMAT_CLASSES: dict[Scheme, type[WeightFormat]] = {
    Scheme.FIXED: FixedFormat,
    Scheme.SP2: Sp2Format,
    Scheme.POT: PotFormat,
}


def weight_format(scheme: object, bits: object) -> WeightFormat:
    """The weight format for ``scheme`` (name, id or :class:`Scheme`) at ``bits`` bits."""
    s = Scheme.parse(scheme)
    r = WEIGHT_BITS[s]
    b = check_int_range("bits", bits, r.start, r.stop - 1, f"for {s.label}")
    return _cached_format(s, b)


_FORMAT_CACHE: dict[tuple[Scheme, int], WeightFormat] = {}


def _cached_format(s: Scheme, b: int) -> WeightFormat:
    key = (s, b)
    if key not in _FORMAT_CACHE:
        _FORMAT_CACHE[key] = _FORMAT_CLASSES[s](bits=b)
    return _FORMAT_CACHE[key]


# ---------------------------------------------------------------------------------------
# F8Net fixed point and activations
# ---------------------------------------------------------------------------------------

#: F8Net's std rule constants (official code): fl = floor(log2(C / sigma)).
F8_STD_CONSTANT = {True: 40.0, False: 70.0}


@dataclass(frozen=True)
class F8Format:
    """F8Net 8-bit fixed point (arXiv 2202.05239): value = q * 2**-fl.

    Signed: q in -127..127, fl in 0..7. Unsigned: q in 0..255, fl in 0..8. Code words are
    the 8-bit patterns of q (two's complement when signed).
    """

    fl: int
    signed: bool = True
    bits: int = 8

    def __post_init__(self) -> None:
        check_int_range("bits", self.bits, 8, 8, "for f8 (F8Net words are 8 bits)")
        check_int_range("fl", self.fl, 0, 7 if self.signed else 8,
                        "for signed f8" if self.signed else "for unsigned f8")

    @property
    def qmin(self) -> int:
        return -127 if self.signed else 0

    @property
    def qmax(self) -> int:
        return 127 if self.signed else 255

    @property
    def step(self) -> float:
        return 2.0 ** -self.fl

    @property
    def levels(self) -> np.ndarray:
        return np.arange(self.qmin, self.qmax + 1, dtype=np.float64) * self.step

    def encode(self, x: object) -> np.ndarray:
        """q of the nearest level (clamped); ties go to the smaller magnitude, as for weights."""
        xa = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(xa)):
            raise ConfigError("values to encode must be finite, not NaN or infinity")
        return _nearest_index(self.levels, xa).astype(np.int64) + self.qmin

    def decode(self, q: object) -> np.ndarray:
        return np.asarray(q, dtype=np.int64) * self.step

    def word(self, q: object) -> np.ndarray:
        return np.asarray(q, dtype=np.int64) & 0xFF

    @staticmethod
    def fl_from_std(sigma: float, signed: bool = True) -> int:
        """F8Net's rule: fl = floor(log2(C / sigma)), C = 40 signed / 70 unsigned, clamped."""
        hi = 7 if signed else 8
        if not math.isfinite(sigma) or sigma < 0:
            raise ConfigError(f"sigma must be a finite non-negative number, not {sigma!r}")
        if sigma == 0:
            return hi
        return int(min(max(math.floor(math.log2(F8_STD_CONSTANT[signed] / sigma)), 0), hi))

    @staticmethod
    def search_fl(x: object, signed: bool = True) -> int:
        """FL minimizing the squared error of encoding ``x``; starts from :meth:`fl_from_std`.

        Every allowed FL is tried (there are at most 9); ties go to the std-rule FL, then to
        the smaller FL.
        """
        xa = np.asarray(x, dtype=np.float64).ravel()
        if xa.size == 0 or not np.all(np.isfinite(xa)):
            raise ConfigError("values for the fl search must be finite and non-empty")
        start = F8Format.fl_from_std(float(np.std(xa)), signed)
        best, best_err = start, np.inf
        for fl in [start] + [f for f in range(0, 8 if signed else 9) if f != start]:
            fmt = F8Format(fl=fl, signed=signed)
            err = float(np.sum((xa - fmt.decode(fmt.encode(xa))) ** 2))
            if err < best_err:  # strict: ties keep the earlier candidate
                best, best_err = fl, err
        return best


@dataclass(frozen=True)
class ActFormat:
    """Integer activation format: unsigned 0..2**b-1, or symmetric signed ±(2**(b-1)-1)."""

    bits: int
    signed: bool = False

    def __post_init__(self) -> None:
        check_bool("activation signed", self.signed)
        check_int_range("activation bits", self.bits, 1 if not self.signed else 2, 16)

    @property
    def qmin(self) -> int:
        return -((1 << (self.bits - 1)) - 1) if self.signed else 0

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_abs(self) -> int:
        return max(abs(self.qmin), self.qmax)

    def check(self, x: np.ndarray, name: str = "activations") -> np.ndarray:
        """Return ``x`` as int64 after checking dtype and range; raise otherwise."""
        xa = np.asarray(x)
        if xa.dtype.kind not in "iu":
            raise ShapeError(f"{name} must be an integer array, not dtype {xa.dtype}")
        xa = xa.astype(np.int64, copy=False)
        if xa.size and (xa.min() < self.qmin or xa.max() > self.qmax):
            bad = xa[(xa < self.qmin) | (xa > self.qmax)].flat[0]
            raise ConfigError(
                f"{name} must lie in {self.qmin}..{self.qmax} for {self}, not {int(bad)}"
            )
        return xa

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits}"


SCHEME_NAMES = ("fixed", "pot", "sp2", "f8")


def format_table(scheme: str, bits: int, fl: int | None = None, signed: bool = True) -> dict:
    """Level set and code table of a format, as plain data (for the CLI and docs)."""
    check_choice("scheme", scheme, SCHEME_NAMES)
    if scheme == "f8":
        fmt8 = F8Format(fl=4 if fl is None else fl, signed=signed, bits=bits)
        qs = np.arange(fmt8.qmin, fmt8.qmax + 1)
        codes = [
            {"word": int(fmt8.word(q)), "bits": format(int(fmt8.word(q)), "08b"),
             "int_level": int(q), "level": float(q) * fmt8.step}
            for q in qs
        ]
        return {
            "scheme": "f8", "bits": 8, "fl": fmt8.fl, "signed": signed,
            "levels": [float(v) for v in fmt8.levels], "codes": codes,
            "denominator": 1 << fmt8.fl,
            "op": "q * x (8x8 multiply); requantization is a pure shift",
        }
    if fl is not None:
        raise ConfigError(f"fl applies only to scheme f8, not {scheme!r}")
    if not signed:
        raise ConfigError(f"unsigned applies only to scheme f8, not {scheme!r}")
    fmt = weight_format(scheme, bits)
    table = fmt.int_level_table
    codes = []
    for w in range(1 << fmt.bits):
        if not fmt.valid_words[w]:
            continue
        v = int(table[w])
        codes.append({
            "word": w, "bits": format(w, f"0{fmt.bits}b"), "int_level": v,
            "level": v / fmt.denominator,
            "canonical": bool(fmt.canonical_words[np.searchsorted(fmt.int_levels, v)] == w),
        })
    return {
        "scheme": scheme, "bits": fmt.bits, "levels": [float(v) for v in fmt.levels],
        "codes": codes, "denominator": fmt.denominator, "op": fmt.describe_op(),
    }
