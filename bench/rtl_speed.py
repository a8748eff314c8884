"""Whole-engine RTL simulation speed: fast harness vs cocotb stream harness vs Amaranth.

On each preset (tiny and the mid-size configs/rtl/mid.yaml; xc7z020 with --xc7z020) the same
GEMM cases (random ones, plus the shipped artifact layer on tiny) run on

* the fast harness (hw.tb.fast: DRAM and streams as Verilog, Verilator and a C++ driver),
* the stream-level cocotb testbench (hw.tb.accel_tb on Verilator; its process start-up,
  measured with a one-case run, is subtracted),
* Amaranth's simulator (hw.tb.amaranth_bench; the first 2 cases on the bigger presets),

each checked bit-exact and cycle-equal against the reference and the simulator. Printed per
preset: Verilator build seconds of both harnesses (0 when cached), then simulated cycles per
second of each. The fast harness is also timed on a few long GEMMs (--long-k), where the
per-case overhead (writing and loading the case images) no longer dominates; its figure is
the simulated GEMM cycles over the simulator process's CPU seconds (the machine is shared,
so wall time is printed too). With --options the fast harness is rebuilt with each set of
Verilator/C++ options and timed on the long GEMMs (docs/verification.md).

    .venv/bin/python bench/rtl_speed.py [--cases 12] [--seed 0] [--xc7z020] [--options]
    .venv/bin/python bench/rtl_speed.py --presets xc7z020 --fast-only
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
from hw.generate import PARAM_DEPTH
from hw.tb.amaranth_bench import run_case
from hw.tb.cases import random_case, random_cases, with_memory
from hw.tb.engine import artifact_layer_case, build_accel, outcome, run_verilator
from hw.tb.fast import FAST_ARGS, FastRun, build_fast
from sim.config import CONFIG_DIR, load_accelerator

#: Verilator / C++ option sets --options compares: (label, Verilator args, threads, OPT_FAST).
OPTION_SETS = (
    ("Verilator defaults, OPT_FAST=-Os", (), 1, "-Os"),
    ("-O3 --x-assign fast --x-initial fast --noassert, -Os", FAST_ARGS, 1, "-Os"),
    ("-O3 --x-assign fast --x-initial fast --noassert, -O2 (chosen)", FAST_ARGS, 1, "-O2"),
    ("the same, -O3", FAST_ARGS, 1, "-O3"),
    ("the same, -O2, --threads 2", FAST_ARGS, 2, "-O2"),
)


def fast_rate(accel, cases, build) -> tuple[float, float, float]:
    """(wall s, simulator CPU s, GEMM cycles per CPU second) of ``cases`` on the fast
    harness, every case checked (after the timed run: the wall time covers starting the
    simulator, writing every case's memory images, while the previous case runs, the runs
    and reading the outputs)."""
    t = time.perf_counter()
    with FastRun(accel, build) as run:
        results = list(run.run_many(cases))
    wall = time.perf_counter() - t
    out = [outcome(c, r.y, r.cycles, r.req_bytes) for c, r in zip(cases, results, strict=True)]
    assert all(o.passed for o in out), [o.failure() for o in out if not o.passed]
    cycles = sum(c.cycles for c in cases)
    return wall, run.cpu_seconds, cycles / max(run.cpu_seconds, 1e-9)


def long_cases(accel, k: int, seed: int):
    """Four GEMMs of two row steps, four column blocks and ``k`` steps (the preset's
    memory timing)."""
    e, mem = accel.engine, accel.memory
    m = min(2 * max(e.dsp_rows, e.lut_rows), PARAM_DEPTH)
    return [random_case(accel, m, 4 * e.cols, k, seed + i, bw=mem.dram_bytes_per_cycle,
                        lat=mem.dram_latency) for i in range(4)]


def preset(accel, args) -> None:
    cases = random_cases(accel, args.cases, seed=args.seed)
    if accel.name == "tiny" and not args.no_artifact:
        cases.append(artifact_layer_case(accel))
    cycles = sum(c.cycles for c in cases)
    t = time.perf_counter()
    fb = build_fast(accel)
    fast_build = time.perf_counter() - t
    fast_wall, fast_cpu, fast_cpu_rate = fast_rate(accel, cases, fb)
    long = long_cases(accel, args.long_k, args.seed)
    long_wall, long_cpu, long_rate = fast_rate(accel, long, fb)
    long_cycles = sum(c.cycles for c in long)
    rows = [("fast harness (wall)", len(cases), cycles, f"{fast_wall:.2f}",
             f"{cycles / fast_wall:,.0f}"),
            ("fast harness (simulator CPU)", len(cases), cycles, f"{fast_cpu:.2f}",
             f"{fast_cpu_rate:,.0f}"),
            (f"fast harness, long GEMMs K={args.long_k} (wall)", len(long), long_cycles,
             f"{long_wall:.2f}", f"{long_cycles / long_wall:,.0f}"),
            (f"fast harness, long GEMMs K={args.long_k} (simulator CPU)", len(long),
             long_cycles, f"{long_cpu:.2f}", f"{long_rate:,.0f}")]
    builds = f"fast {fast_build:.1f} s"
    if not args.fast_only:
        quiet = io.StringIO()
        with contextlib.redirect_stdout(quiet):
            t = time.perf_counter()
            b = build_accel(accel)
            builds += f", stream {time.perf_counter() - t:.1f} s"
            t = time.perf_counter()
            run_verilator(accel, cases[:1], build=b)
            startup_s = time.perf_counter() - t - cases[0].cycles / 1e6  # negligible
            t = time.perf_counter()
            out = run_verilator(accel, cases, build=b)
            vl_s = time.perf_counter() - t
        assert all(o.passed for o in out), [o.failure() for o in out if not o.passed]
        am = cases[:args.amaranth_cases] if args.amaranth_cases is not None else cases
        t = time.perf_counter()
        for c in am:
            r = run_case(with_memory(accel, c.bw, c.lat), c)
            assert (r.y == c.want).all() and r.cycles == c.cycles, c.describe()
        am_s = time.perf_counter() - t
        vl_rate = cycles / max(vl_s - startup_s, 1e-9)
        rows += [("cocotb stream harness + Verilator 5.006", len(cases), cycles,
                  f"{vl_s:.2f}", f"{vl_rate:,.0f}"),
                 ("Amaranth 0.5 pysim", len(am), sum(c.cycles for c in am), f"{am_s:.2f}",
                  f"{sum(c.cycles for c in am) / am_s:,.0f}")]
    print(f"\n{accel.name}: {len(cases)} GEMMs, {cycles} cycles, all bit-exact and cycle-equal "
          f"on every harness run; Verilator builds: {builds} (including Verilog generation; "
          "about 0 when cached)")
    print(format_table(("harness", "GEMMs", "cycles", "wall s", "cycles/s"), rows))
    if not args.fast_only:
        print(f"fast (long, CPU) / cocotb: {long_rate / vl_rate:,.0f}x; cocotb start-up "
              f"{startup_s:.1f} s (subtracted)")


def options(accel, args) -> None:
    long = long_cases(accel, args.long_k, args.seed)
    rows = []
    for label, vargs, threads, opt in OPTION_SETS:
        b = build_fast(accel, args=vargs, threads=threads, cxx_opt=opt)
        wall, cpu, rate = fast_rate(accel, long, b)
        rows.append((label, f"{b.seconds:.1f}", f"{wall:.2f}", f"{cpu:.2f}", f"{rate:,.0f}"))
    print(f"\nfast harness options on {accel.name}, {len(long)} GEMMs of K={args.long_k}:")
    print(format_table(("options", "build s", "wall s", "CPU s", "cycles/CPU s"), rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--long-k", type=int, default=16000)
    ap.add_argument("--no-artifact", action="store_true")
    ap.add_argument("--xc7z020", action="store_true", help="also the full xc7z020 preset")
    ap.add_argument("--amaranth-cases", type=int, default=None,
                    help="run only the first N cases in Amaranth (default: all on tiny, 2 on "
                         "the bigger presets)")
    ap.add_argument("--fast-only", action="store_true",
                    help="only the fast harness (the others take long on big presets)")
    ap.add_argument("--presets", nargs="+", default=None, metavar="PRESET",
                    help="presets or YAML files (default tiny and configs/rtl/mid.yaml, "
                         "plus xc7z020 with --xc7z020)")
    ap.add_argument("--options", action="store_true",
                    help="only compare Verilator/C++ options of the fast harness on tiny")
    args = ap.parse_args()
    if args.options:
        options(load_accelerator("tiny"), args)
        return 0
    names = args.presets or ["tiny", str(CONFIG_DIR / "rtl" / "mid.yaml")]
    presets = [load_accelerator(n) for n in names]
    if args.xc7z020:
        presets.append(load_accelerator("xc7z020"))
    limit = args.amaranth_cases
    for accel in presets:
        args.amaranth_cases = limit if limit is not None or accel.name == "tiny" else 2
        preset(accel, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
