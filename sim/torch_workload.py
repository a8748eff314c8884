"""Workload extraction from a torch model (imports torch; :mod:`sim` itself does not).

:func:`from_module` traces the model with ``torch.fx`` and propagates shapes
(``ShapeProp``) from an example input: ``nn.Conv2d`` and ``F.conv2d`` become conv GEMMs
(grouped convs get ``groups``), ``nn.Linear`` / ``F.linear`` linear GEMMs over all leading
dimensions, ``torch.matmul`` / ``@`` / ``bmm`` activation x activation matmuls (one GEMM per
batch/head, all rows fixed point); every other op with a tensor output becomes a vector op
over its output elements (softmax, layer norm, GELU, add, pooling keep their names; the
rest is ``default``). If the model cannot be traced symbolically (data-dependent control
flow), module forward hooks record the Conv2d and Linear layers only.
"""

from __future__ import annotations

import importlib
import math
import operator

from quant.errors import ConfigError
from sim.workload import GemmOp, VectorOp, Workload, check_factory

_VECTOR_NAMES = {
    "softmax": "softmax", "layer_norm": "layernorm", "layernorm": "layernorm",
    "gelu": "gelu", "add": "add", "iadd": "add", "pool": "pool",
}


def _vector_kind(name: str) -> str:
    low = name.lower()
    for key, kind in _VECTOR_NAMES.items():
        if key in low:
            return kind
    return "default"


def _conv_op(name: str, conv, out_shape) -> GemmOp:
    b, c_out, ho, wo = out_shape
    kh, kw = conv.kernel_size if hasattr(conv, "kernel_size") else conv
    groups = conv.groups
    c_in = conv.in_channels
    return GemmOp(name, "conv", m=c_out // groups, n=b * ho * wo,
                  k=(c_in // groups) * kh * kw, groups=groups)


def from_module(model, input_shape: tuple[int, ...], name: str = "model") -> Workload:
    """Ops of ``model`` on an input of ``input_shape`` (batch first)."""
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    model = model.eval()
    x = torch.zeros(input_shape)
    try:
        gm = fx.symbolic_trace(model)
        ShapeProp(gm).propagate(x)
    except Exception:  # any tracing failure (control flow, unsupported ops): use hooks
        return _from_hooks(model, x, name)
    modules = dict(gm.named_modules())
    ops: list[GemmOp | VectorOp] = []
    for node in gm.graph.nodes:
        meta = node.meta.get("tensor_meta")
        if node.op in ("placeholder", "output") or meta is None or not hasattr(meta, "shape"):
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
        elif node.op == "call_function" and node.target in (torch.matmul, operator.matmul,
                                                             torch.bmm):
            a = tuple(node.args[0].meta["tensor_meta"].shape)
            heads = math.prod(out[:-2]) if len(out) > 2 else 1
            ops.append(GemmOp(label, "matmul", m=out[-1], n=out[-2], k=a[-1], groups=heads))
            continue
        elif node.op == "call_function" and node.target is torch.nn.functional.linear:
            w = tuple(node.args[1].meta["tensor_meta"].shape)
            ops.append(GemmOp(label, "linear", m=w[0], n=math.prod(out[:-1]), k=w[1]))
            continue
        elif node.op in ("call_function", "call_method"):
            fname = getattr(node.target, "__name__", str(node.target))
            if fname in ("view", "reshape", "flatten", "permute", "transpose", "contiguous",
                         "size", "getitem", "chunk", "split", "expand", "unsqueeze",
                         "squeeze", "getattr", "cat"):
                continue
            kind = _vector_kind(fname)
        else:
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


def from_factory(spec: str, input_shape: tuple[int, ...]) -> Workload:
    """``module.path:function`` returning an ``nn.Module``; traced on ``input_shape``."""
    mod_name, fn_name = check_factory(spec)
    if len(input_shape) < 2 or any(s < 1 for s in input_shape):
        raise ConfigError(f"input shape must be positive sizes, batch first, not {input_shape}")
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"model module must be importable from here, not {mod_name!r} "
                          f"({exc})") from None
    except Exception as exc:  # the user's module failed while importing
        raise ConfigError(f"model module {mod_name!r} must import cleanly, not raise "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise ConfigError(f"model function must be a callable of module {mod_name!r}, "
                          f"not {fn_name!r} ({'missing' if fn is None else type(fn).__name__})")
    try:
        model = fn()
    except Exception as exc:  # the user's factory failed
        raise ConfigError(f"model factory {spec!r} must build a model, not raise "
                          f"{type(exc).__name__}: {_first_line(exc)}") from None
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model factory {spec!r} must return a torch.nn.Module, "
                          f"not {type(model).__name__}")
    return from_module(model, input_shape, name=fn_name)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]
