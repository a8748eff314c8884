"""Quantization-aware training (torch): fake-quant layers and ``quantize_``.

``quantize_(model, QATConfig(...), calibration)`` rewrites an ordinary torch CNN in place:

1. The model is traced with ``torch.fx`` (analysis only); every layer must be a Conv2d,
   Linear, BatchNorm2d directly after a Conv2d, ReLU module, average/max pooling, Flatten,
   Identity/Dropout, or a residual ``+``; anything else is refused, naming it.
2. **BN is folded** (where the engine's rule, :mod:`quant.fusion`, folds it: after a conv
   whose output nothing else reads) into the preceding conv from its running statistics
   (``w' = w * gamma / sqrt(var + eps)``, ``b' = beta - mean * gamma / sqrt(var + eps)``) and
   replaced by ``Identity``; QAT then trains the folded conv with a bias. This is F8Net's
   "BN folded" deployment form (arXiv 2202.05239) used for every scheme, so the weights
   trained are exactly the weights exported.
3. Each Conv2d/Linear becomes :class:`QConv2d`/:class:`QLinear`, whose weight is
   fake-quantized per row (GEMM form ``C_out x C_in*kh*kw``) with a per-row scheme id and
   scale ``alpha`` (arXiv 2012.04240): ``w_q = alpha * proj(clip(w / alpha, -1, 1))``.
   ``proj`` is the nearest level of the row's :func:`quant.formats.weight_format` level set
   (the same ``levels`` array; ties to the smaller magnitude, as ``encode`` does), evaluated
   in float64; gradients pass straight through (STE). Scheme ids and alphas come from the
   foundation at conversion: ``quantize_rows`` (one scheme; per-row min-MSE alpha),
   ``msq_assign`` (MSQ: SP2 for ``sp2_fraction`` of the rows, rule ``mse`` or
   ``variance``), or for F8Net a per-layer ``alpha = 127 * 2**-fl`` with ``fl`` from the
   std rule on the folded weights. **They are kept fixed during QAT** (the assignment is a
   hardware decision: it fixes how many rows go to LUT cores); ``reassign_each_epoch=True``
   recomputes them from the current weights at every epoch instead.
   The first conv and the last linear use ``first_last_bits``-bit fixed point (default 8,
   common practice; ``None`` gives them the main scheme).
4. Each ReLU (and ReLU6) becomes :class:`QReLU`: ReLU, then unsigned ``act_bits``-bit fixed
   point with a learnable clip ``a`` (PACT, arXiv 1805.06085; a ReLU6's clip is at most 6
   and fixed): ``q = round_half_even(min(x, a) / s)``,
   ``s = a / (2**b - 1)``. For F8Net the clip is ``255 * 2**-fl`` with ``fl`` from the
   unsigned std rule on calibration activations, fixed. The first layer quantizes the input
   (images in [0, 1]) to uint8 with scale 1/255 (F8Net: 2**-8).
5. Clips are initialized on ``calibration`` images (min-MSE over a grid), F8 ``fl`` likewise.

A converted model is turned into its integer artifact by :func:`quant.torch.export.export`
and its integer form evaluated with torch kernels by
:func:`quant.torch.twin.integer_logits_torch`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from quant.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_fraction,
    check_int_range,
)
from quant.formats import WEIGHT_BITS, ActFormat, F8Format, Scheme, weight_format
from quant.msq import RULES, RowGroups, msq_assign_grouped
from quant.rows import quantize_rows
from quant.torch.fuse import PASS_MODULES, fx_absorbed
from quant.torch.vit import VisionTransformer

QAT_SCHEMES = ("fixed", "pot", "sp2", "msq", "f8")
LUT_SCHEMES = ("sp2", "pot")


@dataclass(frozen=True)
class QATConfig:
    """How to quantize a model.

    Members:
        scheme: weight scheme: ``fixed``, ``pot``, ``sp2``, ``msq`` (fixed + SP2 per row) or
            ``f8`` (F8Net: 8-bit fixed weights and activations, pure-shift requantization).
        bits: weight bits (fixed 2..16, pot 2..8, sp2 3..8, msq 3..8, f8 8).
        act_bits: activation bits after ReLU, 1..16 (f8: 8).
        sp2_fraction: msq only: fraction of each layer's rows on SP2, in [0, 1].
        msq_rule: msq only: row ranking, ``mse`` (default) or ``variance``.
        first_last_bits: fixed-point bits of the first conv and the last linear, 2..16, or
            None to quantize them like the rest. Ignored for f8 (all 8-bit).
        input_bits: bits of the quantized input images, 2..16 (f8: 8).
        pool_extra_bits: fractional bits an average-pooled value keeps beyond its input's
            format in the exported integer graph, 0..8 (default 4). 0 keeps the pooled
            value in the activation format, so it fits an engine of ``act_bits`` inputs.
        learn_clip: PACT clips are trained (True) or stay at their calibrated value.
        reassign_each_epoch: recompute row schemes and alphas at each QAT epoch.
        lut_scheme: msq only: the LUT scheme of the mixed rows, ``sp2`` (default, Mix and
            Match) or ``pot`` (Auto-ViT-Acc).
        int_ops: vision transformers only: the fake-quant forward runs softmax, LayerNorm
            and GELU with the integer kernels of the artifact (True, default) or in float
            (False, the ablation); the exported artifact is integer-only either way.
    """

    scheme: str = "msq"
    bits: int = 4
    act_bits: int = 4
    sp2_fraction: float = 0.5
    msq_rule: str = "mse"
    first_last_bits: int | None = 8
    input_bits: int = 8
    pool_extra_bits: int = 4
    learn_clip: bool = True
    reassign_each_epoch: bool = False
    lut_scheme: str = "sp2"
    int_ops: bool = True

    def __post_init__(self) -> None:
        check_choice("scheme", self.scheme, QAT_SCHEMES)
        if self.scheme == "f8":
            check_int_range("bits", self.bits, 8, 8, "for f8")
            check_int_range("act_bits", self.act_bits, 8, 8, "for f8")
            check_int_range("input_bits", self.input_bits, 8, 8, "for f8")
        else:
            check_choice("lut_scheme", self.lut_scheme, LUT_SCHEMES)
            for s in ("fixed", self.lut_scheme) if self.scheme == "msq" else (self.scheme,):
                r = WEIGHT_BITS[Scheme.parse(s)]
                check_int_range("bits", self.bits, r.start, r.stop - 1, f"for {self.scheme}")
            check_int_range("act_bits", self.act_bits, 1, 16)
            check_int_range("input_bits", self.input_bits, 2, 16)
        check_fraction("sp2_fraction", self.sp2_fraction)
        check_choice("msq_rule", self.msq_rule, RULES)
        check_int_range("pool_extra_bits", self.pool_extra_bits, 0, 8)
        if self.first_last_bits is not None:
            check_int_range("first_last_bits", self.first_last_bits, 2, 16)
        check_bool("learn_clip", self.learn_clip)
        check_bool("reassign_each_epoch", self.reassign_each_epoch)
        check_bool("int_ops", self.int_ops)


# ---------------------------------------------------------------------------------------
# fake-quant primitives
# ---------------------------------------------------------------------------------------

def nearest_level(levels: torch.Tensor, x: torch.Tensor, den: int | None = None) -> torch.Tensor:
    """Nearest entry of sorted float64 ``levels`` to each ``x``; ties → smaller magnitude.

    The torch twin of ``quant.formats._nearest_index`` (same comparisons, same float64).
    ``den``: the levels are ``fl(j / den)`` for ``j = -den .. den`` (fixed point): the two
    candidates are then computed, not looked up (:func:`uniform_pair`).
    """
    if den is None:
        i = torch.searchsorted(levels, x).clamp(1, levels.numel() - 1)
        lo, hi = levels[i - 1], levels[i]
    else:
        lo, hi = uniform_pair(x, den)
    d_lo, d_hi = (x - lo).abs(), (x - hi).abs()
    pick_hi = (d_hi < d_lo) | ((d_hi == d_lo) & (hi.abs() < lo.abs()))
    return torch.where(pick_hi, hi, lo)


def uniform_pair(x: torch.Tensor, den: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two neighbouring levels ``fl(c / den)``, ``fl((c + 1) / den)`` of each ``x`` in [-1, 1]
    of which one is its nearest level among ``fl(j / den)``, ``j = -den .. den``, without a
    search or a lookup (float64 division is correctly rounded, so ``c / den`` is the level).

    ``c = floor(x * den)``. Away from an integer ``k`` the float64 product keeps its floor, so
    the pair is the search's (``lo < x <= hi``), ties between two levels included. Within
    ``2**-38`` of ``k`` the rounding may move the floor by one, but ``k`` is then ``c`` or
    ``c + 1`` and ``fl(k / den)`` is nearer than any other level either way
    (tests/quant/test_qat.py compares with the search at the levels, the ties and their
    float64 neighbours).
    """
    c = torch.floor(x * den).clamp(-den, den - 1)
    return c / den, (c + 1) / den


