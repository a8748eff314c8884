"""Workload of an ONNX model (``--model model.onnx``): reads the file with the ``onnx``
package only (no torch, no runtime).

Shapes come from ONNX shape inference (with data propagation) on the model's static input
shape, or on ``input_shape`` when given (it replaces the input's sizes, e.g. a dynamic
batch). Nodes that read no data (constants, shape arithmetic) are no work. The rest map to
fpim's workload ops as :mod:`sim.torch_workload` maps torch layers:

* ``Conv`` → conv GEMM (``groups`` kept); ``Gemm`` and ``MatMul`` with a constant operand →
  linear GEMM over all leading dimensions; ``MatMul`` of two activations → matmul GEMMs
  (one per leading index: batch x heads);
* the engine's fold and fuse rules (:mod:`quant.fusion`): a ``BatchNormalization`` or a
  bias ``Add`` (a constant operand) after a conv/linear is folded into it, a ``Relu`` or a
  ``Clip`` with constant bounds after a GEMM or residual ``Add`` is fused into it;
  ``Identity`` and ``Dropout`` are pass-throughs;
* vector ops over their output elements: ``Add`` (residual, or a constant not folded),
  ``Softmax``, ``LayerNormalization``, ``Gelu`` and the forms torch exports them as at
  older opsets (``ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div[, Mul, Add]``;
  ``Div, Erf, Add, Mul, Mul``) under the names ``add``, ``softmax``, ``layernorm``,
  ``gelu``; pooling (``MaxPool``, ``AveragePool``, ``GlobalAveragePool``,
  ``GlobalMaxPool``) as ``pool`` over its windows; other element-wise ops (:data:`VECTOR`)
  under their own lower-case names;
* shape ops (:data:`SHAPE`) are no work.

Any other op reading data is refused with one line naming the node and the op. Layers are
named by the torch module path when the node names carry one (``/layer1/layer1.0/conv1/Conv``
→ ``layer1.0.conv1``; :func:`layer_names`), else by the node name.

Quantized ONNX models are read for their shapes: in the QDQ format, weights behind a
``DequantizeLinear`` are constants like any other and the activations'
``QuantizeLinear``/``DequantizeLinear`` pairs are pass-throughs (the requantizer's work);
the integer operators ``QLinearConv``, ``ConvInteger``, ``QLinearMatMul`` and
``MatMulInteger`` are GEMMs like their float forms. The integer weights' values are not
used: rows are split between the cores by ``--sp2-fraction`` as for any model. QONNX's
``Quant`` nodes (another domain) are refused like any unsupported op.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from quant.errors import ConfigError
from quant.fusion import Node, absorbed
from sim.workload import GemmOp, VectorOp, Workload, pool_op

#: Ops that only move, index or combine data: no arithmetic.
SHAPE = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice",
         "Concat", "Split", "Expand", "Cast", "Shape", "Size", "Tile")
#: Element-wise or reduction ops that become vector work under their own names.
VECTOR = {"Add": "add", "Softmax": "softmax", "LayerNormalization": "layernorm",
          "Gelu": "gelu", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
          "Sqrt": "sqrt", "Erf": "erf", "Tanh": "tanh", "Sigmoid": "sigmoid",
          "HardSigmoid": "hardsigmoid", "HardSwish": "hardswish", "ReduceMean": "reducemean",
          "Relu": "relu", "Clip": "clip", "BatchNormalization": "batchnorm", "Neg": "neg",
          "Exp": "exp", "ReduceSum": "reducesum", "ReduceMax": "reducemax"}
POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
#: GEMM ops, by the index of their second operand (the weights, for a conv or a Gemm): the
#: float ops and their integer forms (ONNX's QOperator format).
GEMMS = {"Conv": 1, "Gemm": 1, "MatMul": 1, "ConvInteger": 1, "QLinearConv": 3,
         "MatMulInteger": 1, "QLinearMatMul": 3}
#: Pass-throughs: a QDQ model's activation quantize/dequantize pairs are the requantizer's
#: work, part of the GEMM's post-processing.
PASS = ("Identity", "Dropout", "QuantizeLinear", "DequantizeLinear")
#: Decomposed forms torch exports, by the vector op they stand for: the op types of a chain
#: from the node that reads the input, then optional trailing ops (LayerNorm's affine).
PATTERNS = {
    "layernorm": (("ReduceMean", "Sub", "Pow", "ReduceMean", "Add", "Sqrt", "Div"),
                  ("Mul", "Add")),
    "gelu": (("Div", "Erf", "Add", "Mul", "Mul"), ()),
}


def _onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - a dependency of fpim
        raise ConfigError("reading an ONNX model needs the onnx package (pip install onnx), "
                          "not found") from None
    return onnx


@dataclass
class _Graph:
    """The inferred graph: shapes, constants, readers."""

    nodes: list
    shapes: dict[str, tuple[int, ...]]
    const: set[str]
    outputs: list[str]
    names: list[str] = field(default_factory=list)
    readers: dict[str, list[int]] = field(default_factory=dict)
    batch: int = 1  # the data input's first size

    def shape(self, tensor: str, node) -> tuple[int, ...]:
        s = self.shapes.get(tensor)
        if s is None:
            raise ConfigError(f"ONNX node {_label(node)} ({node.op_type}): tensor {tensor!r} "
                              f"must have a static shape (export with a fixed input shape "
                              f"or give --input-shape), not unknown")
        return s

    def data(self, node) -> list[str]:
        return [t for t in node.input if t and t not in self.const]


def _label(node) -> str:
    return repr(node.name) if node.name else "(unnamed)"


def _module_path(scopes: list[str]) -> str:
    """The module path of a torch-exported node's scopes: ``[a, a.0, conv]`` → ``a.0.conv``
    (a Sequential child's scope repeats its parent's name)."""
    path, prev = "", ""
    for seg in scopes:
        head, _, tail = seg.rpartition(".")
        path = f"{path}.{tail}" if head and head == prev else f"{path}.{seg}" if path else seg
        prev = seg
    return path


def layer_names(nodes: list) -> list[str]:
    """A layer name per node: for a torch-exported name (``/a/a.0/conv/Conv``) the module
    path (``a.0.conv``) when the node is its leaf module's own op, else the path and the op
    in lower case (``a.0.add``); otherwise the node name, else ``op_index``."""
    scoped = [n.name[1:].split("/") if n.name.startswith("/") else None for n in nodes]
    inner = {"/".join(s[:k]) for s in scoped if s for k in range(1, len(s) - 1)}
    names = []
    for i, (n, s) in enumerate(zip(nodes, scoped, strict=True)):
        if s is None:
            names.append(n.name or f"{n.op_type.lower()}_{i}")
            continue
        path = _module_path(s[:-1])
        own = s[-1] == n.op_type and "/".join(s[:-1]) not in inner
        names.append(path if own and path else f"{path}.{s[-1].lower()}".lstrip("."))
    return names


def _load(path: str | Path, input_shape: tuple[int, ...] | None) -> _Graph:
    onnx = _onnx()
    p = Path(path)
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf and the checker raise several types
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ConfigError(f"ONNX model file must be a valid ONNX model, not {str(p)!r} "
                          f"({type(exc).__name__}: {first})") from None
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        raise ConfigError(f"ONNX model must have one data input, not {len(inputs)} "
                          f"({', '.join(i.name for i in inputs) or 'none'})")
    dims = inputs[0].type.tensor_type.shape.dim
    if input_shape is not None:
        if len(input_shape) != len(dims):
            raise ConfigError(f"input-shape must have the {len(dims)} sizes of the ONNX "
                              f"input {inputs[0].name!r}, not {len(input_shape)}")
        for d, s in zip(dims, input_shape, strict=True):
            d.ClearField("dim_param")
            d.dim_value = s
    elif not all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
        raise ConfigError(f"ONNX input {inputs[0].name!r} must have a static shape or be "
                          f"given --input-shape, not dynamic")
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # inference errors name the node in their text
        first = (str(exc).splitlines() or [""])[0][:200]
        raise ConfigError(f"ONNX model {str(p)!r} must pass shape inference, not fail with "
                          f"{type(exc).__name__}: {first}") from None
    g = model.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in (*g.input, *g.value_info, *g.output):
        ds = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(
                d.HasField("dim_value") for d in ds):
            shapes[vi.name] = tuple(int(d.dim_value) for d in ds)
    for t in g.initializer:
        shapes[t.name] = tuple(int(d) for d in t.dims)
    const = set(inits)
    graph = _Graph(list(g.node), shapes, const, [o.name for o in g.output],
                   layer_names(list(g.node)), batch=(shapes.get(inputs[0].name) or (1,))[0])
    for i, n in enumerate(graph.nodes):
        if not graph.data(n) or n.op_type in ("Shape", "Size"):
            const.update(n.output)
        for t in n.input:
            graph.readers.setdefault(t, []).append(i)
    return graph


def _chain(g: _Graph, start: int, ops: tuple[str, ...], tail: tuple[str, ...]) -> list[int]:
    """The nodes of the chain of ``ops`` (then as many of ``tail`` as follow) that starts at
    node ``start``, each reading the previous one's output and otherwise only constants,
    the chain's input or its own values; [] if it does not match."""
    first = g.nodes[start]
    if first.op_type != ops[0] or len(g.data(first)) != 1:
        return []
    x = g.data(first)[0]
    chain = [start]
    inside = {x, *first.output}

    def next_of(i: int, op: str) -> int | None:
        for j in g.readers.get(g.nodes[i].output[0], []):
            nj = g.nodes[j]
            if nj.op_type == op and j not in chain and all(t in inside for t in g.data(nj)):
                return j
        return None

    for op in ops[1:]:
        j = next_of(chain[-1], op)
        if j is None:
            return []
        chain.append(j)
        inside.update(g.nodes[j].output)
    for op in tail:
        j = next_of(chain[-1], op)
        if j is None or len(g.readers.get(g.nodes[chain[-1]].output[0], [])) != 1:
            break
        chain.append(j)
        inside.update(g.nodes[j].output)
    outs = {t for i in chain[:-1] for t in g.nodes[i].output}
    if any(r not in chain for t in outs for r in g.readers.get(t, [])):
        return []
    return chain


