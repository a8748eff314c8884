"""Yosys synth_xilinx wrapper: the stat parser, error paths, and real PE syntheses."""

from __future__ import annotations

import shutil

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.buffer import RingBuffer
from hw.pe_fixed import FixedMacPe
from hw.pe_packed import PackedFixedMacPe
from hw.pe_pot import PotPe
from hw.pe_sp2 import Sp2Pe
from hw.synth import (
    ToolError,
    emit_verilog,
    parse_stat,
    parse_stat_modules,
    summarize,
    synthesize,
)
from quant.errors import ConfigError
from quant.formats import ActFormat, weight_format
from sim.resources import buffer_depth, buffer_logic_cost, map_memory

pytestmark = pytest.mark.filterwarnings("error")

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")

STAT = """
3. Printing statistics.

=== pe ===

   Number of wires:                 31
   Number of cells:                 90
     BUFG                            1
     CARRY4                         11
     DSP48E1                         2
     FDRE                           20
     FDSE                            4
     INV                             8
     LUT2                            2
     LUT6                           19
     RAMB18E1                        3
     RAMB36E1                        1
     MUXF7                           5

"""


def test_parse_stat_and_summary() -> None:
    cells = parse_stat(STAT)
    assert cells["LUT6"] == 19 and cells["DSP48E1"] == 2 and cells["BUFG"] == 1
    s = summarize(cells)
    assert s["lut"] == 2 + 19 + 8 and s["ff"] == 24 and s["carry"] == 11 and s["dsp"] == 2
    assert s["bram36"] == 2.5 and s["muxf7"] == 5 and s["lut_by_size"]["LUT6"] == 19


def test_parse_stat_modules_reads_every_section() -> None:
    """A hierarchical design's report: one section per module, then the totals (left out)."""
    sub = STAT.replace("=== pe ===", "=== top.walker ===")
    top = ("\n=== top ===\n\n   Number of cells:                  3\n     FDRE"
           "                            2\n     top.walker                      1\n")
    total = "\n=== design hierarchy ===\n\n   Number of cells:                 92\n"
    mods = parse_stat_modules(sub + top + total)
    assert list(mods) == ["top.walker", "top"]
    assert mods["top.walker"] == parse_stat(STAT) and mods["top"]["FDRE"] == 2
    assert parse_stat_modules("ERROR: no report\n") == {}


def test_parse_stat_rejects_garbage() -> None:
    with pytest.raises(ToolError, match="Number of cells"):
        parse_stat("ERROR: something else\n")


def test_missing_yosys_says_how_to_install() -> None:
    with pytest.raises(ToolError, match=r"yosys must be installed.*apt-get install yosys"):
        synthesize("module t; endmodule", "t", yosys="/nonexistent/yosys-fpim")


def test_bad_family_and_name() -> None:
    with pytest.raises(ConfigError, match=r"^family must be one of xc7, xcup, not 'xc9'$"):
        synthesize("module t; endmodule", "t", family="xc9")
    pe = PotPe(weight_format("pot", 4), ActFormat(4), 24)
    with pytest.raises(ConfigError, match=r"^module name must be a Verilog identifier"):
        emit_verilog(pe, "9top")
    assert "module pot_pe" in emit_verilog(pe, "pot_pe")


def test_verilog_is_deterministic_without_paths() -> None:
    def make():
        return emit_verilog(Sp2Pe(weight_format("sp2", 5), ActFormat(8), 24), "sp2_pe")

    a, b = make(), make()
    assert a == b
    assert "/work" not in a and "src =" not in a and ".py" not in a


