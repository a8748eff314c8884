"""What the GEMM engine's requantizer computes and which parameters it accepts.

This is the one definition that the torch exporter, the simulator's artifact check
(:func:`sim.functional.check_artifact`), the resource model and the RTL generator
(:mod:`hw.postproc`, :mod:`hw.engine`, :mod:`hw.accel`, :mod:`hw.generate`) share. Each output
row of a GEMM layer leaves the engine through the post-processor, which computes exactly what
:func:`quant.ref.requantize` computes::

    y = clamp(relu(round_half_even((acc + bias) * mult / 2**shift)))

for the parameters :data:`REQUANTIZER` accepts on an engine with ``acc_bits``-bit accumulators:

* ``acc``: signed, ``acc_bits`` wide (``engine.acc_bits``, :attr:`Requantizer.acc_bits`); the
  simulator proves with :func:`quant.ref.check_accumulator` that no partial sum overflows it.
* ``bias``: signed, as wide as the accumulator, added before the multiplier.
* ``mult``: unsigned, ``mult_bits`` wide: ``0 .. 2**mult_bits - 1``.
* ``shift``: a right shift by ``0 .. min(max_shift, acc_bits + mult_bits)`` with round half to
  even. No left shifts: quant.ref reads a negative shift ``-L`` as a left shift, which is the
  multiplier ``mult * 2**L`` with shift 0, exactly; when that does not fit the multiplier,
  every nonzero ``acc + bias`` gives at least ``2**mult_bits``, which any output format of at
  most ``max_out_bits`` clamps anyway. The exporter writes GEMM layers within this range; an
  artifact with a negative shift is refused.
* ``relu``: on or off per layer (a bit per row in the RTL), applied before the clamp.
* clamp: to the layer's output format (:class:`quant.formats.ActFormat`: ``qmin .. qmax``,
  signed formats symmetric), at most :attr:`Requantizer.max_out_bits` wide. The host writes
  the format (bits, signedness) into each GEMM's command (:meth:`Requantizer.output_format`)
  and the RTL post-processor clamps to it; its output lanes hold any such format.
* the logits: a GEMM layer without an output format (``null``, the artifact's last layer)
  saturates at the engine's output lane, the widest signed format
  (:meth:`Requantizer.output_format` of None: ``max_out_bits`` bits, symmetric, ±32,767),
  without ReLU. This is the artifact's definition of its logits at every level: the
  reference (:func:`quant.ops.gemm.gemm_requant`), the torch twin, the simulator and the RTL
  all compute it, so their logits agree on every artifact the simulator accepts, also when
  logits leave the lane (an untrained ViT's reach 53,063 before saturation). fpim's exporter
  keeps trained logits far inside it (the shipped CNN's reach 760).
  :meth:`Requantizer.violations` with ``unclamped=True`` proves from the parameters that a
  layer's logits never saturate (``round((acc_max + |bias|) * mult / 2**shift) <=
  2**(max_out_bits - 1) - 1``); the bound is loose, and nothing requires it.
* ``(acc + bias) * mult`` must fit int64, the simulator's and quant.ref's arithmetic (the RTL
  has no such limit): with ``|acc| <= acc_max``, ``(acc_max + |bias|) * mult < 2**63``. This
  only bites for accumulators wider than ``63 - mult_bits`` bits.

The artifact format accepts more (any non-negative ``mult``, shifts -62..62: whatever quant.ref
computes); :meth:`Requantizer.violations` says why a layer cannot run on the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import ArtifactError, check_int_range
from quant.formats import ActFormat
from quant.ref import quantize_multiplier

#: Largest int64: quant.ref and the simulator compute ``(acc + bias) * mult`` in int64.
INT64_MAX = (1 << 63) - 1


def signed_range(bits: int) -> tuple[int, int]:
    """``(lo, hi)`` of a two's-complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