@dataclass
class _Unit:
    """One piece of work in the making: a node, or a matched chain of nodes."""

    name: str
    role: str
    inputs: tuple[str, ...]
    output: str
    work: GemmOp | VectorOp | None


def _gemm(g: _Graph, n, name: str) -> tuple[str, GemmOp]:
    """(role, GEMM) of a :data:`GEMMS` node."""
    out = g.shape(n.output[0], n)
    second = n.input[GEMMS[n.op_type]]
    if "Conv" in n.op_type:
        w = g.shape(second, n)
        groups = next((a.i for a in n.attribute if a.name == "group"), 1)
        if len(w) != 4 or len(out) != 4:
            raise ConfigError(f"ONNX node {_label(n)} ({n.op_type}) must be a 2-D "
                              f"convolution, not {len(w) - 2}-D")
        c_in = g.shape(n.input[0], n)[1]
        if c_in != w[1] * groups:
            raise ConfigError(f"ONNX node {_label(n)} ({n.op_type}): input channels must be "
                              f"weight channels x groups ({w[1]} x {groups}), not {c_in}")
        return "gemm", GemmOp(name, "conv", m=w[0] // groups, n=out[0] * out[2] * out[3],
                              k=w[1] * w[2] * w[3], groups=groups)
    a = g.shape(n.input[0], n)
    if n.op_type == "Gemm":
        trans_a = next((a_.i for a_ in n.attribute if a_.name == "transA"), 0)
        return "gemm", GemmOp(name, "linear", m=out[1], n=out[0], k=a[0 if trans_a else 1])
    b = g.shape(second, n)
    if len(a) < 2 or len(b) < 2:
        raise ConfigError(f"ONNX node {_label(n)} ({n.op_type}) must multiply matrices, not "
                          f"shapes {a} and {b}")
    if second in g.const:
        return "gemm", GemmOp(name, "linear", m=b[-1], n=math.prod(out[:-1]), k=b[-2])
    if n.input[0] in g.const:
        return "gemm", GemmOp(name, "linear", m=a[-2], n=math.prod(out[:-2]) * out[-1],
                              k=a[-1])
    return "matmul", GemmOp(name, "matmul", m=out[-1], n=out[-2], k=a[-1],
                            groups=math.prod(out[:-2]))


