"""The infer GEMM hook and ``fpim pim eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpim.cli import main
from quant.artifact import save_artifact
from quant.errors import ConfigError
from quant.infer import run_artifact
from quant.pim import PimArith
from quant.ref import gemm_int
from sim.pim.deploy import run_artifact_pim
from tests.quant.test_artifact import tiny_artifact
from tests.sim.conftest import make_small_artifact


@pytest.fixture(scope="module")
def digits_artifact(tmp_path_factory):
    """A small CNN on digits, every layer 4-bit (fits 1-bit bit-serial cells), 1+1 epochs."""
    from fpim.flows.quantize import quantize_workflow
    from quant.data import load_digits
    from quant.torch.qat import QATConfig
    from quant.torch.train import TrainConfig

    out = tmp_path_factory.mktemp("pim") / "cnn"
    quantize_workflow("cnn", load_digits(), QATConfig(scheme="fixed", bits=4, act_bits=4,
                                                      first_last_bits=None, input_bits=4),
                      TrainConfig(epochs=1), TrainConfig(epochs=1, lr=0.01), out=out,
                      progress=False)
    return out


def test_hook_with_exact_gemm_changes_nothing() -> None:
    art = make_small_artifact()
    x = np.random.default_rng(0).random((5, 3, 8, 8))
    calls = []

    def exact(layer, w, cols, fmt):
        calls.append(layer.name)
        return gemm_int(w, cols, w_max_abs=int(np.abs(w).max()), x_max_abs=fmt.max_abs,
                        acc_bits=40)

    assert np.array_equal(run_artifact(art, x, gemm_fn=exact), run_artifact(art, x))
    assert calls == ["c1", "c2", "c3", "fc"]


def test_pim_with_enough_adc_bits_is_digital_and_coarse_adc_is_not() -> None:
    art = make_small_artifact()  # MSQ 4-bit: 5-bit signed integer levels
    x = np.random.default_rng(1).random((6, 3, 8, 8))
    exact = PimArith(scheme="bit_serial", group_size=16, cell_bits=2, adc_bits=8)
    assert np.array_equal(run_artifact_pim(art, x, exact), run_artifact(art, x))
    coarse = exact.with_(adc_bits=2, group_size=64)
    assert not np.array_equal(run_artifact_pim(art, x, coarse), run_artifact(art, x))


def test_pim_noise_seeded() -> None:
    art = make_small_artifact()
    x = np.random.default_rng(2).random((4, 3, 8, 8))
    a = PimArith(scheme="bit_serial", group_size=16, cell_bits=2, adc_bits=4, noise_lsb=0.8)
    y1 = run_artifact_pim(art, x, a, seed=5)
    assert np.array_equal(y1, run_artifact_pim(art, x, a, seed=5))
    assert not np.array_equal(y1, run_artifact_pim(art, x, a, seed=6))


def test_weights_wider_than_cells() -> None:
    with pytest.raises(ConfigError, match="layer 'c1' does not fit the macro: w_bits must be "
                                          "at most 4 for native cells of 3 bits"):
        run_artifact_pim(make_small_artifact(), np.zeros((1, 3, 8, 8)),
                         PimArith(scheme="native", cell_bits=3))


def test_cli_eval_text_and_json(tmp_path, capsys) -> None:
    art = tiny_artifact()
    art.meta["data"] = "digits"
    save_artifact(art, tmp_path / "a")
    base = ["pim", "eval", "--artifact", str(tmp_path / "a"), "--macro", "sram512x128_adc7",
            "--data", "digits", "--limit", "20"]
    # the tiny artifact takes 1x6x6 images; digits are 1x8x8: a clear shape error
    assert main(base) == 2
    assert "images must have shape (B, 1, 6, 6)" in capsys.readouterr().err


def test_cli_eval_on_digits(tmp_path, capsys, digits_artifact) -> None:
    base = ["pim", "eval", "--artifact", str(digits_artifact), "--macro", "sram512x128_adc7",
            "--limit", "40"]
    assert main([*base, "--json", "--noise-lsb", "0.5", "--seed", "3"]) == 0
    r1 = json.loads(capsys.readouterr().out)
    assert main([*base, "--json", "--noise-lsb", "0.5", "--seed", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["pim_accuracy"] == r1["pim_accuracy"]
    assert r1["images"] == 40 and r1["arith"]["noise_lsb"] == 0.5
    assert main(base) == 0
    assert "bit_serial, group 128" in capsys.readouterr().out
    # with an 8-bit ADC the 1-bit-cell group sums (at most 128) convert exactly
    assert main([*base, "--adc-bits", "8"]) == 0
    assert "agreement 100.0%" in capsys.readouterr().out


@pytest.mark.parametrize(("extra", "message"), [
    (["--group-size", "1024"], "fpim pim: error: group_size must be at most rows=512, not 1024"),
    (["--adc-bits", "0"], "fpim pim: error: adc_bits must be an integer in 1..16, not 0"),
    (["--scheme", "ternary"], "fpim pim: error: scheme must be one of native, differential, "
                              "bit_serial, not 'ternary'"),
    (["--noise-lsb", "-1"], "fpim pim: error: noise_lsb must be a finite number >= 0, not -1.0"),
    (["--scheme", "native", "--cell-bits", "2"],
     "fpim pim: error: layer 'c1' does not fit the macro: w_bits must be at most 3 for native "
     "cells of 2 bits (sign plus magnitude), not 5"),
])
def test_cli_eval_errors(tmp_path, capsys, extra, message) -> None:
    save_artifact(make_small_artifact(), tmp_path / "a")
    assert main(["pim", "eval", "--artifact", str(tmp_path / "a"), "--macro",
                 "sram512x128_adc7", "--data", "digits", *extra]) == 2
    err = capsys.readouterr().err
    assert err == message + "\n"
