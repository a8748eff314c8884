"""Verilog generation for an accelerator preset: the accelerator top plus a manifest.

:func:`generate` returns the Verilog text and a manifest (parameters, port list, the bit
layout of every stream payload, generator versions, SHA-256 of the inputs and of the
Verilog). Both are deterministic: the same
accelerator and the same fpim/Amaranth versions give byte-identical files. The top is
:class:`hw.accel.GemmAccelerator` (datapath, buffers, controller, stream ports);
``datapath_only=True`` gives :class:`hw.engine.EngineDatapath` alone, which is what
``fpim synth`` compares with the resource model's per-PE costs.
"""

from __future__ import annotations

import hashlib
import json
import re
from importlib.metadata import version

from amaranth.hdl import Shape, Value
from amaranth.lib import data

from hw.accel import GemmAccelerator
from hw.engine import EngineDatapath, check_matmul
from hw.synth import emit_verilog
from hw.vector.unit import build_unit, module_name
from quant.errors import ShapeError
from quant.requant import REQUANTIZER
from sim.arch import Accelerator
from sim.resources import (  # the top's command width and rows per core
    DIM_BITS,
    PARAM_DEPTH,
    VECTOR_UNITS,
    VectorConfig,
)

GENERATORS = {False: "fpim.hw.accel.GemmAccelerator", True: "fpim.hw.engine.EngineDatapath"}
SCOPES = {
    False: "accelerator: DSP core, LUT core, post-processors, BRAM ring buffers for weights "
           "and activations, output buffer, requantization parameter memories, controller "
           "running one GEMM per command (timing rules R1-R10b of sim.timing; see docs/rtl.md)",
    True: "engine datapath: DSP core, LUT core, post-processors (no buffers, no controller)",
}


def check_gemm(m_fixed: int, m_lut: int, n: int, k: int) -> None:
    """Raise :class:`ShapeError` unless one GEMM fits the generated top: at most
    :data:`PARAM_DEPTH` rows per core (its requantization memories) and N, K below
    ``2**DIM_BITS`` (its command fields). The simulator has no such limit; a host splits
    a larger GEMM into several commands."""
    for name, rows in (("fixed", m_fixed), ("LUT-scheme", m_lut)):
        if rows > PARAM_DEPTH:
            raise ShapeError(f"GEMM {name} rows must be at most {PARAM_DEPTH} per command of "
                             f"the generated top (its parameter memory), not {rows}")
    for name, v in (("N", n), ("K", k)):
        if v >= 1 << DIM_BITS:
            raise ShapeError(f"GEMM {name} must be below {1 << DIM_BITS} per command of the "
                             f"generated top ({DIM_BITS}-bit fields), not {v}")


def top_name(accel: Accelerator) -> str:
    """Verilog module name of a preset's top: ``fpim_<name>`` (non-identifier chars → _)."""
    return "fpim_" + re.sub(r"[^A-Za-z0-9_]", "_", accel.name)


def engine_parameters(accel: Accelerator) -> dict[str, object]:
    e, mem = accel.engine, accel.memory
    return {"part": accel.part.name, "dsp_type": accel.part.dsp_type, "dsp_rows": e.dsp_rows,
            "lut_rows": e.lut_rows, "cols": e.cols, "weight_bits": e.weight_bits,
            "act_bits": e.act_bits, "act_signed": e.act_signed, "acc_bits": e.acc_bits,
            "dsp_packing": e.dsp_packing, "lut_scheme": e.lut_scheme,
            "mult_bits": REQUANTIZER.mult_bits,
            "max_shift": REQUANTIZER.shift_range(e.acc_bits)[1], "k_tile": mem.k_tile,
            "dim_bits": DIM_BITS, "param_depth": PARAM_DEPTH}


