"""A tiny ViT made of the transformer ops (tests/quant/vit_graph.py, the graph of docs/vit.md)
at every level: saved and loaded, integer inference equal bit for bit to the torch twin and
to the simulator's functional mode, timed by the simulator, its GEMMs as RTL cases, its
predictions those of the float model; and the torch export naming each transformer op it
cannot export yet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hw.tb.cases import artifact_case
from quant.artifact import load_artifact, save_artifact
from quant.errors import ArtifactError, ConfigError
from quant.infer import quantize_input, run_artifact
from quant.torch.export import export
from quant.torch.qat import QATConfig
from quant.torch.twin import integer_logits_torch
from quant.torch.vit import vit_digits
from quant.torch.vit_qat import quantize_vit
from sim.config import load_accelerator
from sim.engine import simulate
from sim.functional import run_artifact as sim_values
from sim.ops import from_artifact
from sim.workload import GemmOp, VectorOp
from tests.quant.vit_graph import TinyViT, build_artifact, float_forward, random_weights

CFG = TinyViT()
ENGINE_8 = ["engine.weight_bits=8", "engine.act_bits=8", "engine.act_signed=true",
            "engine.acc_bits=32"]


@pytest.fixture(scope="module")
def vit():
    w = random_weights(CFG, 0)
    rng = np.random.default_rng(1)
    art = build_artifact(CFG, w, rng.random((64, CFG.chans, CFG.img, CFG.img)))
    return w, art, rng.random((256, CFG.chans, CFG.img, CFG.img))


@pytest.fixture(scope="module")
def accel():
    return load_accelerator("xczu9eg", ENGINE_8)


def test_the_vit_artifact_round_trips_with_a_stable_hash(vit, tmp_path):
    _, art, images = vit
    h1 = save_artifact(art, tmp_path / "a")
    assert save_artifact(load_artifact(tmp_path / "a"), tmp_path / "b") == h1
    assert np.array_equal(run_artifact(load_artifact(tmp_path / "a"), images[:8]),
                          run_artifact(art, images[:8]))


def test_integer_inference_equals_the_torch_twin(vit):
    _, art, images = vit
    assert np.array_equal(run_artifact(art, images), integer_logits_torch(art, images))


def test_the_simulator_computes_every_value_of_integer_inference(vit, accel):
    _, art, images = vit
    want = run_artifact(art, images[:16], return_values=True)
    got = sim_values(art, quantize_input(art, images[:16]), accel)
    assert want.keys() == got.keys()
    assert all(np.array_equal(want[k], got[k]) for k in want)


def test_a_qat_export_runs_on_the_signed_engine_as_integer_inference(accel):
    # quant.torch.vit_qat's export: every GEMM input (the images included) is int8, so the
    # signed 8-bit engine takes it, and the simulator computes every value of quant.infer
    torch.manual_seed(0)
    images = np.random.default_rng(2).random((16, 1, 8, 8))
    q = quantize_vit(vit_digits(), QATConfig(scheme="fixed", bits=8, act_bits=8,
                                             learn_clip=False), torch.as_tensor(images).float())
    art = export(q, (1, 8, 8))
    assert str(art.input.fmt) == "int8"
    want = run_artifact(art, images, return_values=True)
    got = sim_values(art, quantize_input(art, images), accel)
    assert want.keys() == got.keys()
    assert all(np.array_equal(want[k], got[k]) for k in want)


def test_the_simulator_times_attention_as_streamed_matmuls(vit, accel):
    _, art, _ = vit
    wl = from_artifact(art, batch=2)
    ops = {o.name: o for o in wl.ops}
    t = CFG.tokens
    assert ops["b0.scores"] == GemmOp("b0.scores", "matmul", m=t, n=t, k=CFG.dim // CFG.heads,
                                      groups=2 * CFG.heads, splits=((t, 0, 2 * CFG.heads),),
                                      source=ops["b0.scores"].source)
    assert ops["b0.qkv"].kind == "token_linear" and ops["b0.qkv"].n == 2 * t
    # the A.V output's dyadic requantizer runs on the vector unit (sim.timing R11d); the
    # scores' one is the softmax's input stage, which runs pipelined between the matmuls
    assert {o.op for o in wl.ops if isinstance(o, VectorOp)} == \
        {"pos_embed", "layernorm", "softmax", "gelu", "add", "requant"}
    assert ops["b0.ctx.requant"] == VectorOp("b0.ctx.requant", "requant", 2 * CFG.dim * t)
    assert "b0.scores.requant" not in ops
    assert ops["b0.attn"].pipelined and ops["b0.attn"].groups == 2 * CFG.heads
    assert ops["b0.norm1"].rows == 2 * t and ops["b0.norm1"].length == CFG.dim
    assert not {"b0.q", "b0.qh", "b0.merge", "tokens", "cls"} & ops.keys()  # layout: no work
    result = simulate(wl, accel)
    assert {r.name for r in result.layers} == ops.keys()


def test_rtl_runs_token_linear_and_attention_matmuls_on_the_engine(vit, accel):
    """token_linear is one GEMM case; a matmul runs one command per head (sim.timing R11,
    hw.tb.network and hw.tb.cases.matmul_cases), not as one layer case; the softmax is the
    host's."""
    _, art, images = vit
    case = artifact_case(accel, art, "b0.qkv", images[0])
    assert case.want.shape == (3 * CFG.dim, CFG.tokens)
    with pytest.raises(ArtifactError, match="a matmul runs one command per head"):
        artifact_case(accel, art, "b0.scores", images[0])
    with pytest.raises(ArtifactError, match="not 'softmax' \\(it runs on the host\\)"):
        artifact_case(accel, art, "b0.attn", images[0])


def test_integer_predictions_follow_the_float_model(vit):
    w, art, images = vit
    agree = np.argmax(run_artifact(art, images), 1) == np.argmax(
        float_forward(CFG, w, images)["head"], 1)
    assert agree.mean() >= 0.97  # measured 1.0 on these 256 images


class _Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@pytest.mark.parametrize(("model", "op"), [
    (_Fn(lambda x: torch.softmax(x, dim=-1)), "softmax"),
    (nn.Sequential(nn.LayerNorm(4)), "layernorm"),
    (nn.Sequential(nn.GELU()), "gelu"),
    (_Fn(lambda x: x @ x), "matmul"),
    (_Fn(lambda x: torch.cat([x, x], dim=1)), "pos_embed"),
    (_Fn(lambda x: x.transpose(1, 2)), "reshape"),
    (_Fn(lambda x: x[:, 0]), "slice"),
    (nn.Sequential(nn.Linear(4, 4)), "token_linear"),
])
def test_export_names_the_transformer_op_it_cannot_export_yet(model, op):
    model.qat_config = QATConfig()
    with pytest.raises(ConfigError, match=f"would become an artifact {op!r} layer, which the "
                                          r"torch export \(quant.torch.export.EXPORTERS\) "
                                          "cannot export yet"):
        export(model, (4, 4))
