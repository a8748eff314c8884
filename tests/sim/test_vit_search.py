"""Issue 15, items 4-5: the ViT search (``sim.vit_search``, ``fpim search vit``) and the
ZCU102 preset sized by it. Small models on small parts, so that every test is fast; the
DeiT-B run on XCZU9EG is quoted with its command in docs/vit.md."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import shlex

import pytest
import yaml

from fpim.cli import main
from quant.errors import ConfigError
from quant.formats import ActFormat
from quant.msq import head_row_groups, lut_row_count
from sim.config import load_accelerator
from sim.resources import (
    VECTOR_UNITS,
    VectorConfig,
    map_memory,
    matmul_block_violation,
    multiplier_dsps,
    pot_pe_cost,
    vector_unit_cost,
    vector_unit_dsps,
    vector_unit_memory,
)
from sim.search import search_template
from sim.vit_search import (
    Timer,
    attention_shape,
    best_split,
    design_resources,
    explore_vit,
    meet_target,
    pareto,
    summarize,
    token_cols,
    vit_fits,
)
from sim.workload import (
    GemmOp,
    VectorOp,
    Workload,
    assign_fraction,
    load_shipped,
    parse_topology,
)
from sim.zoo import deit

SMALL = dict(embed=64, heads=2, depth=2, mlp=256, tokens=17)


def small_vit(vector: bool = True, **shape) -> Workload:
    """A small DeiT-shaped workload: sim.zoo's GEMMs, and with ``vector`` its LayerNorms,
    softmaxes, GELUs and adds as vector ops after the GEMMs that produce their inputs."""
    s = {**SMALL, **shape}
    gemms = parse_topology("\n".join(deit(**s)), gemm=True, source="small_vit").ops
    if not vector:
        return Workload("small_vit", gemms)
    d, t, h = s["embed"], s["tokens"], s["heads"]
    ops: list = []
    for o in gemms:
        if o.name.endswith(".qkv"):
            ops.append(VectorOp(o.name + ".norm", "layernorm", d * t))
        ops.append(o)
        if o.name.endswith("attn_qk.h0"):
            ops.append(VectorOp(o.name + ".softmax", "softmax", h * t * t))
        if o.name.endswith(".fc1"):
            ops.append(VectorOp(o.name + ".gelu", "gelu", s["mlp"] * t))
        if o.name.endswith((".proj", ".fc2")):
            ops.append(VectorOp(o.name + ".add", "add", d * t))
    return Workload("small_vit", tuple(ops))


@pytest.fixture(scope="module")
def xc7020() -> object:
    """The search of the small ViT on XC7Z020 at 4 bits (its preset as template)."""
    return explore_vit(small_vit(), search_template("XC7Z020"), 4)


def test_attention_shape_reads_tokens_and_head_dim():
    a = attention_shape(load_shipped("deit_base"))
    assert (a.tokens, a.head_dim, a.row_words, a.features) == (197, 64, 3072, 768)
    a = attention_shape(small_vit())
    assert (a.tokens, a.head_dim, a.row_words, a.features) == (17, 32, 256, 64)


def test_a_workload_without_attention_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^workload 'resnet18' must have attention"):
        attention_shape(load_shipped("resnet18"))


def test_columns_tile_the_tokens():
    assert token_cols(197) == (17, 25, 33, 40, 50, 66, 99)
    assert all(-(-197 // c) * c - 197 < c for c in token_cols(197))
    assert token_cols(17) == (9,)


@pytest.mark.parametrize("b", range(0, 65, 7))
def test_every_head_of_q_k_v_gets_the_same_lut_rows(b):
    """The search's fraction b / head_dim gives each head group of qkv (quant.msq's
    head_row_groups) exactly b LUT rows, as MSQ's grouped assignment would."""
    wl = Timer(load_shipped("deit_base"), attention_shape(load_shipped("deit_base")))
    qkv = next(o for o in wl.workload(b).gemms if o.name.endswith(".qkv"))
    groups = head_row_groups(qkv.m, 12, parts=3)
    assert qkv.rows_lut == sum(lut_row_count(b / 64, hi - lo) for lo, hi in groups) == 36 * b
    for o in wl.workload(b).gemms:
        if o.kind == "matmul":
            assert o.rows_lut == 0  # the attention matmuls stay fixed point


def test_local_fraction_search_finds_the_exhaustive_best(xc7020):
    timer = Timer(small_vit(), xc7020.attn)
    for c in xc7020.finalists[:-1]:
        got = best_split(timer, c.design)
        every = [timer.time(c.design, b, "analytical").cycles
                 for b in range(1, xc7020.attn.head_dim + 1)]
        assert got.cycles == min(every)


