"""Issue 23: a search's answer runs as is. ``fpim search msq --save`` writes the recommended
design as a preset; ``fpim simulate`` on it reproduces the search's cycles and resources
exactly; every assumption is reported; any part, preset or workload simulate takes."""

from __future__ import annotations

import dataclasses
import json
import shlex

import pytest
import yaml

from fpim.cli import main

SEARCH = ("search", "msq", "--bits", "4", "--packing", "1")
#: A shipped 4-bit MSQ artifact (half of each layer's rows SP2).
ARTIFACT = "configs/artifacts/cnn_msq4_digits"


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def _simulate(capsys, command: str) -> dict:
    argv = shlex.split(command)
    assert argv[:2] == ["fpim", "simulate"]
    return _json(capsys, *argv[1:], "--json")


def _check_round_trip(capsys, r: dict) -> None:
    pick = r["best"] if r["recommended"] == "mixed" else r["dsp_only"]
    sim = _simulate(capsys, r["simulate_command"])
    assert sim["total_cycles"] == pick["cycles"]
    assert sim["compute_cycles"] == pick["compute_cycles"]
    res = sim["resources"]
    assert (res["lut"], res["dsp"], res["bram36"]) == (pick["lut"], pick["dsp"], pick["bram36"])
    assert res["lut"] <= r["lut_cap"] * res["budget"]["lut"]


def test_saved_design_reproduces_the_search(capsys, tmp_path):
    out = tmp_path / "best.yaml"
    r = _json(capsys, *SEARCH, "--part", "XC7Z020", "--model", "resnet18", "--save", str(out),
              "--json")
    assert r["recommended"] == "mixed" and r["mixing_pays"]
    assert yaml.safe_load(out.read_text())["engine"]["lut_rows"] == r["best"]["lut_rows"]
    assert f"--accel {out}" in r["simulate_command"]
    _check_round_trip(capsys, r)


def test_accumulator_comes_from_the_preset(capsys, tmp_path):
    out = tmp_path / "a32.yaml"
    r = _json(capsys, *SEARCH, "--part", "configs/xc7z020.yaml", "--set", "engine.acc_bits=32",
              "--topology", "configs/workloads/mobilenet_v2.csv", "--save", str(out),
              "--ideal-memory", "--json")
    a = r["assumptions"]
    assert a["acc_bits"] == 32 and a["acc_bits_needed"] < 32 and a["template"] == "xc7z020"
    assert r["design"]["engine"]["acc_bits"] == 32
    assert r["design"]["memory"]["dram_bytes_per_cycle"] is None
    _check_round_trip(capsys, r)
    default = _json(capsys, *SEARCH, "--part", "XC7Z020", "--topology",
                    "configs/workloads/mobilenet_v2.csv", "--ideal-memory", "--json")
    assert default["assumptions"]["acc_bits"] == 24  # the xc7z020 preset's, not 21


def test_a_custom_part_and_a_torch_model(capsys, tmp_path):
    pytest.importorskip("torch")
    part = tmp_path / "my_part.yaml"
    # big enough for the 16-lane vector unit an attention model's designs carry (about 98,000
    # LUT, 85,000 FF, 452 DSP as calibrated against Yosys: sim.resources.with_vector_unit)
    # and an engine beside it
    part.write_text("name: MYPART\nlut: 240000\nff: 480000\ndsp: 700\ndsp_type: DSP48E1\n"
                    "bram36: 100\n")
    out = tmp_path / "d.yaml"
    r = _json(capsys, *SEARCH, "--part", str(part), "--model",
              "tests.sim.test_torch_workload:Attn", "--input-shape", "2,3,8,8",
              "--save", str(out), "--json")
    assert r["part"] == "MYPART" and r["assumptions"]["template"] == "mypart_defaults"
    assert r["assumptions"]["batch"] == 2
    assert "--input-shape 2,3,8,8" in r["simulate_command"]
    _check_round_trip(capsys, r)


def test_an_artifact_search_varies_only_the_engine(capsys, tmp_path):
    """Issue 23: searches take any workload simulate takes. An artifact's per-layer schemes
    are timed as they are; the saved design runs the artifact with the search's figures."""
    out = tmp_path / "cnn.yaml"
    r = _json(capsys, "search", "msq", "--part", "XC7Z020", "--bits", "4", "--artifact",
              ARTIFACT, "--save", str(out), "--json")
    assert r["own_schemes"] and r["recommended"] == "mixed"
    assert r["best"]["sp2_fraction"] == 0.5  # the artifact's, not a swept one
    assert r["assumptions"]["sp2_fractions"] == [0.5]
    assert "artifact's own per-layer rows" in r["assumptions"]["schemes"]
    assert "--sp2-fraction" not in r["simulate_command"]
    assert f"--artifact {ARTIFACT}" in r["simulate_command"]
    assert r["design"]["engine"]["lut_rows"] > 0
    _check_round_trip(capsys, r)


