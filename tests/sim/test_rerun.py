"""Issue 23 item 5: ``fpim simulate --json`` carries the full effective configuration, and a
run rebuilt from that configuration alone gives the same result."""

from __future__ import annotations

import itertools
import json

import pytest
import yaml

from fpim.cli import main


def _json(capsys, argv: list[str]) -> dict:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def rerun_argv(config: dict, accel_yaml: str) -> list[str]:
    """The simulate command that config describes, with its accelerator written out."""
    argv = ["simulate", "--accel", accel_yaml, "--mode", config["mode"], "--json"]
    src = config["workload"]
    for key in ("artifact", "model", "topology"):
        if key in src:
            argv += [f"--{key}", src[key]]
    if src.get("gemm"):
        argv.append("--gemm")
    if "input_shape" in src:
        argv += ["--input-shape", ",".join(map(str, src["input_shape"]))]
    elif config["batch"] != 1:
        argv += ["--batch", str(config["batch"])]
    if config["sp2_fraction"] is not None:
        argv += ["--sp2-fraction", repr(config["sp2_fraction"])]
    if config["max_cycles"] is not None:
        argv += ["--max-cycles", str(config["max_cycles"])]
    return argv


@pytest.mark.parametrize("argv", [
    ["--model", "resnet18", "--accel", "tiny", "--set", "engine.cols=8",
     "--set", "memory.dram_latency=10"],
    ["--topology", "configs/workloads/deit_base.csv", "--accel", "xc7z020", "--batch", "2",
     "--sp2-fraction", "0.3", "--mode", "analytical"],
    ["--artifact", "configs/artifacts/cnn_msq4_digits", "--accel", "xc7z020", "--set",
     "engine.lut_rows=20", "--batch", "3"],
])
def test_a_result_reruns_from_itself(capsys, tmp_path, argv):
    first = _json(capsys, ["simulate", *argv, "--json"])
    config = first["config"]
    assert config["accel"]["name"] == argv[argv.index("--accel") + 1]
    for a, value in itertools.pairwise(argv):
        if a == "--set":  # every override is in the accelerator as simulated
            (section, key), v = value.split("=")[0].split("."), value.split("=")[1]
            assert config["accel"][section][key] == yaml.safe_load(v)
    accel = tmp_path / "accel.yaml"
    accel.write_text(yaml.safe_dump(config["accel"]))
    again = _json(capsys, rerun_argv(config, str(accel)))
    assert again["config"]["accel"] == config["accel"]
    assert again["config"]["sp2_fraction"] == config["sp2_fraction"]
    strip = ("config",)
    assert {k: v for k, v in again.items() if k not in strip} == \
        {k: v for k, v in first.items() if k not in strip}


def test_the_derived_fraction_is_recorded(capsys):
    d = _json(capsys, ["simulate", "--model", "resnet18", "--accel", "xc7z020", "--mode",
                       "analytical", "--json"])
    # the preset's lut_rows / rows (49 of 64 since issue 21 re-sized the preset)
    assert d["config"]["sp2_fraction"] == 49 / 64
    assert d["config"]["accel"]["engine"]["lut_rows"] == 49
