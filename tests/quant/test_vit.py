"""ViT models in timm's layout: key layout and sizes, checkpoint loading against a reference
forward written here, one-line errors (API and CLI), the per-head row groups, float training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from fpim.cli import main
from fpim.commands.quantize import MODELS as CLI_MODELS
from fpim.flows import quantize as flows
from fpim.flows.quantize import float_model
from quant.data import load_digits
from quant.errors import ConfigError
from quant.formats import Scheme
from quant.msq import lut_row_count, msq_assign
from quant.torch.checkpoint import load_weights
from quant.torch.models import MODELS, build_model, float_recipe
from quant.torch.qat import QATConfig
from quant.torch.train import TrainConfig, make_optimizer, predict
from quant.torch.vit import (
    VisionTransformer,
    deit_base,
    deit_small,
    deit_tiny,
    msq_assign_vit,
    row_groups,
    vit_digits,
)

EPOCHS = 5  # enough for the default ViT to leave chance level on digits

# DeiT-T/S/B: embed dim, heads, parameters (millions; timm shapes)
DEIT = [(deit_tiny, 192, 3, 5.717), (deit_small, 384, 6, 22.05), (deit_base, 768, 12, 86.57)]


def timm_keys(depth: int) -> list[str]:
    """timm's DeiT state-dict keys in timm's order, spelled out independently of fpim."""
    block = ["norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias",
             "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
             "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]
    return (["cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"]
            + [f"blocks.{i}.{k}" for i in range(depth) for k in block]
            + ["norm.weight", "norm.bias", "head.weight", "head.bias"])


def timm_shapes(d: int, depth: int = 12, tokens: int = 197, patch: int = 16, chans: int = 3,
                classes: int = 1000, mlp: int = 4) -> dict[str, tuple[int, ...]]:
    """timm's DeiT shapes for each key."""
    per = {"norm1.weight": (d,), "norm1.bias": (d,), "attn.qkv.weight": (3 * d, d),
           "attn.qkv.bias": (3 * d,), "attn.proj.weight": (d, d), "attn.proj.bias": (d,),
           "norm2.weight": (d,), "norm2.bias": (d,), "mlp.fc1.weight": (mlp * d, d),
           "mlp.fc1.bias": (mlp * d,), "mlp.fc2.weight": (d, mlp * d), "mlp.fc2.bias": (d,)}
    out = {"cls_token": (1, 1, d), "pos_embed": (1, tokens, d),
           "patch_embed.proj.weight": (d, chans, patch, patch), "patch_embed.proj.bias": (d,)}
    out |= {f"blocks.{i}.{k}": s for i in range(depth) for k, s in per.items()}
    return out | {"norm.weight": (d,), "norm.bias": (d,), "head.weight": (classes, d),
                  "head.bias": (classes,)}


def random_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights that keep activations O(1): matrices ~ N(0, 1/fan_in), norms ~ 1."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, s in shapes.items():
        t = torch.randn(s, generator=g)
        if k.endswith("norm1.weight") or k.endswith("norm2.weight") or k == "norm.weight":
            t = 1 + 0.2 * t
        elif len(s) >= 2 and k.endswith("weight"):
            t = t / math.sqrt(math.prod(s[1:]))
        else:
            t = 0.2 * t
        state[k] = t
    return state


