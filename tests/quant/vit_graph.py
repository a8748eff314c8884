"""A tiny ViT as an integer artifact, built from float weights (timm's key layout) by
calibration: the graph of docs/vit.md, for tests of the transformer ops at every level.

The float forward runs channel-first like the artifact (tokens ``(D, T)``) and records every
value under its layer's name; the builder gives each value the scale its calibrated range
needs and assembles the layers with the ops' parameter functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from quant.artifact import Artifact, Layer, Value
from quant.formats import ActFormat
from quant.ops.add import residual_params
from quant.ops.embed import pos_embed_params
from quant.ops.gelu import gelu_params
from quant.ops.layernorm import layernorm_params
from quant.ops.matmul import matmul_params
from quant.ops.softmax import out_scale, softmax_params
from quant.requant import REQUANTIZER
from quant.rows import quantize_rows

I8, I16 = ActFormat(8, True), ActFormat(16, True)
PROB_BITS = 8


@dataclass(frozen=True)
class TinyViT:
    """Shape of the tiny ViT: (chans, img, img) images, ``patch`` square patches."""

    chans: int = 1
    img: int = 8
    patch: int = 2
    dim: int = 8
    heads: int = 2
    depth: int = 2
    mlp: int = 2
    classes: int = 3

    @property
    def patches(self) -> int:
        return (self.img // self.patch) ** 2

    @property
    def tokens(self) -> int:
        return self.patches + 1


def random_weights(cfg: TinyViT, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float weights in timm's layout and shapes."""
    rng = np.random.default_rng(seed)
    d, h = cfg.dim, cfg.dim * cfg.mlp

    def mat(*shape: int) -> np.ndarray:
        return rng.normal(0, 1 / math.sqrt(math.prod(shape[1:])), shape)

    w = {"cls_token": rng.normal(0, 0.5, (1, 1, d)),
         "pos_embed": rng.normal(0, 0.5, (1, cfg.tokens, d)),
         "patch_embed.proj.weight": mat(d, cfg.chans, cfg.patch, cfg.patch),
         "patch_embed.proj.bias": rng.normal(0, 0.1, d),
         "norm.weight": rng.uniform(0.5, 1.5, d), "norm.bias": rng.normal(0, 0.1, d),
         "head.weight": mat(cfg.classes, d), "head.bias": rng.normal(0, 0.1, cfg.classes)}
    for i in range(cfg.depth):
        b = f"blocks.{i}."
        for name, (m, k) in {"attn.qkv": (3 * d, d), "attn.proj": (d, d), "mlp.fc1": (h, d),
                             "mlp.fc2": (d, h)}.items():
            w[b + name + ".weight"] = mat(m, k)
            w[b + name + ".bias"] = rng.normal(0, 0.1, m)
        for name in ("norm1", "norm2"):
            w[b + name + ".weight"] = rng.uniform(0.5, 1.5, d)
            w[b + name + ".bias"] = rng.normal(0, 0.1, d)
    return w


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(x.var(axis=1, keepdims=True) + 1e-6) * g[:, None] + b[:, None]


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-2, keepdims=True))
    return e / e.sum(axis=-2, keepdims=True)


