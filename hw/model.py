"""The analytical resource model's share for the blocks ``hw`` builds, and comparisons.

:func:`sim.resources.estimate_resources` covers the whole engine (PEs, post-processing,
buffers, control). The generated top holds only the datapath (both cores and their
post-processors), so the comparison uses the model's own per-PE and per-column costs
(:func:`sim.resources.pe_costs`) for exactly those blocks; nothing here re-derives a cost.
"""

from __future__ import annotations

import math

from sim.arch import Accelerator
from sim.resources import pe_costs


def datapath_model(accel: Accelerator) -> dict[str, int]:
    """Model LUT/FF/DSP of the PEs and the post-processing columns of ``accel``."""
    e = accel.engine
    c = pe_costs(accel)
    n_dsp, n_lut = e.dsp_rows * e.cols, e.lut_rows * e.cols
    return {
        "lut": n_lut * c.lut_per_lut_pe + n_dsp * c.lut_per_dsp_pe + e.cols * c.lut_per_col_post,
        "ff": n_lut * c.ff_per_lut_pe + n_dsp * c.ff_per_dsp_pe + e.cols * c.ff_per_col_post,
        "dsp": math.ceil(n_dsp / e.dsp_packing) + e.cols * c.dsp_per_col_post,
        "bram36": 0,
    }


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
