"""Verilog emission and Yosys ``synth_xilinx`` synthesis with a cell-statistics parser.

:func:`emit_verilog` writes deterministic Verilog (no source locations, so no absolute
paths; Amaranth adds no timestamps). :func:`synthesize` runs the system ``yosys`` on it in a
temporary directory: ``synth_xilinx -top TOP -family xc7|xcup -noiopad`` with its DSP
mapping step (label ``map_dsp``) run by :func:`yosys_script` in two passes, so that every
multiplier whose product carries the ``use_dsp`` attribute (:data:`hw.params.USE_DSP`: the
fixed-point PEs) goes to DSP slices at any width; Yosys' own rule (``mul2dsp``
``DSP_Y_MINWIDTH=9``) still applies to every other multiply, such as the address
arithmetic. Then :func:`parse_stat` turns the ``stat`` report into cell counts, summarized
by :func:`summarize` into LUTs (total and by size), flip-flops, carry cells, DSP48 slices,
block RAM and wide multiplexers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog

from hw.params import USE_DSP
from quant.errors import ConfigError, FpimError, check_choice
from sim.arch import FAMILY_DSP
from sim.resources import DSP_Y_MINWIDTH

FAMILIES = tuple(FAMILY_DSP)  # Yosys synth_xilinx families fpim targets
FF_CELLS = ("FDRE", "FDSE", "FDCE", "FDPE")
INSTALL_HINT = ("install it with `sudo apt-get install yosys` (Debian/Ubuntu) or "
                "`make tools`, or pass its path")


class ToolError(FpimError):
    """An external tool (Yosys) is missing or failed."""


#: ``synth_xilinx``'s ``map_dsp`` techmap per family: DSP map file and ``mul2dsp`` options
#: (Yosys 0.23, ``help synth_xilinx``) without ``DSP_Y_MINWIDTH``, which the passes set.
_DSP_MAP = {
    "xc7": ("xc7_dsp_map.v", "-D DSP_A_MAXWIDTH=25 -D DSP_B_MAXWIDTH=18 "
            "-D DSP_A_MAXWIDTH_PARTIAL=18 -D DSP_NAME=$__MUL25X18"),
    "xcup": ("xcu_dsp_map.v", "-D DSP_A_MAXWIDTH=27 -D DSP_B_MAXWIDTH=18 "
             "-D DSP_A_MAXWIDTH_PARTIAL=18 -D DSP_NAME=$__MUL27X18"),
}
#: Product-width threshold for marked multiplies (unmarked: Yosys' ``DSP_Y_MINWIDTH``).
MARKED_DSP_Y_MINWIDTH = 2


def yosys_script(top: str, family: str, marked: int) -> str:
    """The Yosys script :func:`synthesize` runs; ``marked`` = multipliers marked ``use_dsp``.

    ``synth_xilinx`` runs up to its ``map_dsp`` label, the DSP mapping runs with the
    marked multipliers first (at any product width), then the rest of ``synth_xilinx``.
    The marked multipliers are counted (``select -assert-count``), so a netlist in which
    a marked product is no longer a multiplier's direct output fails loudly instead of
    silently going to LUTs.
    """
    dsp_map, opts = _DSP_MAP[family]
    techmap = (f"techmap -map +/mul2dsp.v -map +/xilinx/{dsp_map} {opts} "
               "-D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_SIGNEDONLY=1")
    synth = f"synth_xilinx -top {top} -family {family} -noiopad"
    return "; ".join([
        "read_verilog top.v", f"hierarchy -top {top}", "proc", "opt_clean",
        # multipliers whose output wire carries use_dsp
        f"select -set usedsp w:* a:{USE_DSP}=yes %i %ci1 t:$mul %i",
        f"select -assert-count {marked} @usedsp",
        "setattr -set fpim_use_dsp 1 @usedsp",
        f"{synth} -run :map_dsp",
        # synth_xilinx's map_dsp step, with the marked multipliers mapped first
        "memory_dff",
        f"{techmap} -D DSP_Y_MINWIDTH={MARKED_DSP_Y_MINWIDTH} a:fpim_use_dsp",
        f"{techmap} -D DSP_Y_MINWIDTH={DSP_Y_MINWIDTH}",
        "select a:mul2dsp", "setattr -unset mul2dsp", "opt_expr -fine", "wreduce",
        "select -clear", f"xilinx_dsp -family {family}", "chtype -set $mul t:$__soft_mul",
        f"{synth} -run coarse:",
        "tee -q -o stat.txt stat",
    ])


def emit_verilog(component, name: str) -> str:
    """Verilog text of ``component`` as module ``name`` (deterministic, no source locations)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"module name must be a Verilog identifier, not {name!r}")
    return verilog.convert(component, name=name, emit_src=False)