def port_list(dut) -> list[dict[str, object]]:
    """Verilog ports of the top: name (``<iface>__<member>`` for streams), direction, width."""
    out = []
    for path, member, value in dut.signature.flatten(dut):
        out.append({"name": "__".join(str(p) for p in path),
                    "dir": "in" if member.flow.name == "In" else "out",
                    "width": len(Value.cast(value))})
    out += [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    return out


def bit_layout(layout: data.Layout, prefix: str = "") -> list[dict[str, object]]:
    """Every leaf field of ``layout``: dotted name (array elements by index), least
    significant bit in the payload, width and signedness; what a host driver packs."""
    out: list[dict[str, object]] = []
    for key, f in layout:
        name = f"{prefix}{key}"
        if isinstance(f.shape, data.Layout):
            sub = bit_layout(f.shape, f"{name}.")
            out += [{**x, "lsb": f.offset + int(x["lsb"])} for x in sub]
        else:
            shape = Shape.cast(f.shape)
            out.append({"field": name, "lsb": f.offset, "width": shape.width,
                        "signed": shape.signed})
    return out


def payload_layouts(dut) -> dict[str, list[dict[str, object]]]:
    """The bit layout of each stream port's payload, by port (empty for a top without
    streams)."""
    out = {}
    for name, member in dut.signature.members.items():
        payload = member.signature.members.get("payload") if member.is_signature else None
        if payload is not None and isinstance(payload.shape, data.Layout):
            out[name] = bit_layout(payload.shape)
    return out


def generate(accel: Accelerator, *, datapath_only: bool = False, matmul: bool = False
             ) -> tuple[str, dict[str, object]]:
    """(Verilog text, manifest) of ``accel``'s accelerator top (or its datapath alone);
    ``matmul``: with the matmul path (sim.timing R11, :class:`hw.accel.GemmAccelerator`),
    recorded in the manifest's parameters."""
    check_matmul(accel.engine, matmul)  # before any component exists
    dut = (EngineDatapath(accel.engine, matmul) if datapath_only
           else GemmAccelerator(accel, dim_bits=DIM_BITS, param_depth=PARAM_DEPTH,
                                matmul=matmul))
    top = top_name(accel)
    text = emit_verilog(dut, top)
    inputs = json.dumps(accel.to_dict(), sort_keys=True)
    manifest = {
        "top": top,
        "generator": GENERATORS[datapath_only],
        "versions": {"fpim": version("fpim"), "amaranth": version("amaranth")},
        "parameters": {**engine_parameters(accel), **({"matmul": True} if matmul else {})},
        "ports": port_list(dut),
        "payload_layouts": payload_layouts(dut),
        "input_sha256": hashlib.sha256(inputs.encode()).hexdigest(),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "scope": SCOPES[datapath_only],
    }
    return text, manifest


def vector_top_name(accel: Accelerator) -> str:
    """File stem of a preset's vector unit: ``fpim_<name>_vec`` (modules
    ``fpim_<name>_vec_<unit>``, :func:`hw.vector.unit.module_name`)."""
    return top_name(accel) + "_vec"


def generate_vector(accel: Accelerator, cfg: VectorConfig) -> tuple[str, dict[str, object]]:
    """(Verilog text, manifest) of ``accel``'s vector unit as ``cfg`` describes it
    (:func:`sim.resources.vector_config`): one module per component of
    :data:`sim.resources.VECTOR_UNITS`, each with its stream and command ports."""
    stem = vector_top_name(accel)
    texts, units = [], {}
    for unit in VECTOR_UNITS:
        dut = build_unit(unit, cfg)
        name = module_name(top_name(accel), unit)
        texts.append(emit_verilog(dut, name))
        units[unit] = {"module": name, "ports": port_list(dut),
                       "payload_layouts": payload_layouts(dut)}
    text = "".join(texts)
    params = cfg.to_dict()
    inputs = json.dumps({"accel": accel.to_dict(), "vector": params}, sort_keys=True)
    manifest = {
        "top": stem,
        "generator": "fpim.hw.vector.unit",
        "versions": {"fpim": version("fpim"), "amaranth": version("amaranth")},
        "parameters": params,
        "units": units,
        "input_sha256": hashlib.sha256(inputs.encode()).hexdigest(),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "scope": "vector unit: the dyadic requantizer, softmax, GELU, LayerNorm and pos_embed of "
                 "sim.timing R12-R16, one module each (hw.vector; docs/rtl.md)",
    }
    return text, manifest
