"""fpim quantize → fpim simulate: a QAT artifact runs bit-exactly on a shipped 4-bit preset."""

from __future__ import annotations

import json

import pytest

from fpim.cli import main


@pytest.mark.slow
def test_quantized_resnet_simulates_bit_exactly(tmp_path, capsys) -> None:
    art = tmp_path / "a"
    assert main(["quantize", "--model", "resnet20", "--scheme", "msq", "--bits", "4",
                 "--epochs", "1", "--float-epochs", "1", "--first-last-bits", "0",
                 "--input-bits", "4", "--pool-extra-bits", "0", "--out", str(art),
                 "--no-progress", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["artifact"] == str(art) and q["sp2_rows"] > 0
    assert main(["simulate", "--artifact", str(art), "--accel", "xc7z020", "--functional",
                 "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["total_cycles"] > 0 and len(s["layers"]) > 20
    assert s["functional"]["bit_exact"] is True


def test_default_artifact_mismatch_is_one_line(tmp_path, capsys) -> None:
    art = tmp_path / "a"
    assert main(["quantize", "--model", "cnn", "--scheme", "fixed", "--bits", "4",
                 "--epochs", "1", "--float-epochs", "1", "--out", str(art),
                 "--no-progress", "--json"]) == 0
    capsys.readouterr()
    assert main(["simulate", "--artifact", str(art), "--accel", "xc7z020"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must match engine.weight_bits 4, not 8" in err
