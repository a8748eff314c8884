"""``fpim verify``: a small run end to end, JSON shape, and one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest

from hw.tb.engine import Outcome
from tests.cliutil import run


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_verify_small_run_json(capsys) -> None:
    code, out, _ = run(capsys, "verify", "--accel", "tiny", "--cases", "3", "--seed", "5",
                       "--no-artifact", "--json")
    assert code == 0
    d = json.loads(out)
    assert (d["passed"], d["failed"], d["first_failure"]) == (3, 0, None)
    assert [c["name"] for c in d["cases"]] == ["random-0", "random-1", "random-2"]
    assert all(c["cycles_rtl"] == c["cycles_sim"] > 0 for c in d["cases"])
    assert "--seed 5" in d["reproduce"]


def test_verify_errors(capsys, monkeypatch) -> None:
    code, _, err = run(capsys, "verify", "--accel", "tiny", "--cases", "-1")
    assert code == 2 and err.strip().endswith("cases must be an integer in 0..100000, not -1")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "verify", "--accel", "nosuch")
    assert code == 2 and "accelerator preset must be one of" in err
    monkeypatch.setattr("hw.tb.verilator.shutil.which", lambda name: None)
    code, _, err = run(capsys, "verify", "--accel", "tiny", "--cases", "1", "--no-artifact")
    assert code == 2 and "verilator must be installed" in err and "apt-get install verilator" in err


def test_outcome_failure_lines() -> None:
    base = dict(name="c", description="d", cycles_sim=10, cycles_rtl=10, outputs_equal=True,
                first_mismatch=None, dram_bytes_equal=True, cycles_must_equal=True)
    assert Outcome(**base).failure() is None
    bad = Outcome(**base | {"outputs_equal": False, "first_mismatch": (1, 2, 3, 4)})
    assert bad.failure() == "c: output[1, 2] = 3, reference 4"
    slow = Outcome(**base | {"cycles_rtl": 12})
    assert slow.failure() == "c: RTL took 12 cycles, the simulator predicts 10 (+2)"
    assert Outcome(**base | {"cycles_rtl": 12, "cycles_must_equal": False}).passed


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_verify_all_layers_json(capsys) -> None:
    """Every layer of the shipped artifact on one DUT: one record per layer, GEMM layers
    with equal cycles, the logits identical."""
    art = "configs/artifacts/cnn_msq4_digits"
    code, out, _ = run(capsys, "verify", "--accel", "tiny", "--cases", "2", "--artifact", art,
                       "--all-layers", "--json")
    d = json.loads(out)
    assert code == 0 and d["failed"] == 0 and d["logits_equal"] is True
    assert [r["name"] for r in d["layers"]] == [
        "features.0", "features.3", "features.6", "features.7", "features.10", "features.11",
        "fc"]
    gemms = [r for r in d["layers"] if r["runs_on"] == "rtl"]
    assert len(gemms) == 4 and all(r["cycles_rtl"] == r["cycles_sim"] for r in gemms)
    assert "--all-layers" in d["reproduce"] and "--harness fast" in d["reproduce"]


@pytest.mark.parametrize(("argv", "message"), [
    (("--out-pattern", "heavy"), "--out-pattern applies only with --harness stream or both, "
                                 "not with --harness fast"),
    (("--all-layers",), "--all-layers applies only with --artifact DIR, not without it"),
    (("--artifact", "configs/artifacts/cnn_msq4_digits", "--all-layers", "--layer", "fc"),
     "--layer applies only without --all-layers, not with it"),
])
def test_verify_refuses_options_that_do_not_apply(capsys, argv, message) -> None:
    code, _, err = run(capsys, "verify", "--accel", "tiny", "--cases", "1", *argv)
    assert code == 2 and err.strip().endswith(message)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_verify_all_layers_runs_the_tiny_vit_matmuls_on_the_engine(capsys, tmp_path) -> None:
    """The tiny ViT of tests/quant/vit_graph.py (8-bit; its data marked digits so that the
    verification image is a digits test image) on the tiny engine at 8 bits: QK^T and A.V
    run on the engine, one command per head (sim.timing R11), with cycles equal to the
    simulator's; every value and the logits equal integer inference."""
    from dataclasses import replace

    import numpy as np

    from quant.artifact import save_artifact
    from tests.quant.vit_graph import TinyViT, build_artifact, random_weights

    cfg = TinyViT()
    art = build_artifact(cfg, random_weights(cfg, 0),
                         np.random.default_rng(1).random((64, 1, 8, 8)))
    save_artifact(replace(art, meta={**art.meta, "data": "digits"}), tmp_path / "vit")
    sets = ["engine.weight_bits=8", "engine.act_bits=8", "engine.act_signed=true",
            "engine.acc_bits=32"]
    code, out, _ = run(capsys, "verify", "--accel", "tiny", *(w for s in sets
                                                                for w in ("--set", s)),
                       "--cases", "0", "--artifact", str(tmp_path / "vit"), "--all-layers",
                       "--json")
    d = json.loads(out)
    assert code == 0 and d["failed"] == 0 and d["logits_equal"] is True
    assert all(r["passed"] for r in d["layers"])
    mm = [r for r in d["layers"] if r["op"] == "matmul"]
    assert [r["name"] for r in mm] == ["b0.scores", "b0.ctx", "b1.scores", "b1.ctx"]
    assert all(r["runs_on"] == "rtl" and r["cycles_rtl"] == r["cycles_sim"] > 0 for r in mm)
    assert all(r["gemm"].startswith("2 heads of matmul") for r in mm)