def test_every_design_fits_and_the_front_is_not_dominated(xc7020):
    for c in xc7020.sweep + xc7020.finalists:
        assert vit_fits(c.design, xc7020.lut_cap, xc7020.attn)
        assert c.lut <= xc7020.lut_cap * c.design.part.lut and c.dsp <= c.design.part.dsp
    front = pareto(xc7020.sweep)
    assert front and front[0].fps == max(c.fps for c in xc7020.sweep)
    for c in front:
        assert not any(o.fps > c.fps and o.lut <= c.lut and o.dsp <= c.dsp
                       for o in xc7020.sweep)


def test_summary_has_the_best_the_baseline_and_a_loadable_design(xc7020):
    r = summarize(xc7020)
    assert r["dsp_only"]["lut_per_head"] == 0 and r["dsp_only"]["lut_rows"] == 0
    assert r["best"]["mode"] == r["dsp_only"]["mode"] == "cycle"
    assert r["speedup"] == pytest.approx(r["dsp_only"]["cycles"] / r["best"]["cycles"])
    pick = r["recommended"]
    assert pick["cycles"] == min(r["best"]["cycles"], r["dsp_only"]["cycles"])
    assert r["design"]["vector"]["lanes"] == pick["lanes"]
    assert r["design"]["engine"]["acc_bits"] == pick["acc_bits"]


def test_more_lanes_cost_more_and_fit_less():
    def cfg(lanes: int) -> VectorConfig:
        return VectorConfig(lanes, 32, ActFormat(8, True), 197, 768)

    costs = [vector_unit_cost(cfg(n), "DSP48E2") for n in (8, 16, 32, 64)]
    for a, b in itertools.pairwise(costs):
        assert b.lut > a.lut and b.ff > a.ff and b.dsp > a.dsp
    # LayerNorm's 760 x 96 coefficients fill block RAM; 16 lanes' 1520 x 48 go to LUT RAM,
    # as Yosys' memory_libmap decides (sim.resources.map_memory)
    assert costs[0].bram36 > 0 and costs[1].bram36 == 0
    # DSPs: per lane, the multipliers of every component; the shift-exps' n * x0 shared
    shared = 2 * multiplier_dsps(32, 6, "DSP48E2")  # softmax's and GELU's
    per_lane = sum(vector_unit_dsps(u, cfg(1), "DSP48E2") for u in VECTOR_UNITS) - shared
    assert [c.dsp for c in costs] == [n * per_lane + shared for n in (8, 16, 32, 64)]
    # the memories: softmax's row of exps, LayerNorm's gamma and beta, lanes words wide
    assert vector_unit_memory("softmax", cfg(8)) == map_memory(32 * 8, 25, "sync")
    assert vector_unit_memory("layernorm", cfg(8)) == map_memory(95 * 8, 96, "sync")
    assert vector_unit_memory("gelu", cfg(8)) is None
    with pytest.raises(ConfigError, match=r"^vector.lanes must be an integer in 1\.\.65536"):
        cfg(0)


def test_the_weight_buffer_carries_the_attention_blocks_of_r11b():
    """No separate K/V buffer: a head's K and V stream through the weight buffer (R11b) in
    blocks of a_f rows x k_q <= k_tile steps, a_f act_bits values in the DSP rows'
    Rd x weight_bits bits of a word; the design's resources are the engine's and the vector
    unit's only."""
    acc = load_accelerator("xczu9eg")
    assert matmul_block_violation(acc, 197, 64) is None
    assert matmul_block_violation(acc, 64, 197) is None
    attn = attention_shape(load_shipped("deit_base"))
    assert set(design_resources(acc, attn)) == {"lut", "ff", "dsp", "bram36"}
    from sim.vit_search import design_blocks

    assert set(design_blocks(acc, attn)) == {"engine", "vector"}
    w4a8 = load_accelerator("xczu9eg", ["engine.dsp_rows=4", "engine.lut_rows=0",
                                        "engine.weight_bits=4", "engine.acc_bits=40"])
    # 4 rows x 8 bits need 32 bits of the DSP rows' 4 x 4: refused; 2 rows (M = 2) fit
    assert matmul_block_violation(w4a8, 197, 64) == (
        "a 197x64 matmul operand's blocks of 4 rows at act_bits 8 need 32 bits of a "
        "weight-buffer word, but its DSP rows have 16 (engine.dsp_rows 4 x weight_bits 4)")
    assert matmul_block_violation(w4a8, 2, 197) is None
    assert matmul_block_violation(w4a8, 6, 197) is not None  # 2 folds of 3 rows: 24 > 16
    assert not vit_fits(w4a8, 1.0, attn)
    assert vit_fits(dataclasses.replace(w4a8, engine=dataclasses.replace(
        w4a8.engine, weight_bits=8, acc_bits=40)), 1.0, attn)
    no_dsp = load_accelerator("xczu9eg", ["engine.dsp_rows=0", "engine.lut_rows=8"])
    assert "engine.dsp_rows is 0" in matmul_block_violation(no_dsp, 197, 64)
    with pytest.raises(ConfigError, match="matmul operand sizes must be positive"):
        matmul_block_violation(acc, 0, 64)


