"""fpim.quant: number formats, MSQ row assignment and the integer-exact reference kernels.

Importing this package does not import torch; QAT and model code live in their own modules.
"""

from quant.errors import (
    ArtifactError,
    ConfigError,
    FpimError,
    OverflowRiskError,
    ShapeError,
)
from quant.formats import ActFormat, F8Format, Scheme, WeightFormat, weight_format
from quant.msq import lut_row_count, msq_assign
from quant.rows import QuantizedRows, quantize_rows, search_alpha

__all__ = [
    "ActFormat",
    "ArtifactError",
    "ConfigError",
    "F8Format",
    "FpimError",
    "OverflowRiskError",
    "QuantizedRows",
    "Scheme",
    "ShapeError",
    "WeightFormat",
    "lut_row_count",
    "msq_assign",
    "quantize_rows",
    "search_alpha",
    "weight_format",
]
