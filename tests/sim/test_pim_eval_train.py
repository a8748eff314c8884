"""``fpim pim train`` end to end on a tiny budget, and its argument errors."""

from __future__ import annotations

import json

import pytest

from fpim.cli import main
from quant.artifact import load_artifact
from tests.cliutil import run


def test_cli_train_json_and_artifact(tmp_path, capsys) -> None:
    out = tmp_path / "pim"
    assert main(["pim", "train", "--model", "cnn", "--macro", "sram512x128_adc7",
                 "--scheme", "native", "--cell-bits", "3", "--group-size", "64", "--adc-bits", "5",
                 "--noise-lsb", "0.5", "--train-adc-bits", "4",
                 "--bn-calibrate", "--float-epochs", "1", "--qat-epochs", "1", "--epochs", "1",
                 "--out", str(out), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["chip"]["adc_bits"] == 5 and r["train_arith"]["adc_bits"] == 4
    assert r["train_arith"]["noise_lsb"] == 0.0 and r["chip"]["noise_lsb"] == 0.5
    for key in ("digital_accuracy", "pim_without_pim_qat", "pim_qat_accuracy"):
        assert 0.0 <= r[key] <= 100.0
    assert r["lr"] == {"qat": 0.01, "pim_qat": 0.003}  # the documented defaults
    art = load_artifact(out)
    assert art.meta["pim"]["bn_calibrated"] is True
    assert art.meta["pim"]["lr"] == {"qat": 0.01, "pim_qat": 0.003}
    assert all(layer.attrs["weight_bits"] == 4 for layer in art.gemm_layers())


@pytest.mark.parametrize(("extra", "message"), [
    (["--train-adc-bits", "0"], "fpim pim: error: adc_bits must be an integer in 1..16, not 0"),
    (["--epochs", "-1"], "fpim pim: error: epochs must be an integer in 0..10000, not -1"),
    (["--backward-scale", "0"],
     "fpim pim: error: backward_scale must be a positive number, not 0.0"),
    (["--train-noise-lsb", "-0.5"],
     "fpim pim: error: noise_lsb must be a finite number >= 0, not -0.5"),
    (["--pim-lr", "0"], "fpim pim: error: pim-lr must be a positive number, not 0.0"),
    (["--pim-lr", "-0.003"], "fpim pim: error: pim-lr must be a positive number, not -0.003"),
    (["--pim-lr", "nan"], "fpim pim: error: pim-lr must be a positive number, not nan"),
    (["--lr", "0"], "fpim pim: error: lr must be a positive number, not 0.0"),
])
def test_cli_train_errors(capsys, extra, message) -> None:
    assert main(["pim", "train", "--macro", "sram512x128_adc7", *extra]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_cli_train_pim_lr_reaches_pim_qat(monkeypatch, capsys) -> None:
    """--pim-lr is the learning rate of the PIM-QAT training loop, --lr that of digital QAT."""
    import fpim.flows.pim
    import fpim.flows.quantize

    seen: list[tuple[str, float]] = []

    def spy(real):
        def train(model, x, y, cfg, *, desc="train", **kw):
            seen.append((desc.split()[0], cfg.lr))
            return real(model, x, y, cfg, desc=desc, **kw)
        return train

    monkeypatch.setattr(fpim.flows.quantize, "train", spy(fpim.flows.quantize.train))
    monkeypatch.setattr(fpim.flows.pim, "train", spy(fpim.flows.pim.train))
    code, out, err = run(capsys, "pim", "train", "--model", "cnn", "--macro", "sram512x128_adc7",
                         "--scheme", "native", "--cell-bits", "3", "--adc-bits", "5",
                         "--float-epochs", "1", "--qat-epochs", "1", "--epochs", "1",
                         "--lr", "0.02", "--pim-lr", "0.0007")
    assert code == 0, err
    assert seen == [("float", 0.1), ("qat", 0.02), ("pim-qat", 0.0007)]
    assert "lr 0.0007 (digital QAT lr 0.02)" in out


def test_cli_train_method_pieces(tmp_path, capsys) -> None:
    """--psum-scales column and --train-bn (with the BN calibration) train, fold and export;
    the artifact records them."""
    out = tmp_path / "pim"
    code, text, err = run(capsys, "pim", "train", "--model", "cnn", "--macro",
                          "sram512x128_adc7", "--scheme", "native", "--cell-bits", "3",
                          "--adc-bits", "5", "--exact-step", "--calibrate-range", "99.9",
                          "--psum-scales", "column", "--train-bn", "--bn-calibrate",
                          "--float-epochs", "1", "--qat-epochs", "1", "--epochs", "1",
                          "--out", str(out))
    assert code == 0, err
    assert "live BN, column partial-sum scales, BN-calibrated" in text
    pim = load_artifact(out).meta["pim"]
    assert pim["psum_scales"] == "column" and pim["train_bn"] is True


def test_cli_train_psum_scales_error(capsys) -> None:
    assert main(["pim", "train", "--macro", "sram512x128_adc7", "--psum-scales", "group"]) == 2
    assert capsys.readouterr().err == ("fpim pim: error: psum_scales must be one of off, "
                                       "column, not 'group'\n")
