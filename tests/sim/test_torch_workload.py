"""Torch model → workload (torch.fx with shape propagation, hooks as fallback)."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from sim.torch_workload import from_module  # noqa: E402
from sim.workload import GemmOp, VectorOp  # noqa: E402


class Attn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.qkv = nn.Linear(8, 24)
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        x = self.dw(torch.relu(self.conv(x)))  # (B, 8, 4, 4)
        t = self.norm(x.flatten(2).transpose(1, 2))  # (B, 16, 8)
        q, k, v = self.qkv(t).reshape(x.shape[0], 16, 3, 2, 4).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-2, -1), dim=-1)  # (B, 2, 16, 16)
        return a @ v


def test_fx_extraction():
    wl = from_module(Attn(), (2, 3, 8, 8))
    g = {o.name: o for o in wl.ops if isinstance(o, GemmOp)}
    assert (g["conv"].m, g["conv"].n, g["conv"].k, g["conv"].groups) == (8, 32, 27, 1)
    assert (g["dw"].m, g["dw"].n, g["dw"].k, g["dw"].groups) == (1, 32, 9, 8)
    assert (g["qkv"].m, g["qkv"].n, g["qkv"].k) == (24, 32, 8)
    mm = [o for o in wl.ops if isinstance(o, GemmOp) and o.kind == "matmul"]
    assert [(o.m, o.n, o.k, o.groups) for o in mm] == [(16, 16, 4, 4), (4, 16, 16, 4)]
    kinds = {o.op for o in wl.ops if isinstance(o, VectorOp)}
    assert {"softmax", "layernorm"} <= kinds


def test_hooks_fallback_for_untraceable_models():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 7)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: fx cannot trace it
                return self.fc(x)
            return self.fc(-x)

    wl = from_module(Branchy(), (3, 5))
    assert [(o.m, o.n, o.k) for o in wl.ops] == [(7, 3, 5)]


def test_importing_sim_does_not_import_torch():
    code = ("import sys, sim.arch, sim.engine, sim.workload, sim.functional, sim.search; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
