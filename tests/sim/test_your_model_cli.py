"""Bring your own model from the command line: a Python file factory, a module factory
importable from the working directory and an ONNX file, for simulate, quantize and pim
train (issue 22)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.cliutil import run

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
#: The issue's example: a 6-layer CNN with BN and ReLU, as a user writes it.
MYNET = '''import torch
from torch import nn


def make():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10))
'''
#: A model for the digits data (1 x 8 x 8 images, 10 classes) QAT converts.
DIGITS_NET = '''from torch import nn


def make():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 10))
'''
SIM = ("--accel", "tiny", "--json")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A user's directory as the working directory, not otherwise on the Python path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    return tmp_path


def _layers(out: str) -> list[dict]:
    return json.loads(out)["layers"]


def test_python_file_factory(user_dir, capsys):
    (user_dir / "mynet.py").write_text(MYNET)
    code, out, err = run(capsys, "simulate", "--model", "mynet.py:make", "--input-shape",
                         "1,3,32,32", *SIM)
    assert code == 0, err
    layers = _layers(out)
    assert [la["name"] for la in layers] == ["0", "3", "6", "7", "10", "13", "15", "17"]
    assert [la["op"] for la in layers] == ["conv", "conv", "pool", "conv", "conv", "pool",
                                           "linear", "linear"]
    assert not (user_dir / "__pycache__").exists()


def test_module_factory_from_the_working_directory(user_dir, capsys):
    pkg = user_dir / "nets_byom"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "small.py").write_text(MYNET)
    code, out, err = run(capsys, "simulate", "--model", "nets_byom.small:make",
                         "--input-shape", "2,3,16,16", *SIM)
    assert code == 0, err
    assert _layers(out)[0]["n"] == 2 * 16 * 16


def test_console_run_from_the_models_directory(tmp_path):
    """``fpim simulate --model mynet.py:make`` and ``--model mynet:make`` in the file's own
    directory, with the interpreter adding nothing to the path (-P), as the console script."""
    (tmp_path / "mynet.py").write_text(MYNET)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)  # fpim itself, as an installed console script finds it
    for spec in ("mynet.py:make", "mynet:make"):
        out = subprocess.run([sys.executable, "-P", "-m", "fpim", "simulate", "--model", spec,
                              "--input-shape", "1,3,32,32", *SIM], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)["layers"]) == 8


def test_onnx_file(user_dir, capsys):
    sys.path.insert(0, str(user_dir))
    try:
        (user_dir / "mynet.py").write_text(MYNET)
        from quant.torch.usermodel import load_model

        model = load_model("mynet.py:make").eval()
    finally:
        sys.path.remove(str(user_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 3, 32, 32), "mynet.onnx", dynamo=False)
    code, out, err = run(capsys, "simulate", "--model", "mynet.onnx", *SIM)
    assert code == 0, err
    onnx_layers = _layers(out)
    code, out, err = run(capsys, "simulate", "--model", "mynet.py:make", "--input-shape",
                         "1,3,32,32", *SIM)
    assert [(la["op"], la["cycles"]) for la in onnx_layers] == \
        [(la["op"], la["cycles"]) for la in _layers(out)]


def test_quantize_and_pim_train_a_factory_with_its_checkpoint(user_dir, capsys):
    """The user's model and float weights through QAT: its artifact simulates with the same
    GEMMs and cycles as the float model handed to simulate (BN folded, ReLU fused alike)."""
    (user_dir / "dnet.py").write_text(DIGITS_NET)
    sys.path.insert(0, str(user_dir))
    try:
        from quant.torch.usermodel import load_model

        torch.manual_seed(0)
        torch.save(load_model("dnet.py:make").state_dict(), "w.pt")
    finally:
        sys.path.remove(str(user_dir))
    code, out, err = run(capsys, "quantize", "--model", "dnet.py:make", "--checkpoint", "w.pt",
                         "--scheme", "fixed", "--bits", "4", "--epochs", "1", "--out", "art",
                         "--first-last-bits", "0", "--input-bits", "4",  # fit the tiny preset
                         "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(out)["float_checkpoint_loaded"] is True
    code, out, err = run(capsys, "simulate", "--artifact", "art", *SIM)
    assert code == 0, err
    from_artifact = [(la["name"], la["op"], la["cycles"]) for la in _layers(out)]
    code, out, _ = run(capsys, "simulate", "--model", "dnet.py:make", "--input-shape",
                       "1,1,8,8", "--sp2-fraction", "0", *SIM)
    assert [(la["name"], la["op"], la["cycles"]) for la in _layers(out)] == from_artifact
    code, out, err = run(capsys, "pim", "train", "--model", "dnet.py:make", "--checkpoint",
                         "w.pt", "--macro", "sram512x128_adc7", "--qat-epochs", "1",
                         "--epochs", "1", "--no-progress", "--json")
    assert code == 0, err
    assert json.loads(out)["float_checkpoint_loaded"] is True


def test_report_names_its_run_after_the_model(tmp_path):
    """The default report directory of a model file is named after the file's stem (a
    path in it would nest the directory)."""
    import argparse

    from fpim.commands.report import _run_name

    (tmp_path / "mynet.onnx").write_bytes(b"")
    (tmp_path / "mynet.py").write_text(MYNET)
    for model, want in ((str(tmp_path / "mynet.onnx"), "mynet_tiny"),
                        (f"{tmp_path / 'mynet.py'}:make", "make_tiny"), ("resnet18",
                                                                         "resnet18_tiny")):
        args = argparse.Namespace(model=model, search=None, bits=4)
        assert _run_name(args, "tiny") == want