class WeightQuantizer(nn.Module):
    """Per-row weight fake-quantizer: scheme ids and alphas as buffers, levels from formats."""

    def __init__(self, rows: int, bits: int) -> None:
        super().__init__()
        self.bits = bits
        self.register_buffer("scheme_ids", torch.zeros(rows, dtype=torch.int8))
        self.register_buffer("alphas", torch.ones(rows, dtype=torch.float64))
        self._groups: list[tuple[int | None, torch.Tensor, torch.Tensor]] = []
        self._refresh_groups()

    def _refresh_groups(self) -> None:
        ids = self.scheme_ids.numpy()
        self._groups = []
        for s in np.unique(ids):
            fmt = weight_format(int(s), self.bits)
            rows = torch.from_numpy(np.flatnonzero(ids == s))
            den = fmt.denominator if int(s) == Scheme.FIXED else None
            self._groups.append((den, rows, torch.from_numpy(fmt.levels.copy())))

    def set_rows(self, scheme_ids: np.ndarray, alphas: np.ndarray) -> None:
        self.scheme_ids.copy_(torch.from_numpy(scheme_ids.astype(np.int8)))
        self.alphas.copy_(torch.from_numpy(alphas.astype(np.float64)))
        self._refresh_groups()

    def _load_from_state_dict(self, *args, **kwargs) -> None:  # type: ignore[override]
        super()._load_from_state_dict(*args, **kwargs)
        self._refresh_groups()

    def levels(self, w2: torch.Tensor) -> torch.Tensor:
        """Normalized levels (float64, M x K) of the row-major weight matrix ``w2``."""
        x = (w2.detach().to(torch.float64) / self.alphas[:, None]).clamp(-1.0, 1.0)
        if len(self._groups) == 1:
            return nearest_level(self._groups[0][2], x, self._groups[0][0])
        out = torch.empty_like(x)
        for den, rows, lv in self._groups:
            out[rows] = nearest_level(lv, x[rows], den)
        return out

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        w2 = w.reshape(w.shape[0], -1)
        wq = (self.levels(w2) * self.alphas[:, None]).to(w.dtype).reshape(w.shape)
        return w + (wq - w).detach()


