"""QAT layers, conversion, export and the torch/numpy integer paths (small models, 1 epoch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fpim.flows.quantize import float_model, run_qat
from quant.artifact import load_artifact, save_artifact
from quant.data import load_digits
from quant.errors import ConfigError
from quant.formats import Scheme, weight_format
from quant.infer import run_artifact
from quant.msq import lut_row_count
from quant.torch.export import export
from quant.torch.models import build_model
from quant.torch.qat import (
    QATConfig,
    QConv2d,
    QLinear,
    QReLU,
    nearest_level,
    quantize_,
)
from quant.torch.train import TrainConfig, predict
from quant.torch.twin import integer_logits_torch

FORMATS = [(s, b) for s in ("fixed", "pot", "sp2") for b in (3, 4, 5)] + [("fixed", 8)]


@pytest.mark.parametrize("scheme, bits", FORMATS)
def test_torch_nearest_level_matches_encode(scheme, bits):
    fmt = weight_format(scheme, bits)
    lv = fmt.levels
    mids = (lv[1:] + lv[:-1]) / 2  # exact ties: smaller magnitude wins in both
    x = np.concatenate([np.random.default_rng(0).uniform(-1.2, 1.2, 2000), mids, lv])
    got = nearest_level(torch.from_numpy(lv.copy()), torch.from_numpy(np.clip(x, -1, 1)))
    np.testing.assert_array_equal(got.numpy(), fmt.decode(fmt.encode(x)))


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12, 16])
def test_uniform_pair_gives_the_searched_nearest_level_for_fixed_point(bits):
    # the arithmetic candidates of x among fl(j / den) give searchsorted's nearest level, at
    # the levels, the ties between them, one ulp either side of both, the ends and random
    # values
    fmt = weight_format("fixed", bits)
    lv = torch.from_numpy(fmt.levels.copy())
    mids = (lv[1:] + lv[:-1]) / 2
    pts = torch.cat([lv, mids, torch.linspace(-1, 1, 5001, dtype=torch.float64),
                     torch.from_numpy(np.random.default_rng(bits).uniform(-1, 1, 20000))])
    x = torch.cat([pts, torch.nextafter(pts, torch.tensor(2.0, dtype=torch.float64)),
                   torch.nextafter(pts, torch.tensor(-2.0, dtype=torch.float64))]).clamp(-1, 1)
    assert torch.equal(nearest_level(lv, x, fmt.denominator), nearest_level(lv, x))


@pytest.mark.parametrize("kwargs, match", [
    ({"scheme": "int4"}, "scheme must be one of fixed, pot, sp2, msq, f8, not 'int4'"),
    ({"scheme": "pot", "bits": 9}, "bits must be an integer in 2..8 for pot, not 9"),
    ({"scheme": "msq", "bits": 2}, "bits must be an integer in 3..8 for msq, not 2"),
    ({"scheme": "f8", "bits": 4}, "bits must be an integer in 8..8 for f8, not 4"),
    ({"scheme": "msq", "sp2_fraction": 1.5}, r"sp2_fraction must be a number in \[0, 1\], "
                                             "not 1.5"),
    ({"msq_rule": "random"}, "msq_rule must be one of mse, variance, not 'random'"),
    ({"act_bits": 0}, "act_bits must be an integer in 1..16, not 0"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        QATConfig(**kwargs)


class Sig(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.act = nn.Sigmoid()
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).flatten(1))


class FunctionalRelu(Sig):
    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class LonelyBN(Sig):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.fc(self.act(self.conv(self.bn(x))).flatten(1))


@pytest.mark.parametrize("model, match", [
    (Sig(), "layer 'act' of type Sigmoid is not supported; supported: Conv2d"),
    (FunctionalRelu(), r"operation 'relu' at 'relu' is not supported \(use an nn.ReLU"),
    (LonelyBN(), "layer 'bn': BatchNorm2d must directly follow a Conv2d"),
])
def test_unsupported_layers(model, match):
    with pytest.raises(ConfigError, match=match):
        quantize_(model, QATConfig(), torch.rand(4, 1, 8, 8))


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def resnet_msq(digits):
    model, _ = float_model("resnet20", digits, TrainConfig(epochs=1), progress=False)
    q = run_qat(model, digits, QATConfig(scheme="msq", bits=4, sp2_fraction=0.5),
                TrainConfig(epochs=1, lr=0.01), progress=False)
    return model, q


def test_conversion_structure(resnet_msq):
    model, q = resnet_msq
    assert not any(isinstance(m, nn.BatchNorm2d) for m in q.modules())
    assert not any(type(m) is nn.ReLU for m in q.modules())
    assert sum(isinstance(m, QReLU) for m in q.modules()) == 19  # 1 stem + 2 per block
    gemms = [m for m in q.modules() if isinstance(m, (QConv2d, QLinear))]
    assert len(gemms) == 22  # 19 convs + 2 shortcut convs + fc
    assert gemms[0].in_quant is not None and all(g.in_quant is None for g in gemms[1:])
    for g in gemms:
        ids = g.wq.scheme_ids.numpy()
        if g.edge:  # first conv and classifier: 8-bit fixed
            assert g.wq.bits == 8 and (ids == Scheme.FIXED).all()
        else:
            assert g.wq.bits == 4
            assert np.count_nonzero(ids == Scheme.SP2) == lut_row_count(0.5, len(ids))
    # the float model is untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_exported_weights_are_the_fake_quant_weights(resnet_msq, digits):
    _, q = resnet_msq
    art = export(q, digits.input_shape)
    for layer in art.gemm_layers():
        m = q.get_submodule(layer.name)
        with torch.no_grad():
            wq = m.wq(m.weight).double().reshape(m.weight.shape[0], -1).numpy()
        np.testing.assert_allclose(layer.rows.dequantize(), wq, rtol=1e-6, atol=0)


def test_integer_inference_matches_torch_integer_form_on_test_split(resnet_msq, digits,
                                                                    tmp_path):
    _, q = resnet_msq
    # the logits' scale as the flows export it: calibration images keep them inside the lane
    save_artifact(export(q, digits.input_shape, calibration=digits.x_train[:512]),
                  tmp_path / "a")
    art = load_artifact(tmp_path / "a")
    numpy_logits = run_artifact(art, digits.x_test)
    torch_logits = integer_logits_torch(art, digits.x_test)
    assert numpy_logits.shape == (len(digits.y_test), 10)
    np.testing.assert_array_equal(numpy_logits, torch_logits)
    # the float fake-quant forward is close to the integer form (not identical: rounding of
    # bias and multipliers and the finer residual/pool scales)
    agree = np.mean(np.argmax(numpy_logits, 1) == predict(q, digits.x_test))
    assert agree > 0.8


def test_first_layer_integer_vs_fake_quant(resnet_msq, digits):
    _, q = resnet_msq
    art = export(q, digits.input_shape)
    x = digits.x_test[:64]
    vals = run_artifact(art, x, return_values=True)
    with torch.no_grad():
        fq = q.relu(q.conv1(torch.as_tensor(x))).double().numpy() / q.relu.act.scale()
    diff = np.abs(vals["conv1"] - np.round(fq))
    assert diff.max() <= 1 and np.mean(diff == 0) > 0.99


def test_f8_is_pure_shift(digits):
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 1, 8)
    quantize_(model, QATConfig(scheme="f8", bits=8, act_bits=8),
              torch.as_tensor(digits.x_train[:128]))
    art = export(model, digits.input_shape)
    for layer in art.gemm_layers():
        assert (layer.tensors["mult"] == 1).all()
        fl = -np.log2(layer.tensors["alphas"] / 127)
        assert np.all(fl == np.round(fl)) and 0 <= fl.min() and fl.max() <= 7
    for layer in art.layers:
        if layer.out.fmt is not None:
            assert np.log2(layer.out.scale) == np.round(np.log2(layer.out.scale))
    logits = run_artifact(art, digits.x_test[:40])
    np.testing.assert_array_equal(logits, integer_logits_torch(art, digits.x_test[:40]))


@pytest.mark.parametrize("scheme, bits", [("fixed", 4), ("pot", 4), ("sp2", 4)])
def test_single_scheme_cnn_export(scheme, bits, digits):
    torch.manual_seed(1)
    model = build_model("cnn", 10, 1, 1, 8)
    quantize_(model, QATConfig(scheme=scheme, bits=bits, first_last_bits=None),
              torch.as_tensor(digits.x_train[:128]))
    art = export(model, digits.input_shape)
    assert [x.op for x in art.layers] == ["conv", "conv", "maxpool", "conv", "avgpool",
                                          "flatten", "linear"]
    for layer in art.gemm_layers():
        assert set(layer.tensors["scheme_ids"]) == {int(Scheme.parse(scheme))}
    np.testing.assert_array_equal(run_artifact(art, digits.x_test[:40]),
                                  integer_logits_torch(art, digits.x_test[:40]))


def test_reassign_each_epoch_changes_nothing_structural(digits):
    torch.manual_seed(0)
    model = build_model("cnn", 10, 1, 1, 8)
    cfg = QATConfig(scheme="msq", sp2_fraction=0.25, reassign_each_epoch=True)
    q = run_qat(model, digits, cfg, TrainConfig(epochs=1, lr=0.01), progress=False)
    for m in q.modules():
        if isinstance(m, QConv2d) and not m.edge:
            ids = m.wq.scheme_ids.numpy()
            assert np.count_nonzero(ids == Scheme.SP2) == lut_row_count(0.25, len(ids))


def test_export_requires_conversion(digits):
    with pytest.raises(ConfigError, match="model must be converted with quantize_"):
        export(build_model("cnn", 10, 1, 1, 8), digits.input_shape)
