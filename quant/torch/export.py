"""Export a converted (QAT) model to its integer :class:`~quant.artifact.Artifact`.

:func:`export` traces the model with ``torch.fx`` and walks its nodes once. Each artifact op
has one handler in :data:`EXPORTERS` (keyed by the op names of :mod:`quant.ops`) that
recognizes its nodes and turns them into a node state: a finished value (:class:`Ready`), or
a GEMM or residual add whose output format is not known yet (:class:`PendingGemm`,
:class:`PendingAdd`). The consumer finishes a pending state: a ReLU gives it its activation
format, a residual add carries a GEMM branch at its finer scale, the model output leaves the
classifier's logits without a format (they saturate at the engine's output lane, ±32,767),
at the finest accumulator scale that keeps calibration images' logits within half of it.

**Integer form and alignment.** The integer weights are the very levels the fake-quant
forward uses (``level * denominator``, words by ``encode`` of those exact levels), each
GEMM's accumulator scale is ``alpha_r / den_r * s_in``, its requantizer is
``(mult, shift) ≈ s_acc / s_out`` (a pure shift when the ratio is a power of two — always for
F8Net — else a 16-bit multiplier) and the bias is ``round(b / s_acc)``. The integer graph
departs from the float fake-quant forward only in those roundings and in two places where
the float model has no quantizer: a residual branch and a pooled value are carried at a
scale 2**8 (resp. 2**``pool_extra_bits``, default 4) times finer than the next quantizer. The
*quantized predictions* of a QAT model are defined as those of this integer form;
:func:`quant.torch.twin.integer_logits_torch` evaluates it with torch kernels and
:func:`quant.infer.run_artifact` with the numpy reference kernels, and the two agree bit for
bit (tested on the whole digits test split). The float fake-quant forward is what training
differentiates; its agreement with the integer predictions is measured and reported.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from quant.artifact import Artifact, Layer, Value
from quant.errors import ConfigError
from quant.formats import ActFormat, weight_format
from quant.infer import fit_logits
from quant.ops.add import residual_params
from quant.ops.embed import pos_embed_params
from quant.ops.gelu import gelu_params
from quant.ops.layernorm import layernorm_params
from quant.ops.matmul import matmul_params
from quant.ops.softmax import out_scale, softmax_params
from quant.ref import accumulator_bound, quantize_multiplier, required_acc_bits
from quant.requant import REQUANTIZER
from quant.torch.qat import (
    ADD_FUNCS,
    FLATTEN_METHODS,
    PASS_MODULES,
    ActQuant,
    QConv2d,
    QLinear,
    QReLU,
    WeightQuantizer,
    node_kind,
    trace,
)
from quant.torch.vit_qat import (
    RESIDUAL_SHIFT,
    QGelu,
    QLayerNorm,
    QMatMul,
    QPosEmbed,
    QResidual,
    QSoftmax,
    Reshape,
    Slice,
)

LEVEL = "the torch export (quant.torch.export.EXPORTERS)"
ADD_EXTRA_BITS = 8  # residual branches are summed at s_out / 2**8


def _multiplier(ratio: float, shifts: tuple[int, int] = (-62, 62)) -> tuple[int, int]:
    """(mult, shift) with mult * 2**-shift ≈ ratio, a multiplier of the engine's width and a
    shift in ``shifts``; exactly (1, -log2) for a power of two whose shift is in range."""
    m, e = math.frexp(ratio)
    if m == 0.5 and shifts[0] <= 1 - e <= shifts[1]:
        return 1, 1 - e
    return quantize_multiplier(ratio, REQUANTIZER.mult_bits, min_shift=shifts[0],
                               max_shift=shifts[1])


def _words(m: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Code words of the levels the fake-quant forward uses (encode of exact levels)."""
    wq: WeightQuantizer = m.wq
    with torch.no_grad():
        lv = wq.levels(m.weight.reshape(m.weight.shape[0], -1)).numpy()
    ids = wq.scheme_ids.numpy().copy()
    words = np.empty(lv.shape, dtype=np.int64)
    for s in np.unique(ids):
        fmt = weight_format(int(s), wq.bits)
        words[ids == s] = fmt.encode(lv[ids == s])
    return words, ids


