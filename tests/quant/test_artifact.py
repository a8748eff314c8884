"""Artifact save/load round trip, refusal of edited artifacts, and integer inference by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from quant.artifact import Artifact, Layer, Value, load_artifact, save_artifact
from quant.errors import ArtifactError
from quant.formats import ActFormat, Scheme
from quant.infer import quantize_input, run_artifact
from quant.msq import msq_assign
from quant.ref import conv2d, gemm, requantize, round_shift


def _gemm_tensors(rng: np.random.Generator, m: int, k: int) -> dict[str, np.ndarray]:
    rows = msq_assign(rng.normal(size=(m, k)), 0.5, 4)
    return {
        "words": rows.words.astype(np.int32), "scheme_ids": rows.scheme_ids.astype(np.int8),
        "alphas": rows.alphas, "mult": rng.integers(1 << 14, 1 << 15, m).astype(np.int64),
        "shift": np.full(m, 22, np.int64), "bias": rng.integers(-50, 50, m).astype(np.int64),
    }


def tiny_artifact(seed: int = 0) -> Artifact:
    """input 1x6x6 → conv3x3(4) relu → conv3x3(4) → add(+conv1) relu → avgpool → fc(3)."""
    rng = np.random.default_rng(seed)
    u4 = ActFormat(4)
    inp = Value(ActFormat(8), 1 / 255, (1, 6, 6))
    conv = {"kernel": [3, 3], "stride": 1, "padding": 1, "weight_bits": 4, "acc_bits": 32}
    layers = (
        Layer("c1", "conv", ("input",), Value(u4, 0.1, (4, 6, 6)),
              {**conv, "relu": True, "gemm": {"M": 4, "K": 9, "N": 36}},
              _gemm_tensors(rng, 4, 9)),
        Layer("c2", "conv", ("c1",), Value(ActFormat(16, True), 0.1 / 256, (4, 6, 6)),
              {**conv, "relu": False, "gemm": {"M": 4, "K": 36, "N": 36}},
              _gemm_tensors(rng, 4, 36)),
        Layer("a", "add", ("c2", "c1"), Value(u4, 0.1, (4, 6, 6)),
              {"relu": True, "out_shift": 8},
              {"in_mult": np.array([1, 1], np.int64), "in_shift": np.array([0, -8], np.int64)}),
        Layer("p", "avgpool", ("a",), Value(ActFormat(8), 0.1 / 16, (4, 2, 2)),
              {"kernel": [3, 3], "stride": 3, "mult": 7282, "shift": 12}),
        Layer("f", "flatten", ("p",), Value(ActFormat(8), 0.1 / 16, (16,))),
        Layer("fc", "linear", ("f",), Value(None, 1e-3, (3,)),
              {"relu": False, "weight_bits": 4, "acc_bits": 32, "gemm": {"M": 3, "K": 16, "N": 1}},
              _gemm_tensors(rng, 3, 16)),
    )
    return Artifact(input=inp, layers=layers, output="fc", meta={"model": "tiny"})


def _by_hand(art: Artifact, x: np.ndarray) -> np.ndarray:
    """The same graph written out with the reference kernels directly."""
    q = quantize_input(art, x)
    c1, c2, fc = art.layer("c1"), art.layer("c2"), art.layer("fc")
    t = c1.tensors
    h1 = requantize(conv2d(c1.rows, q, ActFormat(8), (3, 3), 1, 1), t["mult"], t["shift"],
                    ActFormat(4), bias=t["bias"], relu=True, axis=1)
    t = c2.tensors
    h2 = requantize(conv2d(c2.rows, h1, ActFormat(4), (3, 3), 1, 1), t["mult"], t["shift"],
                    ActFormat(16, True), bias=t["bias"], axis=1)
    s = requantize(h2 + (h1 << 8), 1, 8, ActFormat(4), relu=True)
    pooled = s[:, :, :6, :6].reshape(-1, 4, 2, 3, 2, 3).sum(axis=(3, 5))
    p = requantize(pooled, 7282, 12, ActFormat(8)).reshape(x.shape[0], -1)
    t = fc.tensors
    acc = gemm(fc.rows, p.T, ActFormat(8)).T + t["bias"]
    return round_shift(acc * t["mult"], t["shift"])


def test_round_trip_and_inference(tmp_path):
    art = tiny_artifact()
    digest = save_artifact(art, tmp_path / "a")
    back = load_artifact(tmp_path / "a")
    assert digest.startswith("sha256:")
    assert [x.name for x in back.layers] == [x.name for x in art.layers]
    assert back.meta == {"model": "tiny"}
    for la, lb in zip(art.layers, back.layers, strict=True):
        assert la.attrs == lb.attrs and la.out == lb.out
        for k in la.tensors:
            np.testing.assert_array_equal(la.tensors[k], lb.tensors[k])
    x = np.random.default_rng(1).random((5, 1, 6, 6))
    logits = run_artifact(back, x)
    np.testing.assert_array_equal(logits, _by_hand(art, x))
    assert logits.shape == (5, 3)
    assert back.layer("c2").gemm_dims == (4, 36, 36)
    assert [x.name for x in back.gemm_layers()] == ["c1", "c2", "fc"]
    assert set(np.unique(back.layer("c1").rows.scheme_ids)) <= {int(Scheme.FIXED),
                                                                 int(Scheme.SP2)}


def test_save_is_deterministic_and_replaces(tmp_path):
    d1 = save_artifact(tiny_artifact(), tmp_path / "a")
    bytes1 = (tmp_path / "a" / "manifest.json").read_bytes()
    d2 = save_artifact(tiny_artifact(), tmp_path / "a")
    assert d1 == d2 and (tmp_path / "a" / "manifest.json").read_bytes() == bytes1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_refuses_to_overwrite_other_files(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="out must be a new directory or an existing"):
        save_artifact(tiny_artifact(), tmp_path / "x")


def _edit_tensors(path, fn):
    t = dict(load_file(path / "tensors.safetensors"))
    fn(t)
    save_file(t, path / "tensors.safetensors")


def test_hash_mismatch_on_edited_value(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")

    def bump(t):
        t["c1.bias"] = t["c1.bias"] + 1
    _edit_tensors(tmp_path / "a", bump)
    with pytest.raises(ArtifactError, match="content_hash mismatch"):
        load_artifact(tmp_path / "a")


def test_hash_mismatch_on_edited_manifest(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    m["layers"][0]["attrs"]["relu"] = False
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="content_hash mismatch"):
        load_artifact(tmp_path / "a")


def test_missing_tensor(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")
    _edit_tensors(tmp_path / "a", lambda t: t.pop("c2.shift"))
    with pytest.raises(ArtifactError, match=r"tensor 'c2.shift' is missing"):
        load_artifact(tmp_path / "a")


def test_wrong_shape(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")

    def cut(t):
        t["fc.words"] = t["fc.words"][:, :15].copy()
    _edit_tensors(tmp_path / "a", cut)
    with pytest.raises(ArtifactError, match=r"tensor 'fc.words' must have shape \(3, 16\), "
                                            r"not \(3, 15\)"):
        load_artifact(tmp_path / "a")


def test_invalid_code_word(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")

    def bad(t):
        w = t["c1.words"].copy()
        w[0, 0] = 99  # outside 0..15 for 4-bit words
        t["c1.words"] = w
    _edit_tensors(tmp_path / "a", bad)
    with pytest.raises(ArtifactError, match="layer 'c1': invalid weights: code word"):
        load_artifact(tmp_path / "a")


@pytest.mark.parametrize("setup, match", [
    (lambda p: None, "artifact must be a directory with manifest.json"),
    (lambda p: (p.mkdir(), (p / "manifest.json").write_text("{oops")),
     "manifest.json must be valid JSON"),
    (lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "other"}')),
     "format must be 'fpim-artifact', not 'other'"),
])
def test_not_an_artifact(tmp_path, setup, match):
    setup(tmp_path / "b")
    with pytest.raises(ArtifactError, match=match):
        load_artifact(tmp_path / "b")


def test_missing_tensor_file(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")
    (tmp_path / "a" / "tensors.safetensors").unlink()
    with pytest.raises(ArtifactError, match="tensor file 'tensors.safetensors' is missing"):
        load_artifact(tmp_path / "a")


def test_graph_checks():
    art = tiny_artifact()
    bad = Layer("z", "lstm", ("fc",), Value(None, 1.0, (3,)))
    with pytest.raises(ArtifactError, match="op must be one of conv, linear, add"):
        Artifact(art.input, (*art.layers, bad), "z")
    fwd = Layer("z", "flatten", ("later",), Value(None, 1.0, (3,)))
    with pytest.raises(ArtifactError, match="input 'later' is not defined before it"):
        Artifact(art.input, (*art.layers, fwd), "z")


def _replaced(art: Artifact, name: str, **changes) -> tuple[Layer, ...]:
    import dataclasses

    return tuple(dataclasses.replace(x, **changes) if x.name == name else x
                 for x in art.layers)


@pytest.mark.parametrize("name, changes, match", [
    ("c1", {"out": Value(ActFormat(4), 0.1, (4, 5, 6))},
     r"layer 'c1': out.shape must be \(4, 6, 6\) for conv of input shape \(1, 6, 6\), "
     r"not \(4, 5, 6\)"),
    ("p", {"out": Value(ActFormat(8), 0.1 / 16, (4, 3, 3))}, r"out.shape must be \(4, 2, 2\)"),
    ("f", {"out": Value(ActFormat(8), 0.1 / 16, (15,))}, r"out.shape must be \(16,\)"),
    ("fc", {"out": Value(None, 1e-3, (4,))}, r"out.shape must be \(3,\)"),
    ("p", {"attrs": {"kernel": [0, 3], "stride": 3, "mult": 7282, "shift": 12}},
     r"attrs.kernel must be a list of two integers >= 1, not \[0, 3\]"),
    ("p", {"attrs": {"kernel": [3, 3], "stride": 0, "mult": 7282, "shift": 12}},
     r"attrs.stride must be an integer >= 1, not 0"),
    ("p", {"attrs": {"kernel": [3, 3], "stride": 3, "mult": 7282}},
     r"attrs.shift must be an int64 integer, not missing"),
    ("c1", {"out": Value(u4 := ActFormat(4), float("nan"), (4, 6, 6))},
     r"layer 'c1' out.scale must be a finite number > 0, not nan"),
    ("c1", {"out": Value(u4, float("inf"), (4, 6, 6))}, r"out.scale must be a finite number"),
    ("c1", {"out": Value(None, 0.1, (4, 6, 6))}, r"layer 'c2': input 'c1' must have an "
                                                 r"activation format, not null"),
    ("a", {"out": Value(None, 0.1, (4, 6, 6))}, r"layer 'a': out.format must be an activation "
                                                r"format for add, not null"),
    ("f", {"out": Value(ActFormat(8), 0.1, (16,))}, r"layer 'f': out format and scale must "
                                                    r"be the input's"),
    ("a", {"inputs": ("c2", "p")}, r"input 'p' is not defined before it"),
])
def test_values_attributes_and_output_shapes_are_checked(name, changes, match):
    art = tiny_artifact()
    with pytest.raises(ArtifactError, match=match):
        Artifact(art.input, _replaced(art, name, **changes), art.output)


def test_alphas_must_be_positive_and_finite():
    art = tiny_artifact()
    t = dict(art.layer("c2").tensors)
    t["alphas"] = t["alphas"].copy()
    t["alphas"][2] = float("nan")
    with pytest.raises(ArtifactError, match="layer 'c2': invalid weights: alphas must be "
                                            "positive finite scales, not nan at row 2"):
        Artifact(art.input, _replaced(art, "c2", tensors=t), art.output)


def test_manifest_with_a_byte_order_mark_loads(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")
    m = tmp_path / "a" / "manifest.json"
    m.write_bytes(b"\xef\xbb\xbf" + m.read_bytes())
    assert [x.name for x in load_artifact(tmp_path / "a").layers] == ["c1", "c2", "a", "p",
                                                                      "f", "fc"]


def test_manifest_numbers_must_have_their_json_type(tmp_path):
    save_artifact(tiny_artifact(), tmp_path / "a")
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    m["format_version"] = 1.0  # equal to 1 in Python, but not the format's integer
    (tmp_path / "a" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="format_version must be 1, not 1.0"):
        load_artifact(tmp_path / "a")
