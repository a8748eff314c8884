"""PIM macro simulator: the macro description (:mod:`~sim.pim.macro`), the functional numba
kernel (:mod:`~sim.pim.kernels`), the cost model (:mod:`~sim.pim.cost`) and integer inference
of an artifact on the macro (:mod:`~sim.pim.deploy`)."""

from sim.pim.cost import PimLayerCost, layer_cost
from sim.pim.kernels import pim_gemm
from sim.pim.macro import (
           ARITH_FIELDS,
           MACRO_FIELDS,
           PRESET_DIR,
           PimMacro,
           load_macro,
           macro_from_dict,
)

__all__ = ["ARITH_FIELDS", "MACRO_FIELDS", "PRESET_DIR", "PimLayerCost", "PimMacro", "layer_cost",
           "load_macro", "macro_from_dict", "pim_gemm"]