class _ClipRound(torch.autograd.Function):
    """``round(clamp(x, -c, c) / s) * s`` with the clamp's gradient (STE for the rounding), as
    one autograd node: the cheap form of a signed quantizer with a fixed clip."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: float, s: float) -> torch.Tensor:  # type: ignore[override]
        y = x.clamp(-clip, clip)
        ctx.save_for_backward(y == x)
        return torch.round(y / s) * s

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple:  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class ActQuant(nn.Module):
    """Fixed-point activation fake-quantizer with a (PACT) clip; STE for rounding.

    Unsigned (``[0, clip]``, after a ReLU) or, with ``signed``, symmetric (``[-clip, clip]``,
    the values of a transformer). ``ceiling``: the largest clip calibration may set (ReLU6:
    6), for a fixed clip."""

    def __init__(self, bits: int, clip: float = 1.0, learnable: bool = True,
                 signed: bool = False, ceiling: float | None = None) -> None:
        super().__init__()
        self.fmt = ActFormat(bits, signed)
        self.ceiling = ceiling
        c = torch.tensor(float(clip), dtype=torch.float32)
        if learnable:
            self.clip = nn.Parameter(c)
        else:
            self.register_buffer("clip", c)
        self.observing = False
        self._seen: list[np.ndarray] = []

    def scale(self) -> float:
        """Real value of one code step (float64 from the float32 clip)."""
        return float(self.clip.item()) / self.fmt.qmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            flat = x.detach().reshape(-1)
            step = max(1, flat.numel() // 20000)
            self._seen.append(flat[::step].double().numpy())
            return x
        if self.fmt.signed and not self.clip.requires_grad:
            c = float(self.clip)
            return _ClipRound.apply(x, c, c / self.fmt.qmax)
        clip = self.clip.to(x.dtype)
        y = torch.minimum(x, clip)
        y = torch.maximum(y, -clip) if self.fmt.signed else y.clamp_min(0)
        s = clip / self.fmt.qmax
        q = torch.round(y / s) * s
        return y + (q - y).detach()

    def calibrate(self, f8: bool) -> None:
        """Set the clip from observed values: min-MSE grid (PACT init) or F8Net's std rule."""
        x = np.concatenate(self._seen) if self._seen else np.zeros(1)
        self._seen = []
        if self.fmt.signed:
            x = np.abs(x)
        else:
            x = np.maximum(x, 0) if self.ceiling is None else np.clip(x, 0, self.ceiling)
        if f8:
            fl = F8Format.fl_from_std(float(np.std(x)), signed=False)
            clip = 255.0 * 2.0 ** -fl
            while self.ceiling is not None and clip > self.ceiling:
                clip /= 2  # one more fractional bit
        else:
            top = float(x.max()) if x.max() > 0 else 1.0
            best, clip = math.inf, top
            for c in top * np.linspace(0.2, 1.0, 33):
                s = c / self.fmt.qmax
                err = float(np.mean((np.minimum(x, c) - np.round(np.minimum(x, c) / s) * s
                                     + np.maximum(x - c, 0)) ** 2))
                if err < best:
                    best, clip = err, float(c)
        with torch.no_grad():
            self.clip.fill_(clip)