def _pool(g: _Graph, n, name: str) -> VectorOp:
    out = g.shape(n.output[0], n)
    if n.op_type.startswith("Global"):
        window = math.prod(g.shape(n.input[0], n)[2:])
    else:
        window = math.prod(next(a.ints for a in n.attribute if a.name == "kernel_shape"))
    return pool_op(name, math.prod(out), window)


def _unit(g: _Graph, i: int, n) -> _Unit:
    """The unit of a single data node."""
    name = g.names[i]
    ins = tuple(g.data(n))
    op = n.op_type
    if n.domain not in ("", "ai.onnx") or op not in (*SHAPE, *VECTOR, *POOLS, *GEMMS, *PASS):
        raise ConfigError(f"ONNX node {_label(n)} has op {op!r}"
                          f"{' of domain ' + repr(n.domain) if n.domain else ''}, which fpim "
                          f"does not support (supported: {', '.join((*GEMMS, *POOLS))}, "
                          f"{', '.join(VECTOR)} and shape ops)")
    if op in SHAPE:
        return _Unit(name, "other", ins, n.output[0], None)
    if op in PASS:
        return _Unit(name, "pass", ins[:1], n.output[0], None)
    if op in GEMMS:
        role, work = _gemm(g, n, name)
        return _Unit(name, role, ins[:1] if role == "gemm" else ins, n.output[0], work)
    if op in POOLS:
        return _Unit(name, "other", ins, n.output[0], _pool(g, n, name))
    elements = math.prod(g.shape(n.output[0], n))
    role = "other"
    if op == "Add":
        role = "add" if len(ins) == 2 else "affine"
    elif op == "BatchNormalization":
        role = "affine"
    elif op in ("Relu", "Clip"):
        role = "clamp" if len(ins) == 1 else "other"
    return _Unit(name, role, ins, n.output[0], VectorOp(name, VECTOR[op], elements))


