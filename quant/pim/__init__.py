"""PIM arithmetic (:mod:`quant.pim.arith`) and its numba kernels (:mod:`quant.pim.kernels`).

Importing this package does not compile or import the kernels; ``quant.pim.kernels`` is
imported where the integers are computed.
"""

from quant.pim.arith import PIM_SCHEMES, PimArith, PimPlan, plan, slice_values

__all__ = ["PIM_SCHEMES", "PimArith", "PimPlan", "plan", "slice_values"]