class QReLU(nn.Module):
    """ReLU followed by :class:`ActQuant` (what every ReLU of a converted model becomes).
    A ReLU6 becomes one with ``ceiling`` 6: its clip is calibrated at most 6 and then fixed,
    so the quantizer's clamp is the ReLU6's (the engine fuses either into the requantizer)."""

    def __init__(self, bits: int, learnable: bool = True, ceiling: float | None = None
                 ) -> None:
        super().__init__()
        self.act = ActQuant(bits, learnable=learnable and ceiling is None, ceiling=ceiling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.relu(x))


class QConv2d(nn.Conv2d):
    """Conv2d with per-row fake-quantized weights (and, if first, a quantized input)."""

    wq: WeightQuantizer
    in_quant: ActQuant | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_quant is not None:
            x = self.in_quant(x)
        return F.conv2d(x, self.wq(self.weight), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class QLinear(nn.Linear):
    """Linear with per-row fake-quantized weights (and, if first, a quantized input)."""

    wq: WeightQuantizer
    in_quant: ActQuant | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_quant is not None:
            x = self.in_quant(x)
        return F.linear(x, self.wq(self.weight), self.bias)


# ---------------------------------------------------------------------------------------
# conversion
# ---------------------------------------------------------------------------------------

Q_LEAVES = (QConv2d, QLinear, QReLU, ActQuant)
_SUPPORTED = (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.AdaptiveAvgPool2d,
              nn.AvgPool2d, nn.MaxPool2d, nn.Flatten, *PASS_MODULES)
ADD_FUNCS = (operator.add, torch.add)
FLATTEN_METHODS = ("flatten", "view", "reshape")
_SUPPORTED_NAMES = ("Conv2d, Linear, BatchNorm2d (after a Conv2d), ReLU, ReLU6, "
                    "AdaptiveAvgPool2d(1), "
                    "AvgPool2d, MaxPool2d, Flatten, Identity, Dropout and residual +")


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, Q_LEAVES) or getattr(m, "fx_leaf", False) \
            or super().is_leaf_module(m, qualname)


