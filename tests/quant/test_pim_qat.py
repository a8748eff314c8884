"""PIM-QAT layers: torch forward against the numba kernel, determinism, calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.pim import PimArith, plan
from quant.ref import im2col
from quant.torch.export import export
from quant.torch.models import build_model
from quant.torch.pim_qat import (
    PimConv2d,
    PimLinear,
    PimQATConfig,
    bn_calibrate_,
    pim_convert_,
    pim_layers,
    pim_matmul,
    seed_,
    set_arith_,
)
from quant.torch.qat import QATConfig, quantize_
from sim.pim import pim_gemm

torch.set_num_threads(1)

SCHEMES = ("native", "differential", "bit_serial")


def _arith(scheme: str, **kw) -> PimArith:
    cell = {"native": 3, "differential": 3, "bit_serial": 1}[scheme]
    return PimArith(scheme=scheme, cell_bits=cell, **kw)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(("m", "k", "n", "group", "adc", "a_bits", "rho"), [
    (5, 37, 6, 8, 4, 4, 1.0),      # K not a multiple of the group size
    (3, 100, 4, 64, 5, 8, 0.5),    # last group much shorter, 8-bit inputs
    (7, 16, 3, 16, 3, 3, 0.25),    # one group, coarse ADC
    (2, 9, 5, 32, 7, 4, 1.0),      # group larger than K
])
def test_torch_forward_equals_kernel(scheme, m, k, n, group, adc, a_bits, rho) -> None:
    rng = np.random.default_rng(m * 1000 + k)
    w = rng.integers(-7, 8, size=(m, k))
    x = rng.integers(0, 2 ** a_bits, size=(k, n))
    a = _arith(scheme, group_size=group, adc_bits=adc, range_fraction=rho)
    want = pim_gemm(w, x, 4, ActFormat(a_bits), a)
    got = pim_matmul(torch.from_numpy(w).double(), torch.from_numpy(x).double(),
                     plan(a, 4, a_bits))
    assert got.dtype == torch.float64
    assert np.array_equal(got.numpy().astype(np.int64), want)
    if rho == 1.0 and all(s == 0 for s in plan(a, 4, a_bits).adc_shift):
        assert np.array_equal(want, w @ x)  # an ADC of enough bits is the integer GEMM
    elif adc < 7:
        assert not np.array_equal(want, w @ x)  # a coarse ADC loses information


def _model(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = build_model("resnet20", 10, 1, 1, 8)
    x = torch.rand(24, 1, 8, 8)
    quantize_(model, QATConfig(scheme="fixed", bits=4, act_bits=4, first_last_bits=None,
                               input_bits=4), x)
    return model, x


@pytest.mark.parametrize("scheme", SCHEMES)
def test_layer_forward_equals_kernel_on_its_integers(scheme) -> None:
    model, x = _model()
    a = _arith(scheme, group_size=64, adc_bits=6, range_fraction=0.125)
    pim_convert_(model, a)
    layers = dict(model.named_modules())
    conv: PimConv2d = layers["layer1.1.conv1"]  # K = 144, not a multiple of 64
    fc: PimLinear = layers["fc"]
    seen = {}
    conv.register_forward_hook(lambda mod, i, o: seen.__setitem__("conv", (i[0], o)))
    fc.register_forward_hook(lambda mod, i, o: seen.__setitem__("fc", (i[0], o)))
    with torch.no_grad():
        model(x)
    for name, layer in (("conv", conv), ("fc", fc)):
        inp, out = seen[name]
        s_in = layer.input_scale(torch.float64)
        q = torch.round(inp.double() / s_in).numpy().astype(np.int64)
        assert q.any()
        w = layer.int_weights().numpy().astype(np.int64)
        if name == "conv":
            cols = im2col(q, (3, 3), 1, 1)
        else:
            cols = q.reshape(q.shape[0], -1).T
        acc = pim_gemm(w, cols, layer.w_bits, ActFormat(layer.a_bits), a)
        s_acc = (layer.wq.alphas / layer.den).numpy() * float(s_in)
        y = acc * s_acc[:, None] + layer.bias.detach().double().numpy()[:, None]
        if name == "conv":
            y = y.reshape(y.shape[0], q.shape[0], -1).transpose(1, 0, 2).reshape(out.shape)
        else:
            y = y.T
        np.testing.assert_allclose(out.double().numpy(), y, rtol=1e-5, atol=1e-5)
        if scheme != "bit_serial":  # (1-bit sums of 64 rows fit this ADC exactly)
            assert np.abs(acc - w @ cols).max() > 0  # the PIM result differs from the GEMM


def test_noise_seeded_and_redrawn() -> None:
    a = _arith("native", group_size=16, adc_bits=5, noise_lsb=0.5)
    pl = plan(a, 4, 4)
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.integers(-7, 8, size=(6, 50))).double()
    x = torch.from_numpy(rng.integers(0, 16, size=(50, 7))).double()

    def run(seed: int) -> torch.Tensor:
        return pim_matmul(w, x, pl, torch.Generator().manual_seed(seed))

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))
    assert not torch.equal(run(3), pim_matmul(w, x, plan(a.with_(noise_lsb=0.0), 4, 4)))


def test_model_noise_determinism_and_backward() -> None:
    model, x = _model()
    pim_convert_(model, _arith("bit_serial", group_size=64, adc_bits=4, noise_lsb=0.3),
                 PimQATConfig(backward_scale=0.5, forward_rescale=True), seed=1)
    model.eval()
    seed_(model, 7)
    with torch.no_grad():
        y1 = model(x)
    seed_(model, 7)
    with torch.no_grad():
        y2 = model(x)
        y3 = model(x)  # the generator moved on: fresh noise
    assert torch.equal(y1, y2) and not torch.equal(y2, y3)
    model.train()
    loss = torch.nn.functional.cross_entropy(model(x), torch.zeros(24, dtype=torch.long))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(m.fwd_scale) != 1.0 for m in pim_layers(model))


def test_backward_scale_scales_the_gradient() -> None:
    grads = []
    for bs in (1.0, 0.25):
        model, _ = _model()
        pim_convert_(model, _arith("native", group_size=32, adc_bits=4),
                     PimQATConfig(backward_scale=bs))
        model.train()
        model.fc(torch.rand(4, 64)).sum().backward()
        grads.append(model.fc.weight.grad.clone())
    torch.testing.assert_close(grads[1], 0.25 * grads[0])


def test_bn_calibration_and_export() -> None:
    model, x = _model()
    a = _arith("differential", group_size=64, adc_bits=5)
    pim_convert_(model, a)
    before = [m.int_weights().clone() for m in pim_layers(model)]
    chip = a.with_(noise_lsb=1.0, nonlinearity=0.2)
    bn_calibrate_(model, x, chip)
    assert all(m.arith == chip and m.calib is None for m in pim_layers(model))
    after = [m.int_weights() for m in pim_layers(model)]
    # positive gains keep the integer levels, bit for bit (fold_gain checks every entry)
    assert all(torch.equal(b, c) for b, c in zip(before, after, strict=True))
    art = export(model, (1, 8, 8))
    assert len(art.gemm_layers()) == len(before)


def test_errors() -> None:
    model, _ = _model()
    with pytest.raises(ConfigError, match="w_bits must be at most 3 for native cells of 2"):
        pim_convert_(model, PimArith(scheme="native", cell_bits=2))
    with pytest.raises(ConfigError, match="backward_scale must be a positive number, not 0"):
        PimQATConfig(backward_scale=0)
    with pytest.raises(ConfigError, match="must be converted with quantize_"):
        pim_convert_(build_model("cnn", 10, 1, 1, 8), PimArith())
    set_arith_(model, PimArith())  # no PIM layers: nothing happens


@pytest.mark.parametrize("scheme", SCHEMES)
def test_exact_step_and_calibrated_range_layer_equals_kernel(scheme) -> None:
    """Exact (non-power-of-two) steps: a global one and a calibrated range for one layer;
    the torch layer's integers equal pim_gemm's, scaled by the plan's step."""
    from quant.torch.pim_qat import set_adc_ranges_

    model, x = _model()
    a = _arith(scheme, group_size=64, adc_bits=4, adc_step=3.7, pot_step=False)
    pim_convert_(model, a)
    set_adc_ranges_(model, {"fc": 41.5})
    layers = dict(model.named_modules())
    seen = {}
    for name in ("layer1.1.conv1", "fc"):
        layers[name].register_forward_hook(
            lambda mod, i, o, name=name: seen.__setitem__(name, (i[0], o)))
    with torch.no_grad():
        model(x)
    for name, rng in (("layer1.1.conv1", None), ("fc", 41.5)):
        layer = layers[name]
        inp, out = seen[name]
        s_in = layer.input_scale(torch.float64)
        q = torch.round(inp.double() / s_in).numpy().astype(np.int64)
        w = layer.int_weights().numpy().astype(np.int64)
        cols = im2col(q, (3, 3), 1, 1) if name != "fc" else q.reshape(q.shape[0], -1).T
        acc = pim_gemm(w, cols, layer.w_bits, ActFormat(layer.a_bits), a, adc_range=rng)
        assert layer.plan.step != 1 and layer.plan == plan(a, layer.w_bits, layer.a_bits,
                                                           False, rng)
        s_acc = (layer.wq.alphas / layer.den).numpy() * float(s_in) * float(layer.plan.step)
        y = acc * s_acc[:, None] + layer.bias.detach().double().numpy()[:, None]
        y = (y.reshape(y.shape[0], q.shape[0], -1).transpose(1, 0, 2).reshape(out.shape)
             if name != "fc" else y.T)
        np.testing.assert_allclose(out.double().numpy(), y, rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="ADC range for 'nope'"):
        set_adc_ranges_(model, {"nope": 3.0})


def test_digital_layers_stay_digital() -> None:
    model, _ = _model()
    pim_convert_(model, _arith("native", group_size=64, adc_bits=5),
                 digital=frozenset({"conv1", "fc"}))
    layers = dict(model.named_modules())
    assert not isinstance(layers["conv1"], PimConv2d) and not isinstance(layers["fc"], PimLinear)
    assert isinstance(layers["layer1.0.conv1"], PimConv2d)
    model2, _ = _model()
    with pytest.raises(ConfigError, match="digital layers must be conv/linear layers of the "
                                          "model, not 'nope'"):
        pim_convert_(model2, _arith("native"), digital=frozenset({"nope"}))