@needs_yosys
@pytest.mark.parametrize(("pe", "dsp"), [
    (lambda: FixedMacPe(weight_format("fixed", 8), ActFormat(8), 24), 1),
    # Narrower than Yosys' 9-bit DSP threshold, but the product is marked use_dsp.
    (lambda: FixedMacPe(weight_format("fixed", 4), ActFormat(4), 24), 1),
    (lambda: FixedMacPe(weight_format("fixed", 3), ActFormat(4, signed=True), 24), 1),
    (lambda: Sp2Pe(weight_format("sp2", 8), ActFormat(8), 24), 0),
    (lambda: PotPe(weight_format("pot", 5), ActFormat(8), 32), 0),
], ids=["fixed8", "fixed4", "fixed3-signed", "sp2-8", "pot5"])
def test_pe_dsp_count_xc7(pe, dsp: int) -> None:
    res = synthesize(emit_verilog(pe(), "pe"), "pe", "xc7")
    assert res.summary["dsp"] == dsp
    assert res.cells.get("DSP48E1", 0) == dsp
    if dsp == 0:
        assert res.summary["lut"] > 0 and res.summary["carry"] > 0
    else:  # multiply and accumulator (P register) inside the DSP48E1
        assert res.summary["lut"] == 0 and res.summary["ff"] == 0
    assert res.seconds < 120


@needs_yosys
def test_unmarked_narrow_multiply_keeps_yosys_rule() -> None:
    """Only marked products are forced onto DSPs: a plain 4x4 multiply stays LUT logic."""
    class Mul(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(signed(4)), "b": In(signed(4)), "y": Out(signed(8))})

        def elaborate(self, platform):
            m = Module()
            m.d.sync += self.y.eq(self.a * self.b)
            return m

    res = synthesize(emit_verilog(Mul(), "mul"), "mul", "xc7")
    assert res.summary["dsp"] == 0 and res.summary["lut"] > 0


@needs_yosys
def test_marked_wire_without_multiplier_fails_loudly() -> None:
    """A use_dsp mark that no multiplier drives directly must not pass silently."""
    text = ("module t(a, y); input [3:0] a; output [3:0] y;\n"
            '(* use_dsp = "yes" *) wire [3:0] p; assign p = a + 1; assign y = p;\n'
            "endmodule\n")
    with pytest.raises(ToolError, match="yosys failed on t"):
        synthesize(text, "t", "xc7")


@needs_yosys
@pytest.mark.parametrize(("bits", "lanes", "family"), [(8, 2, "xc7"), (4, 2, "xc7"),
                                                       (4, 4, "xcup")],
                         ids=["fixed8-pair-xc7", "fixed4-pair-xc7", "fixed4-quad-xcup"])
def test_packed_pe_uses_one_dsp(bits: int, lanes: int, family: str) -> None:
    """All lanes of a packed PE share one DSP slice (the 4-bit pair included, whose single
    products Yosys would map to LUTs)."""
    pe = PackedFixedMacPe(weight_format("fixed", bits), ActFormat(bits), 32, lanes)
    res = synthesize(emit_verilog(pe, "pe"), "pe", family)
    assert res.summary["dsp"] == 1
    assert res.cells.get("DSP48E1" if family == "xc7" else "DSP48E2", 0) == 1
    assert res.summary["ff"] == 32 * lanes  # the lanes' accumulators, in fabric


@needs_yosys
@pytest.mark.parametrize(("width", "k_tile"), [(1, 1), (16, 64), (16, 128)],
                         ids=["1x2-flipflops", "16x128-lutram-2-slices", "16x256-ramb18"])
def test_buffer_memory_mapping_matches_yosys(width: int, k_tile: int) -> None:
    """sim.resources.map_memory decides as Yosys does at the edges: a 2-bit memory stays in
    flip-flops, 16 x 128 is the deepest 16-bit load buffer in LUT RAM (two RAM64M slices),
    16 x 256 the shallowest in block RAM; the buffer's registers are counted exactly."""
    mem = map_memory(width, buffer_depth(k_tile), "transparent")
    res = synthesize(emit_verilog(RingBuffer(width, k_tile), "buf"), "buf", "xc7")
    rams = {k: v for k, v in res.cells.items() if k.startswith("RAM")}
    assert rams == ({mem.cell: mem.cells} if mem.cells else {})
    assert res.summary["ff"] == buffer_logic_cost(mem, k_tile).ff
    assert [mem.kind for mem in (mem,)] == [{1: "ff", 64: "lutram", 128: "bram"}[k_tile]]