def trace(model: nn.Module) -> fx.Graph:
    try:
        return _Tracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ConfigError(f"model must be traceable by torch.fx (no data-dependent control "
                          f"flow), not {type(model).__name__}: {exc}") from None


def node_kind(model: nn.Module, node: fx.Node) -> str:
    """A short label of what a node does, for error messages and dispatch."""
    if node.op == "call_module":
        return type(model.get_submodule(node.target)).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    return f"{node.op} {node.target}"


def _check_supported(model: nn.Module, graph: fx.Graph) -> None:
    seen: set[str] = set()
    for node in graph.nodes:
        if node.op == "call_module":
            mod = model.get_submodule(node.target)
            if not isinstance(mod, _SUPPORTED + Q_LEAVES):
                raise ConfigError(f"layer {node.target!r} of type {type(mod).__name__} is not "
                                  f"supported; supported: {_SUPPORTED_NAMES}")
            if node.target in seen and not isinstance(mod, PASS_MODULES):
                raise ConfigError(f"layer {node.target!r} is called more than once; give each "
                                  f"use its own module")
            seen.add(node.target)
            if isinstance(mod, nn.Conv2d):
                if mod.groups != 1 or tuple(mod.dilation) != (1, 1) \
                        or mod.padding_mode != "zeros" or isinstance(mod.padding, str) \
                        or mod.padding[0] != mod.padding[1] or mod.stride[0] != mod.stride[1]:
                    raise ConfigError(f"layer {node.target!r}: Conv2d must have groups=1, "
                                      f"dilation 1, zero padding and equal strides/paddings, "
                                      f"not {mod}")
            if isinstance(mod, nn.AdaptiveAvgPool2d) and mod.output_size not in (1, (1, 1)):
                raise ConfigError(f"layer {node.target!r}: AdaptiveAvgPool2d output size must "
                                  f"be 1, not {mod.output_size}")
        elif node.op == "call_function":
            if node.target in ADD_FUNCS or node.target is torch.flatten:
                continue
            if node.target is getattr and node.args[1] == "shape":
                continue
            if node.target is operator.getitem or node.target is getattr:
                continue
            name = node_kind(model, node)
            hint = " (use an nn.ReLU module per use)" if "relu" in name else ""
            raise ConfigError(f"operation {name!r} at {node.name!r} is not supported{hint}; "
                              f"supported: {_SUPPORTED_NAMES}")
        elif node.op == "call_method":
            if node.target in (*FLATTEN_METHODS, "size"):
                continue
            hint = " (use an nn.ReLU module per use)" if "relu" in node.target else ""
            raise ConfigError(f"operation {node.target!r} at {node.name!r} is not "
                              f"supported{hint}; supported: {_SUPPORTED_NAMES}")
        elif node.op == "get_attr":
            raise ConfigError(f"reading attribute {node.target!r} in forward is not supported")


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def _fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0],
                                                                              dtype=torch.float64)
    if bn is None:
        return w, b
    std = torch.sqrt(bn.running_var.double() + bn.eps)
    g = bn.weight.detach().double() if bn.affine else torch.ones_like(std)
    beta = bn.bias.detach().double() if bn.affine else torch.zeros_like(std)
    k = g / std
    return w * k.reshape(-1, *([1] * (w.ndim - 1))), beta + (b - bn.running_mean.double()) * k


