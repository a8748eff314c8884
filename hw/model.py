"""The analytical resource model's share for the blocks ``hw`` builds, and comparisons.

:func:`sim.resources.estimate_resources` covers the whole engine (PEs, post-processing,
buffers, control). The generated top holds only the datapath (both cores and their
post-processors), so the comparison uses the model's own per-PE and per-column costs
(:func:`sim.resources.datapath_cost`) for exactly those blocks; nothing here re-derives a
cost.
"""

from __future__ import annotations

import math

from sim.arch import Accelerator
from sim.resources import ZERO, datapath_cost


def datapath_model(accel: Accelerator) -> dict[str, int]:
    """Model LUT/FF/DSP of the cores and post-processors of ``accel`` (no buffers)."""
    total = sum(datapath_cost(accel.engine, accel.part.dsp_type).values(), ZERO)
    return {"lut": round(total.lut), "ff": round(total.ff), "dsp": total.dsp, "bram36": 0}


def rel_error(measured: float, model: float) -> float | None:
    """(model - measured) / measured; None when nothing was measured."""
    if measured == 0:
        return None if model == 0 else math.inf
    return (model - measured) / measured


def compare(measured: dict[str, object], model: dict[str, int]) -> list[dict[str, object]]:
    """Rows of resource, measured, model, relative error (model vs measured)."""
    rows = []
    for key in ("lut", "ff", "dsp", "bram36"):
        got = measured[key]
        rows.append({"resource": key, "measured": got, "model": model[key],
                     "rel_error": rel_error(float(got), float(model[key]))})
    return rows
