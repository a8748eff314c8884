"""Issue 23 item 4: an artifact that does not fit an engine is refused with the quantize
options that make it fit; ``verify --layer`` checks the name, then that layer alone."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fpim.cli import main
from fpim.flows.fit import quantize_flags
from quant.artifact import load_artifact
from sim.config import load_accelerator

SHIPPED = "configs/artifacts/cnn_msq4_digits"


def test_flags_follow_the_recorded_qat_settings():
    art = load_artifact(SHIPPED)  # cnn with an avgpool, written to fit a 4-bit engine
    q = dict(art.meta["qat_config"])
    assert quantize_flags(art, load_accelerator("xc7z020")) == []
    defaults = dataclasses.replace(art, meta={**art.meta, "qat_config": {
        **q, "first_last_bits": 8, "input_bits": 8, "pool_extra_bits": 4}})
    assert quantize_flags(defaults, load_accelerator("xc7z020")) == [
        "--first-last-bits", "0", "--input-bits", "4", "--pool-extra-bits", "0"]
    assert quantize_flags(art, load_accelerator("xczu9eg")) == ["--bits", "8", "--act-bits", "8"]
    bare = dataclasses.replace(art, meta={})
    assert quantize_flags(bare, load_accelerator("xczu9eg")) == []


def test_simulate_refusal_names_the_flags(capsys):
    assert main(["simulate", "--artifact", SHIPPED, "--accel", "xczu9eg"]) == 2
    assert capsys.readouterr().err == (
        "fpim simulate: error: layer 'features.0': weight_bits must match engine.weight_bits "
        "8, not 4 (quantize with --bits 8 --act-bits 8 to fit xczu9eg)\n")


def test_verify_checks_the_named_layer_first(capsys):
    assert main(["verify", "--accel", "tiny", "--artifact", SHIPPED, "--layer", "nope",
                 "--cases", "0"]) == 2
    assert "layer must be one of features.0, features.3" in capsys.readouterr().err
    assert main(["verify", "--accel", "xczu9eg", "--artifact", SHIPPED, "--layer", "fc",
                 "--cases", "0"]) == 2
    assert "layer 'fc': weight_bits must match" in capsys.readouterr().err  # not features.0


def test_quantize_default_output_names_the_flags_that_make_it_fit(capsys, tmp_path):
    pytest.importorskip("torch")
    base = ["quantize", "--model", "cnn", "--data", "digits", "--scheme", "msq", "--bits", "4",
            "--epochs", "1", "--float-epochs", "1", "--json"]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    fit = json.loads(capsys.readouterr().out)["engine_fit"]
    assert fit["preset"] == "xc7z020" and not fit["fits"]
    assert fit["quantize_flags"] == ["--first-last-bits", "0", "--input-bits", "4",
                                     "--pool-extra-bits", "0"]
    assert main([*base, *fit["quantize_flags"], "--out", str(tmp_path / "b")]) == 0
    assert json.loads(capsys.readouterr().out)["engine_fit"]["fits"]
    assert main(["simulate", "--artifact", str(tmp_path / "b"), "--accel", "xc7z020",
                 "--mode", "analytical"]) == 0
