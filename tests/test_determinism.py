"""Determinism of training (docs/determinism.md): the CPU dispatch pins are in effect in a CLI
process, and the same seed gives the same bits."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fpim.flows.quantize import float_model, quantize_workflow, run_qat
from quant.data import load_digits
from quant.torch import dispatch
from quant.torch.dispatch import CPU_PINS, cpu_flags, pin_cpu_dispatch
from quant.torch.qat import QATConfig
from quant.torch.train import TrainConfig, check_cpu_dispatch

ROOT = Path(__file__).resolve().parent.parent
HAS_AVX2 = dispatch.REQUIRED_CPU_FLAGS <= cpu_flags()
needs_avx2 = pytest.mark.skipif(not HAS_AVX2, reason="the pins need a CPU with AVX2 and FMA")

#: What a CLI process computes first: torch ops that reach ATen, MKL (a GEMM) and oneDNN
#: (a convolution with its backward pass), each library logging the code path it chose.
PROBE = """
import json, os, sys
import fpim.cli  # noqa: F401  (as `python -m fpim` does)
import torch
x = torch.rand(8, 8, 8, 8, requires_grad=True)
torch.nn.functional.conv2d(x, torch.rand(8, 8, 3, 3)).sum().backward()
torch.rand(64, 64) @ torch.rand(64, 64)
pins = {k: os.environ.get(k) for k in %r}
print("PROBE", json.dumps({"env": pins, "aten": torch.backends.cpu.get_cpu_capability()}))
"""


def probe(env: dict[str, str]) -> tuple[dict, str]:
    """Run :data:`PROBE` in a fresh process with ``env`` added to a pin-free environment."""
    base = {k: v for k, v in os.environ.items() if k not in CPU_PINS}
    out = subprocess.run([sys.executable, "-c", PROBE % (list(CPU_PINS),)], cwd=ROOT,
                         env={**base, "PYTHONPATH": str(ROOT), "MKL_VERBOSE": "1",
                              "ONEDNN_VERBOSE": "1", **env},
                         capture_output=True, text=True, check=True).stdout
    line = next(s for s in out.splitlines() if s.startswith("PROBE "))
    return json.loads(line.removeprefix("PROBE ")), out


@needs_avx2
def test_cli_process_runs_the_pinned_kernels():
    result, log = probe({})
    assert result["env"] == CPU_PINS
    assert result["aten"] == "AVX2"
    assert "onednn_verbose,v1,info,cpu,isa:Intel AVX2\n" in log  # oneDNN's instruction set
    gemms = [s for s in log.splitlines() if s.startswith("MKL_VERBOSE SGEMM")]
    assert gemms and all(" CNR:COMPATIBLE " in s for s in gemms)  # MKL's branch


@needs_avx2
def test_a_value_the_user_exported_wins():
    result, log = probe({"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO"})
    assert result["env"] == {**CPU_PINS, "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO"}
    assert result["aten"] == "DEFAULT" and " CNR:AUTO " in log


def test_no_pins_on_a_cpu_without_avx2(monkeypatch):
    for name in CPU_PINS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dispatch, "cpu_flags", lambda: frozenset({"sse4_2", "avx"}))
    assert pin_cpu_dispatch() is False
    assert not any(name in os.environ for name in CPU_PINS)
    monkeypatch.setattr(dispatch, "cpu_flags", lambda: frozenset({"sse4_2", "avx2", "fma"}))
    assert pin_cpu_dispatch() is True
    assert {k: os.environ[k] for k in CPU_PINS} == CPU_PINS


def test_check_warns_when_torch_runs_other_kernels(monkeypatch, recwarn):
    have = torch.backends.cpu.get_cpu_capability()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", have.lower())
    check_cpu_dispatch()
    assert len(recwarn) == 0
    other = "default" if have != "DEFAULT" else "avx2"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", other)
    with pytest.warns(UserWarning, match=f"torch runs its {have} kernels, not the pinned "
                                         f"{other}: training is reproducible on this machine"):
        check_cpu_dispatch()


TINY_FLOAT = TrainConfig(epochs=1, lr=0.1, seed=0)
TINY_QAT = TrainConfig(epochs=1, lr=0.01, seed=0)
TINY_Q = QATConfig(scheme="msq", bits=4, act_bits=4)


def test_same_seed_same_artifact(tmp_path):
    data = load_digits()
    hashes = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = TrainConfig(epochs=1, lr=0.1, seed=seed)
        quantize_workflow("cnn", data, TINY_Q, cfg, TINY_QAT, out=tmp_path / run,
                          progress=False)
        hashes.append(json.loads((tmp_path / run / "manifest.json").read_text())["content_hash"])
    assert hashes[0] == hashes[1]
    assert hashes[2] != hashes[0]  # the seed does reach the bits


def weights_digest(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


#: Trained bits of the tiny run below under the pins, recorded on an AMD EPYC with AVX-512
#: and measured identical on a second one of a newer generation (vendor, family, model as
#: /proc/cpuinfo gives them; torch 2.13.0 CPU build; docs/determinism.md). If this fails
#: after an intended change of training, models or QAT, record the new digests.
RECORDED = {"float": "81572b70e4a3df0e", "qat": "1cbc4d3e1529697b"}
RECORDED_ON = (("AuthenticAMD", "25", "17"), ("AuthenticAMD", "26", "2"))


def cpu_model() -> tuple[str, str, str]:
    """(vendor_id, cpu family, model) of the first CPU in /proc/cpuinfo."""
    found: dict[str, str] = {}
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            key, _, value = line.partition(":")
            found.setdefault(key.strip(), value.strip())
    return found.get("vendor_id", ""), found.get("cpu family", ""), found.get("model", "")


@needs_avx2
def test_pinned_training_reproduces_the_recorded_bits():
    """A regression test of the trained bits on the CPU model they were recorded on. Other
    CPUs are the cross-machine check of docs/determinism.md, run by hand with
    bench/determinism.py (its pinned rows must print the recorded content hash); an
    automatic test there would fail the whole suite on a machine the pins do not cover."""
    if any(os.environ.get(k, v) != v for k, v in CPU_PINS.items()):
        pytest.skip("a CPU dispatch variable was exported with another value than the pin")
    if cpu_model() not in RECORDED_ON:
        pytest.skip(f"digests recorded on CPU {RECORDED_ON}, this is {cpu_model()}: compare "
                    f"with bench/determinism.py --no-speed (docs/determinism.md)")
    data = load_digits()
    model, _ = float_model("cnn", data, TINY_FLOAT, progress=False)
    qmodel = run_qat(model, data, TINY_Q, TINY_QAT, progress=False)
    assert {"float": weights_digest(model), "qat": weights_digest(qmodel)} == RECORDED
