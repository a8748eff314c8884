"""The layering of ARCHITECTURE: quant -> sim -> hw -> fpim, no torch in the numpy core.

``make lint`` enforces the direction with import-linter (pyproject.toml); these tests keep
its module list complete and check the torch-free promise by importing for real.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Modules allowed to import torch: the torch side of quant and the torch workload extractor.
TORCH_SIDE = ("quant.torch", "sim.torch_workload")


def _modules(package: str) -> list[str]:
    path = ROOT / package
    return [package] + [m.name for m in pkgutil.walk_packages([str(path)], prefix=package + ".")]


def _core_modules() -> list[str]:
    return [m for pkg in ("quant", "sim") for m in _modules(pkg)
            if not any(m == t or m.startswith(t + ".") for t in TORCH_SIDE)]


def _contract(name_part: str) -> dict:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return next(c for c in cfg["contracts"] if name_part in c["name"])


def test_torch_contract_covers_every_core_module():
    sources = _contract("do not import torch")["source_modules"]
    missing = [m for m in _core_modules() if m not in ("quant", "sim")
               and not any(m == s or m.startswith(s + ".") for s in sources)]
    assert missing == [], f"add these modules to the import-linter torch contract: {missing}"


def test_layers_contract_is_the_documented_direction():
    assert _contract("layers")["layers"] == ["fpim", "hw", "sim", "quant"]


@pytest.mark.parametrize("package", ["quant", "sim"])
def test_core_imports_without_torch(package):
    """Every numpy-core module imports with torch made unimportable."""
    mods = [m for m in _core_modules() if m == package or m.startswith(package + ".")]
    code = ("import sys; sys.modules['torch'] = None\n"
            f"import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
