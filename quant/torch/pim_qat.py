"""PIM-QAT in torch: conv/linear layers whose forward pass computes what the PIM macro does.

PIM-QAT (arXiv 2209.08617) trains a quantized network with the PIM quantization — the ADC
conversion of every analog group sum — in the forward pass. This module converts a QAT
model (:func:`quant.torch.qat.quantize_`) so that each ``QConv2d``/``QLinear`` becomes a
:class:`PimConv2d`/:class:`PimLinear` (subclasses, so :func:`quant.torch.export.export` still
writes the integer artifact) computing, on the *integer codes* of the layer:

1. weights: the integer levels of the fake-quantized weights (``level * denominator``;
   fixed point ``-(2**(b-1)-1) .. 2**(b-1)-1``); activations: the unsigned codes of the
   quantizer that feeds the layer (``round(x / s_in)``; ``s_in`` is found once, at
   conversion, by walking the fx graph back to that quantizer: a ``QReLU``, the input
   quantizer of the first conv, or a ``QReLU`` behind average pooling, whose integer form
   carries ``QATConfig.pool_extra_bits`` extra fractional bits);
2. im2col (``F.unfold``, the row order of ``quant.ref.im2col``), then, per group of
   ``group_size`` rows of K (the last group may be shorter), the group sums as one batched
   matmul over the group slices — per weight slice and input bit plane for ``bit_serial``,
   per ``w⁺``/``w⁻`` column for ``differential``;
3. the ADC of :mod:`quant.pim`: ``v = p / Δ``, transfer curve ``v (1 − β|v|/code_max)``,
   Gaussian noise ``σ N(0, 1)`` drawn from a seeded ``torch.Generator``, ``torch.round``
   (half to even), clamp to the code range;
4. recombination ``Σ ±code · Δ · 2**shift``, then the accumulator scale
   ``alpha / denominator · s_in`` and the bias.

With β = σ = 0 the integer result equals :func:`sim.pim.pim_gemm` bit for bit (tested for
all three schemes, K not a multiple of the group size). Float32 is exact here as long as
every partial sum is below 2**24 (true for the group sizes and bit widths fpim uses;
:func:`pim_matmul` takes float64 when asked).

**Backward (straight-through estimator).** The layer returns
``b·y_ideal + (f·y_pim − b·y_ideal).detach()``, where ``y_ideal`` is the ordinary
fake-quant conv/linear (differentiable in weights, activations and clips), ``y_pim`` the
PIM result above, ``f`` the forward rescaling factor and ``b`` the **backward rescaling
factor** ``PimQATConfig.backward_scale``. The ADC's rounding and clipping are thus treated
as the identity in the backward pass, and the gradient is rescaled by ``b``. PIM-QAT
derives a per-layer constant for this from the training dynamics; the exact formula of the
paper is **not confirmed** here, so fpim's default is ``b = 1`` (plain STE), which is what
the experiment in ``bench/pim_table.py`` uses; any positive constant can be set.

**Forward rescaling** (``forward_rescale=True``): PIM quantization shrinks outputs (small
group sums round to zero, the transfer curve compresses). The layer keeps a running ratio
``f = ‖y_ideal‖ / ‖y_pim‖`` (momentum 0.1, updated in training mode, detached) and
multiplies the PIM output by it, restoring the output magnitude the next quantizer was
calibrated for. fpim's variant rescales the layer output rather than the weights (F8Net's
constant rescaling of the weights targets networks without BN; here BN is folded);
:func:`fold_scales_` moves ``f`` into the row scales ``alpha`` before export, so the
integer artifact needs no extra operation. Off by default.

**BN calibration** (:func:`bn_calibrate_`). The QAT stack folds BN into the convs at
conversion (issue 3), so without ``train_bn`` there are no BN layers to recalibrate after
PIM training. fpim
calibrates the *post-PIM affine* that folded BN leaves behind instead: with weights frozen,
it resets per-channel statistics, runs calibration batches through the model twice — once
with the arithmetic the model was trained with (reference statistics) and once with the
chip's non-ideal arithmetic (noise, non-linearity) — accumulating per-channel mean and
variance by cumulative averaging (every batch weighs the same, like BN with
``momentum=None``), and corrects each layer output to the reference statistics:
``z' = (z − μ_chip) σ_ref / σ_chip + μ_ref``. During the chip pass the correction is applied
as it is estimated, so later layers are calibrated on corrected inputs. The gain and
offset are then folded into ``alpha`` and the bias (a positive per-row gain keeps the
integer weight levels unchanged), i.e. into the artifact's per-row requantizer.

**Learnable per-column partial-sum scales** (``psum_scales="column"``): the periphery's sum
of ADC codes of output column ``c`` is multiplied by ``s_c = exp(t_c)`` (``t_c`` learnable,
0 at the start, clamped to ``s_c`` in [1/16, 16]) before the bias; the scale sits outside the
straight-through estimator, so ``t_c`` gets the gradient ``Σ ∂L/∂y · y``.
:func:`fold_scales_` folds ``s_c`` into the row's ``alpha`` (the requantizer multiplier);
the weight levels, ADC codes and periphery sums stay the same integers. A scale per ADC
group along K cannot be folded into a per-row requantizer (it weights each group's code
before the periphery adds them), so it is not offered.

**Live BN during PIM-QAT** (``train_bn=True``): a ``BatchNorm2d`` behind every PIM conv whose
BN was folded by ``quantize_``, started as the identity (:func:`bn_init_`), trained with
batch statistics; :func:`bn_calibrate_` then recomputes its running statistics through the
chip (the BN calibration of arXiv 2209.08617) and folds it, and :func:`fold_scales_` folds
it (with whatever statistics it has) before export.

**Adjusted precision training**: train (fine-tune) with ``PimArith.adc_bits`` below the
chip's (a coarser ADC step), then deploy at the chip's bits with its noise; the training
arithmetic is simply a different :class:`~quant.pim.PimArith` (see
:func:`set_arith_`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from quant.errors import ConfigError, check_bool, check_choice, check_positive, check_real
from quant.formats import weight_format
from quant.pim import PimArith, PimPlan, plan
from quant.pim.kernels import bit_serial_conv
from quant.torch.qat import QConv2d, QLinear, QReLU, trace

# ---------------------------------------------------------------------------------------
# the PIM GEMM on integer-valued tensors
# ---------------------------------------------------------------------------------------


def _adc(p: torch.Tensor, pl: PimPlan, si: int, gen: torch.Generator | None
         ) -> torch.Tensor:
    """ADC codes of analog sums ``p`` of slice ``si``, shifted by the periphery's
    ``out_shift`` (see quant.pim). In exact mode ``p * adc_mult`` is formed in float64,
    exact below 2**53."""
    arith = pl.arith
    if pl.adc_mult != 1:
        v = p.double() * pl.adc_mult / float(1 << pl.adc_shift[si])
    else:
        v = p / float(1 << pl.adc_shift[si])
    if arith.nonlinearity:
        v = v * (1.0 - arith.nonlinearity * v.abs() / arith.code_max)
    if arith.noise_lsb:
        v = v + arith.noise_lsb * torch.randn(v.shape, generator=gen, dtype=v.dtype,
                                              device=v.device)
    code = torch.round(v).clamp_(arith.code_min, arith.code_max).to(p.dtype)
    return code * float(1 << pl.out_shift[si])


def _grouped(w: torch.Tensor, x: torch.Tensor, g: int) -> torch.Tensor:
    """Group sums: (M, K) by (K, N) → (G, M, N), group i summing K rows i*g .. i*g+g-1."""
    m, k = w.shape
    groups = math.ceil(k / g)
    pad = groups * g - k
    if pad:  # zero rows add nothing to any group sum
        w = F.pad(w, (0, pad))
        x = F.pad(x, (0, 0, 0, pad))
    wg = w.reshape(m, groups, g).transpose(0, 1)  # (G, M, g)
    xg = x.reshape(groups, g, x.shape[1])  # (G, g, N)
    return torch.bmm(wg, xg)


def pim_matmul(w_int: torch.Tensor, x: torch.Tensor, pl: PimPlan,
               gen: torch.Generator | None = None) -> torch.Tensor:
    """``W · X`` the way the macro computes it (no gradient).

    ``w_int`` (M, K) and ``x`` (K, N) hold integers as float tensors (float64 for exact
    results beyond 2**24); ``pl`` from :func:`quant.pim.plan`. Returns (M, N) in the dtype
    of ``x``, in units of ``pl.step``; equals :func:`sim.pim.pim_gemm` when the arithmetic
    is ideal.
    """
    a = pl.arith
    g = a.group_size
    w = w_int.to(x.dtype)
    with torch.no_grad():
        if a.scheme == "native":
            return _adc(_grouped(w, x, g), pl, 0, gen).sum(0)
        if a.scheme == "differential":  # w⁺ and w⁻ columns in one matmul
            m = w.shape[0]
            p = _grouped(torch.cat([w.clamp(min=0), (-w).clamp(min=0)]), x, g)
            if a.ideal:  # no draws: convert both columns at once
                c = _adc(p, pl, 0, gen).sum(0)
                return c[:m] - c[m:]
            pos = _adc(p[:, :m], pl, 0, gen)  # w⁺ draws first, then w⁻
            neg = _adc(p[:, m:], pl, 0, gen)
            return (pos - neg).sum(0)
        # bit-serial: weight slices stacked along M, input planes along N, one bmm
        m, n = w.shape[0], x.shape[1]
        wu = torch.remainder(w, float(1 << pl.w_bits))  # two's complement as unsigned
        xu = torch.remainder(x, float(1 << pl.a_bits))
        ws = torch.cat([torch.remainder(torch.floor(wu / (1 << lo)), float(1 << (hi - lo)))
                        for _, _, lo, hi in pl.slices])
        xs = torch.cat([torch.remainder(torch.floor(xu / (1 << sh)), 2.0)
                        for _, sh in pl.planes], dim=1)
        p = _grouped(ws, xs, g).reshape(-1, len(pl.slices), m, len(pl.planes), n)
        out = torch.zeros((m, n), dtype=x.dtype)
        for si, (smul, sshift, _, _) in enumerate(pl.slices):
            codes = _adc(p[:, si], pl, si, gen).sum(0)  # (M, planes, N)
            for pi, (psign, pshift) in enumerate(pl.planes):
                out += (psign * smul * float(1 << (sshift + pshift))) * codes[:, pi]
        return out


# ---------------------------------------------------------------------------------------
# layers
# ---------------------------------------------------------------------------------------


#: Choices of :attr:`PimQATConfig.psum_scales`.
PSUM_SCALES = ("off", "column")
#: A learnable partial-sum scale stays within [1/16, 16] (``exp`` of a clamped log).
PSUM_LOG_BOUND = math.log(16.0)


@dataclass(frozen=True)
class PimQATConfig:
    """PIM-QAT options beyond the arithmetic.

    Members:
        backward_scale: factor on the straight-through gradient through the PIM
            quantization, > 0 (default 1: the paper's formula is not confirmed).
        forward_rescale: rescale PIM outputs to the ideal output magnitude (running ratio).
        momentum: momentum of the forward rescaling ratio, (0, 1].
        psum_scales: ``off`` or ``column``: a learnable scale per output column on the
            periphery's sum of ADC codes (module docstring); folded into the row's
            requantizer at export. Per-group scales are not offered: they cannot be folded
            into a per-row requantizer.
        psum_lr_scale: factor on the gradient of the partial-sum scales' logarithms, > 0
            (with SGD a learning-rate multiplier for them alone; default 1).
        train_bn: PIM-QAT trains a live BatchNorm after every PIM conv whose BN the digital
            QAT folded (batch statistics, running statistics updated); BN calibration
            (:func:`bn_calibrate_`) recomputes its statistics through the chip, and
            :func:`fold_scales_` folds it into the requantizer.
    """

    backward_scale: float = 1.0
    forward_rescale: bool = False
    momentum: float = 0.1
    psum_scales: str = "off"
    psum_lr_scale: float = 1.0
    train_bn: bool = False

    def __post_init__(self) -> None:
        check_positive("backward_scale", self.backward_scale)
        check_bool("forward_rescale", self.forward_rescale)
        check_real("momentum", self.momentum, 0, 1, lo_open=True)
        check_choice("psum_scales", self.psum_scales, PSUM_SCALES)
        check_positive("psum_lr_scale", self.psum_lr_scale)
        check_bool("train_bn", self.train_bn)


class _PimMixin:
    """What PimConv2d and PimLinear share; see the module docstring."""

    arith: PimArith
    pim_cfg: PimQATConfig
    pim_enabled: bool

    def _pim_init(self, arith: PimArith, cfg: PimQATConfig, src: object, src_shift: int,
                  a_bits: int, gen: torch.Generator) -> None:
        ids = np.unique(self.wq.scheme_ids.numpy())
        fmts = [weight_format(int(s), self.wq.bits) for s in ids]
        self.w_bits = max(2, max(f.max_abs_int for f in fmts).bit_length() + 1)
        self.register_buffer("den", torch.tensor(
            [weight_format(int(s), self.wq.bits).denominator for s in self.wq.scheme_ids],
            dtype=torch.float64))
        self.register_buffer("fwd_scale", torch.ones((), dtype=torch.float64))
        self._src = [src]  # a list: the quantizer must not become a submodule here
        self.src_shift = src_shift
        self.a_bits = a_bits
        self.pim_cfg = cfg
        self.pim_enabled = True
        self.gen = gen
        self.calib: str | None = None
        self.stats: list[torch.Tensor] | None = None
        self.ref_stats: list[torch.Tensor] | None = None
        self.adc_range: float | None = None
        rows = self.weight.shape[0]
        self.register_parameter("psum_log_scale", nn.Parameter(
            torch.zeros(rows, dtype=self.weight.dtype)) if cfg.psum_scales == "column" else None)
        live_bn = cfg.train_bn and isinstance(self, PimConv2d) and getattr(self, "bn_folded",
                                                                           True)
        self.add_module("bn", nn.BatchNorm2d(rows).double() if live_bn else None)
        self.set_arith(arith)

    def set_arith(self, arith: PimArith) -> None:
        self.arith = arith
        self.plan = plan(arith, self.w_bits, self.a_bits, False, self.adc_range)

    def input_scale(self, dtype: torch.dtype) -> torch.Tensor:
        """Real value of one input code step, computed as the quantizer does."""
        act = self._src[0]
        return act.clip.detach().to(dtype) / act.fmt.qmax / (1 << self.src_shift)

    def int_weights(self) -> torch.Tensor:
        """(M, K) integer weight levels (float64) of the current fake-quantized weights."""
        w2 = self.weight.reshape(self.weight.shape[0], -1)
        return torch.round(self.wq.levels(w2) * self.den[:, None])

    def _pim_out(self, x: torch.Tensor, y_ideal: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            s_in = self.input_scale(x.dtype)
            xq = torch.round(x / s_in)
            if self._packed_ok():
                acc = self._packed_bit_serial(xq).to(x.dtype)
            else:
                if isinstance(self, PimConv2d):
                    cols = F.unfold(xq, self.kernel_size, padding=self.padding,
                                    stride=self.stride)
                    b, k, n = cols.shape
                    cols = cols.transpose(0, 1).reshape(k, b * n)
                else:
                    cols = xq.reshape(xq.shape[0], -1).T
                acc = pim_matmul(self.int_weights(), cols, self.plan, self.gen)
            s_acc = (self.wq.alphas / self.den * float(self.plan.step)).to(x.dtype) * s_in
            y = acc * s_acc[:, None]
            if isinstance(self, PimConv2d):
                y = y.reshape(y.shape[0], x.shape[0], -1).transpose(0, 1).reshape(y_ideal.shape)
            else:
                y = y.T
            if self.pim_cfg.forward_rescale:
                if self.training:
                    ratio = y_ideal.detach().norm() / y.norm().clamp_min(1e-12)
                    self.fwd_scale.mul_(1 - self.pim_cfg.momentum).add_(
                        self.pim_cfg.momentum * ratio.double())
                y = y * self.fwd_scale.to(y.dtype)
        bs = self.pim_cfg.backward_scale
        if bs == 1.0:  # the same value, two fewer passes over the output
            return y_ideal + (y - y_ideal).detach()
        return bs * y_ideal + (y - bs * y_ideal).detach()

    def _packed_ok(self) -> bool:
        """Ideal bit-serial on a square conv/linear: the popcount kernel applies."""
        if self.plan.arith.scheme != "bit_serial" or not self.plan.arith.ideal:
            return False
        if isinstance(self, PimConv2d):
            return (len(set(self.padding)) == 1 and len(set(self.stride)) == 1
                    and self.dilation == (1, 1) and self.groups == 1
                    and isinstance(self.padding, tuple))
        return True

    def _packed_bit_serial(self, xq: torch.Tensor) -> torch.Tensor:
        """Ideal bit-serial group sums by popcount on bit-packed planes
        (:func:`quant.pim.kernels.bit_serial_conv`); the same integers as :func:`pim_matmul`."""
        x = xq.detach().to(torch.int32).numpy()
        w = self.int_weights().to(torch.int64).numpy()
        if isinstance(self, PimConv2d):
            out = bit_serial_conv(x, w, self.plan, self.kernel_size, self.padding[0],
                                  self.stride[0])
        else:
            out = bit_serial_conv(x.reshape(x.shape[0], -1, 1, 1), w, self.plan, (1, 1))
        return torch.from_numpy(out)

    def psum_scale(self) -> torch.Tensor | None:
        """The learnable per-column partial-sum scales (None when off)."""
        t = self.psum_log_scale
        if t is None:
            return None
        g = self.pim_cfg.psum_lr_scale
        if g != 1.0:  # the same value, the gradient times g
            t = t.detach() + (t * g - (t * g).detach())
        return torch.exp(t.clamp(-PSUM_LOG_BOUND, PSUM_LOG_BOUND))

    def _finish(self, x: torch.Tensor, y_ideal: torch.Tensor) -> torch.Tensor:
        y = self._pim_out(x, y_ideal) if self.pim_enabled else y_ideal
        shape = (1, -1, *([1] * (y.dim() - 2)))
        s = self.psum_scale()
        if s is not None:  # on the sum of codes, before the bias (folds into alpha only)
            y = y * s.to(y.dtype).reshape(shape)
        z = y + self.bias.reshape(shape)
        if self.bn is not None:  # float64 statistics, the layer's dtype out
            z = self.bn(z.double()).to(y.dtype)
        if self.calib is not None:
            z = self._calibrate(z)
        return z

    def unfolded(self) -> str:
        """What of this layer the integer artifact cannot express yet ('' if nothing):
        :func:`fold_scales_` folds it into the requantizer."""
        parts = []
        if self.bn is not None:
            parts.append("a live BatchNorm")
        if self.psum_log_scale is not None and bool((self.psum_log_scale != 0).any()):
            parts.append("partial-sum scales")
        if float(self.fwd_scale) != 1.0:
            parts.append("a forward rescaling factor")
        return " and ".join(parts)

    @torch.no_grad()
    def _calibrate(self, z: torch.Tensor) -> torch.Tensor:
        dims = [d for d in range(z.dim()) if d != 1]
        zz = z.double()
        n = zz.numel() // zz.shape[1]
        part = [torch.tensor(float(n), dtype=torch.float64), zz.sum(dims), (zz * zz).sum(dims)]
        self.stats = part if self.stats is None else [a + b for a, b in
                                                      zip(self.stats, part, strict=True)]
        if self.calib == "chip":
            gain, offset = self.calib_affine()
            shape = (1, -1, *([1] * (z.dim() - 2)))
            z = z * gain.to(z.dtype).reshape(shape) + offset.to(z.dtype).reshape(shape)
        return z

    @staticmethod
    def _moments(stats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cnt, s1, s2 = stats
        mean = s1 / cnt
        var = (s2 / cnt - mean * mean).clamp_min(0)
        return mean, var.sqrt()

    def calib_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, offset) per channel mapping chip statistics onto the reference ones."""
        mu_r, sd_r = self._moments(self.ref_stats)
        mu_c, sd_c = self._moments(self.stats)
        gain = torch.where((sd_c > 1e-12) & (sd_r > 1e-12), sd_r / sd_c.clamp_min(1e-12),
                           torch.ones_like(sd_c))
        return gain, mu_r - gain * mu_c

    @torch.no_grad()
    def fold_gain(self, gain: torch.Tensor, offset: torch.Tensor, scale_bias: bool = True
                  ) -> None:
        """Fold ``z' = gain * z + offset`` (per row; ``z = y + bias``) into weight, alpha and
        bias; with ``scale_bias`` False the gain applies to ``y`` only (``z' = gain * y +
        bias + offset``). alpha takes ``|gain|``, a negative gain negates the row's levels
        (the level sets are symmetric). The integer levels stay exactly ``sign(gain)`` times
        what they were: an entry the float rescaling would move across a rounding boundary
        is set to its level (checked)."""
        gain = gain.double()
        if bool((gain == 0).any()) or not bool(torch.isfinite(gain).all()):
            row = int(torch.nonzero((gain == 0) | ~torch.isfinite(gain))[0])
            raise ConfigError(f"row {row}: a gain of {float(gain[row])!r} cannot be folded "
                              f"into the requantizer (it must be finite and nonzero)")
        rows = self.weight.shape[0]
        w2 = self.weight.data.view(rows, -1)
        want = self.wq.levels(w2) * torch.sign(gain)[:, None]
        w2.mul_(gain.to(w2.dtype)[:, None])
        self.wq.alphas.mul_(gain.abs())
        moved = self.wq.levels(w2) != want
        if bool(moved.any()):
            w2[moved] = (want * self.wq.alphas[:, None]).to(w2.dtype)[moved]
            if bool((self.wq.levels(w2) != want).any()):
                raise ConfigError("a negative gain needs symmetric weight levels; this "
                                  "layer's format is not")
        b = self.bias.double() * gain if scale_bias else self.bias.double()
        self.bias.copy_((b + offset).to(self.bias.dtype))

    @torch.no_grad()
    def fold_all(self) -> None:
        """Fold the forward rescaling factor, the partial-sum scales (both on the sum of
        codes, before the bias) and a live BN (after it) into weight, alpha and bias."""
        rows = self.weight.shape[0]
        zero = torch.zeros(rows, dtype=torch.float64)
        g = self.fwd_scale.double().expand(rows).clone()
        s = self.psum_scale()
        if s is not None:
            g = g * s.detach().double()
        self.fold_gain(g, zero, scale_bias=False)
        self.fwd_scale.fill_(1.0)
        if self.psum_log_scale is not None:
            self.psum_log_scale.zero_()
        if self.bn is not None:
            bn = self.bn
            k = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
            self.fold_gain(k, bn.bias.detach().double() - k * bn.running_mean.double())
            self.bn = None


class PimConv2d(_PimMixin, QConv2d):
    """A QConv2d whose forward computes the PIM macro's arithmetic (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_quant is not None:
            x = self.in_quant(x)
        y = F.conv2d(x, self.wq(self.weight), None, self.stride, self.padding, self.dilation,
                     self.groups)
        return self._finish(x, y)


class PimLinear(_PimMixin, QLinear):
    """A QLinear whose forward computes the PIM macro's arithmetic (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_quant is not None:
            x = self.in_quant(x)
        return self._finish(x, F.linear(x, self.wq(self.weight)))


PIM_LAYERS = (PimConv2d, PimLinear)


def pim_layers(model: nn.Module) -> list[_PimMixin]:
    return [m for m in model.modules() if isinstance(m, PIM_LAYERS)]


# ---------------------------------------------------------------------------------------
# conversion and model-level operations
# ---------------------------------------------------------------------------------------


def _source_quantizer(gm: fx.GraphModule, node: fx.Node, layer: nn.Module,
                      pool_bits: int) -> tuple[nn.Module, int]:
    """The activation quantizer feeding ``node`` and the extra fractional bits on the way."""
    if layer.in_quant is not None:
        return layer.in_quant, 0
    shift = 0
    src = node.args[0]
    while True:
        if src.op == "call_module":
            mod = gm.get_submodule(src.target)
            if isinstance(mod, QReLU):
                return mod.act, shift
            if isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
                shift += pool_bits
                src = src.args[0]
                continue
            if isinstance(mod, (nn.Flatten, nn.MaxPool2d, nn.Identity, nn.Dropout)):
                src = src.args[0]
                continue
        elif src.op in ("call_function", "call_method") and (
                src.target is torch.flatten or src.target in ("flatten", "view", "reshape")):
            src = src.args[0]
            continue
        raise ConfigError(f"layer {node.target!r}: its input must come from an activation "
                          f"quantizer (QReLU, optionally through pooling/flatten), not "
                          f"{src.name!r}")


def pim_convert_(model: nn.Module, arith: PimArith, cfg: PimQATConfig | None = None,
                 seed: int = 0, digital: frozenset[str] = frozenset()) -> nn.Module:
    """Turn every QConv2d/QLinear of a QAT model into its PIM twin, in place; returns it.
    Layers named in ``digital`` (module paths) stay digital.

    Raises :class:`ConfigError` when a layer's weights do not fit ``arith``'s cells or a
    name in ``digital`` is not a conv/linear layer.
    """
    if not hasattr(model, "qat_config"):
        raise ConfigError("model must be converted with quantize_ before pim_convert_")
    if not isinstance(arith, PimArith):
        raise ConfigError(f"arith must be a PimArith, not {type(arith).__name__}")
    cfg = cfg or PimQATConfig()
    gm = fx.GraphModule(model, trace(model))
    gen = torch.Generator().manual_seed(int(seed))
    gemms = {n for n, m in model.named_modules() if isinstance(m, (QConv2d, QLinear))}
    if not set(digital) <= gemms:
        raise ConfigError(f"digital layers must be conv/linear layers of the model, not "
                          f"{sorted(set(digital) - gemms)[0]!r}")
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target in digital:
            continue
        old = model.get_submodule(node.target)
        if not isinstance(old, (QConv2d, QLinear)) or isinstance(old, PIM_LAYERS):
            continue
        src, shift = _source_quantizer(gm, node, old,
                                       getattr(model.qat_config, "pool_extra_bits", 4))
        a_bits = src.fmt.bits + shift
        new = (PimConv2d if isinstance(old, QConv2d) else PimLinear).__new__(
            PimConv2d if isinstance(old, QConv2d) else PimLinear)
        new.__dict__ = old.__dict__.copy()  # same parameters, buffers and submodules
        new._parameters = dict(old._parameters)
        new._buffers = dict(old._buffers)
        new._modules = dict(old._modules)
        try:
            new._pim_init(arith, cfg, src, shift, a_bits, gen)
        except ConfigError as exc:
            raise ConfigError(f"layer {node.target!r}: {exc}") from None
        parent, _, child = node.target.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    model.pim_gen = gen
    return model


def set_arith_(model: nn.Module, arith: PimArith) -> None:
    """Use ``arith`` in every PIM layer (e.g. fewer ADC bits for adjusted precision)."""
    for m in pim_layers(model):
        m.set_arith(arith)


def set_adc_ranges_(model: nn.Module, ranges: dict[str, float]) -> None:
    """Give PIM layers calibrated ADC ranges by module name (:func:`quant.pim.plan`); a
    layer not named keeps the range of its arithmetic. Unknown names are a ConfigError."""
    layers = dict(model.named_modules())
    for name, r in ranges.items():
        m = layers.get(name)
        if not isinstance(m, PIM_LAYERS):
            raise ConfigError(f"ADC range for {name!r}: no PIM layer of that name")
        m.adc_range = float(r)
        m.set_arith(m.arith)


def set_pim_enabled_(model: nn.Module, enabled: bool) -> None:
    """Switch the PIM arithmetic on or off (off: the digital QAT forward)."""
    for m in pim_layers(model):
        m.pim_enabled = enabled


def seed_(model: nn.Module, seed: int) -> None:
    """Reseed the noise generator all PIM layers of ``model`` share."""
    model.pim_gen.manual_seed(int(seed))


def fold_scales_(model: nn.Module) -> None:
    """Fold each layer's forward rescaling factor, partial-sum scales and live BN (with its
    running statistics) into its weights, alphas and bias (before export); afterwards the
    factors are 1 and the BN is gone, and the integer weight levels are those of before
    (negated in a row whose BN gain is negative)."""
    for m in pim_layers(model):
        m.fold_all()


@torch.no_grad()
def bn_init_(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> None:
    """Initialize every live BN (:attr:`PimQATConfig.train_bn`) so that it computes the
    identity on ``images``: running mean and variance are the per-channel statistics of the
    layer's output there (PIM forward, BNs bypassed), and ``gamma = sqrt(var + eps)``,
    ``beta = mean``; PIM-QAT then starts from the function of the folded model."""
    layers = [m for m in pim_layers(model) if m.bn is not None]
    bns = {m: m.bn for m in layers}
    model.eval()
    try:
        for m in layers:
            m.bn, m.calib, m.stats = None, "ref", None
        for i in range(0, images.shape[0], batch_size):
            model(images[i:i + batch_size])
    finally:
        for m in layers:
            m.bn, m.calib = bns[m], None
    for m in layers:
        mean, sd = m._moments(m.stats)
        m.stats = None
        bn = m.bn
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(sd * sd)
        bn.weight.copy_(torch.sqrt(sd * sd + bn.eps))
        bn.bias.copy_(mean)


@torch.no_grad()
def _bn_recalibrate(model: nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """The BN calibration of PIM-QAT (arXiv 2209.08617): every live BN's running statistics
    recomputed on ``images`` through the model as it computes now (the chip), as a plain
    average over the batches (BN momentum None; the batches normalize with their own
    statistics meanwhile, as :func:`torch.optim.swa_utils.update_bn` does)."""
    bns = [m.bn for m in pim_layers(model) if m.bn is not None]
    model.eval()
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    try:
        for i in range(0, images.shape[0], batch_size):
            model(images[i:i + batch_size])
    finally:
        for bn, mom in zip(bns, saved, strict=True):
            bn.momentum = mom
            bn.eval()


@torch.no_grad()
def bn_calibrate_(model: nn.Module, images: torch.Tensor, chip: PimArith,
                  reference: PimArith | None = None, batch_size: int = 256,
                  seed: int = 0) -> None:
    """BN calibration through the non-ideal model (module docstring); weights frozen.

    ``reference`` is the arithmetic the statistics should match (default: the one the
    layers use now, without noise); ``chip`` the deployment arithmetic. Afterwards the
    layers use ``chip`` and the per-channel corrections are folded into the weights.

    A model with live BNs (:attr:`PimQATConfig.train_bn`) gets the paper's BN calibration
    instead: the BNs' statistics are recomputed through ``chip`` (``reference`` unused)
    and every layer is folded (:func:`fold_scales_`).
    """
    layers = pim_layers(model)
    if not layers:
        raise ConfigError("model has no PIM layers; call pim_convert_ first")
    if any(m.bn is not None for m in layers):
        set_arith_(model, chip)
        seed_(model, seed)
        _bn_recalibrate(model, images, batch_size)
        fold_scales_(model)
        return
    ref = reference or layers[0].arith.with_(noise_lsb=0.0)
    model.eval()
    for mode, arith in (("ref", ref), ("chip", chip)):
        set_arith_(model, arith)
        seed_(model, seed)
        for m in layers:
            m.calib, m.stats = mode, None
        for i in range(0, images.shape[0], batch_size):
            model(images[i:i + batch_size])
        if mode == "ref":
            for m in layers:
                m.ref_stats = m.stats
    for m in layers:
        gain, offset = m.calib_affine()
        m.calib, m.stats, m.ref_stats = None, None, None
        m.fold_gain(gain, offset)
