"""``fpim quantize`` end to end on a tiny run, and its one-line errors (exit status 2)."""

from __future__ import annotations

import json

import pytest

from fpim.cli import main
from quant.artifact import load_artifact

TINY = ["--model", "cnn", "--data", "digits", "--epochs", "1", "--float-epochs", "1",
        "--no-progress"]


def test_quantize_json_and_artifact(tmp_path, capsys):
    out = tmp_path / "art"
    ckpt = tmp_path / "f.pt"
    code = main(["quantize", *TINY, "--scheme", "msq", "--bits", "4", "--sp2-fraction",
                 "0.25", "--float-checkpoint", str(ckpt), "--out", str(out), "--json"])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("float_accuracy", "quant_accuracy", "scheme", "bits", "sp2_fraction",
                "artifact"):
        assert key in r
    assert r["scheme"] == "msq" and r["bits"] == 4 and r["sp2_fraction"] == 0.25
    assert r["artifact"] == str(out) and ckpt.is_file() and not r["float_checkpoint_loaded"]
    art = load_artifact(out)
    assert art.meta["scheme"] == "msq" and [x.op for x in art.gemm_layers()] == ["conv"] * 3 + [
        "linear"]
    # second run reuses the checkpoint
    assert main(["quantize", *TINY, "--scheme", "fixed", "--bits", "4", "--float-checkpoint",
                 str(ckpt), "--out", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "quantized (integer artifact)" in text and "float" in text


@pytest.mark.parametrize("args, match", [
    (["--model", "vgg", "--scheme", "fixed", "--bits", "4"],
     "model must be one of resnet20, resnet32, resnet56, cnn, vit_digits, deit_tiny, "
     "deit_small, deit_base, PATH.py:FUNCTION or package.module:function, not 'vgg'"),
    (["--scheme", "int", "--bits", "4"], "scheme must be one of fixed, pot, sp2, msq, f8, "
                                         "not 'int'"),
    (["--data", "mnist", "--scheme", "fixed", "--bits", "4"],
     "data must be one of digits, cifar10, folder, not 'mnist'"),
    (["--scheme", "pot", "--bits", "9"], "bits must be an integer in 2..8 for pot, not 9"),
    (["--scheme", "f8", "--bits", "4"], "bits must be an integer in 8..8 for f8, not 4"),
    (["--scheme", "msq", "--bits", "4", "--sp2-fraction", "1.5"],
     r"sp2_fraction must be a number in [0, 1], not 1.5"),
    (["--data", "cifar10", "--scheme", "fixed", "--bits", "4"],
     "data-dir must be given for data cifar10, not omitted"),
])
def test_bad_input_one_line(args, match, tmp_path, capsys):
    try:
        code = main(["quantize", *args, "--out", str(tmp_path / "o"), "--no-progress"])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert match in err and err.count("\n") == 1 and "Traceback" not in err


def test_wrong_data_dir_format(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    code = main(["quantize", "--data", "cifar10", "--data-dir", str(tmp_path / "d"),
                 "--scheme", "fixed", "--bits", "4", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "data-dir must be a CIFAR-10 python batch directory" in err


def test_bad_checkpoint(tmp_path, capsys):
    (tmp_path / "f.pt").write_bytes(b"garbage")
    code = main(["quantize", *TINY, "--scheme", "fixed", "--bits", "4", "--float-checkpoint",
                 str(tmp_path / "f.pt"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "float-checkpoint must be a torch state_dict file" in err
