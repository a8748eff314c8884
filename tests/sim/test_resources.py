"""The calibrated resource model's rules (sim.resources): DSP mapping, packing, structure."""

from __future__ import annotations

import re

import pytest

from quant.errors import ConfigError
from quant.formats import ActFormat, Scheme
from sim.config import load_accelerator
from sim.resources import (
    bank_pieces,
    bram36_blocks,
    buffer_depth,
    core_cost,
    datapath_cost,
    drain_mux_luts,
    estimate_resources,
    fixed_pe_cost,
    map_memory,
    multiplier_dsps,
    packed_lane_bits,
    packed_pe_cost,
    top_cost,
)
from sim.search import fitted_accel, template_for

#: The xc7z020 preset's engine as it was measured before it took column groups and one
#: post-processor (R3c, R4): one group, a post-processor per core.
ONE_GROUP = ("engine.group_b_cols=0", "engine.shared_post=false")


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
    registers 8 x 24 bits (R4); post-processor 4 x 17 + 1 (output lanes that hold any
    per-GEMM output format, issue 13)."""
    accel = load_accelerator("tiny")
    dp = datapath_cost(accel.engine, accel.part.dsp_type)
    assert dp["dsp_core"].ff == 40 + 28 + 13 + 192
    assert dp["dsp_post"].ff == 69 and dp["dsp_post"].dsp == 4
    assert dp["dsp_core"].dsp == 8 and dp["lut_core"].dsp == 0
    est = estimate_resources(accel)
    # 16 DSP48E1 and 876 FF measured by Yosys (`fpim synth --accel tiny`); the rest of the
    # top's 1,764 FF (`fpim synth --accel tiny --whole-top`; 1,747 before R10b's prefetch
    # fields, request flag and ring origin, 1,851 before R8's word counters
    # replaced the block counters, 1,850 before the command's residency bit of R5b, 1,939
    # with R6's two banks and block counters, 1,832 before R4b's second drain descriptor)
    # are the controller's, walkers', buffers' and output FIFO's registers, counted one by one
    assert est.dsp == 16 and est.ff == 876 + 888 == 1764


def test_load_buffers_count_the_memory_hw_builds() -> None:
    """Each load buffer is one memory, its ring (hw.buffer, R6): 2 * k_tile words; Yosys
    maps it (sim.resources.map_memory) with
    RAMB18 halves and depth slices sharing a block's width, so it needs fewer blocks than
    whole-block aspect ratios (bram36_blocks: 72 + 15 for xc7z020's buffers)."""
    assert [buffer_depth(k) for k in (1, 2, 5, 16, 4608)] == [2, 4, 10, 32, 9216]
    acc = load_accelerator("xc7z020", ONE_GROUP)  # (15 + 49) x 12, 4-bit, k_tile 4608
    assert bram36_blocks(64 * 4, 9216) + bram36_blocks(12 * 4, 9216) == 72 + 15
    mems = top_cost(acc).memories
    # 256 x 9216: 131 RAMB18 of 18 x 1024, nine depth slices packed 2 per 36 bits (model);
    # 48 x 9216: 27 RAMB18 and the 462 x 97 output FIFO 13 RAMB18, both measured by Yosys
    # (bench/resource_calibration.py --tops, units)
    assert [(mems[k].cell, mems[k].cells) for k in ("w_buf", "x_buf", "out_fifo")] == [
        ("RAMB18E1", 131), ("RAMB18E1", 27), ("RAMB18E1", 13)]
    assert estimate_resources(acc).bram36 == 65.5 + 13.5 + 6.5


def test_banked_weight_ring_is_built_of_unsliced_pieces() -> None:
    """R3c's weight ring on xc7z020 with column groups: each 256 x 4608 bank is 4096 + 512
    words (sim.resources.bank_pieces), 29 + 4 RAMB36 without depth slices, as many blocks
    as the whole bank (33 in nine slices); banks that map to LUT RAM, or to block RAM
    without slices, or would need more blocks or pieces, stay whole."""
    whole = map_memory(256, 4608, "sync")
    assert (whole.cells, whole.slices) == (33, 9)
    assert bank_pieces(256, 4608) == (4096, 512)
    acc = load_accelerator("xc7z020", ["engine.group_b_cols=5"])
    mems = top_cost(acc).memories
    banks = {k: (m.depth, m.cell, m.cells, m.slices) for k, m in mems.items()
             if k.startswith("w_buf")}
    assert banks == {f"w_buf{b}_{first}": (depth, "RAMB36E1", cells, 1) for b in range(3)
                     for first, depth, cells in ((0, 4096, 29), (4096, 512, 4))}
    assert bank_pieces(16, 16) == (16,)  # LUT RAM
    assert bank_pieces(256, 4096) == (4096,)  # no slices
    assert bank_pieces(256, 1000) == (1000,)  # 512 + 256 + 128 + 64 + 32 + 8: too many
    assert bank_pieces(48, 13824) == (8192, 4096, 1024, 512)


def test_search_gives_a_bram_bound_engine_a_shallower_load_block() -> None:
    """160 rows x 4 bits over 2 * 4608 words need 162 BRAM36 of XC7Z020's 140: the search
    halves k_tile to 2304 (81 + 1, and a RAMB36 for the 319-entry output FIFO)."""
    t = template_for("XC7Z020")
    acc = fitted_accel(t, dsp_rows=160, lut_rows=0, cols=1, dsp_packing=2)
    assert acc is not None and acc.memory.k_tile == 2304
    assert map_memory(640, 9216, "transparent").cells == 162
    assert estimate_resources(acc).bram36 == 81 + 1 + 1
    assert fitted_accel(t, dsp_rows=11, lut_rows=36, cols=16).memory.k_tile == t.memory.k_tile


@pytest.mark.parametrize(("width", "depth", "read", "want"), [
    # measured by Yosys 0.23 (bench/resource_calibration.py --tops and the tops' syntheses)
    (16, 32, "transparent", ("lutram", "RAM32M", 3)),  # tiny's load buffers
    (46, 64, "async", ("lutram", "RAM64M", 16)),  # requantization parameters
    (189, 3, "sync", ("lutram", "RAM32M", 32)),  # tiny's output FIFO
    (16, 128, "transparent", ("lutram", "RAM64M", 12)),  # two depth slices
    (16, 256, "transparent", ("bram", "RAMB18E1", 1)),  # the shallowest 16-bit one in BRAM
    (32, 512, "transparent", ("bram", "RAMB18E1", 1)),
    (64, 512, "transparent", ("bram", "RAMB36E1", 1)),  # the mid-size top's buffers
    (48, 9216, "transparent", ("bram", "RAMB18E1", 27)),  # 9 slices, 2 per 36-bit word
    (462, 97, "sync", ("bram", "RAMB18E1", 13)),
    (1, 4, "transparent", ("ff", "", 0)),
    # the cost rules at their edges (not synthesized)
    (1, 4, "sync", ("ff", "", 0)),  # 4 flip-flop bits beat a RAM32M's 4.17
    (2, 4, "sync", ("lutram", "RAM32M", 1)),
    (64, 512, "async", ("lutram", "RAM64M", 176)),  # no block RAM reads combinationally
    (73, 512, "transparent", ("bram", "RAMB18E1", 3)),  # one bit over a RAMB36's 72
    (1, 65536, "sync", ("bram", "RAMB36E1", 2)),  # a cascaded pair
])
def test_map_memory_decides_as_yosys(width: int, depth: int, read: str, want) -> None:
    m = map_memory(width, depth, read)
    assert (m.kind, m.cell, m.cells) == want
    assert m.bram36 == {"RAMB36E1": 1, "RAMB18E1": 0.5}.get(m.cell, 0) * m.cells
    assert m.lutram_luts == (4 * m.cells if m.kind == "lutram" else 0)


@pytest.mark.parametrize(("args", "message"), [
    ((0, 16, "sync"), "width must be an integer in 1..1048576, not 0"),
    ((16, 0, "sync"), "depth must be an integer in 1..1073741824, not 0"),
    ((16, 16, "dual"), "read must be one of async, sync, transparent, not 'dual'"),
    ((16.5, 16, "sync"), "width must be an integer in 1..1048576, not 16.5"),
])
def test_map_memory_rejects_bad_input(args, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        map_memory(*args)


def test_top_model_of_the_mid_size_preset() -> None:
    """Yosys on the mid-size whole top (bench/resource_calibration.py --tops): 162 DSP48E1
    (128 PEs, 2 x 16 requantization lanes, the two load-size multiplies), 2 RAMB36, 132 LUT
    RAM cells and 14,436 FF, all exact in the model; 20,032 LUTs, the model's within 1%
    (`fpim synth --accel configs/rtl/mid.yaml --whole-top`; 14,407 FF and 19,873 LUTs before
    R10b's prefetch, 14,495 FF and 19,977 LUTs before
    R8's word counters replaced the block counters, 14,494 FF and 19,813 LUTs before
    the command's residency bit of R5b, 14,555 and 19,956 with R6's two banks and block
    counters, 14,444 and 19,731 before R4b's second drain descriptor)."""
    t = top_cost(load_accelerator("configs/rtl/mid.yaml"))
    assert (t.dsp, t.bram36, t.lutram, t.ff) == (162, 2, 132, 14_436)
    assert abs(t.lut - 20_032) / 20_032 < 0.01
    assert t.control["controller"].dsp == 2 and t.lut_memory == 4 * 132


@pytest.mark.parametrize(("rows", "want"), [
    (1, 0), (2, 1), (4, 1), (5, 2), (8, 3),  # a tree of LUT6 4:1 multiplexers
    (9, 0.42 * 8), (15, 0.42 * 14), (49, 0.42 * 48),  # ABC's, DRAIN_MUX_LUT per row
])
def test_drain_mux_luts(rows: int, want: float) -> None:
    assert drain_mux_luts(rows) == pytest.approx(want)


def test_top_model_of_the_xc7z020_preset() -> None:
    """Yosys 0.23 on the full xc7z020 top (`fpim synth --accel xc7z020 --whole-top`,
    bench/resource_calibration.py --tops), the preset's 7 + 5 column groups with one
    post-processor for both cores: 194 DSP48E1, 120 RAMB36 + 15 RAMB18 and 112 LUT RAM
    cells, exact in the model; 52,689 FF, the model's 52,715; 48,610 LUTs, the model's
    47,028 within 5%. Before the shared post-processor the grouped top took 51,857 LUTs
    and 206 DSP48E1; with one group and a post-processor per core (ONE_GROUP) 49,535 LUTs,
    45,840 FF, 206 DSP48E1, 171 RAMB18 and 32 LUT RAM cells, all but the LUTs exact (the
    model's 48,114; 45,800 FF and 49,269 LUTs before R10b's prefetch; 45,868 FF and 49,466
    LUTs before R8's word counters replaced the block counters; before R5b's residency bit
    45,867 FF and 49,583 LUTs; the model's 46,344 before the drain multiplexer's 49 rows
    were costed as ABC maps them: the LUT core's measures 7,255 LUTs, the LUT6 tree 4,608,
    the model 5,806)."""
    t = top_cost(load_accelerator("xc7z020"))
    assert (t.dsp, t.cells("RAMB36E1"), t.cells("RAMB18E1"), t.lutram) == (194, 120, 15, 112)
    assert abs(t.ff - 52_689) / 52_689 < 0.001
    assert abs(t.lut - 48_610) / 48_610 < 0.05
    one = top_cost(load_accelerator("xc7z020", ONE_GROUP))
    assert (one.dsp, one.cells("RAMB18E1"), one.lutram, one.ff) == (206, 171, 32, 45_840)
    assert abs(one.lut - 49_535) / 49_535 < 0.05


def test_estimate_counts_lutram_in_the_luts() -> None:
    acc = load_accelerator("tiny")
    est, top = estimate_resources(acc), top_cost(acc)
    assert est.lut == top.lut + 4 * 70 and est.lutram == 70 and est.lut_memory == 280
    assert est.costs.control_ff == 888


def test_the_matmul_path_is_counted_only_on_a_top_built_with_it() -> None:
    """sim.timing R11's path (hw.accel.GemmAccelerator(..., matmul=True)), measured by Yosys
    0.23 on tiny: the datapath 3,324 LUT / 921 FF (`generate(tiny, datapath_only=True,
    matmul=True)`; the model 3,274 / 921: activation skew 10 x 5 bits, weight skew 7 x 5
    bits, DSP post-processor 4 x 24 + 1), the whole top 4,440 LUT / 1,840 FF with 75 LUT
    RAM cells (the output FIFO 217 bits x 7 in 37 RAM32M; `generate(tiny, matmul=True)`
    through `hw.synth.synthesize`; 4,382 / 1,823 before R10b's prefetch, 4,391 / 1,927
    before R8's word counters replaced the
    block counters, 4,557 / 1,926 before the command's residency bit of R5b);
    xc7z020's output FIFO alone, 546 bits x 148, 8 RAMB36E1. The default top
    (estimate_resources) is without it."""
    tiny = load_accelerator("tiny")
    dp = datapath_cost(tiny.engine, tiny.part.dsp_type, matmul=True)
    assert dp["dsp_core"].ff == 50 + 35 + 13 + 192
    assert dp["dsp_post"].ff == 97 and dp["lut_post"].ff == 69
    assert round(sum(c.lut for c in dp.values())) == 3274
    assert sum(c.ff for c in dp.values()) == 921
    top = top_cost(tiny, matmul=True)
    assert (top.ff, top.dsp, top.lutram) == (1840, 16, 75)
    assert (top.memories["out_fifo"].cell, top.memories["out_fifo"].cells) == ("RAM32M", 37)
    assert abs(top.lut - 4440) / 4440 < 0.10
    assert estimate_resources(tiny).ff == top_cost(tiny).ff == 1764
    xc = top_cost(load_accelerator("xc7z020", ONE_GROUP), matmul=True).memories["out_fifo"]
    assert (xc.cell, xc.cells) == ("RAMB36E1", 8)
