"""The calibrated resource model's rules (sim.resources): DSP mapping, packing, structure."""

from __future__ import annotations

import pytest

from quant.formats import ActFormat, Scheme
from sim.config import load_accelerator
from sim.resources import (
    core_cost,
    datapath_cost,
    estimate_resources,
    fixed_pe_cost,
    multiplier_dsps,
    packed_lane_bits,
    packed_pe_cost,
)


@pytest.mark.parametrize(("a", "b", "dsp_type", "want"), [
    (4, 4, "DSP48E1", 0),    # 8 product bits, unmarked: LUT logic in Yosys
    (5, 4, "DSP48E1", 1),
    (8, 9, "DSP48E1", 1),
    (25, 17, "DSP48E1", 1),  # post-processing, A = 24
    (33, 17, "DSP48E1", 2),  # post-processing, A = 32
    (26, 5, "DSP48E2", 1),   # a 4-bit quad
    (26, 5, "DSP48E1", 2),   # ... which needs two DSP48E1 (packing 4 is rejected there)
])
def test_multiplier_dsps(a: int, b: int, dsp_type: str, want: int) -> None:
    assert multiplier_dsps(a, b, dsp_type) == want
    # a product marked use_dsp maps at any width
    assert multiplier_dsps(a, b, dsp_type, marked=True) == max(1, want)


def test_fixed_and_packed_pe_costs() -> None:
    a4, a8 = ActFormat(4), ActFormat(8)
    assert fixed_pe_cost(4, a4, 24, "DSP48E1") == fixed_pe_cost(3, a4, 24, "DSP48E1")
    assert fixed_pe_cost(4, a4, 24, "DSP48E1").dsp == 1  # marked: a DSP at 4x4 too
    assert fixed_pe_cost(4, a4, 24, "DSP48E1").lut == 0
    assert fixed_pe_cost(4, a4, 24, "DSP48E2").lut == 24
    assert fixed_pe_cost(8, a8, 32, "DSP48E1") == fixed_pe_cost(8, a8, 32, "DSP48E1") * 1
    assert fixed_pe_cost(8, a8, 32, "DSP48E1").lut == 0
    assert fixed_pe_cost(8, a8, 32, "DSP48E2").ff == 32  # accumulator not absorbed
    assert packed_lane_bits(4, a4) == 7 and packed_lane_bits(8, a8) == 15
    assert packed_lane_bits(8, ActFormat(8, True)) == 14  # |x| <= 127
    for lanes, bits, act, dsp_type in ((2, 4, a4, "DSP48E1"), (2, 8, a8, "DSP48E1"),
                                       (4, 4, a4, "DSP48E2")):
        cost = packed_pe_cost(lanes, bits, act, 24, dsp_type)
        assert cost.dsp == 1 and cost.ff == lanes * 24
    assert packed_pe_cost(1, 8, a8, 32, "DSP48E1") == fixed_pe_cost(8, a8, 32, "DSP48E1")


def test_packed_core_has_one_dsp_per_group_and_column() -> None:
    # 5 rows of 4-bit quads: a quad and a lone 4x4 row (a fixed PE: one DSP too).
    for rows, bits, packing, groups in ((4, 8, 2, 2), (3, 8, 2, 2), (5, 4, 4, 2), (4, 8, 1, 4),
                                        (3, 4, 4, 1)):
        cost = core_cost(Scheme.FIXED, rows, 3, bits, ActFormat(bits), 32, "DSP48E2", packing)
        assert cost.dsp == 3 * groups


def test_tiny_datapath_registers_are_structural() -> None:
    """tiny, DSP core: 8 fixed PEs on DSP48E1 (accumulators in the P registers), activation
    skew 10 x 4 bits, weight skew 7 x 4 bits, control 4 x 3 bits and the capture flag, drain
    registers 8 x 24 bits (R4); post-processor 4 x 4 + 1."""
    accel = load_accelerator("tiny")
    dp = datapath_cost(accel.engine, accel.part.dsp_type)
    assert dp["dsp_core"].ff == 40 + 28 + 13 + 192
    assert dp["dsp_post"].ff == 17 and dp["dsp_post"].dsp == 4
    assert dp["dsp_core"].dsp == 8 and dp["lut_core"].dsp == 0
    est = estimate_resources(accel)
    # 16 DSP48E1 and 772 FF measured by Yosys (`fpim synth --accel tiny`)
    assert est.dsp == 16 and est.ff == 772 + 2000