@dataclass(frozen=True)
class Requantizer:
    """The requantizer of the GEMM engine's post-processor (see the module docstring).

    Members:
        mult_bits: unsigned multiplier width, bits.
        max_shift: largest right shift the shift port holds (further capped at
            ``acc_bits + mult_bits``, beyond which every output is 0).
        acc_bits: smallest and largest accumulator (and bias) width, bits.
        max_out_bits: widest output format the clamp produces, bits.
    """

    mult_bits: int = 16
    max_shift: int = 31
    acc_bits: tuple[int, int] = (8, 64)
    max_out_bits: int = 16

    def mult_range(self) -> tuple[int, int]:
        """``(lo, hi)`` of the multiplier, inclusive."""
        return 0, (1 << self.mult_bits) - 1

    def shift_range(self, acc_bits: int) -> tuple[int, int]:
        """``(lo, hi)`` of the right shift with ``acc_bits``-bit accumulators, inclusive."""
        return 0, min(self.max_shift, acc_bits + self.mult_bits)

    def multiplier(self, ratio: float, acc_bits: int) -> tuple[int, int]:
        """``(mult, shift)`` with ``mult * 2**-shift ~ ratio`` inside the engine's ranges
        (:func:`quant.ref.quantize_multiplier`)."""
        lo, hi = self.shift_range(acc_bits)
        return quantize_multiplier(ratio, self.mult_bits, min_shift=lo, max_shift=hi)

    def bias_range(self, acc_bits: int) -> tuple[int, int]:
        """``(lo, hi)`` of the bias with ``acc_bits``-bit accumulators, inclusive."""
        return signed_range(acc_bits)

    def output_format(self, fmt: ActFormat | None) -> ActFormat:
        """The format the post-processor clamps to for a layer whose output format is
        ``fmt``: ``fmt`` itself, or for the logits (``None``) the engine's output lane, the
        widest signed format, at which they saturate (module docstring). The one rule of
        every level."""
        return ActFormat(self.max_out_bits, signed=True) if fmt is None else fmt

    def product_bits(self, acc_bits: int) -> int:
        """Signed width of ``(acc + bias) * mult``: ``acc_bits + 1`` bits of sum times the
        multiplier as a signed operand."""
        return acc_bits + 1 + self.mult_bits + 1

    def violations(self, where: str, acc_bits: int, mult: object, shift: object, bias: object,
                   acc_max: int | None = None, *, unclamped: bool = False) -> list[str]:
        """One line per parameter the engine cannot run, naming the first bad row; empty
        when every row can run.

        ``mult``, ``shift`` and ``bias`` are scalars or one value per row; ``acc_max`` is the
        largest ``|acc|`` (default: the accumulator's range, ``2**(acc_bits - 1)``).
        ``unclamped``: the layer has no output format (see :meth:`output_format`).
        """
        check_int_range("acc_bits", acc_bits, *self.acc_bits)
        m, s, b = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=object))
                                        for v in (mult, shift, bias)))
        a_max = 1 << (acc_bits - 1) if acc_max is None else int(acc_max)
        fields = (
            ("mult", m, self.mult_range(), f"the engine's {self.mult_bits}-bit unsigned "
                                           "multiplier"),
            ("shift", s, self.shift_range(acc_bits), "right shifts only; a left shift by L is "
                                                    "mult * 2**L"),
            ("bias", b, self.bias_range(acc_bits), f"signed, engine.acc_bits = {acc_bits}"),
        )
        out = []
        for name, vals, (lo, hi), why in fields:
            i = next((i for i, v in enumerate(vals) if not lo <= int(v) <= hi), None)
            if i is not None:
                out.append(f"{where}: {name}[{i}] must be in {lo}..{hi} ({why}), "
                           f"not {int(vals[i])}")
        reach = [a_max + abs(int(v)) for v in b]
        i = next((i for i, r in enumerate(reach) if int(m[i]) * r > INT64_MAX), None)
        if i is not None:
            out.append(f"{where}: mult[{i}] must be at most {INT64_MAX // reach[i]} (so that "
                       f"(acc + bias) * mult fits int64 with bias {int(b[i])} and |acc| up to "
                       f"{a_max}), not {int(m[i])}")
        if unclamped and not out:
            out += self._unclamped_violations(where, a_max, m, s, b)
        return out

    def _unclamped_violations(self, where: str, a_max: int, m, s, b) -> list[str]:
        """The first row whose logits may saturate at the widest signed format."""
        hi = self.output_format(None).qmax
        for i in range(len(m)):
            sh = int(s[i])
            reach = ((a_max + abs(int(b[i]))) * int(m[i]) + ((1 << sh) >> 1)) >> sh
            if reach > hi:
                return [f"{where}: out.format null (unclamped) needs |output| at most {hi} "
                        f"(the {self.max_out_bits}-bit signed output lane), but row {i} "
                        f"reaches {reach} (|acc| up to {a_max}, bias {int(b[i])}, mult "
                        f"{int(m[i])}, shift {sh}); give the layer an output format"]
        return []

    def check(self, where: str, acc_bits: int, mult: object, shift: object, bias: object,
              acc_max: int | None = None, *, unclamped: bool = False) -> None:
        """Raise :class:`~quant.errors.ArtifactError` with the first of :meth:`violations`."""
        bad = self.violations(where, acc_bits, mult, shift, bias, acc_max, unclamped=unclamped)
        if bad:
            raise ArtifactError(bad[0])


#: The requantizer every level builds, simulates and checks against.
REQUANTIZER = Requantizer()