def test_pot_cost_caps_the_shift_like_hw():
    """The fitted PoT units (4 and 5 bits) keep their formula; from PoT-6 on the product
    width stops at the exponent cap (quant.formats.POT_MAX_EXPONENT) as hw.pe_pot's does."""
    from quant.formats import ActFormat

    a = ActFormat(8, True)
    assert pot_pe_cost(4, ActFormat(4), 24).lut == 24 + (4 + 6) * (9 / 11 * 3 + 45 / 22)
    assert pot_pe_cost(5, a, 24).lut == 24 + (8 + 14) * (9 / 11 * 4 + 45 / 22)
    assert pot_pe_cost(8, a, 32).lut == pot_pe_cost(6, a, 32).lut
    assert pot_pe_cost(8, a, 32).lut == 32 + (8 + 15) * (9 / 11 * 4 + 45 / 22)


def test_the_zcu102_preset_fits_deit_within_the_search_caps():
    """Item 4: the shipped ViT preset, its vector unit included, fits XCZU9EG within the LUT
    cap of the search (80 %), its weight buffer carrying the attention's K and V blocks
    (R11b); 8-bit signed, PoT LUT rows."""
    acc = load_accelerator("xczu9eg")
    attn = attention_shape(load_shipped("deit_base"))
    assert vit_fits(acc, 0.8, attn)
    e = acc.engine
    assert (e.weight_bits, e.act_bits, e.act_signed, e.lut_scheme) == (8, 8, True, "pot")
    assert e.lut_rows > 0 and acc.vector.lanes > 1
    tot = design_resources(acc, attn)
    assert tot["dsp"] <= acc.part.dsp and tot["bram36"] <= acc.part.bram36
    # the weight bank holds a head's K and V (act_bits each)
    assert acc.memory.weight_bank_kib * 1024 >= 2 * attn.tokens * attn.head_dim
    assert matmul_block_violation(acc, attn.tokens, attn.head_dim) is None


def test_fps_target_gives_the_smallest_design_that_meets_it(xc7020):
    best = max(xc7020.finalists, key=lambda c: c.fps)
    t, tried = meet_target(xc7020, best.fps / 2)
    assert t is not None and tried >= 1 and t.mode == "cycle"
    assert t.fps >= best.fps / 2 and t.size(xc7020.lut_cap) < best.size(xc7020.lut_cap)
    smaller = dataclasses.replace(t.design.engine, dsp_rows=t.dsp_rows - 1)
    if smaller.dsp_rows >= 1 and t.lut_rows == 0:
        acc = dataclasses.replace(t.design, engine=smaller)
        assert Timer(small_vit(), xc7020.attn).time(acc, 0, "cycle").fps < best.fps / 2
    none, _ = meet_target(xc7020, 10 * max(c.fps for c in xc7020.sweep))
    assert none is None
    with pytest.raises(ConfigError, match="fps_target"):
        meet_target(xc7020, 0)


# --------------------------------------------------------------------------------------
# fpim search vit
# --------------------------------------------------------------------------------------

def _topology(tmp_path) -> str:
    p = tmp_path / "vit.csv"
    p.write_text("\n".join(deit(**SMALL)) + "\n")
    return str(p)


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_cli_json_save_and_reproduce(capsys, tmp_path):
    out = tmp_path / "vit.yaml"
    r = _json(capsys, "search", "vit", "--part", "XC7Z020", "--topology", _topology(tmp_path),
              "--bits", "4", "--fps-target", "1", "--save", str(out), "--json")
    for key in ("best", "dsp_only", "speedup", "pareto", "recommended", "design", "target",
                "assumptions", "blocks", "reference"):
        assert key in r
    assert r["target"]["met"] and r["recommended"] == r["target"]["design"]
    saved = yaml.safe_load(out.read_text())
    assert saved["engine"]["dsp_rows"] == r["recommended"]["dsp_rows"]
    argv = shlex.split(r["simulate_command"])
    assert argv[:2] == ["fpim", "simulate"] and "--mode" in argv
    sim = _json(capsys, *argv[1:], "--json")
    assert sim["total_cycles"] == r["recommended"]["cycles"]
    assert sim["fps"] == pytest.approx(r["recommended"]["fps"])


