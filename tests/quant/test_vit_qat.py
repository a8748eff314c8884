"""ViT QAT and PTQ (quant.torch.vit_qat): integer ops in the fake-quant forward with float
gradients, the same mixed split in every head, export to the transformer graph, integer
inference equal to the torch twin on the whole digits test split, reproducible artifacts,
the quantize workflow and CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from fpim.flows import quantize as flows
from quant.artifact import load_artifact
from quant.data import load_digits
from quant.errors import ConfigError
from quant.formats import Scheme
from quant.infer import run_artifact
from quant.msq import lut_row_count
from quant.ops.gelu import gelu_params
from quant.ops.softmax import softmax_params
from quant.torch import intops
from quant.torch.export import export
from quant.torch.models import float_recipe, qat_recipe
from quant.torch.qat import QATConfig, quantize_
from quant.torch.twin import integer_logits_torch
from quant.torch.vit import VisionTransformer, vit_digits
from quant.torch.vit_qat import QSoftmax, QuantViT, _IntOp, quantize_vit
from tests.cliutil import run as cli

DATA = load_digits()
CALIB = torch.as_tensor(DATA.x_train[:128])
FIXED8 = QATConfig(scheme="fixed", bits=8, act_bits=8, learn_clip=False)


def _vit(seed: int = 0) -> VisionTransformer:
    torch.manual_seed(seed)
    model = vit_digits()
    with torch.no_grad():  # timm's init leaves tiny weights: spread them so the test has teeth
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def test_export_equals_torch_twin_on_the_whole_test_split() -> None:
    for cfg in (FIXED8, QATConfig(scheme="msq", lut_scheme="pot", bits=6, act_bits=8,
                                  sp2_fraction=0.5, learn_clip=False)):
        art = export(quantize_vit(_vit(), cfg, CALIB), DATA.input_shape)
        ops = [layer.op for layer in art.layers]
        assert {"conv", "reshape", "pos_embed", "layernorm", "token_linear", "slice", "matmul",
                "softmax", "add", "gelu", "flatten", "linear"} == set(ops)
        assert ops.count("softmax") == 2 and ops.count("token_linear") == 8
        ref = run_artifact(art, DATA.x_test)
        assert np.array_equal(ref, integer_logits_torch(art, DATA.x_test))
        assert len(ref) == len(DATA.y_test) == 359


def test_fake_quant_forward_runs_the_integer_ops_with_float_gradients() -> None:
    q = quantize_vit(_vit(), FIXED8, CALIB)
    sm: QSoftmax = q.blocks[0].attn
    s = sm.src[0].scale()
    x = (torch.randn(2, 4, 5, 5) * 40).round() * s
    x.requires_grad_(True)
    y = sm(x)
    p = softmax_params(s, 5, 8)
    codes = intops.shiftmax(torch.round(x.detach().double() / s).long(), p["x0"], p["n"], 8)
    assert torch.equal(y.detach().double() * 256, codes.double())  # the artifact's codes
    assert not torch.equal(y.detach(), torch.softmax(x.detach(), dim=-2))
    w = torch.randn_like(x)
    (y * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (torch.softmax(x2, dim=-2) * w).sum().backward()
    assert torch.equal(x.grad, x2.grad)  # straight through the float softmax
    # the ablation runs float ops; the integer model's predictions differ from it somewhere
    fl = quantize_vit(_vit(), QATConfig(scheme="fixed", bits=8, act_bits=8, learn_clip=False,
                                        int_ops=False), CALIB)
    with torch.no_grad():
        assert not torch.equal(q(CALIB), fl(CALIB))


def test_every_head_gets_the_same_lut_split() -> None:
    model = _vit()
    with torch.no_grad():  # head 1 of q much larger: a layer-wide ranking would favour it
        model.blocks[0].attn.qkv.weight[16:32] *= 20
    q = quantize_vit(model, QATConfig(scheme="msq", lut_scheme="pot", bits=6, act_bits=8,
                                      sp2_fraction=0.25), CALIB)
    ids = q.blocks[0].qkv.wq.scheme_ids.numpy()
    per_head = [int(np.count_nonzero(ids[g * 16:(g + 1) * 16] == Scheme.POT)) for g in range(12)]
    assert per_head == [lut_row_count(0.25, 16)] * 12
    assert set(np.unique(q.head.wq.scheme_ids.numpy())) == {Scheme.FIXED}  # 8-bit edge
    assert q.head.wq.bits == q.patch.wq.bits == 8 and q.blocks[1].fc1.wq.bits == 6


def test_vit_config_is_refused_before_training(monkeypatch) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the configuration")

    monkeypatch.setattr(flows, "train", no_training)
    with pytest.raises(ConfigError, match="^scheme must be fixed, pot, sp2 or msq for a vision "
                                          "transformer, not 'f8'"):
        flows.quantize_workflow("vit_digits", DATA, QATConfig(scheme="f8", bits=8, act_bits=8),
                                float_recipe("vit_digits"), qat_recipe("vit_digits"))
    with pytest.raises(ConfigError, match="^bits must be an integer in 2..8 for msq, not 9"):
        QATConfig(scheme="msq", lut_scheme="pot", bits=9)
    with pytest.raises(ConfigError, match="^model must be a VisionTransformer, not Sequential"):
        quantize_vit(torch.nn.Sequential(), FIXED8, CALIB)
    with pytest.raises(ConfigError, match="^model VisionTransformer is converted by quant.torch"
                                          r".vit_qat.quantize_vit \(a new module\)"):
        quantize_(_vit(), FIXED8, CALIB)


def test_workflow_ptq_and_qat_reproducible(tmp_path, monkeypatch) -> None:
    fcfg = float_recipe("vit_digits", epochs=3)
    tcfg = qat_recipe("vit_digits", epochs=1)
    hashes = []
    for run in ("a", "b"):
        r = flows.quantize_workflow("vit_digits", DATA, FIXED8, fcfg, tcfg, out=tmp_path / run,
                                    progress=False)
        hashes.append(json.loads((tmp_path / run / "manifest.json").read_text())["content_hash"])
        assert r["qat_epochs"] == 1 and not r["ptq"] and r["rows"] > 0
    assert hashes[0] == hashes[1]
    art = load_artifact(tmp_path / "a")
    assert np.array_equal(run_artifact(art, DATA.x_test), integer_logits_torch(art, DATA.x_test))
    assert r["agreement"] >= 90  # fake-quant and integer predictions (measured 99.7)

    def no_training(*args, **kwargs):
        raise AssertionError("PTQ trained")

    model, _ = flows.float_model("vit_digits", DATA, fcfg, progress=False)
    monkeypatch.setattr(flows, "train", no_training)
    q = flows.run_qat(model, DATA, FIXED8, tcfg, ptq=True, progress=False)
    assert isinstance(q, QuantViT)


def test_cli_vit(tmp_path, capsys) -> None:
    code, out, err = cli(capsys, "quantize", "--model", "vit_digits", "--scheme", "fixed",
                         "--bits", "8", "--ptq", "--float-epochs", "2", "--no-progress",
                         "--out", str(tmp_path / "a"), "--json")
    r = json.loads(out)
    assert code == 0 and r["ptq"] and r["qat_epochs"] == 0 and r["act_bits"] == 8
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["meta"]["ptq"] is True
    for args, text in [(("--ptq", "--epochs", "3"), "--epochs applies only to QAT, not --ptq"),
                       (("--float-ops",), None),
                       (("--lut-scheme", "pot"), "--lut-scheme applies only to --scheme msq, "
                                                 "not --scheme fixed")]:
        model = "cnn" if text is None else "vit_digits"
        code, _, err = cli(capsys, "quantize", "--model", model, "--scheme", "fixed", "--bits",
                           "8", *args, "--out", str(tmp_path / "b"))
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert (text or "--float-ops applies only to the ViTs, not --model cnn") in err
    code, out, _ = cli(capsys, "quantize", "--help")
    assert "--model vit_digits" in out and "--ptq" in out


def test_gelu_table_equals_shift_gelu_and_follows_the_input_scale() -> None:
    q = quantize_vit(_vit(), FIXED8, CALIB)
    g = q.blocks[0].act
    src = g.src[0]
    for clip in (float(src.clip), 3.0 * float(src.clip)):
        src.clip.fill_(clip)
        s = src.scale()
        codes = torch.arange(-src.fmt.qmax, src.fmt.qmax + 1, 37).reshape(1, -1, 1)
        p = gelu_params(s, g.out.scale())
        want = intops.shift_gelu(codes, p["x0"], p["n"], p["p"]).double() * (s * 2.0 ** -p["p"])
        with torch.no_grad():
            assert torch.equal(g((codes.double() * s).float()), g.out(want.float()))


def test_fake_quant_forward_is_pinned() -> None:
    # the logits of a training-mode forward, recorded before the integer ops became single
    # autograd nodes and fixed-point weights found their level by arithmetic (same values)
    x = torch.as_tensor(DATA.x_test[:64])
    for cfg, digest in ((FIXED8, "9283dd9cb9266a46"),
                        (QATConfig(scheme="msq", lut_scheme="pot", bits=4, act_bits=8),
                         "921ac5b73ec00318")):
        out = quantize_vit(_vit(1), cfg, CALIB).train()(x)
        assert hashlib.sha256(out.detach().numpy().tobytes()).hexdigest()[:16] == digest


def test_layernorm_and_gelu_gradients_are_the_float_ops() -> None:
    q = quantize_vit(_vit(), FIXED8, CALIB)
    ln, gelu = q.blocks[0].norm1, q.blocks[0].act
    torch.manual_seed(3)
    for op, ref, scale in ((ln, lambda v: (v - v.mean(dim=-2, keepdim=True)) / torch.sqrt(
            v.var(dim=-2, unbiased=False, keepdim=True) + ln.eps), ln.src[0].scale()),
                           (gelu, torch.nn.functional.gelu, gelu.src[0].scale())):
        x = ((torch.randn(3, 64, 5) * 300).round() * scale).requires_grad_(True)
        w = torch.randn(3, 64, 5)
        (_IntOp.apply(x, op) * w).sum().backward()
        x2 = x.detach().clone().requires_grad_(True)
        (ref(x2) * w).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_pot6_fake_quant_predicts_what_the_integer_artifact_computes() -> None:
    # PoT-6 rows once carried a 2**30 denominator the requantizer (shift <= 31) could only
    # apply with multipliers of 0 .. 121: 27 % agreement here. The capped exponent keeps them
    # as exact as the fixed rows.
    q = quantize_vit(_vit(), QATConfig(scheme="msq", lut_scheme="pot", bits=6, act_bits=8,
                                       sp2_fraction=0.5, learn_clip=False), CALIB)
    # the logits' scale as the flows export it (calibration keeps them inside the lane)
    art = export(q, DATA.input_shape, calibration=DATA.x_train[:512])
    pot = [layer for layer in art.layers if "scheme_ids" in layer.tensors
           and (layer.tensors["scheme_ids"] == Scheme.POT).any()]
    assert pot and all(layer.tensors["mult"].min() >= 1 << 13 for layer in pot)
    with torch.no_grad():
        fake = q(torch.as_tensor(DATA.x_test)).argmax(1).numpy()
    assert np.mean(fake == run_artifact(art, DATA.x_test).argmax(1)) >= 0.97
