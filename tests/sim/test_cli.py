"""`fpim simulate` and `fpim search msq` end to end (in-process), JSON keys and errors."""

from __future__ import annotations

import json

import pytest

from fpim.cli import main


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_and_csv(capsys, tmp_path):
    d = _json(capsys, ["simulate", "--model", "resnet18", "--accel", "xc7z020", "--json",
                       "--csv", str(tmp_path / "l.csv")])
    for key in ("total_cycles", "stall_cycles", "latency_ms", "fps", "gops", "resources",
                "layers"):
        assert key in d
    assert {"name", "cycles", "stall_cycles"} <= set(d["layers"][0])
    assert d["resources"]["per_pe_costs"]["lut_per_lut_pe"] > 0
    assert (tmp_path / "l.csv").read_text().count("\n") == len(d["layers"]) + 1


def test_simulate_modes_and_overrides(capsys):
    args = ["simulate", "--topology", "configs/workloads/deit_base.csv", "--accel", "tiny",
            "--set", "memory.dram_bytes_per_cycle=null", "--set", "memory.dram_latency=0",
            "--json"]
    a = _json(capsys, [*args, "--mode", "analytical"])
    c = _json(capsys, [*args, "--mode", "cycle"])
    assert a["total_cycles"] == c["total_cycles"] and c["stall_cycles"] == 0
    wide = _json(capsys, [*args, "--mode", "cycle", "--set", "engine.cols=8"])
    assert wide["total_cycles"] < c["total_cycles"]


def test_simulate_functional_text(capsys):
    assert main(["simulate", "--model", "mobilenet_v2", "--accel", "tiny", "--functional",
                 "--set", "engine.cols=8"]) == 0
    out = capsys.readouterr().out
    assert "functional: bit-exact against quant.ref" in out
    assert "FPS" in out and "BRAM36" in out


def test_simulate_errors_are_one_line(capsys, tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("Layer Name, M, N, K,\nx, 4, , 4,\n")
    assert main(["simulate", "--topology", str(bad), "--accel", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("fpim simulate: error: t.csv line 2: a row must have 4 non-empty cells "
                   "(name, M, N, K[, matmul]), not 'x, 4, , 4,'")
    assert main(["simulate", "--model", "resnet18", "--accel", "tiny",
                 "--set", "engine.cols=0"]) == 2
    assert "engine.cols must be an integer in 1..4096, not 0" in capsys.readouterr().err
    assert main(["simulate", "--model", "resnet18", "--accel", "xc7z020",
                 "--max-cycles", "1000"]) == 2
    assert "cycle limit 1000 reached in layer 'conv1'" in capsys.readouterr().err


def test_search_msq(capsys):
    d = _json(capsys, ["search", "msq", "--part", "XC7Z020", "--bits", "4", "--json"])
    assert d["speedup"] > 1.0 and d["best"]["lut_rows"] > 0
    assert d["best"]["lut"] <= 0.8 * 53_200 and d["best"]["dsp"] <= 220
    assert d["dsp_only"]["lut_rows"] == 0
    # packings 1 and 2 tried on DSP48E1 (4 needs DSP48E2); the baseline is the best of them
    assert d["packings"] == [1, 2] and set(d["by_packing"]) == {"1", "2"}
    assert d["dsp_only"]["cycles"] == min(v["dsp_only"]["cycles"]
                                          for v in d["by_packing"].values())
    assert d["speedup"] == min(v["speedup"] for v in d["by_packing"].values())
    d1 = _json(capsys, ["search", "msq", "--part", "XC7Z020", "--bits", "4", "--packing", "1",
                        "--json"])
    assert d1["packings"] == [1] and d1["dsp_only"]["dsp_packing"] == 1
    assert d1["best"]["dsp_packing"] == 1 and d1["dsp_only"] == d["by_packing"]["1"]["dsp_only"]
    with pytest.raises(SystemExit):
        main(["search", "msq", "--part", "XC7Z020", "--packing", "3"])
    with pytest.raises(SystemExit):
        main(["search", "msq", "--part", "XC7Z020"])
    assert main(["search", "msq", "--part", "XC9", "--bits", "4"]) == 2


def test_simulate_artifact_functional(capsys, tmp_path, small_artifact):
    from quant.artifact import save_artifact

    save_artifact(small_artifact, tmp_path / "a")
    d = _json(capsys, ["simulate", "--artifact", str(tmp_path / "a"), "--accel", "tiny",
                       "--functional", "--json"])
    assert d["functional"]["bit_exact"] and d["functional"]["layers_checked"] == 8
    names = [la["name"] for la in d["layers"]]
    assert names == ["c1", "c2", "c3", "a", "p", "fc"]
    assert d["layers"][0]["rows_fixed"] + d["layers"][0]["rows_lut"] == 8
    assert main(["simulate", "--artifact", str(tmp_path / "a"), "--accel", "xczu9eg"]) == 2
    assert "weight_bits must match engine.weight_bits 8, not 4" in capsys.readouterr().err


def test_search_msq_api_rejects_bad_packing():
    from quant.errors import ConfigError
    from sim.search import search_msq
    from sim.workload import load_shipped

    with pytest.raises(ConfigError, match=r"^packing must be one of 1, 2, 4, not 3$"):
        search_msq(load_shipped("resnet18"), "XC7Z020", 4, packings=(1, 3))
    with pytest.raises(ConfigError, match=r"^packing must be one that XC7Z020 \(DSP48E1\) "
                                          r"allows at 4 bits .*, not 4$"):
        search_msq(load_shipped("resnet18"), "XC7Z020", 4, packings=(4,))


def test_search_msq_refuses_any_packing_the_part_does_not_allow():
    from quant.errors import ConfigError
    from sim.search import search_msq
    from sim.workload import load_shipped

    with pytest.raises(ConfigError, match=r"^packing must be one that XC7Z020 \(DSP48E1\) "
                                          r"allows at 4 bits \(1, 2\), not 4$"):
        search_msq(load_shipped("resnet18"), "XC7Z020", 4, packings=(1, 4))


def test_simulate_refuses_ignored_options_and_bad_outputs(capsys, tmp_path):
    # issue 23: --batch now applies to shipped models and topologies too; a torch model
    # factory takes its batch from --input-shape
    assert main(["simulate", "--model", "tests.sim.test_torch_workload:Attn", "--input-shape",
                 "1,3,8,8", "--accel", "tiny", "--batch", "2"]) == 2
    assert capsys.readouterr().err == (
        "fpim simulate: error: --batch applies only to --artifact, a shipped --model and "
        "--topology (a factory or ONNX model takes its batch from its input shape), not --model "
        "tests.sim.test_torch_workload:Attn\n")
    assert main(["simulate", "--model", "resnet18", "--accel", "tiny", "--csv",
                 str(tmp_path)]) == 2
    assert "csv must be a file to write, not the directory" in capsys.readouterr().err
