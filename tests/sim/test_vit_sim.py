"""Transformers on the simulator (sim.timing R11-R16): attention matmuls on the engine, the
vector unit's pipelines, the attention pipeline; analytical == cycle without stalls,
monotonicity, bit-exact functional outputs, and one-line errors for malformed topologies."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.errors import ArtifactError, ConfigError
from quant.formats import ActFormat
from quant.ops.matmul import matmul_acc
from quant.ref import requantize as ref_requantize
from sim import functional as F
from sim.arch import Accelerator, GemmEngine, Memory, VectorUnit, get_part
from sim.engine import simulate
from sim.timing import (
    LAYERNORM_LATENCY,
    SOFTMAX_LATENCY,
    attention_cycles,
    attention_steps,
    vector_op_cycles,
    vector_op_steps,
)
from sim.workload import GemmOp, VectorOp, Workload, assign_fraction, batched
from sim.zoo import deit_workload, vit_workload


def _accel(rd: int, rl: int, cols: int, k_tile: int, lanes: int, bw: int | None = None,
           lat: int = 0) -> Accelerator:
    e = GemmEngine(rd, rl, cols, weight_bits=8, act_bits=8, act_signed=True, acc_bits=48)
    mem = Memory(k_tile=k_tile, weight_bank_kib=1024, act_bank_kib=1024, out_bank_kib=1024,
                 dram_bytes_per_cycle=bw, dram_latency=lat)
    return Accelerator("t", get_part("XCZU9EG"), e, mem, VectorUnit(lanes=lanes))


VIT = st.tuples(st.integers(1, 4), st.sampled_from([4, 8, 16]), st.integers(1, 2),
                st.integers(2, 40), st.integers(1, 4), st.integers(1, 3))
ENGINE = st.tuples(st.integers(1, 12), st.integers(0, 12), st.integers(1, 12),
                   st.integers(1, 64), st.integers(1, 40))


def _vit(v: tuple, frac: float = 0.25) -> Workload:
    heads, dh, depth, tokens, mlp, batch = v
    wl = vit_workload(heads * dh, heads, depth=depth, mlp_ratio=mlp, tokens=tokens,
                      patch_k=12, classes=5)
    return assign_fraction(batched(wl, batch), frac)


@settings(max_examples=80, deadline=None)
@given(VIT, ENGINE)
def test_analytical_equals_cycle_without_stalls_on_random_transformers(v, eng):
    rd, rl, c, kt, lanes = eng
    wl = _vit(v, 0.25 if rl else 0.0)
    acc = _accel(rd, rl, c, kt, lanes)
    cyc, ana = simulate(wl, acc, "cycle"), simulate(wl, acc, "analytical")
    assert cyc.stall_cycles == 0
    assert [(la.cycles, la.hidden_cycles) for la in cyc.layers] == \
        [(la.cycles, la.hidden_cycles) for la in ana.layers]
    # R16 hides part of every softmax, never more than all of it
    for la in cyc.layers:
        if la.op == "softmax":
            assert 0 <= la.hidden_cycles and la.cycles >= 0


@settings(max_examples=40, deadline=None)
@given(VIT, ENGINE, st.integers(1, 16), st.integers(0, 40))
def test_analytical_never_exceeds_cycle_with_a_finite_dram(v, eng, bw, lat):
    rd, rl, c, kt, lanes = eng
    wl = _vit(v, 0.25 if rl else 0.0)
    acc = _accel(rd, rl, c, kt, lanes, bw, lat)
    assert simulate(wl, acc, "analytical").total_cycles <= simulate(wl, acc, "cycle").total_cycles


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_attention_pipeline_closed_form_equals_the_steps(g, s, v, c):
    assert attention_cycles(g, s, v, c) == attention_steps(g, s, v, c)
    # never worse than running the three ops one after another, never better than either unit
    assert max(g * (s + c), g * v) <= attention_cycles(g, s, v, c) <= g * (s + v + c)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["softmax", "layernorm", "gelu", "pos_embed", "requant", "add"]),
       st.integers(1, 300), st.integers(1, 300), st.integers(1, 64))
def test_vector_closed_form_equals_the_steps(op, rows, length, lanes):
    e = rows * length
    assert vector_op_cycles(op, e, rows, length, lanes, 1) == \
        vector_op_steps(op, e, rows, length, lanes, 1)


def test_row_rules_by_hand():
    # R14: 3 passes of ceil(n / L) beats plus the row latency, per row
    assert vector_op_cycles("softmax", 197 * 197, 197, 197, 16, 4) == \
        197 * (3 * 13 + SOFTMAX_LATENCY)
    assert vector_op_cycles("layernorm", 768 * 197, 197, 768, 64, 4) == \
        197 * (3 * 12 + LAYERNORM_LATENCY)
    # without rows (a torch or ONNX workload) the cost table of R10
    assert vector_op_cycles("softmax", 100, 0, 0, 16, 4) == 25
    # R16 by hand: G = 3, s = 10, v = 25, c = 7: the softmax chain bounds the end
    assert attention_cycles(3, 10, 25, 7) == 10 + 25 + 2 * 25 + 7


@settings(max_examples=40, deadline=None)
@given(VIT, ENGINE, st.sampled_from(["lanes", "rd", "rl", "c"]), st.integers(1, 16))
def test_more_lanes_or_rows_never_slower(v, eng, which, extra):
    rd, rl, c, kt, lanes = eng
    wl = _vit(v, 0.25 if rl else 0.0)
    base = _accel(rd, rl, c, kt, lanes)
    if which == "rl" and rl == 0:
        return  # a LUT core where the split gives it no rows changes nothing to compare
    bigger = _accel(rd + extra * (which == "rd"), rl + extra * (which == "rl"),
                    c + extra * (which == "c"), kt, lanes + extra * (which == "lanes"))
    for mode in ("cycle", "analytical"):
        assert simulate(wl, bigger, mode).total_cycles <= simulate(wl, base, mode).total_cycles


def test_deit_models_time_in_both_modes_with_the_pipeline():
    acc = _accel(38, 12, 32, 256, 64)
    for name in ("deit_tiny", "deit_small", "deit_base"):
        wl = assign_fraction(deit_workload(name), 0.25)
        r = simulate(wl, acc, "cycle")
        assert r.total_cycles == simulate(wl, acc, "analytical").total_cycles  # unlimited DRAM
        soft = [la for la in r.layers if la.op == "softmax"]
        assert len(soft) == 12 and all(la.hidden_cycles > 0 for la in soft)
        assert r.vector_cycles + r.engine_cycles == r.total_cycles
        t = r.totals()
        assert t["gops_per_klut"] > 0 and t["hidden_vector_cycles"] == r.hidden_vector_cycles


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 9), st.integers(1, 12),
       st.sampled_from([(8, True), (8, False), (4, True), (16, True), (6, False)]),
       st.sampled_from([(8, True), (8, False), (4, False), (16, True)]), st.booleans(),
       st.integers(0, 2**32))
def test_streamed_matmul_equals_the_reference(g, m, k, n, fa, fb, transpose, seed):
    rng = np.random.default_rng(seed)
    af, bf = ActFormat(*fa), ActFormat(*fb)
    a = rng.integers(af.qmin, af.qmax + 1, (2, g, k, m) if transpose else (2, g, m, k))
    b = rng.integers(bf.qmin, bf.qmax + 1, (2, g, k, n))
    acc_bits = 40 if max(fa[0], fb[0]) > 8 else 24
    got = F.matmul(a, b, af, bf, transpose, acc_bits)
    want = matmul_acc(a, b, af, bf, transpose, acc_bits)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    # the vector unit's dyadic requantizer (31-bit multiplier) on the numba requantizer
    mult, shift = int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(20, 40))
    flat = want.reshape(-1, want.shape[-1])
    assert np.array_equal(F.requantize(flat, mult, shift, ActFormat(8, True)),
                          ref_requantize(flat, mult, shift, ActFormat(8, True)))


@pytest.fixture(scope="module")
def tiny_vit():
    from tests.quant.vit_graph import TinyViT, build_artifact, random_weights

    cfg = TinyViT()
    rng = np.random.default_rng(1)
    art = build_artifact(cfg, random_weights(cfg, 0), rng.random((64, 1, 8, 8)))
    return art, rng.random((256, 1, 8, 8))  # the images of tests/test_vit_graph.py


ENGINE_8 = GemmEngine(38, 12, 32, weight_bits=8, act_bits=8, act_signed=True, acc_bits=32)


def test_whole_tiny_vit_logits_are_bit_exact_on_every_test_image(tiny_vit):
    from quant.infer import quantize_input, run_artifact

    art, images = tiny_vit
    acc = Accelerator("t", get_part("XCZU9EG"), ENGINE_8)
    got = F.run_artifact(art, quantize_input(art, images), acc)
    assert np.array_equal(got[art.output], run_artifact(art, images))


def test_the_artifact_matmuls_are_checked_against_the_engine(tiny_vit):
    art, _ = tiny_vit
    no_dsp = Accelerator("t", get_part("XCZU9EG"), dataclasses.replace(ENGINE_8, dsp_rows=0))
    with pytest.raises(ArtifactError, match="layer 'b0.scores': a matmul runs on the DSP core"):
        F.check_artifact(art, no_dsp, only="b0.scores")
    narrow = Accelerator("t", get_part("XCZU9EG"), dataclasses.replace(
        ENGINE_8, weight_bits=4, act_bits=4))
    with pytest.raises(ArtifactError, match="operand a format int8 must have at most "
                                            "engine.act_bits 4 bits"):
        F.check_artifact(art, narrow, only="b0.scores")
    short = Accelerator("t", get_part("XCZU9EG"), dataclasses.replace(ENGINE_8, acc_bits=16))
    with pytest.raises(ArtifactError, match="layer 'b0.ctx': engine.acc_bits"):
        F.check_artifact(art, short, only="b0.ctx")


@pytest.mark.parametrize("ops, msg", [
    ((GemmOp("qk", "matmul", 4, 4, 2, groups=2, splits=((4, 0, 2),)),
      VectorOp("sm", "softmax", 32, rows=8, length=4, groups=2, pipelined=True)),
     "layer 'sm': a pipelined softmax must sit between two matmuls of its 2 groups \\(R16\\), "
     "not between 'qk' \\(matmul, 2 groups\\), nothing"),
    ((GemmOp("qk", "matmul", 4, 4, 2, groups=2, splits=((4, 0, 2),)),
      VectorOp("sm", "softmax", 32, rows=8, length=4, groups=2, pipelined=True),
      GemmOp("av", "matmul", 2, 4, 4, groups=1, splits=((2, 0, 1),))),
     "not between 'qk' \\(matmul, 2 groups\\), 'av' \\(matmul, 1 groups\\)"),
    ((GemmOp("qk", "matmul", 4, 4, 2, groups=1, splits=((3, 1, 1),)),),
     "layer 'qk': a matmul's rows must all be fixed point \\(R11a\\), not 1 sp2 rows"),
])
def test_malformed_transformer_topologies_give_one_line(ops, msg):
    acc = _accel(4, 4, 4, 16, 4)
    with pytest.raises(ConfigError, match=msg) as exc:
        simulate(Workload("w", ops), acc)
    assert "\n" not in str(exc.value)


def test_a_matmul_needs_the_rtl_matmul_path():
    """One limit for sim and RTL: the generated top has R11's matmul path only on an
    unpacked DSP core (sim.resources.rtl_runs_matmul), so the simulator refuses a matmul on a
    packed one in one line, and times the same GEMM when it is an ordinary weight GEMM."""
    acc = _accel(4, 4, 4, 16, 4)
    packed = dataclasses.replace(acc, engine=dataclasses.replace(acc.engine, dsp_packing=2))
    op = GemmOp("qk", "matmul", 4, 4, 2, groups=1, splits=((4, 0, 1),))
    assert simulate(Workload("w", (op,)), acc).total_cycles > 0
    with pytest.raises(ConfigError, match="layer 'qk': a matmul runs on an unpacked DSP core "
                       ".* not dsp_rows 4, dsp_packing 2, act_bits 8, acc_bits 48") as exc:
        simulate(Workload("w", (op,)), packed)
    assert "\n" not in str(exc.value)
    gemm = dataclasses.replace(op, kind="linear")
    assert simulate(Workload("w", (gemm,)), packed).total_cycles > 0


@pytest.mark.parametrize("kw, msg", [
    ({"elements": 10, "rows": 3, "length": 4},
     "rows x length must be the 10 elements \\(or both 0\\), not 3 x 4"),
    ({"elements": 12, "rows": 3, "length": 4, "groups": 2},
     "rows must be a multiple of groups 2, not 3"),
    ({"elements": 12, "pipelined": True},
     "only a softmax with rows may be pipelined between attention matmuls, not 'softmax'"),
    ({"elements": -1}, "elements must be an integer of at least 0, not -1"),
    ({"elements": 4, "groups": 0}, "groups must be an integer of at least 1, not 0"),
])
def test_malformed_vector_ops_give_one_line(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        VectorOp("v", "softmax", **kw)


def test_vit_workload_refuses_heads_that_do_not_divide():
    with pytest.raises(ConfigError, match="embed must be a multiple of heads 5, not 12"):
        vit_workload(12, 5)


def test_docs_list_every_vector_depth_as_defined():
    import re
    from pathlib import Path

    from sim.timing import VECTOR_DEPTHS

    text = (Path(__file__).resolve().parents[2] / "docs" / "timing.md").read_text()
    for row in re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)? \| ([\d, ]+) \|", text, re.M):
        names = [n for n in row[:2] if n]
        values = [int(v) for v in row[2].split(",")]
        assert [VECTOR_DEPTHS[n] for n in names] == values, names
    assert all(f"`{n}`" in text for n in VECTOR_DEPTHS)


def test_cli_simulates_a_vit_artifact_bit_exact_and_deit_from_shapes(tiny_vit, tmp_path, capsys):
    import csv
    import json

    from quant.artifact import save_artifact
    from tests.cliutil import run

    art, _ = tiny_vit
    save_artifact(art, tmp_path / "vit")
    eng = ["--set", "engine.weight_bits=8", "--set", "engine.act_bits=8", "--set",
           "engine.act_signed=true", "--set", "engine.acc_bits=32"]
    code, out, err = run(capsys, "simulate", "--artifact", str(tmp_path / "vit"), "--accel",
                         "xczu9eg", *eng, "--functional", "--json")
    data = json.loads(out)
    assert code == 0, err
    assert data["functional"]["bit_exact"] and data["functional"]["mismatched"] == []
    assert data["functional"]["layers_checked"] == len(art.layers) + 1  # and the input
    code, out, err = run(capsys, "simulate", "--model", "deit_tiny", "--accel", "xczu9eg",
                         "--csv", str(tmp_path / "l.csv"))
    assert code == 0, err
    assert "GOPS/kLUT" in out and "hidden behind the engine" in out and "hidden_cycles" in out
    rows = list(csv.DictReader((tmp_path / "l.csv").open()))
    soft = [r for r in rows if r["op"] == "softmax"]
    assert len(soft) == 12 and all(int(r["hidden_cycles"]) > 0 for r in soft)
    code, out, _ = run(capsys, "simulate", "--model", "deit_tiny", "--accel", "xczu9eg",
                       "--json")
    t = json.loads(out)
    assert [la["name"] for la in t["layers"]] == [r["name"] for r in rows]
    assert t["hidden_vector_cycles"] == sum(int(r["hidden_cycles"]) for r in rows)
    assert t["gops_per_klut"] == pytest.approx(t["gops"] / (t["resources"]["lut"] / 1e3))


def test_a_matmul_loads_its_weight_role_operand_at_act_bits():
    # R11b: QK^T's K block is an activation tensor; with 4-bit weights and 8-bit activations
    # it loads (and stalls) like a weight GEMM with 8-bit weights; R11d: written at acc_bits
    def run(kind: str, wbits: int) -> tuple[int, int, int]:
        e = GemmEngine(4, 0, 4, weight_bits=wbits, act_bits=8, act_signed=True, acc_bits=40)
        acc = Accelerator("t", get_part("XCZU9EG"), e, Memory(
            k_tile=16, weight_bank_kib=64, act_bank_kib=64, out_bank_kib=64,
            dram_bytes_per_cycle=2, dram_latency=3))
        op = GemmOp("x", kind, 10, 9, 40, groups=3, splits=((10, 0, 3),))
        la = simulate(Workload("w", (op,)), acc).layers[0]
        return la.cycles, la.stall_cycles, la.dram_bytes

    mm, as_w8, as_w4 = run("matmul", 4), run("gemm", 8), run("gemm", 4)
    write_acc, write_act = 3 * 10 * 9 * 40 // 8, 3 * 10 * 9 * 8 // 8
    assert mm[:2] == as_w8[:2] and mm[2] - write_acc == as_w8[2] - write_act
    assert mm[:2] != as_w4[:2]


# Whole DeiTs from shapes (fpim simulate --model deit_* --functional): the integer artifact
# built in-process (fpim.flows.simulate.deit_artifact), the same code path as the CLI's with a
# small DeiT shape so that the tests stay fast (SMALL); the full DeiT-T runs in bench/sim_speed.py.
SMALL = {"img_size": 32, "depth": 1, "embed_dim": 48}


def _tensors(art) -> dict:
    return {(la.name, k): v for la in art.layers for k, v in la.tensors.items()}


def _same(a, b) -> bool:
    ta, tb = _tensors(a), _tensors(b)
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


@pytest.fixture(scope="module")
def xczu9eg():
    """The ViT preset with 8 LUT rows, so that the small DeiT's 16-row heads get PoT rows
    from the engine's split (the preset's own 1 of 61 rounds to none there)."""
    from sim.config import load_accelerator

    return load_accelerator("xczu9eg", ["engine.lut_rows=8"])


@pytest.fixture(scope="module")
def small_deit(xczu9eg):
    from fpim.flows.simulate import deit_artifact

    return deit_artifact(xczu9eg, "deit_tiny", seed=1, images=2, **SMALL)


def test_a_deit_from_shapes_runs_whole_and_bit_exact(xczu9eg, small_deit, monkeypatch):
    from fpim.flows.simulate import deit_artifact, load_workload, simulate

    art = small_deit
    wl, _ = load_workload(xczu9eg, model="deit_tiny")
    s = simulate(xczu9eg, wl, art, functional=True, seed=1, images=3)
    f = s.functional
    assert f["bit_exact"] and f["logits_bit_exact"] and f["mismatched"] == []
    assert f["layers_checked"] == len(art.layers) + 1 and f["images"] == 3
    assert s.config["built_artifact"]["weights"] == "random" and s.config["images"] == 3
    assert s.result.total_cycles == simulate(xczu9eg, wl).result.total_cycles  # wl is timed
    # the engine's split: every head's q, k and v rows put the same rows on the LUT core
    qkv = art.layer("blocks.0.qkv").rows
    e = xczu9eg.engine
    lut = qkv.scheme_ids.reshape(9, -1) != 0  # 3 heads in each of q, k, v
    assert (lut.sum(axis=1) == lut[0].sum()).all() and lut[0].sum() >= 1
    assert set(np.unique(qkv.scheme_ids[qkv.scheme_ids != 0]).tolist()) == {
        int(e.lut_core_scheme)}
    # seeded: the same seed builds the same artifact, another seed other weights
    assert _same(art, deit_artifact(xczu9eg, "deit_tiny", seed=1, images=2, **SMALL))
    assert not _same(art, deit_artifact(xczu9eg, "deit_tiny", seed=2, images=2, **SMALL))
    # the comparison can fail: one changed value is named
    real = F.run_artifact

    def off_by_one(a, codes, acc):
        out = dict(real(a, codes, acc))
        out["blocks.0.attn"] = out["blocks.0.attn"] + 1
        return out

    monkeypatch.setattr(F, "run_artifact", off_by_one)
    bad = simulate(xczu9eg, wl, art, functional=True, seed=1).functional
    assert not bad["bit_exact"] and bad["mismatched"] == ["blocks.0.attn"]
    assert bad["logits_bit_exact"]


def test_a_deit_checkpoint_round_trips_through_the_loader(xczu9eg, small_deit, tmp_path):
    import torch

    from fpim.flows.simulate import deit_artifact
    from quant.torch.vit import deit_tiny

    torch.manual_seed(7)
    state = deit_tiny(**SMALL).state_dict()  # timm's key layout
    torch.save({"model": state}, tmp_path / "w.pth")  # as DeiT's released files
    loaded = deit_artifact(xczu9eg, "deit_tiny", checkpoint=str(tmp_path / "w.pth"), seed=1,
                           images=2, **SMALL)
    assert loaded.meta["weights"] == str(tmp_path / "w.pth")
    assert not _same(loaded, small_deit)  # the file's weights, not seed 1's
    from quant.torch.vit_artifact import ptq_vit_artifact

    cfg_art = ptq_vit_artifact("deit_tiny", weights=state, seed=1, images=2,
                               config=_config(xczu9eg), **SMALL)
    assert _same(loaded, cfg_art)
    from fpim.flows.simulate import check_functional

    assert check_functional(None, loaded, xczu9eg, seed=0)["bit_exact"]
    state["blocks.0.attn.qkv.weight"] = torch.zeros(144, 40)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match=f"checkpoint '{tmp_path / 'bad.pth'}' does not fit "
                                          "deit_tiny: wrong shapes: blocks.0.attn.qkv.weight "
                                          "is 144x40 but must be 144x48$"):
        deit_artifact(xczu9eg, "deit_tiny", checkpoint=str(tmp_path / "bad.pth"), **SMALL)


def _config(acc):
    from fpim.flows.simulate import effective_fraction
    from quant.torch.vit_artifact import vit_ptq_config

    e = acc.engine
    return vit_ptq_config(e.weight_bits, e.act_bits, effective_fraction(acc, None),
                          e.lut_scheme)


@pytest.mark.parametrize("args, msg", [
    (["--model", "resnet18", "--functional", "--checkpoint", "w.pth"],
     "--checkpoint applies only to --model deit_tiny|deit_small|deit_base, not --model resnet18"),
    (["--model", "deit_tiny", "--checkpoint", "w.pth"],
     "--checkpoint applies only with --functional, not without it"),
    (["--model", "deit_tiny", "--images", "2"],
     "--images applies only with --functional, not without it"),
    (["--model", "resnet18", "--functional", "--images", "2"],
     "--images applies only to --artifact or --model deit_tiny|deit_small|deit_base"),
    (["--model", "deit_tiny", "--functional", "--images", "0"],
     "images must be an integer in 1..4096, not 0"),
    (["--model", "deit_tiny", "--functional", "--checkpoint", "missing.pth"],
     "checkpoint must be an existing file, not 'missing.pth'"),
    (["--model", "deit_tiny", "--functional", "--set", "engine.act_signed=false"],
     "engine.act_signed must be true to run deit_tiny \\(a transformer's values are signed\\)"),
])
def test_cli_refuses_bad_whole_deit_options_in_one_line(args, msg, capsys):
    from tests.cliutil import run

    code, out, err = run(capsys, "simulate", "--accel", "xczu9eg", *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").search(msg, err), err


def test_cli_refuses_a_deit_checkpoint_of_the_wrong_shape(tmp_path, capsys):
    import torch

    from quant.torch.vit import deit_tiny
    from tests.cliutil import run

    state = deit_tiny().state_dict()
    state["head.weight"] = torch.zeros(10, 192)  # a 10-class fine-tune
    torch.save(state, tmp_path / "ft.pth")
    code, out, err = run(capsys, "simulate", "--model", "deit_tiny", "--accel", "xczu9eg",
                         "--functional", "--checkpoint", str(tmp_path / "ft.pth"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert ("does not fit deit_tiny: wrong shapes: head.weight is 10x192 but must be "
            "1000x192") in err


# The full-size DeiT-T through the same path (`fpim simulate --model deit_tiny --functional`,
# 80 s of CPU, most of it building the artifact) is measured by bench/sim_speed.py, which
# prints its bit-exact verdict; make test keeps the small shape above to stay within budget.


def test_cli_computes_an_artifact_on_images_random_images(tiny_vit, tmp_path, capsys):
    import json

    from quant.artifact import save_artifact
    from tests.cliutil import run

    art, _ = tiny_vit
    save_artifact(art, tmp_path / "vit")
    args = ["simulate", "--artifact", str(tmp_path / "vit"), "--accel", "xczu9eg",
            "--functional", "--seed", "4"]
    code, out, err = run(capsys, *args, "--images", "5", "--json")
    f = json.loads(out)["functional"]
    assert code == 0, err
    assert f["bit_exact"] and f["logits_bit_exact"] and f["images"] == 5
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert (f"functional: bit-exact against quant.infer on 1 random image: logits equal, "
            f"{len(art.layers) + 1}/{len(art.layers) + 1} values equal") in out
