"""Whole-engine RTL simulation speed: cocotb + Verilator versus Amaranth's simulator.

Both run the same GEMM cases (random ones plus the shipped artifact layer) on the tiny
preset's accelerator top, with the same DRAM model, and check outputs and cycles against
the reference and the simulator. Printed: simulated cycles per second of each, measured in
one run. The Verilator figure excludes the build (cached) and the cocotb process start-up,
which is measured separately with a one-case run and printed too.

    .venv/bin/python bench/rtl_speed.py [--cases 12] [--seed 0] [--no-artifact]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fpim.output import format_table
from hw.tb.amaranth_bench import run_case
from hw.tb.cases import random_cases, with_memory
from hw.tb.engine import artifact_layer_case, build_accel, run_verilator
from sim.config import load_accelerator


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accel", default="tiny")
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-artifact", action="store_true")
    args = ap.parse_args()
    accel = load_accelerator(args.accel)
    cases = random_cases(accel, args.cases, seed=args.seed)
    if not args.no_artifact:
        cases.append(artifact_layer_case(accel))
    cycles = sum(c.cycles for c in cases)
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        t = time.perf_counter()
        b = build_accel(accel)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        run_verilator(accel, cases[:1], build=b)
        startup_s = time.perf_counter() - t - cases[0].cycles / 1e6  # negligible sim time
        t = time.perf_counter()
        out = run_verilator(accel, cases, build=b)
        vl_s = time.perf_counter() - t
    assert all(o.passed for o in out), [o.failure() for o in out if not o.passed]
    t = time.perf_counter()
    for c in cases:
        r = run_case(with_memory(accel, c.bw, c.lat), c)
        assert (r.y == c.want).all() and r.cycles == c.cycles, c.describe()
    am_s = time.perf_counter() - t
    vl_rate = cycles / max(vl_s - startup_s, 1e-9)
    am_rate = cycles / am_s
    print(f"{len(cases)} GEMMs on {accel.name}, {cycles} cycles in total, all bit-exact and "
          f"cycle-equal at both levels")
    print(format_table(
        ("simulator", "wall s", "cycles/s"),
        [("cocotb + Verilator 5.006", f"{vl_s:.2f}", f"{vl_rate:,.0f}"),
         ("Amaranth 0.5 pysim", f"{am_s:.2f}", f"{am_rate:,.0f}")]))
    print(f"cocotb + Verilator / Amaranth: {vl_rate / am_rate:.2f}x cycles per second; "
          f"Verilator build {build_s:.1f} s (0 if cached), cocotb start-up {startup_s:.1f} s "
          "(subtracted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
