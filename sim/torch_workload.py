"""Workload extraction from a torch model (imports torch; :mod:`sim` itself does not).

:func:`from_module` traces the model with ``torch.fx`` and propagates shapes
(``ShapeProp``) from an example input: ``nn.Conv2d`` and ``F.conv2d`` become conv GEMMs
(grouped convs get ``groups``), ``nn.Linear`` / ``F.linear`` linear GEMMs over all leading
dimensions, ``torch.matmul`` / ``@`` / ``bmm`` activation x activation matmuls (one GEMM per
batch/head, all rows fixed point); every other op with a tensor output becomes a vector op
over its output elements (softmax, layer norm, GELU, add and pooling under the vector
unit's names, pooling over its windows as for an artifact; the rest under its own name,
e.g. ``mul``), except what the engine absorbs (:mod:`quant.fusion`): a BN after a conv or
linear is folded into it, a ReLU/ReLU6/clamp after a GEMM or residual add is fused into its
post-processing, Identity and Dropout are pass-throughs. Layers are named by their module
path (functions by their fx node name). If the model cannot be traced symbolically
(data-dependent control flow), module forward hooks record the Conv2d and Linear layers
only.
"""

from __future__ import annotations

import math
import operator

from quant.errors import ConfigError
from quant.modelspec import ModelSpec, parse_model
from sim.workload import GemmOp, VectorOp, Workload, pool_op

_VECTOR_NAMES = {
    "softmax": "softmax", "layer_norm": "layernorm", "layernorm": "layernorm",
    "gelu": "gelu", "iadd": "add", "add": "add", "pool": "pool",
}
#: Calls that only reshape, index or combine tensors: no arithmetic.
_NO_WORK = ("view", "reshape", "flatten", "permute", "transpose", "contiguous", "size",
            "getitem", "chunk", "split", "expand", "unsqueeze", "squeeze", "getattr", "cat",
            "unflatten", "unbind", "concat", "concatenate", "dim", "type_as", "to")


def _vector_kind(name: str) -> str:
    """The vector op of a layer or function called ``name``: one of the vector unit's names
    when it is one (softmax, layernorm, gelu, add, pool), else its own name."""
    low = name.lower()
    for key, kind in _VECTOR_NAMES.items():
        if key in low:
            return kind
    return low


def _conv_op(name: str, conv, out_shape) -> GemmOp:
    b, c_out, ho, wo = out_shape
    kh, kw = conv.kernel_size if hasattr(conv, "kernel_size") else conv
    groups = conv.groups
    c_in = conv.in_channels
    return GemmOp(name, "conv", m=c_out // groups, n=b * ho * wo,
                  k=(c_in // groups) * kh * kw, groups=groups)


def _pool_window(mod, in_shape: tuple[int, ...], out: tuple[int, ...]) -> int:
    """Input elements read per output element of a pooling layer."""
    ks = getattr(mod, "kernel_size", None)
    if ks is not None:
        ks = ks if isinstance(ks, tuple) else (ks,) * (len(out) - 2)
        return math.prod(ks)
    return math.prod(-(-i // o) for i, o in zip(in_shape[2:], out[2:], strict=True))


def _shape(node) -> tuple[int, ...]:
    return tuple(node.meta["tensor_meta"].shape)


def from_module(model, input_shape: tuple[int, ...], name: str = "model") -> Workload:
    """Ops of ``model`` on an input of ``input_shape`` (batch first), with BNs folded and
    clamps fused as the engine does (:mod:`quant.fusion`)."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    from quant.torch.fuse import fx_absorbed

    model = model.eval()
    x = torch.zeros(input_shape)
    try:
        gm = fx.symbolic_trace(model)
        ShapeProp(gm).propagate(x)
    except Exception:  # any tracing failure (control flow, unsupported ops): use hooks
        return _from_hooks(model, x, name)
    modules = dict(gm.named_modules())
    absorbed = fx_absorbed(gm, gm.graph)
    ops: list[GemmOp | VectorOp] = []
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op in ("placeholder", "output", "get_attr") or node in absorbed \
                or meta is None or not hasattr(meta, "shape"):
            continue
        out = tuple(meta.shape)
        label = str(node.target) if node.op == "call_module" else node.name
        if node.op == "call_module":
            mod = modules[node.target]
            if isinstance(mod, nn.Conv2d):
                ops.append(_conv_op(label, mod, out))
                continue
            if isinstance(mod, nn.Linear):
                rows = math.prod(out[:-1])
                ops.append(GemmOp(label, "linear", m=mod.out_features, n=rows,
                                  k=mod.in_features))
                continue
            kind = _vector_kind(type(mod).__name__)
            if kind in _NO_WORK:
                continue
        elif node.op == "call_function" and node.target in (torch.matmul, operator.matmul,
                                                             torch.bmm):
            a = _shape(node.args[0])
            heads = math.prod(out[:-2]) if len(out) > 2 else 1
            ops.append(GemmOp(label, "matmul", m=out[-1], n=out[-2], k=a[-1], groups=heads))
            continue
        elif node.op == "call_function" and node.target is torch.nn.functional.linear:
            w = _shape(node.args[1])
            ops.append(GemmOp(label, "linear", m=w[0], n=math.prod(out[:-1]), k=w[1]))
            continue
        else:
            fname = getattr(node.target, "__name__", str(node.target))
            if fname in _NO_WORK:
                continue
            kind = _vector_kind(fname)
        if kind == "pool":
            window = _pool_window(modules.get(node.target), _shape(node.args[0]), out)
            ops.append(pool_op(label, math.prod(out), window))
            continue
        ops.append(VectorOp(label, kind, math.prod(out)))
    if not any(isinstance(o, GemmOp) for o in ops):
        raise ConfigError(f"model {name!r} has no conv, linear or matmul to simulate")
    return Workload(name, tuple(ops), int(input_shape[0]))


def _from_hooks(model, x, name: str) -> Workload:
    import torch
    from torch import nn

    ops: list[GemmOp | VectorOp] = []
    handles = []

    def hook(mod_name):
        def fn(mod, inp, out):
            if isinstance(mod, nn.Conv2d):
                ops.append(_conv_op(mod_name, mod, tuple(out.shape)))
            else:
                ops.append(GemmOp(mod_name, "linear", m=mod.out_features,
                                  n=math.prod(out.shape[:-1]), k=mod.in_features))
        return fn

    for mod_name, mod in model.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            handles.append(mod.register_forward_hook(hook(mod_name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not ops:
        raise ConfigError(f"model {name!r} has no conv, linear or matmul to simulate")
    return Workload(name, tuple(ops), int(x.shape[0]))


def from_factory(spec: str | ModelSpec, input_shape: tuple[int, ...],
                 checkpoint: str | None = None) -> Workload:
    """The workload of a factory model (:func:`quant.torch.usermodel.load_model`) traced on
    ``input_shape``."""
    from quant.torch.usermodel import load_model

    spec = spec if isinstance(spec, ModelSpec) else parse_model(spec)
    if len(input_shape) < 2 or any(s < 1 for s in input_shape):
        raise ConfigError(f"input shape must be positive sizes, batch first, not {input_shape}")
    return from_module(load_model(spec, checkpoint), input_shape, name=spec.label)