def float_forward(cfg: TinyViT, w: dict, images: np.ndarray) -> dict[str, np.ndarray]:
    """Every value of the float ViT on ``images`` (B, chans, img, img), by layer name."""
    d, hd, p = cfg.dim, cfg.dim // cfg.heads, cfg.patch
    bsz = images.shape[0]
    v: dict[str, np.ndarray] = {}
    g = cfg.img // p
    pat = images.reshape(bsz, cfg.chans, g, p, g, p).transpose(0, 2, 4, 1, 3, 5)
    pat = pat.reshape(bsz, g * g, -1)
    wp = w["patch_embed.proj.weight"].reshape(d, -1)
    v["patch"] = (pat @ wp.T + w["patch_embed.proj.bias"]).transpose(0, 2, 1)
    cls = np.broadcast_to(w["cls_token"].reshape(d, 1), (bsz, d, 1))
    x = v["embed"] = np.concatenate([cls, v["patch"]], axis=2) + w["pos_embed"][0].T
    for i in range(cfg.depth):
        b, n = f"blocks.{i}.", f"b{i}."

        def lin(name: str, t: np.ndarray, b: str = b) -> np.ndarray:
            return np.einsum("mk,bkt->bmt", w[b + name + ".weight"], t) \
                + w[b + name + ".bias"][:, None]

        h = v[n + "norm1"] = _ln(x, w[b + "norm1.weight"], w[b + "norm1.bias"])
        qkv = v[n + "qkv"] = lin("attn.qkv", h)
        q, k, vv = (qkv[:, j * d:(j + 1) * d].reshape(bsz, cfg.heads, hd, -1) for j in range(3))
        s = v[n + "scores"] = np.einsum("bhck,bhcq->bhkq", k, q) * hd ** -0.5
        a = v[n + "attn"] = _softmax(s)
        c = v[n + "ctx"] = np.einsum("bhck,bhkq->bhcq", vv, a)
        v[n + "proj"] = lin("attn.proj", c.reshape(bsz, d, -1))
        x = v[n + "res1"] = x + v[n + "proj"]
        h = v[n + "norm2"] = _ln(x, w[b + "norm2.weight"], w[b + "norm2.bias"])
        f = v[n + "fc1"] = lin("mlp.fc1", h)
        v[n + "act"] = 0.5 * f * (1 + erf(f / math.sqrt(2)))
        v[n + "fc2"] = lin("mlp.fc2", v[n + "act"])
        x = v[n + "res2"] = x + v[n + "fc2"]
    v["norm"] = _ln(x, w["norm.weight"], w["norm.bias"])
    v["head"] = v["norm"][:, :, 0] @ w["head.weight"].T + w["head.bias"]
    return v


def _gemm_layer(name: str, op: str, src: str, src_val: Value, weight: np.ndarray,
                bias: np.ndarray, out: Value, attrs: dict) -> Layer:
    """A fixed-8 GEMM layer, requantized within the engine's range (quant.requant)."""
    wm = weight.reshape(weight.shape[0], -1)
    rows = quantize_rows(wm, "fixed", 8, alpha=np.abs(wm).max(axis=1))
    s_acc = rows.alphas / rows.denominators() * src_val.scale
    mult, shift = zip(*(REQUANTIZER.multiplier(s / out.scale, 32) for s in s_acc), strict=True)
    m, k = wm.shape
    tensors = {"words": rows.words.astype(np.int32), "scheme_ids": rows.scheme_ids,
               "alphas": rows.alphas, "mult": np.array(mult, np.int64),
               "shift": np.array(shift, np.int64),
               "bias": np.round(bias / s_acc).astype(np.int64)}
    n = 1 if op == "linear" else math.prod(out.shape[1:])
    return Layer(name, op, (src,), out, {"relu": False, "weight_bits": 8, "acc_bits": 32,
                                         "gemm": {"M": m, "K": k, "N": n}, **attrs}, tensors)


