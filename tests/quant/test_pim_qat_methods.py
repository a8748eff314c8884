"""PIM-QAT method pieces of issue 20: learnable per-column partial-sum scales and a live BN
trained during PIM-QAT, BN calibration through the chip, and their folding into the
per-row requantizer with the integer weight levels unchanged (bit for bit)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.pim import PimArith
from quant.ref import im2col
from quant.torch.export import export
from quant.torch.models import build_model
from quant.torch.pim_qat import (
    PimConv2d,
    PimQATConfig,
    bn_calibrate_,
    bn_init_,
    fold_scales_,
    pim_convert_,
    pim_layers,
)
from quant.torch.qat import QATConfig, quantize_
from sim.pim import pim_gemm

torch.set_num_threads(1)

CHIP = PimArith(scheme="native", cell_bits=3, group_size=16, adc_bits=5, adc_step=5.3,
                pot_step=False)  # an exact (non-power-of-two) step: codes clip and round


def _model(cfg: PimQATConfig, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model("cnn", 10, 1, 1, 8)
    x = torch.rand(24, 1, 8, 8)
    quantize_(model, QATConfig(scheme="fixed", bits=4, act_bits=4, first_last_bits=None,
                               input_bits=4), x)
    pim_convert_(model, CHIP, cfg)
    if cfg.train_bn:
        bn_init_(model, x)
    return model, x


def _step(model: torch.nn.Module, x: torch.Tensor, steps: int = 2) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), torch.arange(24) % 10).backward()
        opt.step()
    model.eval()


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> dict[str, tuple]:
    """Each PIM layer's (input, output) on ``x``."""
    seen: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.__setitem__(n, (i[0], o)))
             for n, m in model.named_modules() if m in pim_layers(model)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def _kernel_check(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Every PIM layer's output is pim_gemm's integers times the row scale plus the bias
    (the layer computes the macro's integers exactly)."""
    layers = dict(model.named_modules())
    for name, (inp, out) in _outputs(model, x).items():
        layer = layers[name]
        s_in = layer.input_scale(torch.float64)
        q = torch.round(inp.double() / s_in).numpy().astype(np.int64)
        w = layer.int_weights().numpy().astype(np.int64)
        conv = isinstance(layer, PimConv2d)
        cols = im2col(q, (3, 3), 1, 1) if conv else q.reshape(q.shape[0], -1).T
        acc = pim_gemm(w, cols, layer.w_bits, ActFormat(layer.a_bits), CHIP)
        s_acc = (layer.wq.alphas / layer.den).numpy() * float(s_in) * float(layer.plan.step)
        y = acc * s_acc[:, None] + layer.bias.detach().double().numpy()[:, None]
        y = (y.reshape(y.shape[0], q.shape[0], -1).transpose(1, 0, 2).reshape(out.shape)
             if conv else y.T)
        np.testing.assert_allclose(out.double().numpy(), y, rtol=1e-5, atol=1e-5)


def _mults(art) -> list[np.ndarray]:
    return [layer.tensors["mult"] / 2.0 ** layer.tensors["shift"] for layer in art.gemm_layers()]


def test_psum_scales_train_and_fold_bit_exact() -> None:
    model, x = _model(PimQATConfig(psum_scales="column"))
    layers = pim_layers(model)
    assert all(m.psum_log_scale.shape == (m.weight.shape[0],) for m in layers)
    with torch.no_grad():  # scales away from 1, so that folding them is visible
        for m in layers:
            m.psum_log_scale.uniform_(-0.7, 0.7)
    _step(model, x)
    assert all(m.psum_log_scale.grad is not None and m.psum_log_scale.grad.abs().max() > 0
               for m in layers)  # learnable: the STE passes a gradient to every scale
    scales = [m.psum_scale().detach().double().numpy() for m in layers]
    levels = [m.int_weights().clone() for m in layers]
    before = model(x).detach()
    with pytest.raises(ConfigError, match="has partial-sum scales not folded"):
        export(model, (1, 8, 8))
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for m in pim_layers(ref):
            m.psum_log_scale.zero_()  # the same levels, scales 1
    art_ref = export(ref, (1, 8, 8))
    fold_scales_(model)
    assert all(torch.equal(m.int_weights(), lv) for m, lv in zip(layers, levels, strict=True))
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-5, atol=1e-5)
    _kernel_check(model, x)  # the folded layers compute pim_gemm's integers exactly
    art = export(model, (1, 8, 8))
    last = len(scales) - 1
    for i, (la, lr, mf, mr, s) in enumerate(zip(art.gemm_layers(), art_ref.gemm_layers(),
                                                _mults(art), _mults(art_ref), scales,
                                                strict=True)):
        assert np.array_equal(la.tensors["words"], lr.tensors["words"])  # same integer levels
        # the scale is in the requantizer (the logits' output scale follows the accumulator
        # scale, so the last layer's multipliers change by a common factor too)
        ratio = (mf / mr) / s
        np.testing.assert_allclose(ratio, 1.0 if i < last else ratio[0], rtol=2e-4)


def test_forward_rescaling_fold_keeps_the_bias() -> None:
    """The forward rescaling factor multiplies the PIM sum, not the bias: folding it must
    keep the layer's output (the fold before issue 20's method pieces scaled the bias too)."""
    model, x = _model(PimQATConfig(forward_rescale=True))
    with torch.no_grad():
        for i, m in enumerate(pim_layers(model)):
            m.fwd_scale.fill_(1.3 + 0.2 * i)
            m.bias.add_(0.05)  # a bias that matters
    model.eval()
    before = model(x).detach()
    fold_scales_(model)
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-5, atol=1e-5)


