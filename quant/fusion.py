"""What the GEMM engine absorbs into a GEMM: BN folding and activation fusion, defined once.

The engine's post-processor scales each output row, adds its bias and clamps the result to
the output format (:mod:`quant.requant`). So every path that turns a model into work for it
applies the same two rules, through :func:`absorbed`:

* **fold**: a per-channel affine map with constant parameters (a BatchNorm in eval mode,
  a bias add) whose input is a weight GEMM's output (conv, linear) read by nothing else
  becomes part of that GEMM's weights and bias (``w' = w * gamma / sigma``,
  ``b' = beta + (b - mean) * gamma / sigma``);
* **fuse**: a clamp with constant bounds (ReLU, ReLU6, hardtanh, clamp/Clip) whose input
  is the output of a GEMM (weight or activation x activation) or of a residual add, read by
  nothing else, becomes the post-processor's clamp;
* pass-through layers (Identity, eval-mode Dropout) are the value they read.

An affine map after a clamp does not fold (the clamp is not linear). The users are
:func:`quant.torch.qat.quantize_` (which BN it folds), :mod:`sim.torch_workload` and
:mod:`sim.onnx_workload` (which layers are no work of their own); the torch export's ReLU
handling realizes the same fusion on the artifact. Each caller describes its graph as
:class:`Node` records with one of :data:`ROLES`; this module knows nothing of torch or ONNX.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

#: ``gemm``: weight GEMM (conv, linear); ``matmul``: activation x activation GEMM; ``add``:
#: residual add; ``affine``: foldable per-channel affine map; ``clamp``: constant-bound clamp;
#: ``pass``: pass-through; ``other``: anything else.
ROLES = ("gemm", "matmul", "add", "affine", "clamp", "pass", "other")
#: Roles whose output the post-processor clamps.
CLAMPED = ("gemm", "matmul", "add")


@dataclass(frozen=True)
class Node:
    """One node of a caller's graph, in execution order.

    Members:
        key: the caller's identifier of the node.
        role: one of :data:`ROLES`.
        inputs: the keys of the nodes whose values it reads, data input first.
    """

    key: Hashable
    role: str
    inputs: tuple[Hashable, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:  # pragma: no cover - callers pass constants
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")


def absorbed(nodes: Sequence[Node], outputs: Iterable[Hashable] = ()) -> dict[Hashable, Hashable]:
    """The nodes that are no work of their own, each mapped to the node whose value it is:
    a folded affine map or fused clamp to its GEMM or add, a pass-through to the value it
    reads (through the same map). ``outputs``: the keys the graph returns (they count as
    readers)."""
    readers: Counter = Counter(k for n in nodes for k in n.inputs)
    readers.update(outputs)
    role = {n.key: n.role for n in nodes}
    host: dict[Hashable, Hashable] = {}
    sole: dict[Hashable, bool] = {}  # the value reaches its host through single readers only
    clamped: set[Hashable] = set()  # hosts that already have a clamp fused
    for n in nodes:
        if n.role not in ("affine", "clamp", "pass") or not n.inputs:
            continue
        src = n.inputs[0]
        h = host.get(src, src)
        only = readers[src] == 1 and sole.get(src, True)
        if n.role == "pass":
            host[n.key], sole[n.key] = h, only
        elif only and n.role == "affine" and role.get(h) == "gemm" and h not in clamped:
            host[n.key], sole[n.key] = h, True
        elif only and n.role == "clamp" and role.get(h) in CLAMPED:
            host[n.key], sole[n.key] = h, True
            clamped.add(h)
    return host
