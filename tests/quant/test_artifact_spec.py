"""docs/artifact.md is complete: a decoder written from that page alone, with numpy, json and
safetensors only (no fpim code), reproduces fpim's integer logits bit for bit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from quant.artifact import save_artifact
from quant.data import load_digits
from quant.infer import run_artifact
from tests.sim.conftest import make_small_artifact

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "artifacts" / "cnn_msq4_digits"


# ---- the decoder, following docs/artifact.md section by section -------------------------

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
        if op in ("conv", "linear"):
            m = a["weight_bits"]
            lw = np.array([[_level(int(w), int(s), m) for w in row]
                           for row, s in zip(t["words"], t["scheme_ids"], strict=True)])
            x = xs[0]
            if op == "conv":
                kh, kw = a["kernel"]
                cols = _im2col(x, kh, kw, a["stride"], a["padding"])
                ho = (x.shape[2] + 2 * a["padding"] - kh) // a["stride"] + 1
                wo = (x.shape[3] + 2 * a["padding"] - kw) // a["stride"] + 1
            else:
                cols = x.reshape(x.shape[0], -1).T
            acc = lw @ cols + t["bias"][:, None]
            mult, shift = t["mult"][:, None], t["shift"][:, None]
            y = (_round_shift(acc * mult, shift) if out is None
                 else _requantize(acc, mult, shift, out, a["relu"]))
            y = (y.reshape(-1, x.shape[0], ho, wo).transpose(1, 0, 2, 3) if op == "conv"
                 else y.T)
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
        else:
            assert op == "flatten"
            y = xs[0].reshape(xs[0].shape[0], -1)
        vals[name], fmts[name] = y, out
    return vals[manifest["output"]]


# ---- the checks ---------------------------------------------------------------------

def test_spec_decoder_matches_fpim_on_the_shipped_artifact():
    from quant.artifact import load_artifact

    images = load_digits(seed=0).x_test[:12]
    want = run_artifact(load_artifact(SHIPPED), images)
    assert np.array_equal(decode_and_run(SHIPPED, images), want)


def test_spec_decoder_matches_fpim_with_residual_add_and_avgpool(tmp_path):
    art = make_small_artifact(seed=3)
    save_artifact(art, tmp_path / "a")
    images = np.random.default_rng(1).random((3, 3, 8, 8))
    assert np.array_equal(decode_and_run(tmp_path / "a", images), run_artifact(art, images))
