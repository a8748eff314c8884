"""docs/artifact.md is complete: a decoder written from that page alone, with numpy, json and
safetensors only (no fpim code), reproduces fpim's integer logits bit for bit."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from quant.artifact import save_artifact
from quant.data import load_digits
from quant.infer import run_artifact
from tests.quant.vit_graph import TinyViT, build_artifact, random_weights
from tests.sim.conftest import make_small_artifact

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "artifacts" / "cnn_msq4_digits"


# ---- the decoder, following docs/artifact.md section by section -------------------------

#: where the logits (format null) saturate: 16-bit signed, symmetric
LOGIT_LANE = {"bits": 16, "signed": True}

def _bounds(fmt: dict) -> tuple[int, int]:
    b = fmt["bits"]
    return (-((1 << (b - 1)) - 1), (1 << (b - 1)) - 1) if fmt["signed"] else (0, (1 << b) - 1)


def _level(word: int, scheme: int, m: int) -> int:
    sign = -1 if (word >> (m - 1)) & 1 else 1
    if scheme == 0:  # fixed: two's complement
        return word - (1 << m) if word >= 1 << (m - 1) else word
    if scheme == 2:  # PoT: sign, exponent field e
        e = word & ((1 << (m - 1)) - 1)
        return 0 if e == 0 else sign * (1 << (e - 1))
    m1, m2 = -(-(m - 1) // 2), (m - 1) // 2  # SP2: sign, i1, i2
    s = (1 << m1) - 1
    i1, i2 = (word >> m2) & ((1 << m1) - 1), word & ((1 << m2) - 1)
    return sign * ((1 << (s - i1) if i1 else 0) + (1 << (s - i2) if i2 else 0))


def _round_shift(p: np.ndarray, s: np.ndarray) -> np.ndarray:
    out = np.empty_like(p)
    for idx, v in np.ndenumerate(p):
        sh = int(np.broadcast_to(s, p.shape)[idx])
        v = int(v)
        if sh <= 0:
            out[idx] = v << -sh
            continue
        q, r = v >> sh, v - ((v >> sh) << sh)
        half = 1 << (sh - 1)
        out[idx] = q + (1 if r > half or (r == half and q % 2) else 0)
    return out


def _requantize(a, mult, shift, fmt, relu):
    y = _round_shift(a * mult, shift)
    if relu:
        y = np.maximum(y, 0)
    lo, hi = _bounds(fmt)
    return np.clip(y, lo, hi)


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, pad: int) -> np.ndarray:
    b, c, h, w = x.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    cols = np.zeros((c * kh * kw, b * ho * wo), np.int64)
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for bi in range(b):
                    for y in range(ho):
                        for xx in range(wo):
                            yy, xc = y * stride + i - pad, xx * stride + j - pad
                            if 0 <= yy < h and 0 <= xc < w:
                                cols[(ci * kh + i) * kw + j, (bi * ho + y) * wo + xx] = \
                                    x[bi, ci, yy, xc]
    return cols


INT32_MAX = 2 ** 31 - 1


def _shift_exp(x: np.ndarray, x0: int, n: int) -> np.ndarray:
    out = np.empty_like(x)
    for idx, v in np.ndenumerate(x):
        v = max(int(v) + (int(v) >> 1) - (int(v) >> 4), n * x0)
        q = v // x0
        out[idx] = ((v - x0 * q - 2 * x0) << (n - q)) >> 1
    return out


def _isqrt_newton(v: int) -> int:
    k = 1 << ((v.bit_length() + 1) // 2)
    for _ in range(6):
        k = min(k, (k + v // max(k, 1)) >> 1)
    return k


def _layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, shift: int,
               out: dict) -> np.ndarray:
    z = np.empty_like(x)
    for b in range(x.shape[0]):
        for t in range(x.shape[2]):
            col = [int(v) for v in x[b, :, t]]
            mean = round(Fraction(sum(col), len(col)))  # half to even
            y = [v - mean for v in col]
            f = INT32_MAX // max(_isqrt_newton(sum(v * v for v in y)), 1)
            z[b, :, t] = [(v * f) >> 1 for v in y]
    return _requantize(z * gamma[:, None] + beta[:, None], 1, np.int64(shift), out, False)


def _vit_op(op: str, a: dict, t: dict, xs: list[np.ndarray], out: dict,
            shape: list[int]) -> np.ndarray:
    """The transformer ops of docs/artifact.md."""
    x = xs[0]
    if op == "matmul":
        lhs = np.swapaxes(x, -1, -2) if a["transpose_a"] else x
        acc = np.einsum("bgmk,bgkn->bgmn", lhs, xs[1])
        return _requantize(acc, a["mult"], np.int64(a["shift"]), out, False)
    if op == "softmax":
        e = _shift_exp(x - x.max(axis=-2, keepdims=True), a["x0"], a["n"])
        return (e * (INT32_MAX // e.sum(axis=-2, keepdims=True))) >> (31 - out["bits"])
    if op == "layernorm":
        return _layernorm(x, t["gamma"], t["beta"], a["shift"], out)
    if op == "gelu":
        m = np.maximum(x, 0)
        e1, e2 = _shift_exp(x - m, a["x0"], a["n"]), _shift_exp(-m, a["x0"], a["n"])
        sigma = (e1 * (INT32_MAX // (e1 + e2))) >> (31 - a["p"])
        return _requantize(x * sigma, a["mult"], np.int64(a["shift"]), out, False)
    if op == "pos_embed":
        y = _round_shift(x * a["mult"], np.int64(a["shift"]))
        if a["cls"]:
            y = np.concatenate([np.zeros((y.shape[0], y.shape[1], 1), np.int64), y], axis=2)
        return _requantize(y + t["table"], 1, np.int64(a["out_shift"]), out, False)
    if op == "reshape":
        return x.reshape(x.shape[0], *shape)
    assert op == "slice"
    return np.take(x, range(a["start"], a["stop"]), axis=a["axis"] + 1)


def decode_and_run(path: Path, images: np.ndarray) -> np.ndarray:
    manifest = json.loads((path / "manifest.json").read_text())
    blob = (path / manifest["tensors_file"]).read_bytes()
    body = {k: v for k, v in manifest.items() if k != "content_hash"}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert manifest["content_hash"] == "sha256:" + hashlib.sha256(canon + b"\0" + blob).hexdigest()
    tensors = load_file(str(path / manifest["tensors_file"]))
    inp = manifest["input"]
    lo, hi = _bounds(inp["format"])
    q = np.round(images.astype(np.float64) / inp["scale"])
    vals = {"input": np.clip(q, lo, hi).astype(np.int64)}
    fmts = {"input": inp["format"]}
    for layer in manifest["layers"]:
        op, a, name = layer["op"], layer["attrs"], layer["name"]
        t = {f: tensors[f"{name}.{f}"] for f in layer["tensors"]}
        xs = [vals[s] for s in layer["inputs"]]
        out = layer["out"]["format"]
        if op in ("conv", "linear", "token_linear"):
            m = a["weight_bits"]
            lw = np.array([[_level(int(w), int(s), m) for w in row]
                           for row, s in zip(t["words"], t["scheme_ids"], strict=True)])
            x = xs[0]
            if op == "conv":
                kh, kw = a["kernel"]
                cols = _im2col(x, kh, kw, a["stride"], a["padding"])
                ho = (x.shape[2] + 2 * a["padding"] - kh) // a["stride"] + 1
                wo = (x.shape[3] + 2 * a["padding"] - kw) // a["stride"] + 1
            elif op == "token_linear":
                cols = x.transpose(1, 0, 2).reshape(x.shape[1], -1)
            else:
                cols = x.reshape(x.shape[0], -1).T
            acc = lw @ cols + t["bias"][:, None]
            mult, shift = t["mult"][:, None], t["shift"][:, None]
            y = (_requantize(acc, mult, shift, LOGIT_LANE, False) if out is None
                 else _requantize(acc, mult, shift, out, a["relu"]))
            if op == "conv":
                y = y.reshape(-1, x.shape[0], ho, wo).transpose(1, 0, 2, 3)
            elif op == "token_linear":
                y = y.reshape(-1, x.shape[0], x.shape[2]).transpose(1, 0, 2)
            else:
                y = y.T
        elif op == "add":
            parts = [_round_shift(v * int(mm), np.int64(ss))
                     for v, mm, ss in zip(xs, t["in_mult"], t["in_shift"], strict=True)]
            y = _requantize(parts[0] + parts[1], 1, np.int64(a["out_shift"]), out, a["relu"])
        elif op in ("avgpool", "maxpool"):
            (kh, kw), s = a["kernel"], a["stride"]
            pad = a.get("padding", 0) if op == "maxpool" else 0
            x = np.pad(xs[0], ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                       constant_values=_bounds(fmts[layer["inputs"][0]])[0])
            ho, wo = (x.shape[2] - kh) // s + 1, (x.shape[3] - kw) // s + 1
            win = np.stack([x[:, :, i:i + s * ho:s, j:j + s * wo:s]
                            for i in range(kh) for j in range(kw)], axis=-1)
            y = (win.max(axis=-1) if op == "maxpool" else
                 _requantize(win.sum(axis=-1), a["mult"], np.int64(a["shift"]), out, False))
        elif op == "flatten":
            y = xs[0].reshape(xs[0].shape[0], -1)
        else:
            y = _vit_op(op, a, t, xs, out, layer["out"]["shape"])
        vals[name], fmts[name] = y, out
    return vals[manifest["output"]]


# ---- the checks ---------------------------------------------------------------------

def test_spec_decoder_matches_fpim_on_the_shipped_artifact():
    from quant.artifact import load_artifact

    images = load_digits(seed=0).x_test[:12]
    want = run_artifact(load_artifact(SHIPPED), images)
    assert np.array_equal(decode_and_run(SHIPPED, images), want)


def test_spec_decoder_matches_fpim_on_logits_beyond_the_lane(tmp_path):
    """The shipped artifact's head with 2**7 times larger logits: they saturate at
    ±32,767 on most of these images, in the decoder as in fpim."""
    from dataclasses import replace

    from quant.artifact import load_artifact

    art = load_artifact(SHIPPED)
    fc = art.layer("fc")
    t = {**fc.tensors, "shift": np.maximum(fc.tensors["shift"] - 7, 0)}
    art = replace(art, layers=tuple(replace(la, tensors=t) if la is fc else la
                                    for la in art.layers))
    save_artifact(art, tmp_path / "a")
    images = load_digits(seed=0).x_test[:12]
    want = run_artifact(art, images)
    assert (np.abs(want) == 32767).sum() >= 12
    assert np.array_equal(decode_and_run(tmp_path / "a", images), want)


def test_spec_decoder_matches_fpim_with_residual_add_and_avgpool(tmp_path):
    art = make_small_artifact(seed=3)
    save_artifact(art, tmp_path / "a")
    images = np.random.default_rng(1).random((3, 3, 8, 8))
    assert np.array_equal(decode_and_run(tmp_path / "a", images), run_artifact(art, images))


def test_spec_decoder_matches_fpim_on_a_vision_transformer(tmp_path):
    cfg = TinyViT(depth=1)
    rng = np.random.default_rng(2)
    art = build_artifact(cfg, random_weights(cfg, 2), rng.random((16, 1, 8, 8)))
    save_artifact(art, tmp_path / "vit")
    images = rng.random((3, 1, 8, 8))
    assert np.array_equal(decode_and_run(tmp_path / "vit", images), run_artifact(art, images))