# ---------------------------------------------------------------------------------------
# node states
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ready:
    """A value of the integer graph, by name."""

    name: str


@dataclass(frozen=True)
class RawInput:
    """The float model input (the first GEMM's input quantizer makes it the graph input)."""


@dataclass(frozen=True)
class NoTensor:
    """A node without a tensor value (``size()`` or ``getattr`` feeding a view)."""


@dataclass(frozen=True, eq=False)
class PendingGemm:
    """A conv/linear whose output requantization waits for its consumer.

    Members:
        op: artifact op (``conv`` or ``linear``).
        module: the QConv2d/QLinear.
        name: layer name (the module's path).
        src: name of the value it reads (``"input"`` for the first GEMM).
        src_val: that value.
        s_acc: per-row accumulator scale.
        shape: per-sample output shape.
        n: GEMM N per sample (output pixels; 1 for linear).
        geometry: the op's own attributes (conv: kernel, stride, padding).
    """

    op: str
    module: nn.Module
    name: str
    src: str
    src_val: Value
    s_acc: np.ndarray
    shape: tuple[int, ...]
    n: int
    geometry: dict

    def layer(self, out: Value, relu: bool) -> Layer:
        """The GEMM layer requantized to ``out``, within the engine's requantizer's range
        (:data:`quant.requant.REQUANTIZER`)."""
        m = self.module
        rows_words, ids = _words(m)
        bias = np.round(m.bias.detach().double().numpy() / self.s_acc).astype(np.int64)
        k = rows_words.shape[1]
        w_max = max(weight_format(int(s), m.wq.bits).max_abs_int for s in np.unique(ids))
        x_max = self.src_val.fmt.max_abs  # type: ignore[union-attr]
        bound = accumulator_bound(k, w_max, x_max)
        acc_bits = 32 if bound < 1 << 31 else required_acc_bits(k, w_max, x_max)
        shifts = REQUANTIZER.shift_range(acc_bits)
        mult, shift = zip(*(_multiplier(float(s) / out.scale, shifts) for s in self.s_acc),
                          strict=True)
        attrs: dict = {"relu": relu, "weight_bits": m.wq.bits, "acc_bits": acc_bits,
                       "gemm": {"M": int(rows_words.shape[0]), "K": int(k), "N": self.n}}
        attrs.update(self.geometry)
        tensors = {"words": rows_words.astype(np.int32), "scheme_ids": ids.astype(np.int8),
                   "alphas": m.wq.alphas.numpy().copy(),
                   "mult": np.array(mult, np.int64), "shift": np.array(shift, np.int64),
                   "bias": bias}
        return Layer(self.name, self.op, (self.src,), out, attrs, tensors)

    def finish(self, ex: _Export, out: Value, relu: bool) -> Ready:
        return ex.emit(self.layer(out, relu))


