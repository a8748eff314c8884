"""Simulator speed: cycle-mode wall time on ResNet-50 and DeiT-T/S/B (whole networks, vector
unit included), functional GMAC/s on DeiT-base GEMMs, whole-ViT functional runs (vit_digits
and DeiT-tiny with random weights, bit-exact against quant.infer, one core), and a
side-by-side with SCALE-Sim 2.0.2 on the same GEMM topology and array.

Run: ``.venv/bin/python bench/sim_speed.py`` (SCALE-Sim from the ``bench`` extra:
``pip install scalesim==2.0.2``; it is run as a subprocess, ``python -m scalesim.scale``).
Prints measured numbers only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quant import ref
from quant.formats import ActFormat
from sim import functional as F
from sim.config import load_accelerator
from sim.engine import simulate
from sim.workload import assign_fraction, load_shipped, parse_topology

SCALESIM_CFG = """[general]
run_name = fpim_bench

[architecture_presets]
ArrayHeight:    {height}
ArrayWidth:     {width}
IfmapSramSzkB:    1024
FilterSramSzkB:   1024
OfmapSramSzkB:    1024
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : os
Bandwidth : 64
MemoryBanks: 1

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
"""

# One DeiT-tiny block's weight GEMMs in SCALE-Sim GEMM format (M = tokens, N = outputs).
# (A DeiT-base block takes SCALE-Sim about 10 minutes on this machine; pass --base for it.)
TOPOLOGY = """Layer Name, M, N, K,
qkv, 197, 576, 192,
proj, 197, 192, 192,
fc1, 197, 768, 192,
fc2, 197, 192, 768,
"""
TOPOLOGY_BASE = """Layer Name, M, N, K,
qkv, 197, 2304, 768,
proj, 197, 768, 768,
fc1, 197, 3072, 768,
fc2, 197, 768, 3072,
"""


def best_time(fn, repeat: int) -> float:
    fn()  # JIT warm-up / caches
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cycle_mode_speed(repeat: int) -> None:
    print(f"== cycle mode wall time (after JIT warm-up, best of {repeat}) ==")
    for preset in ("xc7z020", "xczu9eg"):
        acc = load_accelerator(preset)
        frac = acc.engine.lut_rows / acc.engine.rows
        for model in ("resnet50", "deit_tiny", "deit_small", "deit_base"):
            wl = assign_fraction(load_shipped(model), frac)
            r = simulate(wl, acc, "cycle")
            dt = best_time(lambda wl=wl, acc=acc: simulate(wl, acc, "cycle"), repeat)
            print(f"{model:>10} on {preset}: {len(wl.ops):4d} layers, {r.total_cycles:>11,d} "
                  f"cycles ({r.stall_cycles:,d} stall), {r.fps:7.2f} FPS; "
                  f"wall {dt * 1e3:7.2f} ms")


def functional_speed(repeat: int) -> None:
    print("== functional mode on DeiT-base GEMMs (one block, bit-exact vs quant.ref) ==")
    rng = np.random.default_rng(0)
    for bits, acc_bits, preset in ((8, 48, "xczu9eg"), (4, 24, "xc7z020")):
        acc = load_accelerator(preset)
        fmt = ActFormat(bits)
        total_macs = 0
        total_s = 0.0
        exact = True
        for m, n, k in ((2304, 197, 768), (768, 197, 768), (3072, 197, 768), (768, 197, 3072)):
            lut = round(m * acc.engine.lut_rows / acc.engine.rows)
            rows = F.random_rows(rng, m, k, bits, lut)
            x = rng.integers(0, fmt.qmax + 1, (k, n))
            w_int = F.int_weights(rows)
            y = F.gemm(rows, x, fmt, acc_bits, w_int=w_int)
            exact &= bool(np.array_equal(y, ref.gemm(rows, x, fmt, acc_bits)))
            total_s += best_time(lambda r=rows, x=x, w=w_int, f=fmt, a=acc_bits:
                                 F.gemm(r, x, f, a, w_int=w), repeat)
            total_macs += m * n * k
        print(f"{bits}-bit weights/activations, {acc_bits}-bit accumulators: "
              f"{total_macs / total_s / 1e9:.2f} GMAC/s, bit-exact: {exact}")


def vit_functional_speed(images: int, deit_images: int) -> None:
    """Whole ViTs with random weights (quant.torch.vit_artifact.ptq_vit_artifact: 8-bit fixed
    point, PTQ-calibrated on two random images, as fpim simulate --model deit_tiny
    --functional builds its artifact), every value of the simulator's functional mode
    against quant.infer, one thread."""
    import numba
    import torch

    from quant.infer import quantize_input, run_artifact
    from quant.torch.vit_artifact import ptq_vit_artifact

    numba.set_num_threads(1)
    torch.set_num_threads(1)
    print("== functional mode on whole ViTs (random weights, one core, bit-exact vs "
          "quant.infer) ==")
    acc = load_accelerator("xczu9eg", ["engine.weight_bits=8", "engine.act_bits=8",
                                       "engine.act_signed=true", "engine.acc_bits=32"])
    rng = np.random.default_rng(0)
    for name, shape, n in (("vit_digits", (1, 8, 8), images),
                           ("deit_tiny", (3, 224, 224), deit_images)):
        if n <= 0:
            continue
        t = time.perf_counter()
        art = ptq_vit_artifact(name, seed=0, images=2)
        t_build = time.perf_counter() - t
        codes = quantize_input(art, rng.random((n, *shape)))
        F.run_artifact(art, codes[:1], acc)  # JIT warm-up
        t = time.perf_counter()
        got = F.run_artifact(art, codes, acc)
        t_sim = time.perf_counter() - t
        t = time.perf_counter()
        want = run_artifact(art, codes, return_values=True)
        t_ref = time.perf_counter() - t
        exact = want.keys() == got.keys() and all(np.array_equal(want[k], got[k])
                                                  for k in want)
        print(f"{name:>10}: {n} images, {len(art.layers)} layers, functional "
              f"{t_sim:.3f} s ({t_sim / n * 1e3:.1f} ms/image), quant.infer {t_ref:.3f} s, "
              f"every value bit-exact: {exact} (artifact built in {t_build:.0f} s)")


def scalesim_side_by_side(rows: int, cols: int, scalesim_python: str, topology: str,
                          label: str) -> None:
    print(f"== SCALE-Sim 2.0.2 vs fpim, {label} GEMMs, {rows}x{cols} OS array ==")
    wl = assign_fraction(parse_topology(topology, gemm=True), 0.0)
    acc = load_accelerator("tiny", [
        "part=XCZU9EG", f"engine.dsp_rows={rows}", "engine.lut_rows=0", f"engine.cols={cols}",
        "engine.weight_bits=8", "engine.act_bits=8", "engine.acc_bits=48",
        "memory.weight_bank_kib=64", "memory.act_bank_kib=64", "memory.out_bank_kib=64",
        "memory.k_tile=1024", "memory.dram_bytes_per_cycle=null", "memory.dram_latency=0"])
    cyc = simulate(wl, acc, "cycle")
    plain = simulate(wl, acc, "plain")
    t_fpim = best_time(lambda: simulate(wl, acc, "cycle"), 20)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "fpim.cfg"
        # SCALE-Sim's OS array holds output pixels along its height and filters along its
        # width: fpim's C columns (pixels) are its height, fpim's R rows its width.
        cfg.write_text(SCALESIM_CFG.format(height=cols, width=rows))
        topo = Path(tmp) / "deit_block.csv"
        topo.write_text(topology)
        t = time.perf_counter()
        proc = subprocess.run([scalesim_python, "-m", "scalesim.scale", "-c", str(cfg), "-t",
                               str(topo), "-p", str(Path(tmp) / "out"), "-i", "gemm"],
                              capture_output=True, text=True, cwd=tmp)
        t_ss = time.perf_counter() - t
        if proc.returncode != 0:
            print("SCALE-Sim failed:", proc.stderr.strip().splitlines()[-1:])
            return
        report = next(Path(tmp, "out").rglob("COMPUTE_REPORT.csv"))
        with report.open() as f:
            rd = list(csv.reader(f))
    ss = [int(r[1]) for r in rd[1:] if r and r[0].strip()]
    print(f"{'layer':>6} {'SCALE-Sim':>10} {'fpim plain':>10} {'fpim cycle':>10} "
          f"{'folds*(K+R+C-2)-1':>18}")
    for la, lp, s in zip(cyc.layers, plain.layers, ss, strict=True):
        folds = math.ceil(la.m / rows) * math.ceil(la.n / cols)
        print(f"{la.name:>6} {s:>10,d} {lp.cycles:>10,d} {la.cycles:>10,d} "
              f"{folds * (la.k + rows + cols - 2) - 1:>18,d}")
    print(f"{'total':>6} {sum(ss):>10,d} {plain.total_cycles:>10,d} {cyc.total_cycles:>10,d}")
    print(f"wall time: SCALE-Sim {t_ss:.2f} s (subprocess, incl. start-up), fpim cycle mode "
          f"{t_fpim * 1e3:.3f} ms -> fpim is {t_ss / t_fpim:,.0f}x faster")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=32)
    ap.add_argument("--scalesim-python", default=sys.executable,
                    help="python with scalesim==2.0.2 installed (default: this one)")
    ap.add_argument("--base", action="store_true",
                    help="compare on a DeiT-base block instead of DeiT-tiny (slow: ~10 min)")
    ap.add_argument("--vit-images", type=int, default=64,
                    help="images of the whole-ViT functional run of vit_digits (0: skip)")
    ap.add_argument("--deit-images", type=int, default=1,
                    help="images of the whole DeiT-tiny functional run (0: skip; building "
                         "its artifact takes 1-3 minutes, mostly quantizing weight rows)")
    ap.add_argument("--no-scalesim", action="store_true", help="skip the SCALE-Sim comparison")
    args = ap.parse_args()
    cycle_mode_speed(args.repeat)
    functional_speed(args.repeat)
    vit_functional_speed(args.vit_images, args.deit_images)
    if args.no_scalesim:
        return
    if args.base:
        scalesim_side_by_side(args.rows, args.cols, args.scalesim_python, TOPOLOGY_BASE,
                              "DeiT-base block")
    else:
        scalesim_side_by_side(args.rows, args.cols, args.scalesim_python, TOPOLOGY,
                              "DeiT-tiny block")


if __name__ == "__main__":
    main()
