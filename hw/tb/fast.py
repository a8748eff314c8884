# amaranth: UnusedElaboratable=no
"""The fast harness: the DRAM of rule R7 and the stream sources/sinks as Verilog around the top.

The stream-level cocotb testbench (:mod:`hw.tb.accel_tb`) crosses into Python every cycle to
play the DRAM and the streams, which limits it to a few thousand cycles per second. Here the
same roles are hardware in the simulation: :func:`harness_verilog` writes a Verilog module
``fpim_fast_tb`` around the accelerator top (``fpim_<preset>``), generated from the same
Amaranth port layouts, with

* case memories (weights per core, activations, requantization parameters, the command, the
  output rows) loaded with ``$readmemh`` from a case directory the host writes;
* params and cmd sources (one transfer per cycle, no idle cycles), an always-ready ``out``
  sink that writes every output element into the output memory;
* the DRAM of sim.timing rule R7 and docs/rtl.md: one channel, a request accepted from
  ``L`` cycles before the previous block completes, each block complete ``L +
  ceil(bytes / B)`` cycles after its start (weight block first, the activation block
  starting after the weight block's transfer), each block's beats (one word each) in the
  cycles :func:`sim.timing.word_arrival` gives, one per cycle per stream at most (a beat
  due while earlier ones wait follows them, as rule R7 has it).

A small C++ driver (``fast_main.cpp``) clocks the Verilated model: the host writes a case,
sends ``go`` on the driver's stdin, and reads ``done`` when the harness has written the
outputs (``$writememh``) and the busy cycles, the cycle of ``done`` and the bytes requested.
One process runs any number of cases back to back on one DUT (no reset in between), so
:class:`FastRun` serves both random cases and whole networks, whose host computes the
non-GEMM layers between GEMMs. docs/verification.md gives the measurements behind the
choices (C++ driver rather than ``--binary``, the Verilator options).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from hw.generate import DIM_BITS, PARAM_DEPTH, generate, top_name
from hw.params import lane_shape
from hw.tb.cases import GemmCase, case_command, command_deal, core_rows
from hw.tb.engine import REPO, Outcome, outcome
from hw.tb.verilator import STAMP, VERILATOR_ARGS, directory_lock, find_verilator
from quant.errors import ConfigError, ShapeError, SimulationError
from sim.arch import Accelerator
from sim.timing import ring_steps

HARNESS = "fpim_fast_tb"
DRIVER = Path(__file__).with_name("fast_main.cpp")
#: Verilator options of the fast build, chosen by bench/rtl_speed.py (docs/verification.md).
FAST_ARGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert")
#: C++ optimisation of the model's code (Verilator's make variable OPT_FAST, default -Os).
CXX_OPT = "-O2"
#: Largest K of a case (weight memory: PARAM_DEPTH rows of K words per core), and the
#: largest K * N (activations) and M * N (outputs) the harness memories hold.
MAX_K = 1 << 14
MAX_XN = 1 << 21
MAX_MN = 1 << 20
#: Header words of a case (``hdr.hex``), in this order.
#: Cycles the harness holds the top in reset after start-up.
RESET_CYCLES = 3
HEADER = ("m", "n", "k", "params", "bw", "lat", "limit", "deals")


def out_bits(accel: Accelerator, matmul: bool = False) -> int:
    """Width of the harness's output memory words: the widest ``out`` lane of the top
    (``matmul``: with the matmul path; :func:`hw.params.lane_shape`; a word's next bit is
    its "not written" flag)."""
    e = accel.engine
    return max(lane_shape(e, core, matmul).width for core, rows in
               (("dsp", e.dsp_rows), ("lut", e.lut_rows)) if rows)


def fields(layout, prefix: str = "") -> dict[str, tuple[int, int]]:
    """``{dotted name: (offset, width)}`` of every leaf of a data layout."""
    out = {}
    if isinstance(layout, data.ArrayLayout):
        w = Shape.cast(layout.elem_shape).width
        return {f"{prefix}{i}": (i * w, w) for i in range(layout.length)}
    for name, f in data.Layout.cast(layout):
        sub = f.shape
        if isinstance(sub, data.Layout):
            out.update({k: (f.offset + o, w) for k, (o, w) in
                        fields(sub, f"{prefix}{name}.").items()})
        else:
            out[f"{prefix}{name}"] = (f.offset, Shape.cast(sub).width)
    return out


def _width(layout) -> int:
    return data.Layout.cast(layout).size


def harness_verilog(accel: Accelerator, matmul: bool = False) -> str:
    """The Verilog of ``fpim_fast_tb`` around ``accel``'s top (``matmul``: with the matmul
    path; see the module docstring)."""
    from hw.accel import GemmAccelerator

    e = accel.engine
    top = GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH, matmul=matmul)
    grouped = e.group_b_cols > 0  # R3c: the deal stream, group B's lanes
    lay = {n: data.Layout.cast(getattr(top, n).payload.shape())
           for n in ("cmd", "params", "load_req", "w_load", "x_load", "out",
                     *(("deal",) if grouped else ()))}
    req, wl, xl, out = (fields(lay[n]) for n in ("load_req", "w_load", "x_load", "out"))
    ow = out_bits(accel, matmul)
    unwritten = 1 << ow
    c = e.cols
    # A matmul's weight-role values (act_bits) share the DSP weight memory (R11b).
    w_mem_bits = {core: max(e.weight_bits, e.act_bits) if core == "dsp" and top.runs_matmul
                  else e.weight_bits for core in top.cores}
    cmd_f = fields(lay["cmd"])
    rows_of = top.rows_of

    def sl(bus: str, f: dict, name: str) -> str:
        o, w = f[name]
        return f"{bus}[{o + w - 1}:{o}]"

    v = []
    add = v.append
    add(f"// Generated by hw/tb/fast.py for {accel.name}: DRAM (R7), streams and case "
        "memories around the top.")
    add("/* verilator lint_off UNUSEDSIGNAL */")
    add("/* verilator lint_off BLKSEQ */")
    # Reset is the harness's own (its first RESET_CYCLES cycles), not a port: Verilator
    # re-evaluates every combinational path from a top-level input on each eval() call,
    # and the top's next-state logic reads rst everywhere (docs/verification.md).
    add(f"module {HARNESS}(input wire clk, input wire go, output reg case_done);")
    add(f"  reg [7:0] rst_count = {RESET_CYCLES}; wire rst = rst_count != 0;")
    add(f"  localparam KMAX = {MAX_K}, XMAX = {MAX_XN}, YMAX = {MAX_MN}, PD = {PARAM_DEPTH};")
    kt = accel.memory.k_tile
    for core in top.cores:
        add(f"  reg [{w_mem_bits[core] - 1}:0] w_{core} [0:PD*KMAX-1];")
        add(f"  reg [15:0] map_{core} [0:PD-1];")
        # R10b: the next case's first weight block (row r, step k at r * k_tile + k)
        add(f"  reg [{e.weight_bits - 1}:0] wn_{core} [0:{rows_of[core]}*{kt}-1];")
    add(f"  reg [{e.act_bits - 1}:0] xm [0:XMAX-1];")
    add(f"  reg [{ow}:0] ym [0:YMAX-1];")
    add(f"  reg [{_width(lay['params']) - 1}:0] pm [0:2*PD-1];")
    if grouped:
        add(f"  reg [{_width(lay['deal']) - 1}:0] dm [0:PD-1];")
    add(f"  reg [{_width(lay['cmd']) - 1}:0] cm [0:0];")
    add(f"  reg [63:0] hdr [0:{len(HEADER) - 1}];")
    add("  string dir; string cdir; integer ncase; integer fd; integer i; integer j; "
        "integer r;")
    add("  initial begin")
    add('    if (!$value$plusargs("dir=%s", dir)) dir = ".";')
    add("    ncase = 0; case_done = 0;")
    add("  end")
    hv = {name: f"hdr[{i}]" for i, name in enumerate(HEADER)}
    # DUT ports
    add("  wire busy, done;")
    streams = ("cmd", "params", "w_load", "x_load", *(("deal",) if grouped else ()))
    for name in streams:
        add(f"  reg {name}__valid; reg [{_width(lay[name]) - 1}:0] {name}__payload; "
            f"wire {name}__ready;")
    add(f"  wire load_req__valid; wire [{_width(lay['load_req']) - 1}:0] load_req__payload; "
        "reg load_req__ready;")
    add(f"  wire out__valid; wire [{_width(lay['out']) - 1}:0] out__payload;")
    ports = ["busy", "done", "load_req__valid", "load_req__payload",
             "load_req__ready", "out__valid", "out__payload"]
    ports += [f"{n}__{p}" for n in streams for p in ("valid", "payload", "ready")]
    add(f"  {top_name(accel)} dut(.clk(clk), .rst(rst), .out__ready(1'b1), "
        + ", ".join(f".{p}({p})" for p in ports) + ");")
    # harness state
    add("  localparam IDLE = 0, PARAMS = 1, CMD = 2, RUN = 3;")
    add("  reg [1:0] state; reg [63:0] cyc, chan, busy_cycles, done_cycle, t0, req_bytes, "
        "written;")
    add("  reg [15:0] pi; reg done_seen;")
    # load request decode
    for kind in ("w", "x"):
        for f in ("en", "bytes", "k0", "steps"):
            add(f"  wire [31:0] r{kind}_{f} = {sl('load_req__payload', req, f'{kind}.{f}')};")
    add(f"  wire [31:0] rw_nx = {sl('load_req__payload', req, 'w.next')};")
    for core in top.cores:
        for f in ("row0", "rows"):
            add(f"  wire [31:0] rw_{f}_{core} = "
                f"{sl('load_req__payload', req, f'w.{f}_{core}')};")
    add(f"  wire [31:0] rx_col0 = {sl('load_req__payload', req, 'x.col0')};")
    add(f"  wire [31:0] rx_cols = {sl('load_req__payload', req, 'x.cols')};")
    if grouped:
        add(f"  wire [31:0] rx_col0_b = {sl('load_req__payload', req, 'x.col0_b')};")
        add(f"  wire [31:0] rx_cols_b = {sl('load_req__payload', req, 'x.cols_b')};")
    bw, lat = hv["bw"], hv["lat"]
    # R7: `chan` is the previous block's completion; a request is accepted from L cycles
    # before it; the weight block starts at once, the activation block after its transfer.
    add(f"  wire [63:0] xw = {bw} == 0 ? 0 : (rw_bytes + {bw} - 1) / {bw};")
    add(f"  wire [63:0] tw = {lat} + xw;")
    add(f"  wire [63:0] xx = {bw} == 0 ? 0 : (rx_bytes + {bw} - 1) / {bw};")
    add(f"  wire [63:0] tx = {lat} + xx;")
    add(f"  wire accept = state == RUN && load_req__valid && cyc + {lat} >= chan;")
    add("  wire [63:0] x_start = cyc + (rw_en != 0 ? xw : 0);")
    # Beat descriptors (a block's start and transfer cycles, its words in order), queues of
    # `qd` entries: every block in them holds ring words (R6), at least one each.
    qd = 1 << (ring_steps(accel.memory.k_tile, e.group_b_cols) + 1).bit_length()
    qb = qd.bit_length() - 1
    desc = {"w": ["start", "t", "k0", "steps", "nx"] + [f"{f}_{core}" for core in top.cores
                                                         for f in ("row0", "rows")],
            "x": ["start", "t", "k0", "steps", "col0", "cols",
                  *(("col0_b", "cols_b") if grouped else ())]}
    for kind, names in desc.items():
        for f in names:
            add(f"  reg [63:0] q{kind}_{f} [0:{qd - 1}]; reg [63:0] h{kind}_{f};")
        add(f"  reg [{qb}:0] q{kind}_n; reg [{qb - 1}:0] q{kind}_rd; reg [15:0] b{kind}_step; "
            f"reg h{kind}_ok;")
    add("  always @* begin")
    add("    load_req__ready = accept;")
    # head of each beat queue: the oldest queued block, or the block accepted this cycle
    incoming = {"w": {"start": "cyc", "t": "xw", "k0": "rw_k0", "steps": "rw_steps",
                      "nx": "rw_nx",
                      **{f"{f}_{core}": f"rw_{f}_{core}" for core in top.cores
                         for f in ("row0", "rows")}},
                "x": {"start": "x_start", "t": "xx", "k0": "rx_k0", "steps": "rx_steps",
                      "col0": "rx_col0", "cols": "rx_cols", "col0_b": "rx_col0_b",
                      "cols_b": "rx_cols_b"}}
    for kind, names in desc.items():
        add(f"    h{kind}_ok = q{kind}_n != 0 || (accept && r{kind}_en != 0);")
        for f in names:
            add(f"    h{kind}_{f} = q{kind}_n != 0 ? q{kind}_{f}[q{kind}_rd] : "
                f"{incoming[kind][f]};")
    # R7: word i of a block in cycle start + L + ceil((i + 1) * T / steps)
    for kind in ("w", "x"):
        add(f"    {kind}_load__valid = h{kind}_ok && cyc >= h{kind}_start + {lat} + "
            f"((b{kind}_step + 1) * h{kind}_t + h{kind}_steps - 1) / h{kind}_steps;")
    add("    w_load__payload = 0; x_load__payload = 0;")
    for core in top.cores:
        for i in range(rows_of[core]):
            o, w = wl[f"data.{core}.{i}"]
            add(f"    if ({i} < hw_rows_{core}) w_load__payload[{o + w - 1}:{o}] = hw_nx != 0 ? "
                f"wn_{core}[(hw_row0_{core} + {i}) * {kt} + hw_k0 + bw_step][{w - 1}:0] : "
                f"w_{core}[(hw_row0_{core} + {i}) * {hv['k']} + hw_k0 + bw_step][{w - 1}:0];")
    if top.runs_matmul:  # R11b: act_bits values end to end (hw.params.matmul_words)
        o0, _ = wl["data.dsp.0"]
        ab = e.act_bits
        add(f"    if ({sl('cm[0]', cmd_f, 'matmul')}) begin")
        add(f"      w_load__payload[{o0 + e.dsp_rows * e.weight_bits - 1}:{o0}] = 0;")
        for i in range(e.dsp_rows * e.weight_bits // ab):
            add(f"      if ({i} < hw_rows_dsp) w_load__payload[{o0 + (i + 1) * ab - 1}:"
                f"{o0 + i * ab}] = w_dsp[(hw_row0_dsp + {i}) * {hv['k']} + hw_k0 + bw_step]"
                f"[{ab - 1}:0];")
        add("    end")
    o, _ = wl["last"]
    add(f"    w_load__payload[{o}] = bw_step + 1 == hw_steps;")
    for j in range(c):
        o, w = xl[f"data.{j}"]
        add(f"    if ({j} < hx_cols) x_load__payload[{o + w - 1}:{o}] = "
            f"xm[(hx_k0 + bx_step) * {hv['n']} + hx_col0 + {j}];")
        jb = j - (c - e.group_b_cols)
        if grouped and jb >= 0:  # R3c: group B's positions in its columns' lanes
            add(f"    if ({jb} < hx_cols_b) x_load__payload[{o + w - 1}:{o}] = "
                f"xm[(hx_k0 + bx_step) * {hv['n']} + hx_col0_b + {jb}];")
    o, _ = xl["last"]
    add(f"    x_load__payload[{o}] = bx_step + 1 == hx_steps;")
    add("    params__valid = state == PARAMS && pi < hdr[3];")
    add("    params__payload = pm[pi];")
    if grouped:  # R3c: the deal table after the parameters
        add("    deal__valid = state == PARAMS && pi >= hdr[3] && pi < hdr[3] + hdr[7];")
        add("    deal__payload = dm[pi - hdr[3]];")
    add("    cmd__valid = state == CMD;")
    add("    cmd__payload = cm[0];")
    add("  end")
    # sequential part
    add("  always @(posedge clk) begin")
    add("    cyc <= cyc + 1;")
    add("    if (rst) rst_count <= rst_count - 1;")
    add("    if (rst) begin")
    add("      state <= IDLE; cyc <= 0; qw_n <= 0; qx_n <= 0; qw_rd <= 0; qx_rd <= 0;")
    add("    end else begin")
    add("    if (state == IDLE && go) begin")
    add("      case_done <= 0;")
    add('      cdir = $sformatf("%0s/%0d", dir, ncase);')
    add('      $readmemh({cdir, "/hdr.hex"}, hdr);')
    add('      $readmemh({cdir, "/cmd.hex"}, cm);')
    add('      if (hdr[3] != 0) $readmemh({cdir, "/params.hex"}, pm);')
    if grouped:
        add('      if (hdr[7] != 0) $readmemh({cdir, "/deal.hex"}, dm);')
    for core in top.cores:
        add(f'      $readmemh({{cdir, "/w_{core}.hex"}}, w_{core});')
        add(f'      $readmemh({{cdir, "/map_{core}.hex"}}, map_{core});')
        add(f'      $readmemh({{cdir, "/wn_{core}.hex"}}, wn_{core});')
    add('      $readmemh({cdir, "/x.hex"}, xm);')
    add(f"      for (i = 0; i < hdr[0] * hdr[1]; i = i + 1) ym[i] = {ow + 1}'d{unwritten};")
    add("      pi <= 0; state <= PARAMS;")
    add("    end")
    add("    if (state == PARAMS) begin")
    add("      if (pi < hdr[3] + hdr[7]) begin if (params__ready) pi <= pi + 1; end")
    add("      else state <= CMD;")
    add("    end")
    add("    if (state == CMD && cmd__ready) begin")
    add("      state <= RUN; t0 <= cyc + 1; chan <= 0; busy_cycles <= 0; done_seen <= 0;")
    add("      req_bytes <= 0; written <= 0; done_cycle <= 0;")
    add("    end")
    add("    if (state == RUN) begin")
    add("      if (busy) busy_cycles <= busy_cycles + 1;")
    add("      if (done && !done_seen) begin done_seen <= 1; done_cycle <= cyc - t0; end")
    add("      if (accept) begin")
    add("        chan <= rx_en != 0 ? x_start + tx : cyc + tw;")
    add("        req_bytes <= req_bytes + (rw_en != 0 ? rw_bytes : 0) + "
        "(rx_en != 0 ? rx_bytes : 0);")
    add("      end")
    for kind, names in desc.items():
        n, rd = f"q{kind}_n", f"q{kind}_rd"
        # push the accepted block unless the queue was empty and it is being sent now
        add(f"      begin : beats_{kind}")
        add("        reg pop; reg push;")
        add(f"        pop = {kind}_load__valid && b{kind}_step + 1 == h{kind}_steps;")
        add(f"        push = accept && r{kind}_en != 0;")
        add(f"        if ({kind}_load__valid) b{kind}_step <= pop ? 0 : b{kind}_step + 1;")
        add(f"        if (push && !({n} == 0 && pop)) begin")
        for f in names:
            add(f"          q{kind}_{f}[{rd} + {n}[{qb - 1}:0]] <= {incoming[kind][f]};")
        add("        end")
        add(f"        {n} <= {n} + (push && !({n} == 0 && pop) ? 1 : 0) - "
            f"(pop && {n} != 0 ? 1 : 0);")
        add(f"        if (pop && {n} != 0) {rd} <= {rd} + 1;")
        add(f"        if ({n} == {qd} && push) $fatal(1, \"beat queue {kind} overflow\");")
        add("      end")
    # output sink
    add("      if (out__valid) begin")
    for core in top.cores:
        o_en = out[f"{core}_en"][0]
        add(f"        if (out__payload[{o_en}]) begin")
        add(f"          r = map_{core}[{sl('out__payload', out, f'row_{core}')}];")
        for j in range(c):
            o, w = out[f"{core}.{j}"]
            lane = f"out__payload[{o + w - 1}:{o}]"
            if w < ow:  # sign-extended to the memory's width
                lane = f"{{{{{ow - w}{{out__payload[{o + w - 1}]}}}}, {lane}}}"
            add(f"          if ({j} < {sl('out__payload', out, 'cols')}) ym[r * {hv['n']} + "
                f"{sl('out__payload', out, 'col0')} + {j}] <= {{1'b0, {lane}}};")
        add("        end")
        if grouped:  # R3c: group B's row in its columns' lanes
            o_en = out[f"{core}_en_b"][0]
            add(f"        if (out__payload[{o_en}]) begin")
            add(f"          r = map_{core}[{sl('out__payload', out, f'row_{core}_b')}];")
            for jb in range(e.group_b_cols):
                o, w = out[f"{core}.{c - e.group_b_cols + jb}"]
                lane = f"out__payload[{o + w - 1}:{o}]"
                if w < ow:
                    lane = f"{{{{{ow - w}{{out__payload[{o + w - 1}]}}}}, {lane}}}"
                add(f"          if ({jb} < {sl('out__payload', out, 'cols_b')}) "
                    f"ym[r * {hv['n']} + {sl('out__payload', out, 'col0_b')} + {jb}] <= "
                    f"{{1'b0, {lane}}};")
            add("        end")
    en_sum = " + ".join(f"out__payload[{out[f'{core}_en'][0]}]" for core in top.cores)
    written = f"({en_sum}) * {sl('out__payload', out, 'cols')}"
    if grouped:
        en_b = " + ".join(f"out__payload[{out[f'{core}_en_b'][0]}]" for core in top.cores)
        written += f" + ({en_b}) * {sl('out__payload', out, 'cols_b')}"
    add(f"        written <= written + {written};")
    add("      end")
    add(f"      if ((done_seen && !busy && written == {hv['m']} * {hv['n']}) "
        f"|| cyc - t0 > {hv['limit']}) begin")
    add('        $writememh({cdir, "/y.hex"}, ym, 0, hdr[0] * hdr[1] - 1);')
    add('        fd = $fopen({cdir, "/result.txt"}, "w");')
    add('        $fwrite(fd, "%0d %0d %0d %0d\\n", busy_cycles, done_cycle, req_bytes, '
        "written);")
    add("        $fclose(fd);")
    add("        ncase <= ncase + 1; case_done <= 1; state <= IDLE;")
    add("      end")
    add("    end")
    add("    end")
    add("  end")
    add("endmodule")
    return "\n".join(v) + "\n"


def fast_verilog(accel: Accelerator, top_verilog: str | None = None, matmul: bool = False
                 ) -> tuple[str, str]:
    """(the top's Verilog, the harness's Verilog) of ``accel`` (``matmul``: the top with the
    matmul path)."""
    return (generate(accel, matmul=matmul)[0] if top_verilog is None else top_verilog,
            harness_verilog(accel, matmul))


@dataclass(frozen=True)
class FastBuild:
    """A compiled fast harness: its executable, build seconds (0 when cached) and whether
    its top has the matmul path."""

    binary: Path
    seconds: float
    matmul: bool = False


def build_fast(accel: Accelerator, root: str | os.PathLike | None = None, *,
               verilog: str | None = None, args: tuple[str, ...] = FAST_ARGS,
               threads: int = 1, cxx_opt: str = CXX_OPT, matmul: bool = False) -> FastBuild:
    """Compile the fast harness around ``accel``'s top (or the given Verilog text of it)
    under ``root`` (default ``build/fastrtl``), once per content: the directory and its stamp
    are keyed by the SHA-256 of both Verilog texts, the driver and the options (``args``
    for Verilator, ``threads`` for ``--threads``, ``cxx_opt`` for the model's C++);
    ``matmul``: the top with the matmul path (sim.timing R11)."""
    find_verilator()
    top_v, tb_v = fast_verilog(accel, verilog, matmul)
    opts = (*VERILATOR_ARGS, *args, *(("--threads", str(threads)) if threads > 1 else ()))
    key = "\0".join((top_v, tb_v, DRIVER.read_text(), " ".join(opts), cxx_opt))
    digest = hashlib.sha256(key.encode()).hexdigest()
    base = Path(root) if root is not None else REPO / "build" / "fastrtl"
    d = (base / f"{top_name(accel)}-{digest[:10]}").resolve()
    with directory_lock(d):  # another process may be compiling the same harness
        return _compile_fast(d, top_v, tb_v, opts, cxx_opt, digest, matmul)


def _compile_fast(d: Path, top_v: str, tb_v: str, opts: tuple[str, ...], cxx_opt: str,
                  digest: str, matmul: bool) -> FastBuild:
    """:func:`build_fast`'s compile in ``d`` (its lock held), skipped when the stamp is
    current."""
    binary = d / "obj_dir" / "Vtb"
    stamp = d / STAMP
    if stamp.exists() and stamp.read_text() == digest and binary.exists():
        return FastBuild(binary, 0.0, matmul)
    stamp.unlink(missing_ok=True)
    (d / "top.v").write_text(top_v)
    (d / "tb.v").write_text(tb_v)
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", "2", *opts,
           "--top-module", HARNESS, "-MAKEFLAGS", f"OPT_FAST={cxx_opt}", "tb.v", "top.v",
           str(DRIVER),
           "-o", "Vtb"]
    t = time.perf_counter()
    with open(d / "build.log", "w") as log:
        rc = subprocess.run(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not binary.exists():
        tail = " | ".join((d / "build.log").read_text(errors="replace").splitlines()[-5:])
        raise SimulationError(f"verilator build of the fast harness failed (exit {rc}): {tail}")
    stamp.write_text(digest)
    return FastBuild(binary, time.perf_counter() - t, matmul)


@functools.cache
def _hex_table(mask: int) -> np.ndarray:
    """The ``$readmemh`` line of every value ``0 .. mask``, fixed width, as bytes."""
    digits = max(1, (mask.bit_length() + 3) // 4)
    return np.array([f"{i:0{digits}x}\n".encode() for i in range(mask + 1)],
                    dtype=f"S{digits + 1}")


def _hex(values, mask: int) -> bytes:
    """``values & mask`` as ``$readmemh`` lines. Words below 16 bits (weights, activations:
    most of a case) are looked up as fixed-width lines in a byte table, one numpy gather for
    the whole memory image; wider words (header, parameters, command) are formatted one by
    one."""
    flat = np.asarray(values).ravel()
    if 0 <= mask < 1 << 16:
        return _hex_table(mask)[flat.astype(np.int64) & mask].tobytes()
    return "".join(f"{int(v) & mask:x}\n" for v in flat).encode()


@dataclass(frozen=True)
class FastResult:
    """One case on the fast harness: outputs (None where not written), busy cycles, the
    cycle ``done`` pulsed, bytes requested."""

    y: np.ndarray
    cycles: int
    done_cycle: int
    req_bytes: int


class FastRun:
    """One fast-harness process: cases run back to back on one DUT, one :meth:`run` each.

    Use as a context manager; the case files live in a temporary directory."""

    def __init__(self, accel: Accelerator, build: FastBuild) -> None:
        from hw.accel import GemmAccelerator

        self.accel = accel
        self.matmul = build.matmul
        top = GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH,
                              matmul=build.matmul)
        self.cores = top.cores
        self.top_rows = top.rows_of
        self.layouts = {n: data.Layout.cast(getattr(top, n).payload.shape())
                        for n in ("cmd", "params", *(("deal",) if accel.engine.group_b_cols
                                                     else ()))}
        self._tmp = tempfile.TemporaryDirectory(prefix="fpim-fast-")
        self.dir = Path(self._tmp.name)
        self.count = 0
        self.cycles = 0
        self.cpu_seconds = 0.0
        self.proc = subprocess.Popen([str(build.binary), f"+dir={self.dir}"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)

    def __enter__(self) -> FastRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the process; :attr:`cycles` and :attr:`cpu_seconds` then hold the clock
        cycles it simulated (cases, loading and idle cycles) and its CPU time."""
        if self.proc.poll() is None:
            try:
                out, _ = self.proc.communicate("quit\n", timeout=60)
                words = out.split()
                if len(words) >= 4 and words[0] == "cycles":
                    self.cycles, self.cpu_seconds = int(words[1]), float(words[3])
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()

    def _write(self, d: Path, case: GemmCase, nxt=None) -> None:
        """``case``'s memory images; ``nxt``: the weights that run next (a case or a layer's
        :class:`quant.rows.QuantizedRows`: ``words`` and ``scheme_ids``), whose first block
        ``case`` prefetches (R10b)."""
        e = self.accel.engine
        m, n, k = case.mnk
        if case.matmul and not self.matmul:
            raise ConfigError(f"{case.name}: a matmul needs a fast harness built with the "
                              "matmul path (build_fast(..., matmul=True)), not without it")
        if k > MAX_K or k * n > MAX_XN or m * n > MAX_MN:
            raise ShapeError(f"{case.name}: K, K*N and M*N must be at most {MAX_K}, {MAX_XN} "
                             f"and {MAX_MN} for the fast harness's memories, not {k}, {k * n} "
                             f"and {m * n}")
        cmd = self.layouts["cmd"].const(case_command(self.accel, case)).as_bits()
        params = []
        rows = core_rows(case.scheme_ids)
        acc_mask = (1 << e.acc_bits) - 1
        for core, idx in rows.items():
            for i, r in enumerate(idx):
                params.append(int(self.layouts["params"].const({
                    "lut": int(core == "lut"), "row": i, "p": {
                        "mult": int(case.mult[r]), "shift": int(case.shift[r]),
                        "bias": int(case.bias[r]) & acc_mask,
                        "relu": int(case.relu[r])}}).as_bits()))
        deal = [int(self.layouts["deal"].const({"f": f, "n": v}).as_bits())
                for f, v in enumerate(command_deal(self.accel, case))]  # R3c
        limit = 20 * case.cycles + 2000
        head = (m, n, k, len(params), case.bw or 0, case.lat, limit, len(deal))
        d.mkdir()
        (d / "hdr.hex").write_bytes(_hex(head, (1 << 64) - 1))
        (d / "cmd.hex").write_bytes(_hex([int(cmd)], -1))
        (d / "params.hex").write_bytes(_hex(params or [0], -1))
        if deal:
            (d / "deal.hex").write_bytes(_hex(deal, -1))
        for core in self.cores:
            idx = rows[core]
            bits = e.act_bits if case.matmul and core == "dsp" else e.weight_bits
            (d / f"w_{core}.hex").write_bytes(_hex(case.words[idx] if len(idx) else [0],
                                                  (1 << bits) - 1))
            (d / f"map_{core}.hex").write_bytes(_hex(idx if len(idx) else [0], 0xFFFF))
            first = [0]  # read only by a prefetch's load (w.next): none, no image to write
            if case.prefetch is not None:  # R10b: the next case's first weight block
                if nxt is None:
                    raise ConfigError(f"{case.name}: a prefetching case needs the next one")
                used, steps = case.prefetch[0 if core == "dsp" else 1], case.prefetch[2]
                nidx = core_rows(nxt.scheme_ids)[core]
                first = np.zeros((max(1, self.top_rows[core]), self.accel.memory.k_tile),
                                 np.int64)
                first[:used, :steps] = np.asarray(nxt.words)[nidx[:used], :steps]
            (d / f"wn_{core}.hex").write_bytes(_hex(first, (1 << e.weight_bits) - 1))
        (d / "x.hex").write_bytes(_hex(case.x, (1 << e.act_bits) - 1))

    def run(self, case: GemmCase, nxt=None) -> FastResult:
        """Run ``case`` (after every earlier one, no reset in between); ``nxt``: the weights
        that run next (see :meth:`_write`), when ``case`` prefetches their first block."""
        d = self._next_dir(case, nxt)
        try:
            self._go()
        except BaseException:
            self._withdraw(d)
            raise
        return self._collect(d, case)

    def run_many(self, cases: Iterable[GemmCase]) -> Iterator[FastResult]:
        """Run ``cases`` back to back, yielding each one's result: the host writes case
        ``i + 1``'s memory images while the simulator runs case ``i``."""
        it = iter(cases)
        case = next(it, None)
        following = next(it, None)
        d = self._next_dir(case, following) if case is not None else None
        try:
            while case is not None:
                self._go()
                after = next(it, None)
                d_next = (self._next_dir(following, after) if following is not None
                          else None)
                result = self._collect(d, case)
                case, following, d = following, after, d_next
                yield result
        finally:
            if case is not None:  # written but never started: the harness will not read it
                self._withdraw(d)

    def _go(self) -> None:
        """Start the harness on the next case directory."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def _withdraw(self, d: Path) -> None:
        """Remove a case directory written but never started."""
        shutil.rmtree(d, ignore_errors=True)
        self.count -= 1

    def _next_dir(self, case: GemmCase, nxt=None) -> Path:
        """Write ``case`` into the directory the harness reads at its next ``go``."""
        d = self.dir / str(self.count)
        self._write(d, case, nxt)
        self.count += 1
        return d

    def _collect(self, d: Path, case: GemmCase) -> FastResult:
        """Wait for the harness's ``done`` of ``case`` and read its results from ``d``."""
        line = self.proc.stdout.readline()
        if not line.startswith("done"):
            rest = line + self.proc.stdout.read() if self.proc.poll() is not None else line
            raise SimulationError(f"the fast harness stopped on {case.name}: {rest.strip()}")
        cycles, done_cycle, req_bytes, _ = (int(v) for v in
                                            (d / "result.txt").read_text().split())
        words = [int(t, 16) for t in (d / "y.hex").read_text().split() if not t.startswith("//")]
        raw = np.asarray(words, dtype=np.int64).reshape(case.want.shape)
        unwritten = 1 << out_bits(self.accel, self.matmul)
        half = unwritten >> 1
        y = np.where(raw >= unwritten, -999, np.where(raw >= half, raw - unwritten, raw))
        shutil.rmtree(d)
        return FastResult(y, cycles, done_cycle, req_bytes)


def run_fast(accel: Accelerator, cases: list[GemmCase], *, build: FastBuild | None = None
             ) -> list[Outcome]:
    """Run ``cases`` back to back on the fast harness; one
    :class:`hw.tb.engine.Outcome` per case (cycles must equal the simulator's)."""
    b = build or build_fast(accel, matmul=any(c.matmul for c in cases))
    with FastRun(accel, b) as run:
        return [outcome(c, r.y, r.cycles, r.req_bytes)
                for c, r in zip(cases, run.run_many(cases), strict=True)]
