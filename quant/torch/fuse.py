"""The roles of torch layers in BN folding and activation fusion (:mod:`quant.fusion`).

:func:`fx_role` says what a ``torch.fx`` node is to the engine's fold/fuse rules, and
:func:`fx_absorbed` applies them to a traced graph. :func:`quant.torch.qat.quantize_` folds
the BNs it names; :mod:`sim.torch_workload` leaves the layers it names out of the workload.
"""

from __future__ import annotations

import numbers
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from quant.fusion import Node, absorbed

#: Layers that are the value they read in eval mode.
PASS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
#: Weight GEMM layers.
GEMM_MODULES = (nn.Conv2d, nn.Linear)
#: Clamps with constant bounds.
CLAMP_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh)
CLAMP_FUNCS = (F.relu, torch.relu, F.relu6, F.hardtanh, torch.clamp, torch.clip)
CLAMP_METHODS = ("relu", "clamp", "clip")
ADD_FUNCS = (operator.add, operator.iadd, torch.add)
MATMUL_FUNCS = (torch.matmul, operator.matmul, torch.bmm)
PASS_FUNCS = (F.dropout, F.dropout2d)
#: Calls that read only a tensor's shape (not a use of its value).
SHAPE_READS = (getattr, "size", "dim")


def _foldable_norm(m: nn.Module) -> bool:
    """A BatchNorm whose eval-mode statistics are fixed (a per-channel affine map)."""
    return isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats


def _constant_bounds(n: fx.Node) -> bool:
    """The call's arguments after the tensor are constants (numbers or None)."""
    rest = list(n.args[1:]) + list(n.kwargs.values())
    return all(a is None or isinstance(a, numbers.Number) for a in rest)


def fx_role(model: nn.Module, n: fx.Node) -> str:
    """The :data:`quant.fusion.ROLES` role of node ``n`` of a graph traced from ``model``."""
    if n.op == "call_module":
        m = model.get_submodule(n.target)
        if isinstance(m, GEMM_MODULES):
            return "gemm"
        if _foldable_norm(m):
            return "affine"
        if isinstance(m, CLAMP_MODULES):
            return "clamp"
        return "pass" if isinstance(m, PASS_MODULES) else "other"
    if n.op not in ("call_function", "call_method"):
        return "other"
    t = n.target
    if t is F.linear:
        return "gemm"
    if t in MATMUL_FUNCS or t in ("matmul", "bmm"):
        return "matmul"
    if (t in CLAMP_FUNCS or t in CLAMP_METHODS) and _constant_bounds(n):
        return "clamp"
    if (t in ADD_FUNCS or t == "add") and sum(isinstance(a, fx.Node) for a in n.args) == 2:
        return "add"
    return "pass" if t in PASS_FUNCS else "other"


def fx_absorbed(model: nn.Module, graph: fx.Graph) -> dict[fx.Node, fx.Node]:
    """The nodes of ``graph`` (traced from ``model``) that the engine absorbs, each mapped to
    the GEMM or add that absorbs it (pass-throughs to the value they read)."""
    nodes = [Node(n, fx_role(model, n), () if n.target in SHAPE_READS else
                  tuple(n.all_input_nodes)) for n in graph.nodes if n.op != "output"]
    outputs = [a for n in graph.nodes if n.op == "output" for a in n.all_input_nodes]
    return absorbed(nodes, outputs)