@dataclass(frozen=True, eq=False)
class PendingAdd:
    """A residual add waiting for its ReLU, which gives the output format.

    Members:
        name: layer name (the add node's name).
        ins: its two inputs: finished values or GEMMs still to requantize.
    """

    name: str
    ins: tuple[PendingGemm | Ready, ...]

    def finish(self, ex: _Export, out: Value, relu: bool) -> Ready:
        """Emit any pending GEMM branch at the common scale ``out.scale / 2**8``, then the add."""
        s_mid = out.scale / 2 ** ADD_EXTRA_BITS
        names, mults, shifts = [], [], []
        for st in self.ins:
            if isinstance(st, PendingGemm):
                if st.src == "input":  # pragma: no cover - quantize_ guarantees a first GEMM
                    raise ConfigError(f"residual branch {st.name!r} reads the raw model input")
                mid = Value(ActFormat(16, signed=True), s_mid, st.shape)
                names.append(ex.emit(st.layer(mid, relu=False)).name)
                mults.append(1)
                shifts.append(0)
            else:
                m, s = _multiplier(ex.values[st.name].scale / s_mid)
                names.append(st.name)
                mults.append(m)
                shifts.append(s)
        return ex.emit(Layer(self.name, "add", tuple(names), out,
                             {"relu": relu, "out_shift": ADD_EXTRA_BITS},
                             {"in_mult": np.array(mults, np.int64),
                              "in_shift": np.array(shifts, np.int64)}))


State = Ready | RawInput | NoTensor | PendingGemm | PendingAdd


class _Export:
    """The walk's state: node states, emitted layers and values."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule) -> None:
        self.model = model
        self.gm = gm
        self.layers: list[Layer] = []
        self.values: dict[str, Value] = {}
        self.states: dict[fx.Node, State] = {}
        self.input_val: Value | None = None

    def module(self, n: fx.Node) -> nn.Module | None:
        """The module a ``call_module`` node calls (None for other nodes)."""
        return self.gm.get_submodule(n.target) if n.op == "call_module" else None

    @staticmethod
    def shape_of(n: fx.Node) -> tuple[int, ...]:
        return tuple(int(s) for s in n.meta["tensor_meta"].shape[1:])

    def ready(self, n: fx.Node, user: fx.Node) -> str:
        """The name of the finished value of ``n``, which ``user`` reads."""
        st = self.states[n]
        if not isinstance(st, Ready):
            raise ConfigError(f"{user.name!r} ({node_kind(self.gm, user)}) cannot read the "
                              f"unrequantized output of {n.name!r}: a conv/linear output must "
                              f"go through a ReLU, a residual add or be the model output")
        return st.name

    def emit(self, layer: Layer) -> Ready:
        if layer.name in self.values or layer.name == "input":
            raise ConfigError(f"layer name {layer.name!r} is used twice")
        self.layers.append(layer)
        self.values[layer.name] = layer.out
        return Ready(layer.name)

    def visit(self, n: fx.Node) -> State:
        """The state of node ``n`` (its inputs are visited)."""
        if n.op == "placeholder":
            return RawInput()
        mod = self.module(n)
        if isinstance(mod, QReLU | ActQuant):  # a ReLU, or a transformer's output quantizer
            relu = isinstance(mod, QReLU)
            act = mod.act if relu else mod
            p = self.states[n.args[0]]
            if not isinstance(p, (PendingGemm, PendingAdd)):
                raise ConfigError(f"{'ReLU' if relu else 'quantizer'} {n.target!r} must follow "
                                  f"a conv, linear or residual add, not "
                                  f"{node_kind(self.gm, n.args[0])!r}")
            return p.finish(self, Value(act.fmt, act.scale(), self.shape_of(n)), relu=relu)
        for handler in EXPORTERS.values():
            if handler.matches(self, n):
                return handler.export(self, n)
        if n.op == "call_module":
            raise ConfigError(f"layer {n.target!r} of type {type(self.module(n)).__name__} "
                              f"cannot be exported (no handler in {LEVEL})")
        return NoTensor()

    def finish_output(self, n: fx.Node) -> str:
        """Emit the classifier's logits (no format) at its finest accumulator scale."""
        p = self.states[n.args[0]]
        if not isinstance(p, PendingGemm):
            raise ConfigError("the model output must be a Linear or Conv2d output")
        out = Value(None, float(np.min(p.s_acc)), p.shape)
        return p.finish(self, out, relu=False).name


# ---------------------------------------------------------------------------------------
# one handler per artifact op
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OpExporter:
    """How one artifact op is exported: which fx nodes are its, and their state."""

    matches: Callable[[_Export, fx.Node], bool]
    export: Callable[[_Export, fx.Node], State]