def test_an_all_fixed_workload_gets_dsp_only_engines():
    """Own schemes without LUT-scheme rows: no LUT core (it would idle), the DSP-only engine
    timed on the workload as it is and recommended."""
    from quant.artifact import load_artifact
    from sim.ops import from_artifact
    from sim.search import explore_msq, summarize, template_for
    from sim.workload import assign_fraction

    wl = assign_fraction(from_artifact(load_artifact(ARTIFACT)), 0.0, force=True)
    x = explore_msq(wl, template_for("XC7Z020"), 4, packings=(1,), own_schemes=True)
    assert x.mixed == () and x.dsp_only
    r = summarize(x)
    assert r["recommended"] == "dsp_only" and not r["mixing_pays"]
    assert r["design"]["engine"]["lut_rows"] == 0


def test_an_artifact_with_sp2_rows_is_never_given_a_dsp_only_engine():
    """Even when the all-fixed baseline is faster, the recommended design must run the
    artifact: the mixed engine, with the verdict saying mixing does not pay."""
    from quant.artifact import load_artifact
    from sim.ops import from_artifact
    from sim.search import explore_msq, summarize, template_for

    x = explore_msq(from_artifact(load_artifact(ARTIFACT)), template_for("XC7Z020"), 4,
                    packings=(1,), own_schemes=True)
    slow = tuple(dataclasses.replace(c, cycles=10 ** 12) for c in x.mixed)
    r = summarize(dataclasses.replace(x, mixed=slow))
    assert not r["mixing_pays"] and r["recommended"] == "mixed"
    assert r["design"]["engine"]["lut_rows"] > 0


def test_mixing_that_does_not_pay_is_said_plainly(capsys):
    from sim.search import explore_msq, summarize, template_for
    from sim.workload import load_shipped

    x = explore_msq(load_shipped("resnet18"), template_for("XC7Z020"), 4, packings=(1,))
    slow = tuple(dataclasses.replace(c, cycles=10 ** 12) for c in x.mixed)
    r = summarize(dataclasses.replace(x, mixed=slow))
    assert not r["mixing_pays"] and r["recommended"] == "dsp_only"
    assert r["design"]["engine"]["lut_rows"] == 0
    assert r["design"]["engine"]["dsp_rows"] == r["dsp_only"]["dsp_rows"]
    assert summarize(x)["mixing_pays"] and summarize(x)["recommended"] == "mixed"


def test_text_names_assumptions_and_verdict(capsys, tmp_path):
    assert main([*SEARCH, "--part", "XC7Z020", "--csv", str(tmp_path / "e.csv")]) == 0
    out = capsys.readouterr().out
    assert "accumulator 24 bits from the template (the workload needs 21)" in out
    assert "verdict: mixing pays" in out and "within 80% of the LUTs" in out
    rows = (tmp_path / "e.csv").read_text().splitlines()
    assert rows[0].startswith("engine,kind,dsp_rows,lut_rows,cols,dsp_packing,sp2_fraction")
    assert len(rows) > 10


@pytest.mark.parametrize("argv,words", [
    (("--part", "XC7Z020", "--artifact", ARTIFACT, "--bits", "8"),
     "bits must be the artifact's weight bits 4 (--artifact fixes them), not 8"),
    (("--part", "XC7Z020", "--set", "engine.cols=8"),
     "--set applies only to a preset YAML --part"),
    (("--part", "configs/xc7z020.yaml", "--model", "deit_base", "--bits", "8"),
     "engine.acc_bits of xc7z020 must be at least 36 for deit_base at 8 bits (a preset "
     "YAML --part with --set engine.acc_bits=36), not 24"),
    (("--part", "XC7Z020", "--model", "resnet18", "--gemm"), "--gemm applies only to"),
    (("--part", "XC7Z020", "--model", "m:f", "--input-shape", "1,3,8,8", "--batch", "2"),
     "--batch applies only to"),
    (("--part", "nope.yaml"), "part file"),
])
def test_refusals_are_one_line(capsys, argv, words):
    assert main(["search", "msq", "--bits", "4", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and words in err, err
