"""The README walk-through as a new user runs it: every command of the README's ``sh`` blocks,
run as written from the repository root, and checked to print what the README says.

Each command has an entry in :data:`EXPECT` (the text its output must contain, whether it
is long, what it needs first); a README command without one, or an entry whose command is
no longer in the README, is an error, so the two cannot drift apart. Commands that need a
cluster or re-run the whole suite (``make test``, ``make demo``, ``dask ...``) are listed
with the reason they are not run. By default the long commands (training, Verilator, Yosys
runs of more than about half a minute) are skipped too; ``--all`` runs them.

    .venv/bin/python bench/readme_walkthrough.py [--all] [--list] [--only TEXT ...]

``--only TEXT`` (repeatable) runs only the commands containing one of the texts, e.g. to
finish a walk-through that was interrupted.

Some commands rewrite checked-in files (``rtl/``, ``reports/reference/``) exactly as the
README says; they are deterministic, so ``git status`` stays clean when all is well.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: What `make demo` writes first and two README commands read (its step 1, as in Makefile).
DEMO_ARTIFACT = "build/demo/artifact"
DEMO_QUANTIZE = (".venv/bin/fpim quantize --model resnet20 --data digits --scheme msq --bits 4 "
                 "--sp2-fraction 0.5 --first-last-bits 0 --input-bits 4 --pool-extra-bits 0 "
                 f"--out {DEMO_ARTIFACT}")


@dataclass(frozen=True)
class Expect:
    """What a README command must print (each string somewhere in stdout or stderr)."""

    contains: tuple[str, ...] = ()
    long: bool = False
    needs_demo: bool = False
    not_run: str = ""  # why the walk-through does not run it


EXPECT: dict[str, Expect] = {
    "make test": Expect(not_run="runs the whole suite (use make test itself)"),
    "make demo": Expect(not_run="runs the end-to-end demo (use make demo itself); its first "
                                "step is run when a command needs build/demo/artifact"),
    ".venv/bin/fpim formats --scheme sp2 --bits 4": Expect(("13 levels",)),
    ".venv/bin/fpim formats --scheme f8 --bits 8 --fl 6 --unsigned": Expect(("fl=6, unsigned",)),
    ".venv/bin/fpim quantize --model resnet20 --data digits --scheme msq --bits 4 "
    "--sp2-fraction 0.5 --out runs/r20-msq4": Expect(
        ("artifact: runs/r20-msq4",
         "to fit it, quantize again with --first-last-bits 0 --input-bits 4 "
         "--pool-extra-bits 0"), long=True),
    ".venv/bin/fpim simulate --model resnet50 --accel xc7z020": Expect(
        ("5523668 cycles (138836 stall)", "18.10 FPS (images/s)", "MAC utilisation 96.4%")),
    ".venv/bin/fpim simulate --model resnet18 --accel xc7z020": Expect(
        ("2453383 cycles", "MAC utilisation 96.3%")),
    ".venv/bin/fpim simulate --model mynet.py:make --input-shape 1,3,32,32 --accel xc7z020":
        Expect(not_run="needs the user's mynet.py (tests/sim/test_your_model_cli.py runs this "
                       "form from the file's own directory)"),
    ".venv/bin/fpim simulate --model mypkg.nets:make --input-shape 1,3,32,32 --accel xc7z020":
        Expect(not_run="needs the user's package mypkg (tests/sim/test_your_model_cli.py runs "
                       "a package factory)"),
    ".venv/bin/fpim simulate --model mynet.onnx --accel xc7z020": Expect(
        not_run="needs the user's ONNX file (tests/sim/test_onnx_workload.py exports and "
                "simulates ONNX files)"),
    ".venv/bin/fpim simulate --artifact build/demo/artifact --accel xc7z020 --functional": Expect(
        ("functional: bit-exact against quant.infer on 1 random image: logits equal",),
        long=True, needs_demo=True),
    ".venv/bin/fpim simulate --model deit_tiny --accel xczu9eg --functional": Expect(
        ("functional: bit-exact against quant.infer on 1 random image (deit_tiny artifact from "
         "random weights, seed 0, PTQ on 1 random image): logits equal",), long=True),
    ".venv/bin/fpim search msq --part XC7Z020 --bits 4 --model resnet18 --save build/msq.yaml":
        Expect(("3575832 cycles", "LUT 39811", "verdict: mixing pays",
                "reproduce: fpim simulate --model resnet18 --accel build/msq.yaml --mode "
                "analytical --sp2-fraction 0.7\n")),
    ".venv/bin/fpim simulate --model resnet18 --accel build/msq.yaml --mode analytical "
    "--sp2-fraction 0.7": Expect(("3575832 cycles", "LUT 39811/53200", "27.97 FPS")),
    ".venv/bin/fpim report --model resnet50 --accel xc7z020 --out "
    "reports/reference/resnet50_xc7z020": Expect(
        ("report: reports/reference/resnet50_xc7z020/index.html",)),
    ".venv/bin/fpim report --search msq --accel xc7z020 --bits 4 --model resnet18 --out "
    "reports/reference/msq4_resnet18_xc7z020": Expect(
        ("report: reports/reference/msq4_resnet18_xc7z020/index.html",)),
    ".venv/bin/fpim rtl --accel tiny --out rtl": Expect(("wrote rtl/fpim_tiny.v",)),
    ".venv/bin/fpim synth --accel tiny": Expect(("3166", "876"), long=True),
    ".venv/bin/fpim synth --accel tiny --whole-top": Expect(("4384", "1764"), long=True),
    ".venv/bin/python bench/resource_calibration.py": Expect(long=True),
    ".venv/bin/python bench/resource_calibration.py --tops": Expect(long=True),
    ".venv/bin/fpim verify --accel tiny": Expect(("25 passed, 0 failed",), long=True),
    ".venv/bin/fpim verify --accel tiny --cases 200 --seed 7": Expect(
        ("201 passed, 0 failed",), long=True),
    ".venv/bin/python bench/rtl_speed.py": Expect(long=True),
    ".venv/bin/fpim pim simulate --artifact build/demo/artifact --macro sram512x128_adc7":
        Expect(("total:",), needs_demo=True),
    ".venv/bin/fpim pim train --macro sram512x128_adc7 --scheme native --cell-bits 3 "
    "--group-size 64 --out runs/pim": Expect(("97.21%", "61.28%", "92.76%"), long=True),
    ".venv/bin/fpim pim eval --artifact runs/pim --macro sram512x128_adc7 --noise-lsb 0.25":
        Expect(("PIM",), long=True),
    ".venv/bin/fpim verify --accel tiny --artifact build/demo/artifact --all-layers": Expect(
        ("logits identical to quant.infer", "0 failed"), long=True, needs_demo=True),
    ".venv/bin/fpim quantize --model vit_digits --scheme fixed --bits 8 --out runs/vit-w8a8":
        Expect(("artifact: runs/vit-w8a8",), long=True),
    ".venv/bin/fpim quantize --model vit_digits --scheme msq --lut-scheme pot --bits 4 "
    "--sp2-fraction 0.5 --ptq --out runs/vit-pot4": Expect(("artifact: runs/vit-pot4",),
                                                          long=True),
    ".venv/bin/fpim sweep configs/sweeps/quick.yaml --out runs/quick": Expect(
        ("1056 points",), long=True),
    ".venv/bin/fpim sweep configs/sweeps/codesign.yaml --out runs/codesign": Expect(long=True),
    "dask scheduler": Expect(not_run="starts a Dask scheduler (a cluster set-up)"),
    "dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1": Expect(
        not_run="needs a running scheduler at HOST"),
    ".venv/bin/fpim sweep configs/sweeps/codesign.yaml --scheduler tcp://HOST:8786 --out "
    "runs/codesign": Expect(not_run="needs a running Dask scheduler at HOST"),
}


def readme_commands(text: str) -> list[str]:
    """The commands of the ``sh`` blocks, comments and surrounding spaces removed."""
    out = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S):
        for line in block.splitlines():
            cmd = line.split("  #", 1)[0].strip()
            if cmd and not cmd.startswith("#"):
                out.append(cmd)
    return out


def run(cmd: str) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.perf_counter()
    proc = subprocess.run(shlex.split(cmd), cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="also run the long commands")
    ap.add_argument("--list", action="store_true", help="list the commands and exit")
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="run only the commands that contain TEXT (repeatable)")
    args = ap.parse_args()
    commands = readme_commands(README.read_text())
    missing = [c for c in commands if c not in EXPECT]
    stale = [c for c in EXPECT if c not in commands]
    for c in missing:
        print(f"README command without an expectation here: {c}")
    for c in stale:
        print(f"expectation of a command no longer in the README: {c}")
    if missing or stale:
        return 1
    failed = 0
    for cmd in commands:
        e = EXPECT[cmd]
        skip = e.not_run or ("" if args.all or not e.long else "long (run with --all)")
        if not skip and args.only and not any(t in cmd for t in args.only):
            skip = "not named by --only"
        if args.list or skip:
            print(f"{'-' if skip else ' '} {cmd}" + (f"   [not run: {skip}]" if skip else ""))
            continue
        if e.needs_demo and not (ROOT / DEMO_ARTIFACT / "manifest.json").is_file():
            code, out, _ = run(DEMO_QUANTIZE)
            if code != 0:
                print(f"FAIL {DEMO_QUANTIZE}\n{out[-2000:]}")
                return 1
        code, out, seconds = run(cmd)
        absent = [s for s in e.contains if s not in out]
        ok = code == 0 and not absent
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {seconds:6.1f} s  {cmd}")
        if not ok:
            print(f"     exit {code}; missing: {absent}\n" + out[-1500:])
    if not args.list:
        print(f"{failed} failed" if failed else
              "every command run printed what the README says")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