def test_live_bn_init_train_calibrate_fold() -> None:
    model, x = _model(PimQATConfig(train_bn=True))
    plain, _ = _model(PimQATConfig())
    convs = [m for m in pim_layers(model) if isinstance(m, PimConv2d)]
    assert all(m.bn is not None for m in convs) and pim_layers(model)[-1].bn is None
    # initialized to the identity on the images it was initialized on
    torch.testing.assert_close(model(x).detach(), plain(x).detach(), rtol=1e-4, atol=1e-4)
    stats = [m.bn.running_mean.clone() for m in convs]
    _step(model, x)
    assert all(not torch.equal(m.bn.running_mean, s) for m, s in zip(convs, stats, strict=True))
    with torch.no_grad():
        convs[1].bn.weight[3] = -convs[1].bn.weight[3]  # a negative gain: the row's levels flip
    levels = [m.int_weights().clone() for m in pim_layers(model)]
    noisy = CHIP.with_(noise_lsb=0.5)
    bn_calibrate_(model, x, noisy, seed=3)
    assert all(m.bn is None and m.arith == noisy for m in pim_layers(model))
    sign = torch.ones(convs[1].weight.shape[0], 1, dtype=torch.float64)
    sign[3] = -1
    for m, lv in zip(pim_layers(model), levels, strict=True):
        want = lv * sign if m is convs[1] else lv
        assert torch.equal(m.int_weights(), want)  # bit for bit, up to the BN's sign
    for m in pim_layers(model):
        m.set_arith(CHIP)
    _kernel_check(model, x)
    assert len(export(model, (1, 8, 8)).gemm_layers()) == 4


def test_live_bn_fold_keeps_the_function() -> None:
    """fold_scales_ folds a live BN with its running statistics (no calibration)."""
    model, x = _model(PimQATConfig(train_bn=True, psum_scales="column"))
    _step(model, x, 3)
    before = model(x).detach()
    with pytest.raises(ConfigError, match="has a live BatchNorm and partial-sum scales"):
        export(model, (1, 8, 8))
    fold_scales_(model)
    torch.testing.assert_close(model(x).detach(), before, rtol=1e-5, atol=1e-5)


def test_method_config_errors() -> None:
    with pytest.raises(ConfigError, match="psum_scales must be one of off, column, not 'group'"):
        PimQATConfig(psum_scales="group")
    with pytest.raises(ConfigError, match="train_bn must be true or false, not 1"):
        PimQATConfig(train_bn=1)
    model, _ = _model(PimQATConfig())
    with pytest.raises(ConfigError, match="row 0: a gain of 0.0 cannot be folded"):
        pim_layers(model)[0].fold_gain(torch.zeros(16, dtype=torch.float64),
                                       torch.zeros(16, dtype=torch.float64))


def test_psum_lr_scale_scales_only_the_scales_gradient() -> None:
    grads = []
    for g in (1.0, 8.0):
        model, x = _model(PimQATConfig(psum_scales="column", psum_lr_scale=g))
        with torch.no_grad():
            y = model(x)
        model.train()
        model(x).sum().backward()
        m = pim_layers(model)[1]
        grads.append((m.psum_log_scale.grad.clone(), m.weight.grad.clone()))
        model.eval()
        torch.testing.assert_close(model(x).detach(), y)  # the forward value is unchanged
    torch.testing.assert_close(grads[1][0], 8.0 * grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])
    with pytest.raises(ConfigError, match="psum_lr_scale must be a positive number, not 0"):
        PimQATConfig(psum_lr_scale=0)