def assign_rows(w2: np.ndarray, cfg: QATConfig, bits: int, edge: bool,
                groups: RowGroups | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scheme_ids, alphas) for one layer's GEMM-form weights, from the foundation; an msq
    layer with row ``groups`` gets the same LUT fraction in every group."""
    if cfg.scheme == "f8":
        fl = F8Format.fl_from_std(float(np.std(w2)), signed=True)
        return (np.full(w2.shape[0], int(Scheme.FIXED), np.int8),
                np.full(w2.shape[0], 127.0 * 2.0 ** -fl))
    if edge and cfg.first_last_bits is not None:
        rows = quantize_rows(w2, Scheme.FIXED, bits)
    elif cfg.scheme == "msq":
        rows = msq_assign_grouped(w2, groups or ((0, w2.shape[0]),), cfg.sp2_fraction, bits,
                                  cfg.msq_rule, cfg.lut_scheme)
    else:
        rows = quantize_rows(w2, cfg.scheme, bits)
    return rows.scheme_ids, rows.alphas


def _layer_bits(cfg: QATConfig, edge: bool) -> int:
    if cfg.scheme == "f8":
        return 8
    return cfg.first_last_bits if (edge and cfg.first_last_bits is not None) else cfg.bits


def make_q(mod: nn.Module, bn: nn.BatchNorm2d | None, cfg: QATConfig, edge: bool,
           first: bool, linear: type = QLinear, groups: RowGroups | None = None) -> nn.Module:
    """The fake-quant layer of Conv2d/Linear ``mod`` (BN ``bn`` folded): a QConv2d, or a
    ``linear`` (QLinear or a subclass); rows assigned by :func:`assign_rows` with ``groups``;
    ``edge`` layers get ``first_last_bits``, the ``first`` quantizes the input images."""
    w, b = _fold_bn(mod, bn) if isinstance(mod, nn.Conv2d) else (
        mod.weight.detach().double(),
        mod.bias.detach().double() if mod.bias is not None
        else torch.zeros(mod.out_features, dtype=torch.float64))
    if isinstance(mod, nn.Conv2d):
        q: nn.Module = QConv2d(mod.in_channels, mod.out_channels, mod.kernel_size, mod.stride,
                               mod.padding, bias=True)
    else:
        q = linear(mod.in_features, mod.out_features, bias=True)
    with torch.no_grad():
        q.weight.copy_(w.float())
        q.bias.copy_(b.float())
    bits = _layer_bits(cfg, edge)
    q.wq = WeightQuantizer(w.shape[0], bits)
    q.wq.set_rows(*assign_rows(q.weight.detach().double().reshape(w.shape[0], -1).numpy(),
                               cfg, bits, edge, groups))
    q.row_groups = groups
    q.bn_folded = bn is not None  # PIM-QAT can train a live BN in its place (pim_qat.py)
    q.in_quant = None
    if first:
        in_clip = 255.0 / 256.0 if cfg.scheme == "f8" else 1.0
        q.in_quant = ActQuant(cfg.input_bits, clip=in_clip, learnable=False)
    q.edge = edge
    return q


def check_convertible(model: nn.Module) -> None:
    """Raise the ConfigError :func:`quantize_` would raise about ``model``'s layers (naming
    the model), without converting it: a trace only, cheap enough to run before training."""
    try:
        _check_supported(model, trace(model))
    except ConfigError as exc:
        raise ConfigError(f"model {type(model).__name__} cannot be converted for QAT: "
                          f"{exc}") from None


def quantize_(model: nn.Module, config: QATConfig, calibration: torch.Tensor) -> nn.Module:
    """Convert ``model`` in place for QAT (see the module docstring); returns it.

    ``calibration``: a batch of training images (float, [0, 1]) used to initialize the
    activation clips. The model is left in eval mode.
    """
    if not isinstance(config, QATConfig):
        raise ConfigError(f"config must be a QATConfig, not {type(config).__name__}")
    if isinstance(model, VisionTransformer):
        raise ConfigError("model VisionTransformer is converted by quant.torch.vit_qat."
                          "quantize_vit (a new module), not in place by quantize_")
    model.eval()
    graph = trace(model)
    _check_supported(model, graph)
    nodes = list(graph.nodes)
    mods = {n: model.get_submodule(n.target) for n in nodes if n.op == "call_module"}

    def skip_pass(n: fx.Node) -> fx.Node:
        while n.op == "call_module" and isinstance(mods[n], PASS_MODULES):
            n = n.args[0]
        return n

    host = fx_absorbed(model, graph)  # the engine's fold rule (quant.fusion)
    bn_of: dict[fx.Node, fx.Node] = {}
    for n in nodes:
        if n in mods and isinstance(mods[n], nn.BatchNorm2d):
            src = host.get(n)
            if not (src in mods and isinstance(mods[src], nn.Conv2d)):
                raise ConfigError(f"layer {n.target!r}: BatchNorm2d must directly follow a "
                                  f"Conv2d (used only by it) to be folded")
            bn_of[src] = n
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ConfigError(f"model must take one input, not {len(placeholders)}")
    firsts = list(placeholders[0].users)
    if len(firsts) != 1 or not isinstance(mods.get(firsts[0]), (nn.Conv2d, nn.Linear)):
        raise ConfigError("the model input must feed exactly one Conv2d or Linear directly")
    out_node = next(n for n in nodes if n.op == "output")
    last = skip_pass(out_node.args[0])
    if not isinstance(mods.get(last), (nn.Conv2d, nn.Linear)):
        raise ConfigError("the model output must come from a Linear or Conv2d "
                          f"(the classifier), not {node_kind(model, last)!r}")

    for n in nodes:
        if n not in mods:
            continue
        m = mods[n]
        if isinstance(m, (nn.Conv2d, nn.Linear)) and not isinstance(m, (QConv2d, QLinear)):
            bn = mods[bn_of[n]] if n in bn_of else None
            edge = n is firsts[0] or n is last
            _set_module(model, n.target, make_q(m, bn, config, edge, n is firsts[0]))
        elif isinstance(m, nn.BatchNorm2d):
            _set_module(model, n.target, nn.Identity())
        elif isinstance(m, (nn.ReLU, nn.ReLU6)):
            _set_module(model, n.target, QReLU(config.act_bits,
                                               learnable=config.learn_clip
                                               and config.scheme != "f8",
                                               ceiling=6.0 if isinstance(m, nn.ReLU6)
                                               else None))
    model.qat_config = config
    calibrate_(model, calibration)
    return model


def act_quantizers(model: nn.Module) -> list[ActQuant]:
    """The activation quantizers of a converted model (excluding fixed input quantizers)."""
    return [m.act for m in model.modules() if isinstance(m, QReLU)]


@torch.no_grad()
def calibrate_(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> None:
    """Initialize every PACT clip (or F8 fl) from activations on ``images``."""
    # one quantizer at a time would be more faithful; all at once is one pass and the
    # clips are then trained anyway
    calibrate_clips(model, act_quantizers(model), images, batch_size,
                    model.qat_config.scheme == "f8")


@torch.no_grad()
def calibrate_clips(model: nn.Module, acts: list[ActQuant], images: torch.Tensor,
                    batch_size: int, f8: bool, progress: bool = False) -> None:
    """Set the clips of ``acts`` from the values they see while ``model`` runs on
    ``images`` (eval mode, in batches of ``batch_size``); the others quantize meanwhile.
    ``progress``: a bar over the batches on stderr."""
    from tqdm import tqdm

    model.eval()
    for a in acts:
        a.observing = True
    try:
        for i in tqdm(range(0, images.shape[0], batch_size), desc="calibrate", leave=False,
                      disable=not progress, unit="batch"):
            model(images[i:i + batch_size])
    finally:
        for a in acts:
            a.observing = False
    for a in acts:
        a.calibrate(f8)


def reassign_rows_(model: nn.Module) -> None:
    """Recompute every layer's row schemes and alphas from its current weights."""
    cfg: QATConfig = model.qat_config
    for m in model.modules():
        if isinstance(m, (QConv2d, QLinear)):
            w2 = m.weight.detach().double().reshape(m.weight.shape[0], -1).numpy()
            m.wq.set_rows(*assign_rows(w2, cfg, m.wq.bits, m.edge,
                                       getattr(m, "row_groups", None)))
