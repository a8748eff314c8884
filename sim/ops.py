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
  numba GEMM and requantizer (passed in as an :data:`EngineFn`) for weight GEMM ops; for
  ``matmul`` the same numba GEMM with both operands streamed, then the vector unit's dyadic
  requantizer (:func:`sim.functional.run_matmul_layer`); for the vector unit's ops the
  artifact's reference semantics (:func:`quant.infer.run_layer`): the unit's pipelines of
  :mod:`sim.timing` (R14, R15) compute exactly these integer functions (the square root
  included: digit by digit it is ``math.isqrt``, which the reference's Newton equals).
* ``engine``: whether the GEMM engine runs it (:func:`sim.functional.check_artifact` checks
  such layers' weights and formats against the engine).

An op without an entry is refused by :func:`sim_op` with an error naming the op and this
level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

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
    streamed: bool = False


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


def _row_work(layer: Layer, index: int, batch: int) -> VectorOp:
    """softmax, layernorm: rows reduced over axis -2 (R14)."""
    e = _elements(layer, batch)
    n = int(layer.out.shape[-2])
    return VectorOp(layer.name, layer.op, e, rows=e // n, length=n)


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


def _matmul_on_engine(layer: Layer, xs: list[np.ndarray], in_fmts: list,
                      engine: EngineFn) -> np.ndarray:
    # imported here: sim.functional imports this module
    from sim.functional import run_matmul_layer

    return run_matmul_layer(layer, xs, in_fmts)


#: The simulator's entry for every artifact op (keys: :data:`quant.ops.OPS`).
SIM_OPS: dict[str, SimOp] = {
    "conv": SimOp(_gemm_work, _on_engine, engine=True),
    "linear": SimOp(_gemm_work, _on_engine, engine=True),
    "add": SimOp(_add_work, _reference, engine=False),
    "avgpool": SimOp(_pool_work, _reference, engine=False),
    "maxpool": SimOp(_pool_work, _reference, engine=False),
    "flatten": SimOp(_no_work, _reference, engine=False),
    "token_linear": SimOp(_gemm_work, _on_engine, engine=True),
    "matmul": SimOp(_matmul_work, _matmul_on_engine, engine=False, streamed=True),
    "softmax": SimOp(_row_work, _reference, engine=False),
    "layernorm": SimOp(_row_work, _reference, engine=False),
    "gelu": SimOp(_vector_work, _reference, engine=False),
    "pos_embed": SimOp(_vector_work, _reference, engine=False),
    "reshape": SimOp(_no_work, _reference, engine=False),
    "slice": SimOp(_no_work, _reference, engine=False),
}


def sim_op(op: str) -> SimOp:
    """The simulator's entry for ``op``; :class:`~quant.errors.ArtifactError` if none."""
    return level_entry(SIM_OPS, op, LEVEL)


def from_artifact(art: Artifact, batch: int = 1) -> Workload:
    """Ops of a :class:`quant.artifact.Artifact` (GEMMs with their schemes, vector ops).

    Attention (rules R11, R16 of :mod:`sim.timing`): a softmax that reads the matmul just
    before it and is read by the matmul just after it, all of one head count, is pipelined
    with them; a matmul whose output some op other than a softmax reads is followed by a
    ``requant`` vector op over its outputs (its dyadic requantizer, R11d).
    """
    layers = art.layers
    readers: dict[str, list[Layer]] = {}
    for layer in layers:
        for src in layer.inputs:
            readers.setdefault(src, []).append(layer)
    ops: list[GemmOp | VectorOp] = []
    for i, layer in enumerate(layers):
        o = sim_op(layer.op).workload(layer, i, batch)
        if o is None:
            continue
        if layer.op == "softmax" and 0 < i < len(layers) - 1:
            before, after = layers[i - 1], layers[i + 1]
            if before.op == after.op == "matmul" and layer.inputs == (before.name,) \
                    and layer.name in after.inputs and ops and ops[-1].name == before.name:
                g = ops[-1].groups
                if o.rows % g == 0 and _matmul_work(after, i + 1, batch).groups == g:
                    o = replace(o, groups=g, pipelined=True)
        ops.append(o)
        if layer.op == "matmul" and (layer.name == art.output or any(
                r.op != "softmax" for r in readers.get(layer.name, []))):
            ops.append(VectorOp(f"{layer.name}.requant", "requant", o.macs // o.k))
    name = str(art.meta.get("model", "artifact"))
    return Workload(name, tuple(ops), batch)