def test_cli_text_and_csv_name_the_json_keys(capsys, tmp_path):
    csv_path = tmp_path / "front.csv"
    args = ["search", "vit", "--part", "XC7Z020", "--topology", _topology(tmp_path),
            "--bits", "4"]
    assert main([*args, "--no-progress", "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert "best " in out and "baseline DSP only" in out and "Pareto front" in out
    assert "Auto-ViT-Acc" in out
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    header = next(ln for ln in out.splitlines() if ln.split()[:1] == ["fps"]).split()
    assert list(rows[0]) == header
    front = _json(capsys, *args, "--json")["pareto"]
    assert len(rows) == len(front)
    assert all(set(header) <= set(c) for c in front)
    assert [int(r["dsp_rows"]) for r in rows] == [c["dsp_rows"] for c in front]


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["search", "vit", "--help"])
    assert e.value.code == 0
    assert "fpim search vit --part XCZU9EG --model deit_base --bits 8" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (("--bits", "8", "--fps-target", "0"), "fps-target must be a positive number"),
    (("--bits", "8", "--fps-target", "x"), "fps-target must be a positive number"),
    (("--bits", "9"), "bits must be an integer in 3..8"),
    (("--bits", "8", "--packing", "4"), "packing must be one that XC7Z020"),
    (("--bits", "4", "--packing", "2"), "allows at 4 bits for vit, whose attention "
     "matmuls need an unpacked DSP core (1), not 2"),
    (("--bits", "8", "--lut-cap", "2"), "lut_cap must be"),
    (("--bits", "8", "--model", "resnet18"), "must have attention"),
    (("--bits", "8", "--artifact", "nowhere"),
     "--artifact applies only to search msq, simulate and report, not to search vit"),
])
def test_cli_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    args = ["search", "vit", "--part", "XC7Z020", *argv]
    if "--model" not in argv and "--artifact" not in argv:
        args += ["--topology", _topology(tmp_path)]
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_matmul_rows_never_take_the_lut_scheme():
    wl = small_vit()
    timer = Timer(wl, attention_shape(wl))
    for b in (0, 5, 32):
        for o in timer.workload(b).gemms:
            assert isinstance(o, GemmOp)
            if o.kind == "matmul":
                assert o.rows_lut == 0


def test_accumulators_cover_the_attention_matmuls():
    """A long attention (K = 4096 tokens) needs more bits than short weight GEMMs: both
    widths cover it (unsigned bits-bit operands, the softmax output)."""
    from quant.ref import required_acc_bits
    from sim.vit_search import vit_acc_bits

    wl = Workload("long", (GemmOp("w", "gemm", 8, 4096, 8),
                           GemmOp("qk", "matmul", 4096, 4096, 8),
                           GemmOp("av", "matmul", 8, 4096, 4096)))
    need = required_acc_bits(4096, 15, 15)
    assert vit_acc_bits(wl, 4, "pot", True) == (need, need)
    assert vit_acc_bits(small_vit(), 8, "pot", True)[1] < vit_acc_bits(small_vit(), 8, "pot",
                                                                        True)[0]


def test_simulate_and_the_search_count_the_same_resources():
    """One estimate (issue 23): `fpim simulate` of a transformer counts the vector unit as
    the ViT search does, and a CNN's run counts the engine alone."""
    from sim.engine import simulate
    from sim.resources import estimate_resources

    acc = load_accelerator("xczu9eg")
    wl = assign_fraction(load_shipped("deit_base"), 1 / 64)
    r = simulate(wl, acc, "analytical")
    want = design_resources(acc, attention_shape(wl))
    assert {k: r.resources[k] for k in want} == want
    assert r.dsp_used == want["dsp"] and r.resources["vector_unit"]["dsp"] > 0
    cnn = simulate(assign_fraction(load_shipped("resnet18"), 0.25), acc, "analytical")
    assert "vector_unit" not in cnn.resources
    assert cnn.resources["lut"] == estimate_resources(acc).lut
