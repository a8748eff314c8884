"""Fixed-point multiply-accumulate PE: one signed multiply per step (maps to a DSP48 slice)."""

from __future__ import annotations

from amaranth.hdl import Module, Value, signed

from hw.params import dsp_product
from hw.pe_base import AccumulatingPe
from quant.formats import FixedFormat


class FixedMacPe(AccumulatingPe):
    """Output-stationary PE for fixed-point weight rows (an :class:`~hw.pe_base.AccumulatingPe`).

    ``fmt`` is a :class:`quant.formats.FixedFormat`. The product is ``k * x``, ``k`` being
    the weight word read as ``bits``-bit two's complement (:meth:`FixedFormat.hw_mul`).
    """

    FORMAT = FixedFormat
    FORMAT_NAME = "a FixedFormat"

    def product(self, m: Module) -> Value:
        # w + a signed bits hold every product (-2**(w-1) * (2**a - 1) included); marked
        # for a DSP slice so that narrow (e.g. 4x4) products stay on the DSP too.
        return dsp_product(m, self.w.as_signed(), self.x,
                           signed(self.fmt.bits + self.act.bits), "product")
