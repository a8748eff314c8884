"""The analytical resource model's share for the blocks ``hw`` builds, and comparisons.

``fpim synth`` synthesizes either the engine datapath (both cores and their
post-processors), compared with the model's own per-PE and per-column costs
(:func:`sim.resources.datapath_cost`), or the whole accelerator top, compared with
:func:`sim.resources.top_cost` (datapath, walkers, controller, buffers and memories, what
:func:`sim.resources.estimate_resources` counts). Nothing here re-derives a cost.
"""

from __future__ import annotations

import math

from sim.arch import Accelerator
from sim.resources import ZERO, datapath_cost, top_cost

#: Resources compared for the datapath and for the whole top (LUT RAM cells: Yosys' count of
#: RAM32M, RAM64M, ... cells).
DATAPATH_KEYS = ("lut", "ff", "dsp", "bram36")
TOP_KEYS = ("lut", "ff", "dsp", "bram36", "lutram")


def datapath_model(accel: Accelerator) -> dict[str, int]:
    """Model LUT/FF/DSP of the cores and post-processors of ``accel`` (no buffers)."""
    total = sum(datapath_cost(accel.engine, accel.part.dsp_type).values(), ZERO)
    return {"lut": round(total.lut), "ff": round(total.ff), "dsp": total.dsp, "bram36": 0}


def top_model(accel: Accelerator) -> dict[str, object]:
    """Model LUT (logic), FF, DSP, BRAM36 (RAMB36 and RAMB18 cells), LUT RAM cells and LUTs
    of ``accel``'s whole generated top, and the memory mapping it assumes."""
    t = top_cost(accel)
    return {"lut": t.lut, "ff": t.ff, "dsp": t.dsp, "bram36": t.bram36,
            "ramb36": t.cells("RAMB36E1"), "ramb18": t.cells("RAMB18E1"),
            "lutram": t.lutram, "lut_memory": t.lut_memory,
            "memories": {name: {"width": m.width, "depth": m.depth, "kind": m.kind,
                                "cell": m.cell, "cells": m.cells}
                         for name, m in t.memories.items()}}


def rel_error(measured: float, model: float) -> float | None:
    """(model - measured) / measured; None when nothing was measured."""
    if measured == 0:
        return None if model == 0 else math.inf
    return (model - measured) / measured


def compare(measured: dict[str, object], model: dict[str, object],
            keys: tuple[str, ...] = DATAPATH_KEYS) -> list[dict[str, object]]:
    """Rows of resource, measured, model, relative error (model vs measured)."""
    rows = []
    for key in keys:
        got = measured[key]
        rows.append({"resource": key, "measured": got, "model": model[key],
                     "rel_error": rel_error(float(got), float(model[key]))})
    return rows