_CELL_LINE = re.compile(r"^\s+([A-Za-z_$][\w$\\.]*)\s+(\d+)\s*$")


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts by type from a Yosys ``stat`` report of one (flattened) top module.

    Only the lines after ``Number of cells:`` of the last module section are read; a report
    without such a line raises :class:`ToolError`.
    """
    sections = re.split(r"^=== .* ===$", text, flags=re.M)
    for body in reversed(sections):
        lines = body.splitlines()
        idx = next((i for i, ln in enumerate(lines) if "Number of cells:" in ln), None)
        if idx is None:
            continue
        cells: dict[str, int] = {}
        for ln in lines[idx + 1:]:
            mt = _CELL_LINE.match(ln)
            if not mt:
                if ln.strip():
                    break
                continue
            cells[mt.group(1)] = cells.get(mt.group(1), 0) + int(mt.group(2))
        return cells
    raise ToolError("yosys stat report must list 'Number of cells:', not found in its output")


def parse_stat_modules(text: str) -> dict[str, dict[str, int]]:
    """Cell counts of every module section of a Yosys ``stat`` report (a top synthesized
    with its hierarchy: one section per module, then the whole design's totals, which are
    left out)."""
    parts = re.split(r"^=== (.*) ===$", text, flags=re.M)
    return {name: parse_stat(body) for name, body in zip(parts[1::2], parts[2::2], strict=True)
            if name != "design hierarchy" and "Number of cells:" in body}


def summarize(cells: dict[str, int]) -> dict[str, object]:
    """Group cell counts into the resources fpim reports (BRAM in BRAM36 equivalents)."""
    luts = {f"LUT{i}": cells.get(f"LUT{i}", 0) for i in range(1, 7)}
    ram36 = sum(v for k, v in cells.items() if k.startswith("RAMB36"))
    ram18 = sum(v for k, v in cells.items() if k.startswith("RAMB18"))
    inv = cells.get("INV", 0)  # an inverter occupies a LUT1 on the part
    return {
        "lut": sum(luts.values()) + inv,
        "lut_by_size": {**luts, "INV": inv},
        "ff": sum(cells.get(k, 0) for k in FF_CELLS),
        "carry": cells.get("CARRY4", 0) + cells.get("CARRY8", 0),
        "dsp": cells.get("DSP48E1", 0) + cells.get("DSP48E2", 0),
        "bram36": ram36 + ram18 / 2,
        "ramb36": ram36,
        "ramb18": ram18,
        "muxf7": cells.get("MUXF7", 0),
        "muxf8": cells.get("MUXF8", 0),
        # Distributed RAM / shift registers count as LUTs on the part.
        "lutram": sum(v for k, v in cells.items() if k.startswith(("RAM32", "RAM64", "RAM128",
                                                                    "RAM256", "SRL"))),
    }


@dataclass
class SynthResult:
    """Outcome of one synthesis: raw cell counts, their summary, the runtime, and the cell
    counts of each module (Yosys keeps the hierarchy; not part of :meth:`to_dict`)."""

    top: str
    family: str
    cells: dict[str, int]
    summary: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    modules: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"top": self.top, "family": self.family, "seconds": round(self.seconds, 2),
                "cells": dict(sorted(self.cells.items())), **self.summary}


def find_yosys(yosys: str | None = None) -> str:
    """Path of the yosys binary (``yosys`` on PATH unless given); raises with an install hint."""
    name = yosys or "yosys"
    path = shutil.which(name)
    if path is None:
        raise ToolError(f"yosys must be installed to synthesize, not missing ({name!r} not "
                        f"found); {INSTALL_HINT}")
    return path


def synthesize(verilog_text: str, top: str, family: str = "xc7", *, yosys: str | None = None,
               timeout: float = 600.0) -> SynthResult:
    """Run ``synth_xilinx`` on ``verilog_text`` and return the parsed statistics."""
    check_choice("family", family, FAMILIES)
    exe = find_yosys(yosys)
    marked = len(re.findall(rf'\(\* {USE_DSP} = "yes" \*\)', verilog_text))
    script = yosys_script(top, family, marked)
    with tempfile.TemporaryDirectory(prefix="fpim-synth-") as tmp:
        Path(tmp, "top.v").write_text(verilog_text)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([exe, "-q", "-p", script], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"yosys must finish within {timeout:g} s, not time out "
                            f"(top {top})") from exc
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise ToolError(f"yosys failed on {top} (exit {proc.returncode}): "
                            + " | ".join(tail))
        stat = Path(tmp, "stat.txt").read_text()
    cells = parse_stat(stat)
    return SynthResult(top=top, family=family, cells=cells, summary=summarize(cells),
                       seconds=seconds, modules=parse_stat_modules(stat))


def synthesize_component(component, top: str, family: str = "xc7", **kwargs) -> SynthResult:
    """:func:`emit_verilog` then :func:`synthesize`."""
    return synthesize(emit_verilog(component, top), top, family, **kwargs)
