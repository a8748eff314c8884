"""Verilog generation for an accelerator preset: the engine datapath plus a manifest.

:func:`generate` returns the Verilog text and a manifest (parameters, port list, generator
versions, SHA-256 of the inputs and of the Verilog). Both are deterministic: the same
accelerator and the same fpim/Amaranth versions give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import version

from amaranth.hdl import Value

from hw.engine import MAX_SHIFT, MULT_BITS, EngineDatapath
from hw.synth import emit_verilog
from quant.errors import ConfigError
from sim.arch import Accelerator

GENERATOR = "fpim.hw.engine.EngineDatapath"


def top_name(accel: Accelerator) -> str:
    """Verilog module name of a preset's top: ``fpim_<name>`` (non-identifier chars → _)."""
    return "fpim_" + re.sub(r"[^A-Za-z0-9_]", "_", accel.name)


def engine_parameters(accel: Accelerator) -> dict[str, object]:
    e = accel.engine
    return {"part": accel.part.name, "dsp_type": accel.part.dsp_type, "dsp_rows": e.dsp_rows,
            "lut_rows": e.lut_rows, "cols": e.cols, "weight_bits": e.weight_bits,
            "act_bits": e.act_bits, "act_signed": e.act_signed, "acc_bits": e.acc_bits,
            "dsp_packing": e.dsp_packing, "lut_scheme": e.lut_scheme,
            "mult_bits": MULT_BITS, "max_shift": MAX_SHIFT}


def port_list(dut: EngineDatapath) -> list[dict[str, object]]:
    """Verilog ports of the top: name, direction and width."""
    out = []
    for name, member in dut.signature.members.items():
        width = len(Value.cast(getattr(dut, name)))
        out.append({"name": name, "dir": "in" if member.flow.name == "In" else "out",
                    "width": width})
    out += [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    return out


def generate(accel: Accelerator) -> tuple[str, dict[str, object]]:
    """(Verilog text, manifest) of ``accel``'s engine datapath."""
    if accel.engine.dsp_packing != 1:
        raise ConfigError("engine.dsp_packing must be 1 for RTL generation (packed DSP PEs "
                          f"are not built yet), not {accel.engine.dsp_packing}")
    dut = EngineDatapath(accel.engine)
    top = top_name(accel)
    text = emit_verilog(dut, top)
    inputs = json.dumps(accel.to_dict(), sort_keys=True)
    manifest = {
        "top": top,
        "generator": GENERATOR,
        "versions": {"fpim": version("fpim"), "amaranth": version("amaranth")},
        "parameters": engine_parameters(accel),
        "ports": port_list(dut),
        "input_sha256": hashlib.sha256(inputs.encode()).hexdigest(),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "scope": "engine datapath: DSP core, LUT core, post-processors (no buffers, no "
                 "controller yet; see docs/rtl.md)",
    }
    return text, manifest
