"""SCALE-Sim CSV parsing (both formats, trailing commas, bad rows), shipped topologies,
row splits, and whole-workload results (MACs add up, per-layer records)."""

from __future__ import annotations

import pytest

from quant.errors import ConfigError, CycleLimitError, OverflowRiskError
from sim.config import load_accelerator
from sim.engine import simulate
from sim.workload import (
    WORKLOAD_DIR,
    TopologyError,
    assign_fraction,
    load_shipped,
    parse_topology,
    read_topology,
)
from sim.zoo import shipped_text

CONV = """Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, \
Num Filter, Strides,
conv1, 229, 229, 7, 7, 3, 64, 2,
dwDP, 16, 16, 3, 3, 8, 1, 1, depthwise,

fc, 1, 1, 1, 1, 512, 1000, 1,
"""


def test_conv_format():
    wl = parse_topology(CONV, gemm=False)
    c1, dw, fc = wl.ops
    assert (c1.m, c1.n, c1.k, c1.groups) == (64, 112 * 112, 147, 1)
    assert (dw.m, dw.n, dw.k, dw.groups) == (1, 14 * 14, 9, 8)
    assert (fc.m, fc.n, fc.k) == (1000, 1, 512)
    # SCALE-Sim's ceil((H - F + S) / S), e.g. H=230: 113 (it assumes the user pre-padded)
    odd = parse_topology("Layer name,a,b,c,d,e,f,g,\nx, 230, 230, 7, 7, 3, 4, 2,\n", False)
    assert odd.ops[0].n == 113 * 113


def test_gemm_format_maps_scalesim_m_to_columns():
    # issue 23: an activation x activation matmul is marked by the keyword, not by its name
    wl = parse_topology("Layer Name, M, N, K,\nqkv, 197, 2304, 768,\nqk, 197, 197, 64, matmul\n"
                        "x_MATMUL, 1, 2, 3,\n", gemm=True)
    assert (wl.ops[0].m, wl.ops[0].n, wl.ops[0].k) == (2304, 197, 768)
    assert wl.ops[1].kind == "matmul" and wl.ops[2].kind == "gemm"
    wl = assign_fraction(wl, 0.5)
    assert wl.ops[0].splits == ((1152, 1152, 1),)
    assert wl.ops[1].splits == ((197, 0, 1),)  # activation x activation: DSP core only


@pytest.mark.parametrize("text,gemm,message", [
    ("Layer Name, M, N, K,\na, 1, 2,\n", True, "x.csv line 2: a row must have 4 non-empty"),
    ("Layer Name, M, N, K,\na, 1, , 3,\n", True, "x.csv line 2: a row must have 4"),
    ("Layer Name, M, N, K,\n\na, 1, x, 3,\n", True, "x.csv line 3: N must be a positive integer"),
    ("Layer Name, M, N, K,\na, 1, 0, 3,\n", True, "line 2: N must be a positive integer, not 0"),
    ("Layer Name, M, N, K,\na, 1, 1, 3,\na, 1, 1, 3,\n", True, "line 3: layer name 'a'"),
    ("a, 1, 1, 3,\n", True, "x.csv line 1: the first line must be the header"),
    ("", True, "the file is empty"),
    ("Layer Name, M, N, K,\n", True, "no layers after the header"),
    (CONV + "bad, 3, 3, 5, 5, 1, 1, 1,\n", False, "line 6: filter 5x5 must fit the IFMAP 3x3"),
    (CONV + "x, 1, 1, 1\n", False, "line 6: a row must have 8 or 9 non-empty cells"),
])
def test_malformed_rows_name_the_line(text, gemm, message):
    with pytest.raises(TopologyError) as exc:
        parse_topology(text, gemm, source="x.csv")
    assert message in str(exc.value)


def test_shipped_files_are_current_and_have_known_macs():
    for name, text in shipped_text().items():
        assert (WORKLOAD_DIR / name).read_text() == text, "regenerate with python -m sim.zoo"
    gmac = {n: load_shipped(n).macs / 1e9 for n in
            ("resnet18", "resnet50", "mobilenet_v2", "deit_base")}
    assert gmac["resnet18"] == pytest.approx(1.814, abs=0.002)
    assert gmac["resnet50"] == pytest.approx(4.089, abs=0.002)
    assert gmac["mobilenet_v2"] == pytest.approx(0.3008, abs=0.001)
    assert gmac["deit_base"] == pytest.approx(17.56, abs=0.01)
    # DeiT-T / S per docs/vit.md (shared/design/VIT.md §2); the whole workloads have the
    # CSVs' GEMMs (vit_workload adds the vector ops)
    for name, want in (("deit_tiny", 1.254), ("deit_small", 4.60)):
        assert load_shipped(name).macs / 1e9 == pytest.approx(want, abs=0.01)
    for name in ("deit_tiny", "deit_small", "deit_base"):
        whole, csv = load_shipped(name), read_topology(WORKLOAD_DIR / f"{name}.csv")
        assert whole.macs == csv.macs and len(whole.ops) > len(whole.gemms)
    with pytest.raises(ConfigError, match="model must be one of deit_base, deit_small, "
                                          "deit_tiny, mobilenet_v2"):
        load_shipped("vgg")


