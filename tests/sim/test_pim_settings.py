"""PIM settings travel with the artifact (issue 23, item 1): ``pim train`` records them,
``pim eval`` and ``pim simulate`` use them, name what they replace, and refuse a macro that
cannot hold them."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import yaml

from fpim.cli import main
from quant.artifact import load_artifact, save_artifact
from sim.pim import PRESET_DIR


@pytest.fixture
def trained(trained_run):
    return trained_run[0]


TRAINED = {"scheme": "native", "cell_bits": 3, "group_size": 64, "adc_bits": 5,
           "adc_step": 37.5, "pot_step": False}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A PIM-QAT artifact trained (1+1+1 epochs) for settings unlike the preset's, and the
    JSON ``pim train`` printed."""
    out = tmp_path_factory.mktemp("settings") / "pim"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["pim", "train", "--model", "cnn", "--macro", "sram512x128_adc7",
                     "--scheme", "native", "--cell-bits", "3", "--group-size", "64",
                     "--adc-bits", "5", "--adc-step", "37.5", "--exact-step",
                     "--calibrate-range", "99.5",
                     "--float-epochs", "1", "--qat-epochs", "1", "--epochs", "1",
                     "--out", str(out), "--json"])
    assert code == 0
    return out, json.loads(buf.getvalue())


def test_train_records_the_settings(trained, capsys) -> None:
    art = load_artifact(trained)
    chip = art.meta["pim"]["chip"]
    assert {k: chip[k] for k in TRAINED} == TRAINED
    ranges = art.meta["pim"]["adc_ranges"]
    assert set(ranges) == {layer.name for layer in art.gemm_layers()}
    assert all(v >= 1 for v in ranges.values())


def test_eval_and_simulate_use_them_and_say_so(trained, capsys) -> None:
    capsys.readouterr()
    art = ["--artifact", str(trained), "--macro", "sram512x128_adc7"]
    assert main(["pim", "eval", *art, "--limit", "20", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {k: r["arith"][k] for k in TRAINED} == TRAINED
    assert r["settings"]["trained_for"] == {**TRAINED, "range_fraction": 1.0}
    assert r["settings"]["adc_ranges"] == load_artifact(trained).meta["pim"]["adc_ranges"]
    assert any(n.startswith("scheme 'native' from the artifact (trained for it) replaces the "
                            "macro sram512x128_adc7's 'bit_serial'")
               for n in r["settings"]["notes"])
    assert 0 <= r["clipped_percent"] <= 100
    assert main(["pim", "simulate", *art, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert {k: s["macro"]["arith"][k] for k in TRAINED} == TRAINED
    assert main(["pim", "simulate", *art]) == 0
    cap = capsys.readouterr()
    assert "native, 3-bit cells, group 64" in cap.out and "replication" in cap.out
    assert "copies" not in cap.out
    assert "note: group_size 64 from the artifact (trained for it) replaces the macro " \
           "sram512x128_adc7's 128" in cap.err


def test_command_line_overrides_the_artifact_and_says_so(trained, capsys) -> None:
    capsys.readouterr()
    assert main(["pim", "simulate", "--artifact", str(trained), "--macro", "sram512x128_adc7",
                 "--adc-bits", "6", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["macro"]["arith"]["adc_bits"] == 6 and s["macro"]["arith"]["scheme"] == "native"
    assert "adc_bits 6 from the command line overrides the artifact's 5 (it was trained for " \
           "5)" in s["settings"]["notes"]


def test_a_macro_that_cannot_hold_them_is_refused(trained, tmp_path, capsys) -> None:
    small = yaml.safe_load((PRESET_DIR / "sram512x128_adc7.yaml").read_text())
    small["rows"] = 32
    small["arith"]["group_size"] = 32
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(small))
    capsys.readouterr()
    for cmd in ("simulate", "eval"):
        assert main(["pim", cmd, "--artifact", str(trained), "--macro",
                     str(tmp_path / "m.yaml")]) == 2
        assert capsys.readouterr().err == ("fpim pim: error: macro m cannot run the artifact's "
                                           "settings: group_size must be at most rows=32, not "
                                           "64\n")


def test_malformed_recorded_settings(trained, tmp_path, capsys) -> None:
    art = load_artifact(trained)
    art.meta["pim"]["chip"]["adc_bits"] = 99
    save_artifact(art, tmp_path / "bad")
    capsys.readouterr()
    assert main(["pim", "simulate", "--artifact", str(tmp_path / "bad"), "--macro",
                 "sram512x128_adc7"]) == 2
    assert capsys.readouterr().err == ("fpim pim: error: meta.pim.chip: adc_bits must be an "
                                       "integer in 1..16, not 99\n")


def test_shipped_artifact_on_the_shipped_preset_explains_its_accuracy(capsys) -> None:
    assert main(["pim", "eval", "--artifact", str(PRESET_DIR.parent / "artifacts" /
                                                  "cnn_msq4_digits"),
                 "--macro", "sram512x128_adc7", "--limit", "100"]) == 0
    out = capsys.readouterr().out
    assert "why: the artifact records no PIM settings" in out
    assert "fpim pim train --macro sram512x128_adc7" in out


def test_eval_reproduces_the_training_report(trained_run, capsys) -> None:
    """The artifact alone, on the preset it was not trained for, gives the accuracy pim train
    reported for it (same settings, same calibrated ranges, same test images)."""
    out, report = trained_run
    capsys.readouterr()
    assert main(["pim", "eval", "--artifact", str(out), "--macro", "sram512x128_adc7",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["pim_accuracy"] == report["pim_qat_accuracy"]
    assert r["digital_accuracy"] == report["digital_accuracy"]