def reference_logits(sd: dict[str, torch.Tensor], x: torch.Tensor, heads: int) -> torch.Tensor:
    """ViT forward written out from the DeiT description, in float64."""
    sd = {k: v.double() for k, v in sd.items()}
    x = x.double()
    w = sd["patch_embed.proj.weight"]
    dim, chans, p, _ = w.shape
    b, _, hh, ww = x.shape
    patches = x.reshape(b, chans, hh // p, p, ww // p, p).permute(0, 2, 4, 1, 3, 5)
    t = patches.reshape(b, -1, chans * p * p) @ w.reshape(dim, -1).T + sd["patch_embed.proj.bias"]
    t = torch.cat([sd["cls_token"].expand(b, 1, dim), t], 1) + sd["pos_embed"]

    def ln(v: torch.Tensor, name: str) -> torch.Tensor:
        mu = v.mean(-1, keepdim=True)
        var = ((v - mu) ** 2).mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(var + 1e-6) * sd[f"{name}.weight"] + sd[f"{name}.bias"]

    def lin(v: torch.Tensor, name: str) -> torch.Tensor:
        return v @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    d = dim // heads
    depth = len({k.split(".")[1] for k in sd if k.startswith("blocks.")})
    for i in range(depth):
        blk = f"blocks.{i}"
        qkv = lin(ln(t, f"{blk}.norm1"), f"{blk}.attn.qkv")
        out = torch.empty_like(t)
        for h in range(heads):
            q, k, v = (qkv[..., s * dim + h * d:s * dim + (h + 1) * d] for s in range(3))
            scores = q @ k.transpose(1, 2) / math.sqrt(d)
            e = torch.exp(scores - scores.max(-1, keepdim=True).values)
            out[..., h * d:(h + 1) * d] = (e / e.sum(-1, keepdim=True)) @ v
        t = t + lin(out, f"{blk}.attn.proj")
        hidden = lin(ln(t, f"{blk}.norm2"), f"{blk}.mlp.fc1")
        hidden = 0.5 * hidden * (1 + torch.erf(hidden / math.sqrt(2)))
        t = t + lin(hidden, f"{blk}.mlp.fc2")
    return lin(ln(t, "norm")[:, 0], "head")


@pytest.mark.parametrize(("factory", "dim", "heads", "mparams"), DEIT)
def test_deit_keys_shapes_and_size(factory, dim, heads, mparams) -> None:
    with torch.device("meta"):
        model = factory()
    sd = model.state_dict()
    assert list(sd) == timm_keys(12) and len(sd) == 152
    assert {k: tuple(v.shape) for k, v in sd.items()} == timm_shapes(dim)
    assert round(sum(v.numel() for v in sd.values()) / 1e6, 3 if mparams < 10 else 2) == mparams
    assert model.num_heads == heads and model.blocks[0].attn.scale == 64 ** -0.5
    assert all(m.eps == 1e-6 for m in model.modules() if isinstance(m, torch.nn.LayerNorm))
    assert all(m.approximate == "none" for m in model.modules()
               if isinstance(m, torch.nn.GELU))


@pytest.mark.parametrize(("make", "heads", "shapes", "x_shape"), [
    (deit_tiny, 3, timm_shapes(192), (1, 3, 224, 224)),
    (lambda: VisionTransformer(img_size=(12, 8), patch_size=4, in_chans=2, num_classes=7,
                               embed_dim=24, depth=2, num_heads=3, mlp_ratio=2.0),
     3, timm_shapes(24, depth=2, tokens=7, patch=4, chans=2, classes=7, mlp=2), (3, 2, 12, 8)),
])
def test_timm_checkpoint_logits_match_reference(make, heads, shapes, x_shape, tmp_path) -> None:
    state = random_state(shapes)
    x = torch.rand(x_shape, generator=torch.Generator().manual_seed(1))
    expected = reference_logits(state, x, heads)
    torch.save({"model": state, "epoch": 3}, tmp_path / "wrapped.pth")
    torch.save(state, tmp_path / "plain.pt")
    save_file(state, tmp_path / "w.safetensors")
    model = load_weights(make(), tmp_path / "wrapped.pth").eval()
    with torch.no_grad():
        got = model(x)
    assert got.shape == expected.shape
    assert torch.allclose(got.double(), expected, rtol=0, atol=1e-5), \
        (got.double() - expected).abs().max()
    # the other sources give the same weights
    for source in (tmp_path / "plain.pt", str(tmp_path / "w.safetensors"), state, model):
        other = load_weights(make(), source).state_dict()
        assert all(torch.equal(other[k], state[k]) for k in state)


def small_vit() -> VisionTransformer:
    return VisionTransformer(img_size=8, patch_size=4, in_chans=1, num_classes=3, embed_dim=8,
                             depth=2, num_heads=2)


def test_load_errors_are_one_clear_line(tmp_path) -> None:
    good = small_vit().state_dict()
    missing = {k: v for k, v in good.items() if k != "blocks.1.attn.qkv.weight"}
    with pytest.raises(ConfigError, match=r"^checkpoint does not fit VisionTransformer: missing "
                                          r"keys blocks\.1\.attn\.qkv\.weight$"):
        load_weights(small_vit(), missing)
    few = {k: v for k, v in good.items() if not k.startswith("blocks.")}
    with pytest.raises(ConfigError, match=r"missing keys blocks\.0\.norm1\.weight, "
                                          r"blocks\.0\.norm1\.bias, blocks\.0\.attn\.qkv\.weight "
                                          r"and 21 more$"):
        load_weights(small_vit(), few)
    wrong = dict(good, **{"head.weight": torch.zeros(1000, 8), "extra.w": torch.zeros(1)})
    torch.save({"model": wrong}, tmp_path / "w.pth")
    with pytest.raises(ConfigError) as info:
        load_weights(small_vit(), tmp_path / "w.pth", model_name="vit_x")
    msg = str(info.value)
    assert msg == (f"checkpoint {str(tmp_path / 'w.pth')!r} does not fit vit_x: unexpected keys "
                   f"extra.w; wrong shapes: head.weight is 1000x8 but must be 3x8")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    for src, text in [(tmp_path / "bad.pth", "must be a torch state_dict file"),
                      (tmp_path / "none.pth", "checkpoint must be an existing file"),
                      ({"a": 1}, "checkpoint must map parameter names to tensors, not 'a'"),
                      ([1, 2], "checkpoint must hold a state_dict (names to tensors), not list")]:
        with pytest.raises(ConfigError) as info:
            load_weights(small_vit(), src)
        assert text in str(info.value) and "\n" not in str(info.value)


def test_model_table_and_cli_names() -> None:
    assert CLI_MODELS == MODELS
    for name in ("vit_digits", "deit_tiny", "deit_small", "deit_base"):
        assert name in MODELS
    m = build_model("vit_digits", 10, 1, 1, (8, 8))
    assert isinstance(m, VisionTransformer) and m(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ConfigError, match="img_size must be a multiple of patch_size 16 in both "
                                          "dimensions, not 8x8"):
        build_model("deit_tiny", 10, 1, 1, (8, 8))
    with pytest.raises(ConfigError, match="width must be 1 for vit_digits"):
        build_model("vit_digits", 10, 1, 2, (8, 8))
    with pytest.raises(ConfigError, match="embed_dim must be a multiple of num_heads 3, not 64"):
        VisionTransformer(embed_dim=64, num_heads=3)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["quantize", "--data", "digits", "--scheme", "fixed", "--bits", "8",
                 "--epochs", "1", "--no-progress", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_checkpoint(tmp_path, capsys) -> None:
    # a CNN's float weights in a safetensors file are loaded, not trained
    torch.manual_seed(0)
    cnn = build_model("cnn", 10, 1)
    save_file(cnn.state_dict(), tmp_path / "cnn.safetensors")
    code, out, _ = _cli(capsys, "--model", "cnn", "--checkpoint",
                        str(tmp_path / "cnn.safetensors"), "--out", str(tmp_path / "a"), "--json")
    r = json.loads(out)
    assert code == 0 and r["float_checkpoint_loaded"] and r["float_epochs"] == 0
    # a wrong shape and a missing key: one line, exit 2
    bad = dict(cnn.state_dict(), **{"fc.weight": torch.zeros(3, 64)})
    del bad["fc.bias"]
    torch.save({"model": bad}, tmp_path / "bad.pth")
    code, _, err = _cli(capsys, "--model", "cnn", "--checkpoint", str(tmp_path / "bad.pth"),
                        "--out", str(tmp_path / "b"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "does not fit cnn: missing keys fc.bias; wrong shapes: fc.weight is 3x64 but must " \
           "be 10x64" in err
    vit = vit_digits().state_dict()
    vit["pos_embed"] = torch.zeros(1, 17, 64)
    torch.save(vit, tmp_path / "vit.pth")
    code, _, err = _cli(capsys, "--model", "vit_digits", "--checkpoint", str(tmp_path / "vit.pth"),
                        "--out", str(tmp_path / "c"))
    assert code == 2 and err.count("\n") == 1
    assert "wrong shapes: pos_embed is 1x17x64 but must be 1x5x64" in err
    code, _, err = _cli(capsys, "--model", "cnn", "--checkpoint", str(tmp_path / "cnn.safetensors"),
                        "--float-checkpoint", str(tmp_path / "f.pt"), "--out", str(tmp_path / "d"))
    assert code == 2 and "checkpoint and float-checkpoint must not both be given" in err


def test_row_groups_give_every_head_the_same_split() -> None:
    model = VisionTransformer(img_size=8, patch_size=2, in_chans=1, num_classes=10,
                              embed_dim=24, depth=2, num_heads=3)
    groups = row_groups(model)
    assert list(groups) == ["patch_embed.proj"] + [
        f"blocks.{i}.{n}" for i in range(2) for n in ("attn.qkv", "attn.proj", "mlp.fc1",
                                                       "mlp.fc2")] + ["head"]
    # qkv: [q | k | v], each ordered by head (d = 8)
    assert groups["blocks.0.attn.qkv"] == tuple((8 * g, 8 * g + 8) for g in range(9))
    assert groups["blocks.1.mlp.fc1"] == ((0, 96),) and groups["head"] == ((0, 10),)
    with torch.no_grad():  # heads of very different scales: a global ranking is unbalanced
        model.blocks[0].attn.qkv.weight[8:16] *= 20
    rows = msq_assign_vit(model, 0.25, 4, lut_scheme="pot")
    ids = rows["blocks.0.attn.qkv"].scheme_ids
    per_head = [int(np.count_nonzero(ids[a:b] == Scheme.POT))
                for a, b in groups["blocks.0.attn.qkv"]]
    assert per_head == [lut_row_count(0.25, 8)] * 9
    whole = msq_assign(model.blocks[0].attn.qkv.weight.detach().numpy(), 0.25, 4,
                       lut_scheme="pot").scheme_ids  # what one group per layer would give
    assert [int(np.count_nonzero(whole[a:b] == Scheme.POT))
            for a, b in groups["blocks.0.attn.qkv"]] != per_head
    assert rows["head"].count(Scheme.POT) == lut_row_count(0.25, 10)
    assert set(rows) == set(groups)


def test_vit_digits_trains(tmp_path) -> None:
    data = load_digits()
    cfg = float_recipe("vit_digits", epochs=EPOCHS)
    assert (cfg.optimizer, cfg.mixup, cfg.shift) == ("adamw", 0.5, 0)
    model, loaded = float_model("vit_digits", data, cfg, checkpoint=tmp_path / "v.pt",
                                progress=False)
    assert not loaded and np.mean(predict(model, data.x_test) == data.y_test) > 0.5
    again, loaded = float_model("vit_digits", data, cfg, weights=tmp_path / "v.pt",
                                progress=False)
    assert loaded and np.array_equal(predict(again, data.x_test), predict(model, data.x_test))


def test_recipe_options() -> None:
    model = vit_digits()
    opt = make_optimizer(model, float_recipe("vit_digits"))
    decayed, plain = opt.param_groups
    assert isinstance(opt, torch.optim.AdamW) and decayed["weight_decay"] == 0.05
    assert plain["weight_decay"] == 0 and all(p.ndim == 1 for p in plain["params"])
    assert {id(p) for p in decayed["params"]} >= {id(model.pos_embed), id(model.head.weight)}
    assert isinstance(make_optimizer(model, TrainConfig()), torch.optim.SGD)
    assert float_recipe("cnn", seed=3) == TrainConfig(seed=3)
    for kwargs, text in [({"optimizer": "adam"}, "optimizer must be one of sgd, adamw, not "
                                                 "'adam'"),
                         ({"mixup": 0.7}, "mixup must be a number in [0, 0.5], not 0.7"),
                         ({"label_smoothing": 1.0}, "label_smoothing must be a number in "
                                                    "[0, 1), not 1.0")]:
        with pytest.raises(ConfigError) as info:
            TrainConfig(**kwargs)
        assert str(info.value) == text


def test_quantize_refuses_an_unconvertible_model_before_training(monkeypatch) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the model")

    toy = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Sigmoid())
    monkeypatch.setattr(flows, "build_model", lambda *args: toy)
    monkeypatch.setattr(flows, "train", no_training)
    with pytest.raises(ConfigError, match=r"^model Sequential cannot be converted for QAT: "
                                          r"layer '1' of type Sigmoid is not supported"):
        flows.quantize_workflow("cnn", load_digits(), QATConfig(), TrainConfig(), TrainConfig())