def build_artifact(cfg: TinyViT, w: dict, calib: np.ndarray) -> Artifact:
    """The integer artifact of the float ViT, scales from the ranges seen on ``calib``."""
    rec = float_forward(cfg, w, calib)
    d, hd, t = cfg.dim, cfg.dim // cfg.heads, cfg.tokens
    layers: list[Layer] = []
    vals = {"input": Value(I8, 1 / 127, (cfg.chans, cfg.img, cfg.img))}

    def value(name: str, fmt: ActFormat, shape: tuple[int, ...]) -> Value:
        return Value(fmt, 1.25 * float(np.abs(rec[name]).max()) / fmt.qmax, shape)

    def add(layer: Layer) -> str:
        layers.append(layer)
        vals[layer.name] = layer.out
        return layer.name

    def same(name: str, src: str, shape: tuple[int, ...], attrs: dict | None = None,
             op: str = "reshape") -> str:
        v = vals[src]
        return add(Layer(name, op, (src,), Value(v.fmt, v.scale, shape), attrs or {}))

    def gemm(name: str, key: str, src: str, fmt: ActFormat, rows: int, op: str = "token_linear",
             attrs: dict | None = None) -> str:
        shape = (rows, cfg.img // cfg.patch, cfg.img // cfg.patch) if op == "conv" else (rows, t)
        return add(_gemm_layer(name, op, src, vals[src], w[key + ".weight"], w[key + ".bias"],
                               value(name, fmt, shape), attrs or {}))

    def layernorm(name: str, key: str, src: str) -> str:
        attrs, tensors = layernorm_params(w[key + ".weight"], w[key + ".bias"],
                                          value(name, I8, (d, t)).scale)
        return add(Layer(name, "layernorm", (src,), value(name, I8, (d, t)), attrs, tensors))

    def residual(name: str, a: str, b: str) -> str:
        out = value(name, I16, (d, t))
        attrs, tensors = residual_params((vals[a].scale, vals[b].scale), out.scale, 4)
        return add(Layer(name, "add", (a, b), out, attrs, tensors))

    g = cfg.img // cfg.patch
    gemm("patch", "patch_embed.proj", "input", I16, d, op="conv",
         attrs={"kernel": [cfg.patch, cfg.patch], "stride": cfg.patch, "padding": 0})
    same("tokens", "patch", (d, g * g))
    emb = value("embed", I16, (d, t))
    attrs, tensors = pos_embed_params(vals["tokens"].scale, emb.scale, w["pos_embed"][0].T,
                                      w["cls_token"].reshape(d))
    x = add(Layer("embed", "pos_embed", ("tokens",), emb, attrs, tensors))
    for i in range(cfg.depth):
        b, n = f"blocks.{i}.", f"b{i}."
        h = layernorm(n + "norm1", b + "norm1", x)
        qkv = gemm(n + "qkv", b + "attn.qkv", h, I8, 3 * d)
        heads = {}
        for j, part in enumerate("qkv"):
            sl = same(n + part, qkv, (d, t), {"axis": 0, "start": j * d, "stop": (j + 1) * d},
                      op="slice")
            heads[part] = same(n + part + "h", sl, (cfg.heads, hd, t))
        sc = value(n + "scores", I8, (cfg.heads, t, t))
        a = {"transpose_a": True, "acc_bits": 32, "gemm": {"M": t, "K": hd, "N": t},
             **matmul_params(vals[heads["k"]].scale, vals[heads["q"]].scale, sc.scale,
                             hd ** -0.5)}
        add(Layer(n + "scores", "matmul", (heads["k"], heads["q"]), sc, a))
        prob = Value(ActFormat(PROB_BITS), out_scale(PROB_BITS), (cfg.heads, t, t))
        add(Layer(n + "attn", "softmax", (n + "scores",), prob,
                  softmax_params(sc.scale, t, PROB_BITS)))
        ctx = value(n + "ctx", I8, (cfg.heads, hd, t))
        a = {"transpose_a": False, "acc_bits": 32, "gemm": {"M": hd, "K": t, "N": t},
             **matmul_params(vals[heads["v"]].scale, prob.scale, ctx.scale)}
        add(Layer(n + "ctx", "matmul", (heads["v"], n + "attn"), ctx, a))
        merged = same(n + "merge", n + "ctx", (d, t))
        proj = gemm(n + "proj", b + "attn.proj", merged, I16, d)
        x = residual(n + "res1", x, proj)
        h = layernorm(n + "norm2", b + "norm2", x)
        f = gemm(n + "fc1", b + "mlp.fc1", h, I16, d * cfg.mlp)
        act = value(n + "act", I8, (d * cfg.mlp, t))
        add(Layer(n + "act", "gelu", (f,), act, gelu_params(vals[f].scale, act.scale)))
        f2 = gemm(n + "fc2", b + "mlp.fc2", n + "act", I16, d)
        x = residual(n + "res2", x, f2)
    h = layernorm("norm", "norm", x)
    same("cls", h, (d, 1), {"axis": 1, "start": 0, "stop": 1}, op="slice")
    head = w["head.weight"]
    s_acc = np.abs(head).max(axis=1) / 127 * vals["cls"].scale
    add(_gemm_layer("head", "linear", "cls", vals["cls"], head, w["head.bias"],
                    Value(None, float(s_acc.min()), (cfg.classes,)), {}))
    return Artifact(input=vals["input"], layers=tuple(layers), output="head",
                    meta={"model": "tiny_vit"})
