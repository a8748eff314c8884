"""The synth workflow (``fpim synth``): Yosys ``synth_xilinx`` of an accelerator's engine
datapath, of its whole top or of its vector unit's components, next to the analytical
resource model's estimate of the same blocks."""

from __future__ import annotations

from dataclasses import dataclass

from fpim.progress import Progress, silent
from hw.generate import generate, top_name
from hw.model import DATAPATH_KEYS, TOP_KEYS, compare, datapath_model, top_model
from hw.synth import SynthResult, emit_verilog, find_yosys, synthesize
from hw.vector.unit import build_unit, module_name
from quant.errors import ConfigError, check_choice
from sim.arch import FAMILY_DSP, Accelerator
from sim.resources import VECTOR_UNITS, VectorConfig, vector_unit_costs

#: Yosys time limits (seconds): the datapath, and the whole top (its buffers and controller
#: take Yosys several times longer; the mid-size preset about 11 minutes on 2 loaded cores).
DATAPATH_TIMEOUT = 600.0
TOP_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Synthesis:
    """Measured cells, the model's estimate, and one comparison row per resource."""

    top: str
    family: str
    scope: str
    measured: SynthResult
    model: dict[str, object]
    comparison: list[dict[str, object]]
    whole_top: bool = False


def synthesize_engine(accel: Accelerator, family: str | None = None,
                      yosys: str | None = None, progress: Progress = silent, *,
                      whole_top: bool = False, timeout: float | None = None) -> Synthesis:
    """Synthesize the generated datapath (``whole_top``: the whole accelerator top) for
    ``family`` (default: from the part's DSP type) with the ``yosys`` binary (default: on
    PATH) within ``timeout`` seconds (default :data:`DATAPATH_TIMEOUT` or
    :data:`TOP_TIMEOUT`) and compare it with the model; the two phases (generation, Yosys)
    are reported to ``progress``."""
    if timeout is None:
        timeout = TOP_TIMEOUT if whole_top else DATAPATH_TIMEOUT
    if not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    family = family or accel.part.family
    exe = find_yosys(yosys)  # before the generation, which takes a while
    with progress(f"generate and synthesize {accel.name}") as report:
        report(0, 2)
        text, manifest = generate(accel, datapath_only=not whole_top)
        report(1, 2)
        res = synthesize(text, manifest["top"], family, yosys=exe, timeout=timeout)
        report(2, 2)
    if whole_top:
        model = top_model(accel)
        comparison = compare(res.summary, model, TOP_KEYS)
    else:
        model = datapath_model(accel)
        comparison = compare(res.summary, model, DATAPATH_KEYS)
    return Synthesis(manifest["top"], family, manifest["scope"], res, model, comparison,
                     whole_top)


#: Resources compared per vector-unit component (LUT RAM: Yosys' RAM32M/RAM64M/... cells).
VECTOR_KEYS = ("lut", "ff", "dsp", "bram36", "lutram")


@dataclass(frozen=True)
class UnitSynthesis:
    """One vector-unit component: Yosys' cells, the model's estimate and their comparison."""

    unit: str
    top: str
    family: str
    measured: SynthResult
    model: dict[str, object]
    comparison: list[dict[str, object]]


def vector_model(cfg: VectorConfig, unit: str, dsp_type: str) -> dict[str, object]:
    """The model's LUT (logic), FF, DSP, BRAM36 and LUT RAM cells of one component
    (:func:`sim.resources.vector_unit_costs`) and the memory mapping it assumes."""
    t = vector_unit_costs(cfg, dsp_type)[unit]
    return {"lut": t.lut, "ff": t.ff, "dsp": t.dsp, "bram36": t.bram36, "lutram": t.lutram,
            "lut_memory": t.lut_memory,
            "memories": {name: {"width": m.width, "depth": m.depth, "kind": m.kind,
                                "cell": m.cell, "cells": m.cells}
                         for name, m in t.memories.items()}}


def synthesize_vector(accel: Accelerator, cfg: VectorConfig, units: tuple[str, ...],
                      family: str | None = None, yosys: str | None = None,
                      progress: Progress = silent, *, timeout: float | None = None
                      ) -> list[UnitSynthesis]:
    """Synthesize each of ``units`` (:data:`sim.resources.VECTOR_UNITS`) of ``accel``'s
    vector unit as ``cfg`` describes it, one Yosys run each within ``timeout`` seconds
    (default :data:`DATAPATH_TIMEOUT`), and compare it with the model."""
    timeout = DATAPATH_TIMEOUT if timeout is None else timeout
    if not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    for u in units:
        check_choice("unit", u, VECTOR_UNITS)
    family = family or accel.part.family
    dsp_type = FAMILY_DSP[family]
    exe = find_yosys(yosys)
    out = []
    with progress(f"synthesize the vector unit of {accel.name}") as report:
        for i, unit in enumerate(units):
            report(i, len(units))
            top = module_name(top_name(accel), unit)
            res = synthesize(emit_verilog(build_unit(unit, cfg), top), top, family, yosys=exe,
                             timeout=timeout)
            model = vector_model(cfg, unit, dsp_type)
            out.append(UnitSynthesis(unit, top, family, res, model,
                                     compare(res.summary, model, VECTOR_KEYS)))
        report(len(units), len(units))
    return out
