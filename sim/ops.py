"""The simulator's table of artifact ops, and the workload of an artifact.

:data:`SIM_OPS` gives every op of :mod:`quant.ops` a :class:`SimOp`:

* ``workload``: its work in a :class:`~sim.workload.Workload`, which the timing model
  (:mod:`sim.engine`) times: a :class:`~sim.workload.GemmOp` on the engine (conv, linear,
  token_linear; row splits from the per-row scheme ids; matmul: kind ``matmul``, both
  operands streamed, every row fixed point, one group per head and sample), a
  :class:`~sim.workload.VectorOp` on the vector unit (add, softmax, layernorm, gelu and
  pos_embed over their output elements, under their own names; pooling over its windows),
  or none (flatten, reshape, slice: no arithmetic).
* ``run``: its functional-mode kernel (:func:`sim.functional.run_artifact`): the engine's
  numba GEMM and requantizer (passed in as an :data:`EngineFn`) for weight GEMM ops, the
  artifact's reference semantics (:func:`quant.infer.run_layer`) for the others (matmul
  included, until the engine model streams two activations).
* ``engine``: whether the GEMM engine runs it (:func:`sim.functional.check_artifact` checks
  such layers' weights and formats against the engine).

An op without an entry is refused by :func:`sim_op` with an error naming the op and this
level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from quant.artifact import Artifact, Layer
from quant.formats import ActFormat
from quant.infer import run_layer
from quant.ops import level_entry
from quant.ops.matmul import matmul_dims
from sim.workload import GemmOp, VectorOp, Workload, pool_op, splits_from_ids

LEVEL = "the simulator (sim.ops.SIM_OPS)"

# The engine's GEMM layer, given by sim.functional: (layer, x batch, x_fmt) -> layer value.
EngineFn = Callable[[Layer, np.ndarray, ActFormat], np.ndarray]


@dataclass(frozen=True)
class SimOp:
    """How the simulator times and computes one op (see the module docstring).

    Members:
        workload: ``(layer, index in the artifact, batch) -> GemmOp | VectorOp | None``.
        run: ``(layer, inputs, their formats, engine GEMM) -> output``.
        engine: the GEMM engine runs it.
    """

    workload: Callable[[Layer, int, int], GemmOp | VectorOp | None]
    run: Callable[[Layer, list[np.ndarray], list, EngineFn], np.ndarray]
    engine: bool


def _gemm_work(layer: Layer, index: int, batch: int) -> GemmOp:
    m, k, n = layer.gemm_dims
    return GemmOp(layer.name, layer.op, m=m, n=n * batch, k=k,
                  splits=splits_from_ids(layer.tensors["scheme_ids"]), source=index)


def _elements(layer: Layer, batch: int) -> int:
    return int(np.prod(layer.out.shape)) * batch


def _add_work(layer: Layer, index: int, batch: int) -> VectorOp:
    return VectorOp(layer.name, "add", _elements(layer, batch))


def _vector_work(layer: Layer, index: int, batch: int) -> VectorOp:
    return VectorOp(layer.name, layer.op, _elements(layer, batch))


def _matmul_work(layer: Layer, index: int, batch: int) -> GemmOp:
    g, m, k, n = matmul_dims(layer)
    groups = g * batch
    return GemmOp(layer.name, "matmul", m=m, n=n, k=k, groups=groups,
                  splits=((m, 0, groups),), source=index)


def _pool_work(layer: Layer, index: int, batch: int) -> VectorOp:
    kk = layer.attrs.get("kernel", [1, 1])
    return pool_op(layer.name, _elements(layer, batch), int(kk[0]) * int(kk[1]))


def _no_work(layer: Layer, index: int, batch: int) -> None:
    return None


def _on_engine(layer: Layer, xs: list[np.ndarray], in_fmts: list,
               engine: EngineFn) -> np.ndarray:
    return engine(layer, xs[0], in_fmts[0])


def _reference(layer: Layer, xs: list[np.ndarray], in_fmts: list,
               engine: EngineFn) -> np.ndarray:
    return run_layer(layer, xs, in_fmts)


#: The simulator's entry for every artifact op (keys: :data:`quant.ops.OPS`).
SIM_OPS: dict[str, SimOp] = {
    "conv": SimOp(_gemm_work, _on_engine, engine=True),
    "linear": SimOp(_gemm_work, _on_engine, engine=True),
    "add": SimOp(_add_work, _reference, engine=False),
    "avgpool": SimOp(_pool_work, _reference, engine=False),
    "maxpool": SimOp(_pool_work, _reference, engine=False),
    "flatten": SimOp(_no_work, _reference, engine=False),
    "token_linear": SimOp(_gemm_work, _on_engine, engine=True),
    "matmul": SimOp(_matmul_work, _reference, engine=False),
    "softmax": SimOp(_vector_work, _reference, engine=False),
    "layernorm": SimOp(_vector_work, _reference, engine=False),
    "gelu": SimOp(_vector_work, _reference, engine=False),
    "pos_embed": SimOp(_vector_work, _reference, engine=False),
    "reshape": SimOp(_no_work, _reference, engine=False),
    "slice": SimOp(_no_work, _reference, engine=False),
}


def sim_op(op: str) -> SimOp:
    """The simulator's entry for ``op``; :class:`~quant.errors.ArtifactError` if none."""
    return level_entry(SIM_OPS, op, LEVEL)


def from_artifact(art: Artifact, batch: int = 1) -> Workload:
    """Ops of a :class:`quant.artifact.Artifact` (GEMMs with their schemes, vector ops)."""
    ops = [sim_op(layer.op).workload(layer, i, batch) for i, layer in enumerate(art.layers)]
    name = str(art.meta.get("model", "artifact"))
    return Workload(name, tuple(o for o in ops if o is not None), batch)
