"""Packed fixed-point PE: one multiplier computes one activation times 2..4 weights."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.params import act_shape, check_acc_bits, check_instance, dsp_product
from quant.errors import ConfigError, check_int_range
from quant.formats import ActFormat, FixedFormat
from sim.resources import packed_lane_bits

#: Largest operand width (weights and activations) for each lane count (sim.arch.GemmEngine's
#: packing rule: two products up to 8 bits, three or four up to 4 bits).
MAX_PACKED_BITS = {2: 8, 3: 4, 4: 4}


class PackedFixedMacPe(wiring.Component):
    """``lanes`` fixed-point PEs sharing one activation and one multiplier.

    Lane ``i`` behaves as a :class:`~hw.pe_fixed.FixedMacPe` with weight word ``w[i]``
    (value ``k_i``) and accumulator ``acc[i]``. All lanes' products come from ONE
    multiplication of unsigned operands, which Yosys maps to one DSP slice: the weight
    magnitudes packed ``S`` bits apart (:func:`sim.resources.packed_lane_bits`: the guard
    bits make each lane's magnitude product fit in its ``S`` bits, so no lane carries into
    the next) times ``|x|``. The signs (``sign(k_i) xor sign(x)``) are applied in fabric,
    where each lane adds or subtracts its slice of the product into its own accumulator.

    Parameters:
        fmt, act, acc_bits: as for :class:`~hw.pe_base.AccumulatingPe` (``fmt`` a
            :class:`quant.formats.FixedFormat`; ``acc_bits`` of every lane).
        lanes: products per multiplier, 2..4 (2 for operands up to 8 bits, 3 or 4 up to
            4 bits; four 4-bit lanes need the 27-bit port of a DSP48E2).

    Members:
        x, valid, first: as for :class:`~hw.pe_base.AccumulatingPe`, shared by the lanes.
        w: In(ArrayLayout(fmt.bits, lanes)) the lanes' weight code words.
        acc: Out(ArrayLayout(signed(acc_bits), lanes)) the lanes' accumulator registers.
    """

    def __init__(self, fmt: FixedFormat, act: ActFormat, acc_bits: int, lanes: int) -> None:
        check_instance("fmt", fmt, FixedFormat, "a FixedFormat")
        check_instance("act", act, ActFormat, "an ActFormat")
        self.lanes = check_int_range("lanes", lanes, 2, 4)
        limit = MAX_PACKED_BITS[self.lanes]
        if max(fmt.bits, act.bits) > limit:
            raise ConfigError(f"weight and activation bits must be at most {limit} for "
                              f"{self.lanes} lanes, not {max(fmt.bits, act.bits)}")
        self.fmt = fmt
        self.act = act
        self.acc_bits = check_acc_bits(acc_bits, fmt, act)
        self.lane_bits = packed_lane_bits(fmt.bits, act)
        super().__init__({
            "w": In(data.ArrayLayout(fmt.bits, self.lanes)),
            "x": In(act_shape(act)),
            "valid": In(1),
            "first": In(1),
            "acc": Out(data.ArrayLayout(signed(self.acc_bits), self.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        bits, s = self.fmt.bits, self.lane_bits
        x_mag = Signal(unsigned(self.act.bits), name="x_mag")
        x_neg = Signal(name="x_neg")
        if self.act.signed:
            m.d.comb += [x_neg.eq(self.x < 0), x_mag.eq(Mux(x_neg, -self.x, self.x))]
        else:
            m.d.comb += x_mag.eq(self.x)
        mags, negs = [], []
        for i in range(self.lanes):
            k = self.w[i].as_signed()
            mag = Signal(unsigned(bits), name=f"k_mag{i}")
            neg = Signal(name=f"k_neg{i}")
            m.d.comb += [neg.eq(k < 0), mag.eq(Mux(neg, -k, k))]
            mags.append(mag)
            negs.append(neg)
        # Lane i's magnitude at bit i*S; the top lane needs only its own bits.
        packed = Signal(unsigned((self.lanes - 1) * s + bits), name="k_packed")
        m.d.comb += packed.eq(Cat(*[Cat(mg, Const(0, s - bits)) if i < self.lanes - 1
                                    else mg for i, mg in enumerate(mags)]))
        product = dsp_product(m, packed, x_mag, unsigned(len(packed) + self.act.bits),
                              "product")
        for i in range(self.lanes):
            top = (i + 1) * s if i < self.lanes - 1 else len(product)
            lane = Signal(signed(top - i * s + 1), name=f"lane{i}")  # >= 0
            neg = Signal(name=f"neg{i}")
            m.d.comb += [lane.eq(product[i * s:top]), neg.eq(negs[i] ^ x_neg)]
            # acc - u = acc + ~u + 1: one adder with the sign as carry in.
            flipped = Signal(signed(self.acc_bits), name=f"term{i}")
            m.d.comb += flipped.eq(Mux(neg, ~lane, lane))
            with m.If(self.valid):
                m.d.sync += self.acc[i].eq(Mux(self.first, 0, self.acc[i]) + flipped + neg)
        return m