def _calls(*types: type) -> Callable[[_Export, fx.Node], bool]:
    return lambda ex, n: isinstance(ex.module(n), types)


def _pending_gemm(ex: _Export, n: fx.Node, op: str, n_out: int, geometry: dict) -> PendingGemm:
    m = ex.module(n)
    src = n.args[0]
    if isinstance(ex.states[src], RawInput):
        iq = m.in_quant
        ex.input_val = Value(iq.fmt, iq.scale(), ex.shape_of(src))
        src_name, src_val = "input", ex.input_val
    else:
        src_name = ex.ready(src, n)
        src_val = ex.values[src_name]
    s_acc = m.wq.alphas.numpy() / np.array(
        [weight_format(int(s), m.wq.bits).denominator for s in m.wq.scheme_ids.numpy()],
        dtype=np.float64) * src_val.scale
    return PendingGemm(op, m, n.target, src_name, src_val, s_acc, ex.shape_of(n), n_out,
                       geometry)


def _conv(ex: _Export, n: fx.Node) -> PendingGemm:
    m = ex.module(n)
    geometry = {"kernel": list(m.kernel_size), "stride": int(m.stride[0]),
                "padding": int(m.padding[0])}
    return _pending_gemm(ex, n, "conv", int(np.prod(ex.shape_of(n)[1:])), geometry)


def _linear(ex: _Export, n: fx.Node) -> PendingGemm:
    return _pending_gemm(ex, n, "linear", 1, {})


def _add(ex: _Export, n: fx.Node) -> PendingAdd:
    users = list(n.users)
    if len(n.args) != 2 or len(users) != 1 or not isinstance(users[0].target, str) \
            or not isinstance(ex.gm.get_submodule(users[0].target), QReLU):
        raise ConfigError(f"residual add {n.name!r} must have two tensor inputs and be "
                          f"followed by a ReLU")
    ins = tuple(ex.states[a] for a in n.args)
    for a, st in zip(n.args, ins, strict=True):
        if not isinstance(st, (PendingGemm, Ready)):
            raise ConfigError(f"residual add {n.name!r}: input {a.name!r} is not "
                              f"supported there")
    return PendingAdd(n.name, ins)


def _pair(a: object) -> tuple:
    return a if isinstance(a, tuple) else (a, a)


