"""Same seed, other CPU kernels: does training give the same artifact, and what do the pins cost?

    .venv/bin/python bench/determinism.py [--no-speed | --speed-only] [--pinned-only]
        [--rounds 3] [--steps 15] [-- QUANTIZE-ARGS]

Emulates other machines on this one. Each row runs ``fpim quantize`` (default: the small CNN
on digits, MSQ 4-bit, 3 float + 2 QAT epochs, seed 0) in a fresh process whose environment
sets the three variables that choose torch's CPU kernels (quant.torch.dispatch): ATen's
vector width, oneDNN's instruction set, MKL's reproducibility branch. "native" is what torch
picks on this CPU when nothing is set (fpim's behaviour before the pins); "pinned" is fpim's
default. Rows print the artifact's content hash and accuracies: a different hash means
different trained bits. ``--pinned-only`` runs the three pinned rows alone: the check of
another machine against the hashes recorded in docs/determinism.md.
Other arguments after ``--`` replace the quantize run, e.g. the digital baseline of
bench/pim_table.py::

    -- --model resnet20 --scheme fixed --bits 4 --first-last-bits 0 --input-bits 4 \\
       --float-epochs 3 --epochs 2

Then the speed: bench/qat_step.py (ResNet-20 training steps, float and QAT) pinned and native,
alternating ``--rounds`` times so machine load affects both alike; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from quant.torch.dispatch import CPU_PINS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUN = ["--model", "cnn", "--data", "digits", "--scheme", "msq", "--bits", "4",
               "--float-epochs", "3", "--epochs", "2"]
#: numpy 2.x without its AVX-512 loops (what numpy runs on an AVX2-only CPU)
NUMPY_AVX2 = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}


def child_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without the pins, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in CPU_PINS}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


def native_capability() -> str:
    """The ATen capability torch picks on this CPU when nothing is set."""
    code = "import torch; print(torch.backends.cpu.get_cpu_capability().lower())"
    return subprocess.run([sys.executable, "-c", code], env=child_env({}), check=True,
                          capture_output=True, text=True).stdout.strip()


def dispatch(aten: str, onednn: str, mkl: str) -> dict[str, str]:
    """The three variables (MKL_CBWR empty: MKL's reproducibility mode off)."""
    return {"ATEN_CPU_CAPABILITY": aten, "ONEDNN_MAX_CPU_ISA": onednn, "MKL_CBWR": mkl}


def rows(native: str) -> list[tuple[str, dict[str, str]]]:
    pinned = dict(CPU_PINS)
    return [
        ("pinned", pinned),
        ("pinned, again", pinned),
        ("pinned, numpy and MKL limited to AVX2",
         {**pinned, **NUMPY_AVX2, "MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
        ("native", dispatch(native, "ALL", "")),
        ("native, again", dispatch(native, "ALL", "")),
        ("native, ATen avx2", dispatch("avx2", "ALL", "")),
        ("native, oneDNN AVX2", dispatch(native, "AVX2", "")),
        ("native, MKL COMPATIBLE", dispatch(native, "ALL", "COMPATIBLE")),
        ("ATen avx2 + oneDNN AVX2, MKL automatic (an AVX2 CPU, unpinned)",
         dispatch("avx2", "AVX2", "")),
        ("ATen default (no SIMD), oneDNN SSE4.1, MKL COMPATIBLE",
         dispatch("default", "SSE41", "COMPATIBLE")),
    ]


def quantize(settings: dict[str, str], run: list[str]) -> tuple[str, dict]:
    """Content hash and result of one ``fpim quantize`` run under ``settings``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "art"
        cmd = [sys.executable, "-m", "fpim", "quantize", *run, "--no-progress", "--json",
               "--out", str(out)]
        proc = subprocess.run(cmd, env=child_env(settings), cwd=ROOT, capture_output=True,
                              text=True)
        if proc.returncode:
            raise SystemExit(f"fpim quantize failed under {settings}:\n{proc.stderr}")
        manifest = json.loads((out / "manifest.json").read_text())
        return manifest["content_hash"], json.loads(proc.stdout)


def step_times(settings: dict[str, str], steps: int) -> tuple[float, float]:
    """Median float and QAT step times (ms) of bench/qat_step.py under ``settings``."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "qat_step.py"), "--steps",
                           str(steps)], env=child_env(settings), check=True,
                          capture_output=True, text=True)
    f = re.search(r"float step:\s+([\d.]+) ms", proc.stdout)
    q = re.search(r"QAT step:\s+([\d.]+) ms", proc.stdout)
    assert f and q, proc.stdout
    return float(f.group(1)), float(q.group(1))


def hashes(native: str, run: list[str], pinned_only: bool = False) -> None:
    print(f"fpim quantize {' '.join(run)}")
    print("| environment | ATEN_CPU_CAPABILITY | ONEDNN_MAX_CPU_ISA | MKL_CBWR | content hash "
          "| float % | fake-quant % | integer % |")
    print("|---|---|---|---|---|---|---|---|")
    for name, settings in rows(native):
        if pinned_only and not name.startswith("pinned"):
            continue
        digest, r = quantize(settings, run)
        print(f"| {name} | {settings['ATEN_CPU_CAPABILITY']} | "
              f"{settings['ONEDNN_MAX_CPU_ISA']} | {settings['MKL_CBWR'] or '(off)'} | "
              f"`{digest[7:23]}` | {r['float_accuracy']:.2f} | {r['fakequant_accuracy']:.2f} | "
              f"{r['quant_accuracy']:.2f} |", flush=True)


def speed(native: str, rounds: int, steps: int) -> None:
    times: dict[str, list[tuple[float, float]]] = {"pinned": [], "native": []}
    for _ in range(rounds):
        times["pinned"].append(step_times(dict(CPU_PINS), steps))
        times["native"].append(step_times(dispatch(native, "ALL", ""), steps))
    print(f"\nbench/qat_step.py (ResNet-20, batch 128, 8x8 input, 1 thread), median of "
          f"{rounds} runs of {steps} steps each, pinned and native alternating:")
    med = {k: [statistics.median(t[i] for t in v) for i in (0, 1)] for k, v in times.items()}
    for kind, i in (("float", 0), ("QAT", 1)):
        print(f"{kind:5s} step: pinned {med['pinned'][i]:7.1f} ms, native {med['native'][i]:7.1f}"
              f" ms, pinned/native {med['pinned'][i] / med['native'][i]:.2f}x")


def main() -> None:
    argv = sys.argv[1:]
    run = DEFAULT_RUN
    if "--" in argv:
        run = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3, help="speed: pinned/native alternations")
    p.add_argument("--steps", type=int, default=15, help="speed: steps per qat_step.py run")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--no-speed", action="store_true", help="only the hashes")
    only.add_argument("--speed-only", action="store_true", help="only the speed")
    p.add_argument("--pinned-only", action="store_true",
                   help="hashes: only the pinned rows (the check of another machine)")
    args = p.parse_args(argv)
    native = native_capability()
    print(f"CPU capability torch picks here: {native}")
    if not args.speed_only:
        hashes(native, run, args.pinned_only)
    if not args.no_speed:
        speed(native, args.rounds, args.steps)


if __name__ == "__main__":
    main()