@pytest.mark.parametrize("mode", ["cycle", "analytical", "plain"])
def test_results_add_up(mode):
    acc = load_accelerator("xc7z020")
    wl = assign_fraction(read_topology(WORKLOAD_DIR / "resnet18.csv"), 0.75)
    r = simulate(wl, acc, mode)
    assert r.macs == wl.macs
    assert r.total_cycles == sum(la.compute_cycles + la.stall_cycles for la in r.layers)
    e = acc.engine
    for la in r.layers:
        assert la.rows_fixed + la.rows_lut == la.m * la.groups
        assert 0 <= la.util_dsp <= 1 and 0 <= la.util_lut <= 1
        if mode != "plain":
            used = (la.util_dsp * e.dsp_rows + la.util_lut * e.lut_rows) * e.cols * la.cycles
            assert used == pytest.approx(la.macs, rel=1e-9)
    d = r.to_dict()
    for key in ("total_cycles", "stall_cycles", "latency_ms", "fps", "gops", "resources",
                "layers"):
        assert key in d
    assert d["fps"] == pytest.approx(1000 / d["latency_ms"])
    assert r.to_csv().splitlines()[0].startswith("name,op,m,n,k")


def test_analytical_equals_cycle_on_a_network_with_unlimited_bandwidth():
    acc = load_accelerator("xc7z045", ["memory.dram_bytes_per_cycle=null",
                                       "memory.dram_latency=0"])
    wl = assign_fraction(load_shipped("mobilenet_v2"), 0.6)
    a, c = simulate(wl, acc, "analytical"), simulate(wl, acc, "cycle")
    assert [x.cycles for x in a.layers] == [x.cycles for x in c.layers]
    assert c.stall_cycles == 0


def test_workload_accelerator_mismatches():
    wl = parse_topology("Layer Name, M, N, K,\na, 8, 8, 8,\n", True)
    with pytest.raises(ConfigError, match="layer 'a' has no row split"):
        simulate(wl, load_accelerator("tiny"))
    dsp_only = load_accelerator("tiny", ["engine.lut_rows=0"])
    with pytest.raises(ConfigError, match="layer 'a' has 4 sp2 rows but engine.lut_rows is 0"):
        simulate(assign_fraction(wl, 0.5), dsp_only)
    big_k = parse_topology("Layer Name, M, N, K,\nbig, 8, 8, 100000,\n", True)
    with pytest.raises(OverflowRiskError, match="layer 'big': engine.acc_bits must be at least"):
        simulate(assign_fraction(big_k, 0.5), load_accelerator("tiny"))


def test_cycle_limit_is_reported_not_hung():
    wl = assign_fraction(load_shipped("resnet18"), 0.5)
    with pytest.raises(CycleLimitError, match=r"cycle limit 100000 reached in layer 'conv1' "
                                              r"at tile \(column block \d+"):
        simulate(wl, load_accelerator("xc7z020"), "cycle", max_cycles=100_000)


def test_topology_with_a_byte_order_mark_reads_like_without(tmp_path):
    src = WORKLOAD_DIR / "resnet18.csv"
    (tmp_path / "resnet18.csv").write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    assert read_topology(tmp_path / "resnet18.csv") == read_topology(src)


def test_cycle_mode_refuses_counts_beyond_int64():
    big = (1 << 31) - 1
    wl = assign_fraction(parse_topology(f"Layer Name, M, N, K,\na, {big}, {big}, {big},\n",
                                        True), 0.5)
    accel = load_accelerator("tiny", ["engine.acc_bits=64"])
    with pytest.raises(ConfigError, match=r"^layer 'a': cycle mode counts must stay below "
                                          r"2305843009213693951 \(int64\), not up to \d+; the "
                                          r"analytical mode has no such limit$"):
        simulate(wl, accel, "cycle")
    assert simulate(wl, accel, "analytical").totals()["total_cycles"] > 1 << 63
    with pytest.raises(ConfigError, match="max_cycles applies only to mode cycle, not 'plain'"):
        simulate(wl, accel, "plain", max_cycles=10)
    with pytest.raises(ConfigError, match="max_cycles must be an integer in 1.."):
        simulate(wl, accel, "cycle", max_cycles=0)


def test_depthwise_is_a_keyword_not_a_name():
    """Issue 23: a row is depthwise by its last cell ``depthwise``, never by its name."""
    head = CONV.splitlines()[0] + "\n"
    wl = parse_topology(head + "ADPT_conv, 16, 16, 3, 3, 8, 4, 1,\n"
                        "dw, 16, 16, 3, 3, 8, 1, 1, Depthwise,\n"
                        "dw2, 17, 16, 3, 3, 8, 1, 2, 1, depthwise\n", gemm=False)
    plain, dw, dw2 = wl.ops
    assert (plain.groups, plain.m, plain.k) == (1, 4, 72)  # 'DP' in the name: a plain conv
    assert (dw.groups, dw.m, dw.k) == (8, 1, 9)
    assert (dw2.groups, dw2.n) == (8, 8 * 14)  # with the separate horizontal stride
    with pytest.raises(TopologyError, match=r"8 or 9 non-empty cells .*\[, depthwise\]"):
        parse_topology(head + "x, 16, 16, 3, 3, 8, 1, depthwise,\n", gemm=False)