def _avgpool(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    src = ex.ready(n.args[0], n)
    v = ex.values[src]
    if isinstance(m, nn.AdaptiveAvgPool2d):
        kernel, stride = list(v.shape[1:]), int(v.shape[1])
    else:
        ks, st, pd = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
        if st[0] != st[1] or any(pd) or m.ceil_mode:
            raise ConfigError(f"layer {n.target!r}: AvgPool2d must have equal "
                              f"strides, no padding and ceil_mode=False, not {m}")
        kernel, stride = list(ks), int(st[0])
    window = kernel[0] * kernel[1]
    extra = ex.model.qat_config.pool_extra_bits
    bits = min(16, v.fmt.bits + extra)
    out = Value(ActFormat(bits, v.fmt.signed), v.scale / 2 ** extra, ex.shape_of(n))
    mult, shift = _multiplier(2 ** extra / window)
    return ex.emit(Layer(n.target, "avgpool", (src,), out,
                         {"kernel": kernel, "stride": stride, "mult": mult, "shift": shift}))


def _maxpool(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    src = ex.ready(n.args[0], n)
    v = ex.values[src]
    ks, st, pd = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    if st[0] != st[1] or pd[0] != pd[1] or m.ceil_mode or _pair(m.dilation) != (1, 1):
        raise ConfigError(f"layer {n.target!r}: MaxPool2d must have equal strides "
                          f"and paddings, dilation 1, ceil_mode=False, not {m}")
    return ex.emit(Layer(n.target, "maxpool", (src,), Value(v.fmt, v.scale, ex.shape_of(n)),
                         {"kernel": list(ks), "stride": int(st[0]), "padding": int(pd[0])}))


def _is_flatten(ex: _Export, n: fx.Node) -> bool:
    return isinstance(ex.module(n), nn.Flatten) or (
        n.op in ("call_function", "call_method")
        and (n.target is torch.flatten or n.target in FLATTEN_METHODS))


def _flatten(ex: _Export, n: fx.Node) -> Ready:
    src = ex.ready(n.args[0], n)
    v = ex.values[src]
    if n.op != "call_module" and len(ex.shape_of(n)) != 1:
        raise ConfigError(f"{n.name!r}: only a flatten to (batch, features) is "
                          f"supported, not shape {ex.shape_of(n)}")
    name = n.target if n.op == "call_module" else n.name
    return ex.emit(Layer(name, "flatten", (src,), Value(v.fmt, v.scale, ex.shape_of(n))))


def _any(*tests: Callable[[_Export, fx.Node], bool]) -> Callable[[_Export, fx.Node], bool]:
    return lambda ex, n: any(t(ex, n) for t in tests)


def _functions(*targets: object) -> Callable[[_Export, fx.Node], bool]:
    """Matches calls of the functions, or of the tensor methods named, in ``targets``."""
    return lambda ex, n: (n.op == "call_function" and n.target in targets) or (
        n.op == "call_method" and n.target in targets)


def _on_tokens(ex: _Export, n: fx.Node) -> bool:
    """A linear layer applied to a sequence (per-sample output of more than one dimension)."""
    return isinstance(ex.module(n), (QLinear, nn.Linear)) and len(ex.shape_of(n)) > 1


def _tensor_item(ex: _Export, n: fx.Node) -> bool:
    """Indexing or splitting a tensor (not a shape)."""
    return (n.target is operator.getitem and not isinstance(ex.states.get(n.args[0]), NoTensor)
            ) or (n.op == "call_method" and n.target in ("chunk", "split", "unbind"))


def _not_yet(op: str) -> Callable[[_Export, fx.Node], State]:
    """The export of a float transformer construct: refuses, naming the op it stands for."""
    def export(ex: _Export, n: fx.Node) -> State:
        raise ConfigError(f"{n.name!r} ({node_kind(ex.gm, n)}) would become an artifact "
                          f"{op!r} layer, which {LEVEL} cannot export yet from a float "
                          f"module: convert a VisionTransformer with "
                          f"quant.torch.vit_qat.quantize_vit")
    return export


def _or_refuse(module: type | tuple[type, ...], handler: Callable[[_Export, fx.Node], State],
               op: str) -> Callable[[_Export, fx.Node], State]:
    """``handler`` for the QAT module(s) of a ViT op; other matches are float constructs."""
    refuse = _not_yet(op)
    return lambda ex, n: (handler if isinstance(ex.module(n), module) else refuse)(ex, n)


def _in(ex: _Export, n: fx.Node, i: int = 0) -> tuple[str, Value]:
    name = ex.ready(n.args[i], n)
    return name, ex.values[name]


def _out(ex: _Export, n: fx.Node, act: ActQuant) -> Value:
    """The value a ViT module's own output quantizer ``act`` gives node ``n``."""
    return Value(act.fmt, act.scale(), ex.shape_of(n))


def _same_codes(ex: _Export, n: fx.Node, op: str, attrs: dict | None = None) -> Ready:
    src, v = _in(ex, n)
    return ex.emit(Layer(n.target, op, (src,), Value(v.fmt, v.scale, ex.shape_of(n)),
                         attrs or {}))


def _reshape(ex: _Export, n: fx.Node) -> Ready:
    return _same_codes(ex, n, "reshape")


def _slice(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    return _same_codes(ex, n, "slice", {"axis": m.axis, "start": m.start, "stop": m.stop})


def _token_linear(ex: _Export, n: fx.Node) -> PendingGemm:
    return _pending_gemm(ex, n, "token_linear", ex.shape_of(n)[-1], {})


def _np(p: torch.Tensor) -> np.ndarray:
    return p.detach().double().numpy()


def _pos_embed(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    src, v = _in(ex, n)
    out = _out(ex, n, m.out)
    attrs, tensors = pos_embed_params(v.scale, out.scale, _np(m.pos_embed),
                                      _np(m.cls_token)[:, 0])
    return ex.emit(Layer(n.target, "pos_embed", (src,), out, attrs, tensors))


def _residual(ex: _Export, n: fx.Node) -> Ready:
    (a, va), (b, vb) = _in(ex, n, 0), _in(ex, n, 1)
    out = _out(ex, n, ex.module(n).out)
    attrs, tensors = residual_params((va.scale, vb.scale), out.scale, RESIDUAL_SHIFT)
    return ex.emit(Layer(n.target, "add", (a, b), out, attrs, tensors))


def _matmul(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    (a, va), (b, vb) = _in(ex, n, 0), _in(ex, n, 1)
    out = _out(ex, n, m.out)
    k = va.shape[1] if m.transpose_a else va.shape[2]
    bound = accumulator_bound(k, va.fmt.max_abs, vb.fmt.max_abs)
    acc_bits = 32 if bound < 1 << 31 else required_acc_bits(k, va.fmt.max_abs, vb.fmt.max_abs)
    attrs = {"transpose_a": m.transpose_a, "acc_bits": acc_bits,
             "gemm": {"M": out.shape[1], "K": k, "N": out.shape[2]},
             **matmul_params(va.scale, vb.scale, out.scale, m.factor)}
    return ex.emit(Layer(n.target, "matmul", (a, b), out, attrs))


def _softmax(ex: _Export, n: fx.Node) -> Ready:
    bits = ex.module(n).bits
    src, v = _in(ex, n)
    out = Value(ActFormat(bits), out_scale(bits), ex.shape_of(n))
    return ex.emit(Layer(n.target, "softmax", (src,), out,
                         softmax_params(v.scale, v.shape[-2], bits)))


def _layernorm(ex: _Export, n: fx.Node) -> Ready:
    m = ex.module(n)
    src, _ = _in(ex, n)
    out = _out(ex, n, m.out)
    attrs, tensors = layernorm_params(_np(m.weight), _np(m.bias), out.scale)
    return ex.emit(Layer(n.target, "layernorm", (src,), out, attrs, tensors))


def _gelu(ex: _Export, n: fx.Node) -> Ready:
    src, v = _in(ex, n)
    out = _out(ex, n, ex.module(n).out)
    return ex.emit(Layer(n.target, "gelu", (src,), out, gelu_params(v.scale, out.scale)))


#: The export handler of every artifact op (keys: :data:`quant.ops.OPS`). The transformer
#: ops export the modules of a converted ViT (:mod:`quant.torch.vit_qat`) and recognize the
#: float torch constructs they stand for, refusing those by name; a linear layer on a
#: sequence is ``token_linear`` and never ``linear`` (the matchers exclude each other, so the
#: table's order does not matter).
EXPORTERS: dict[str, OpExporter] = {
    "conv": OpExporter(_calls(QConv2d), _conv),
    "token_linear": OpExporter(_on_tokens, _or_refuse(QLinear, _token_linear, "token_linear")),
    "linear": OpExporter(lambda ex, n: _calls(QLinear)(ex, n) and not _on_tokens(ex, n),
                         _linear),
    "add": OpExporter(_any(_calls(QResidual), lambda ex, n: n.op == "call_function"
                           and n.target in ADD_FUNCS),
                      lambda ex, n: (_residual if isinstance(ex.module(n), QResidual)
                                     else _add)(ex, n)),
    "avgpool": OpExporter(_calls(nn.AdaptiveAvgPool2d, nn.AvgPool2d), _avgpool),
    "maxpool": OpExporter(_calls(nn.MaxPool2d), _maxpool),
    "flatten": OpExporter(_is_flatten, _flatten),
    "matmul": OpExporter(_any(_calls(QMatMul), _functions(torch.matmul, operator.matmul,
                                                          torch.bmm, "matmul", "bmm")),
                         _or_refuse(QMatMul, _matmul, "matmul")),
    "softmax": OpExporter(_any(_calls(QSoftmax, nn.Softmax),
                               _functions(torch.softmax, F.softmax, "softmax")),
                          _or_refuse(QSoftmax, _softmax, "softmax")),
    "layernorm": OpExporter(_any(_calls(QLayerNorm, nn.LayerNorm), _functions(F.layer_norm)),
                            _or_refuse(QLayerNorm, _layernorm, "layernorm")),
    "gelu": OpExporter(_any(_calls(QGelu, nn.GELU), _functions(F.gelu)),
                       _or_refuse(QGelu, _gelu, "gelu")),
    "pos_embed": OpExporter(_any(_calls(QPosEmbed),
                                 _functions(torch.cat, torch.concat, torch.concatenate)),
                            _or_refuse(QPosEmbed, _pos_embed, "pos_embed")),
    "reshape": OpExporter(_any(_calls(Reshape),
                               _functions(torch.reshape, torch.permute, torch.transpose,
                                          "permute", "transpose", "unflatten")),
                          _or_refuse(Reshape, _reshape, "reshape")),
    "slice": OpExporter(_any(_calls(Slice), _tensor_item), _or_refuse(Slice, _slice, "slice")),
}


@torch.no_grad()
def export(model: nn.Module, input_shape: tuple[int, ...], meta: dict | None = None,
           calibration: object | None = None) -> Artifact:
    """The integer :class:`~quant.artifact.Artifact` of a converted (QAT) model.

    ``input_shape`` is the per-sample shape ``(C, H, W)``. The logits are exported at the
    classifier's finest accumulator scale; with ``calibration`` (training images, float
    ``(B, *input_shape)``) that scale is coarsened by the power of two that keeps their
    logits within half of the engine's output lane, where logits saturate
    (:func:`quant.infer.fit_logits`; unchanged when they already are).
    """
    if not hasattr(model, "qat_config"):
        raise ConfigError("model must be converted with quantize_ before export")
    for name, m in model.named_modules():  # e.g. a PIM layer's live BN (pim_qat.fold_scales_)
        pending = m.unfolded() if callable(getattr(m, "unfolded", None)) else ""
        if pending:
            raise ConfigError(f"layer {name!r} has {pending} not folded into its weights and "
                              f"requantizer; fold it first (quant.torch.pim_qat.fold_scales_)")
    model.eval()
    gm = fx.GraphModule(model, trace(model))
    for n in list(gm.graph.nodes):  # drop Identity / Dropout (BN slots, eval dropout)
        if n.op == "call_module" and isinstance(gm.get_submodule(n.target), PASS_MODULES):
            n.replace_all_uses_with(n.args[0])
            gm.graph.erase_node(n)
    gm.recompile()
    ShapeProp(gm).propagate(torch.zeros(1, *input_shape))

    ex = _Export(model, gm)
    output = None
    for n in gm.graph.nodes:
        if n.op == "output":
            output = ex.finish_output(n)
        else:
            ex.states[n] = ex.visit(n)
    if ex.input_val is None:  # pragma: no cover - quantize_ guarantees a first GEMM
        raise ConfigError("the model has no quantized input")
    art = Artifact(input=ex.input_val, layers=tuple(ex.layers), output=output,
                   meta=dict(meta or {}))
    return art if calibration is None else fit_logits(art, calibration)
