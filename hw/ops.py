"""How the RTL level runs each artifact op: :data:`RTL_OPS`, keyed by the op names of
:mod:`quant.ops`.

The accelerator top (:class:`hw.accel.GemmAccelerator`) is a GEMM engine: conv, linear and
token_linear layers run on it, one GEMM per layer (:func:`hw.tb.cases.artifact_case` builds
the case). Every other op (residual add, pooling, flatten, and the transformer's softmax,
LayerNorm, GELU, position embedding and layout steps) is the host's work between GEMMs,
computed as :mod:`quant.infer` does; the RTL tests take those values from integer
inference. The attention matmuls (QK^T, A·V) run on the engine too, one command per head
(sim.timing R11; :func:`hw.tb.cases.matmul_cases`), their accumulators requantized by the
host (the vector unit's requantizer, :func:`quant.ops.matmul.matmul_out`).
"""

from __future__ import annotations

from enum import Enum

from quant.ops import level_entry

LEVEL = "the RTL level (hw.ops.RTL_OPS)"


class Runs(Enum):
    """Where an op runs at the RTL level."""

    ENGINE = "the GEMM engine"
    HOST = "the host"


#: Where every artifact op runs at the RTL level (keys: :data:`quant.ops.OPS`).
RTL_OPS: dict[str, Runs] = {
    "conv": Runs.ENGINE,
    "linear": Runs.ENGINE,
    "add": Runs.HOST,
    "avgpool": Runs.HOST,
    "maxpool": Runs.HOST,
    "flatten": Runs.HOST,
    "token_linear": Runs.ENGINE,
    "matmul": Runs.ENGINE,
    "softmax": Runs.HOST,
    "layernorm": Runs.HOST,
    "gelu": Runs.HOST,
    "pos_embed": Runs.HOST,
    "reshape": Runs.HOST,
    "slice": Runs.HOST,
}


def rtl_op(op: str) -> Runs:
    """Where ``op`` runs; :class:`~quant.errors.ArtifactError` if the RTL level has no entry."""
    return level_entry(RTL_OPS, op, LEVEL)