def test_mac_utilisation_and_roofline_verdict():
    """MAC utilisation is MACs over the whole engine's PE-cycles (per layer and overall); a
    layer is DRAM-bound when reading its blocks at the channel's rate outlasts its compute."""
    acc = load_accelerator("xc7z020")
    wl = assign_fraction(read_topology(WORKLOAD_DIR / "resnet18.csv"), 0.75)
    r = simulate(wl, acc, "cycle")
    pes = acc.engine.rows * acc.engine.cols
    assert r.mac_util() == r.macs / (pes * r.total_cycles) == r.totals()["mac_util"]
    bw = acc.memory.dram_bytes_per_cycle
    for la, row in zip(r.layers, r.to_dict()["layers"], strict=True):
        assert row["mac_util"] == r.mac_util(la) == (la.macs / (pes * la.cycles))
        if not la.macs:
            assert row["bound"] == "vector"
            continue
        read = la.dram_bytes - -(-la.m * la.n * acc.engine.act_bits // 8) * la.groups
        # the roofline: operations per byte read against the ridge (2 PEs / bytes per cycle)
        left = 2 * la.macs / read < 2 * pes / bw
        assert row["bound"] == ("dram" if left else "compute")
        roof = max(la.macs / pes, read / bw) / la.cycles
        assert row["of_roofline"] == pytest.approx(roof, rel=1e-12) and 0 < roof <= 1
        if not left:
            assert row["of_roofline"] == pytest.approx(row["mac_util"], rel=1e-12)
    assert {row["bound"] for row in r.to_dict()["layers"]} >= {"compute", "dram"}


def test_roofline_verdict_is_the_layers_position_not_the_arrays_fit():
    """A batch-1 classifier on XC7Z045 (a GEMV: one of 49 columns busy) computes for longer
    than its weights take to read, yet it lies left of the ridge: DRAM-bound, with its
    bytes, not the array, setting its roofline; the report counts the same layers."""
    from sim.report.metrics import ceilings

    acc = load_accelerator("xc7z045")
    r = simulate(assign_fraction(read_topology(WORKLOAD_DIR / "resnet18.csv"), 0.75), acc,
                 "cycle")
    fc = next(la for la in r.layers if la.name == "fc")
    assert fc.compute_cycles > r.read_bytes(fc) / acc.memory.dram_bytes_per_cycle
    assert r.bound(fc) == "dram" and r.mac_util(fc) < 0.05 and r.of_roofline(fc) > 0.5
    ridge = ceilings(acc).ridge
    assert all((r.bound(la) == "dram") == (2 * la.macs / r.read_bytes(la) < ridge)
               for la in r.layers if la.macs)


@pytest.mark.parametrize("mode", ["cycle", "analytical", "plain"])
@pytest.mark.parametrize("accel,name", [("xc7z020", "resnet18"), ("xc7z020", "mobilenet_v2"),
                                        ("xczu9eg", "deit_tiny")])
def test_shape_cap_bounds_every_layer(accel, name, mode):
    """``shape_cap``: the layer's MACs over the PE-cycles of its output tiles at K cycles
    each. No layer runs faster (``mac_util <= shape_cap``) in any mode, depthwise layers
    (groups), attention matmuls and vector ops included; ResNet-18's 7x7 layers on
    XC7Z020's 12 columns (N = 49, 8 row steps of the 64 rows for M = 512) are capped at
    exactly 392/396: the 392 positions dealt out to 7 + 5 column groups (R3c) in 33 tiles
    of 12; the plain mode's array of one group takes 8 x 5 column blocks: 49/60."""
    acc = load_accelerator(accel)
    e = acc.engine
    r = simulate(assign_fraction(read_topology(WORKLOAD_DIR / f"{name}.csv"),
                                 e.lut_rows / e.rows), acc, mode)
    rows = r.to_dict()["layers"]
    for la, row in zip(r.layers, rows, strict=True):
        assert row["shape_cap"] == r.shape_cap(la)
        if not la.macs:
            assert la.shape_cycles == 0 and r.shape_cap(la) == 0.0
            continue
        assert la.cycles >= la.compute_cycles >= la.shape_cycles > 0
        assert 0 < r.mac_util(la) <= r.shape_cap(la) <= 1
    assert "shape_cap" in r.to_csv().splitlines()[0].split(",")
    if name == "resnet18":
        l4 = next(la for la in r.layers if la.name == "layer4.0.conv2")
        assert (l4.m, l4.n, l4.k) == (512, 49, 4608)
        tiles, cap = ((8 * 5, (49, 60)) if mode == "plain" else (33, (392, 396)))
        assert l4.shape_cycles == tiles * 4608
        assert l4.macs * cap[1] == cap[0] * r.pes * l4.shape_cycles  # exactly the cap