def read_onnx(path: str | Path, input_shape: tuple[int, ...] | None = None) -> Workload:
    """The workload of the ONNX model at ``path`` (see the module docstring)."""
    g = _load(path, input_shape)
    units: list[_Unit] = []
    taken: set[int] = set()
    for i, n in enumerate(g.nodes):
        if i in taken or not g.data(n) or n.op_type in ("Shape", "Size"):
            continue
        for kind, (ops, tail) in PATTERNS.items():
            chain = _chain(g, i, ops, tail)
            if chain:
                taken.update(chain)
                last = g.nodes[chain[-1]]
                scopes = n.name[1:].split("/")[:-1] if n.name.startswith("/") else []
                name = _module_path(scopes) or kind
                units.append(_Unit(name, "other", tuple(g.data(n)), last.output[0],
                                   VectorOp(name, kind,
                                            math.prod(g.shape(last.output[0], last)))))
                break
        else:
            units.append(_unit(g, i, n))
    producer = {u.output: k for k, u in enumerate(units)}
    nodes = [Node(k, u.role, tuple(producer[t] for t in u.inputs if t in producer))
             for k, u in enumerate(units)]
    outputs = [producer[t] for t in g.outputs if t in producer]
    gone = absorbed(nodes, outputs)
    ops = tuple(u.work for k, u in enumerate(units) if k not in gone and u.work is not None)
    if not any(isinstance(o, GemmOp) for o in ops):
        raise ConfigError(f"ONNX model {str(path)!r} must have a Conv, Gemm or MatMul to "
                          f"simulate, not none")
    return Workload(Path(path).stem, ops, g.batch)
