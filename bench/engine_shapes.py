"""Engine shapes on one part: what a per-layer utilisation floor costs in throughput.

Issue 21 asks every compute-bound layer to reach 90 % MAC utilisation. On an
output-stationary array whose rows share one weight stream, a layer with N output pixels on
C columns fills at most ``N / (ceil(N / C) * C)`` of its column slots (a 7x7 layer, N = 49, on
12 columns: 49 of 60), so the floor is a constraint on the engine's shape. This script
measures its price: every shape (columns, DSP-core rows, LUT-core rows) that fits the part
within the preset's own share of its LUTs (``sim.resources``: the same headroom), with the
preset's K tile and its banks grown to one tile (R5, ``sim.search.with_banks``), is timed in
cycle mode on each model with the SP2 fraction its row split gives (as ``fpim simulate``
does). It prints, per column count, the fastest shape and the fastest shape whose
compute-bound layers (roofline verdict, ``RunResult.bound``) all reach ``--floor`` on every
model, then the two side by side. Speed is the geometric mean of the models' FPS.

Run: ``.venv/bin/python bench/engine_shapes.py [--accel xc7z020] [--models resnet50 resnet18]
[--cols 7 8 ... 25] [--floor 0.9] [--k-tile KT]``. Prints measured numbers only; nothing here
is a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from tqdm import tqdm

from fpim.flows.simulate import load_workload, simulate
from sim.config import load_accelerator
from sim.resources import estimate_resources, fits
from sim.search import with_banks

COLS = tuple(range(4, 65))


def shape(base, cols: int, dsp_rows: int, lut_rows: int):
    """``base`` with this engine shape and banks holding one tile at the preset's K tile."""
    e = dataclasses.replace(base.engine, cols=cols, dsp_rows=dsp_rows, lut_rows=lut_rows)
    return dataclasses.replace(base, engine=e, memory=with_banks(base.memory, e))


def lut_rows_range(base, cap: float, cols: int, dsp_rows: int, span: int) -> range:
    """The ``span`` largest LUT-core row counts that fit beside ``dsp_rows`` (may be empty)."""
    lo, hi = 0, 1
    while fits(shape(base, cols, dsp_rows, hi), cap):
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # lo fits (or is 0), hi does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(shape(base, cols, dsp_rows, mid), cap) else (lo, mid)
    return range(lo, max(0, lo - span), -1)


def measure(acc, models: list[str], floor: float) -> dict:
    """FPS, MAC utilisation and the lowest compute-bound layer's utilisation per model."""
    out = {}
    for model in models:
        wl, _ = load_workload(acc, model=model)
        r = simulate(acc, wl).result
        layers = r.to_dict()["layers"]
        util = [la["mac_util"] for la in layers if la["bound"] == "compute"]
        out[model] = (r.fps, r.mac_util(), min(util, default=0.0), sum(u >= floor for u in util),
                      len(util))
    return out


def describe(acc, m: dict) -> str:
    e, est = acc.engine, estimate_resources(acc)
    runs = "; ".join(f"{model} {fps:.2f} FPS, {util:.1%}, lowest layer {low:.1%} "
                     f"({ok}/{n} >= floor)" for model, (fps, util, low, ok, n) in m.items())
    return (f"{e.dsp_rows:2d}+{e.lut_rows:3d} rows x {e.cols:2d} "
            f"(LUT {est.lut:,}, DSP {est.dsp}, BRAM36 {est.bram36:g}): {runs}")


def speed(m: dict) -> float:
    return math.exp(sum(math.log(v[0]) for v in m.values()) / len(m))


def meets(m: dict, floor: float) -> bool:
    return all(v[2] >= floor for v in m.values())


def main(args: argparse.Namespace) -> None:
    base = load_accelerator(args.accel)
    cap = estimate_resources(base).lut / base.part.lut  # the preset's own, before --k-tile
    if args.k_tile is not None:
        base = dataclasses.replace(base, memory=dataclasses.replace(base.memory,
                                                                    k_tile=args.k_tile))
    e0 = base.engine
    print(f"{args.accel}: preset {e0.dsp_rows}+{e0.lut_rows} rows x {e0.cols}, LUT cap "
          f"{cap:.1%} of {base.part.lut:,} (the preset's own), k_tile {base.memory.k_tile}, "
          f"floor {args.floor:.0%} on {', '.join(args.models)}")
    print(f"  preset: {describe(base, measure(base, args.models, args.floor))}")
    best_all = best_floor = None
    for cols in tqdm(args.cols, desc="columns", leave=False):
        fastest = floored = None
        # DSP rows beside two post-processing DSPs per column and the two load-size ones
        top = (base.part.dsp - 2 * cols - 2) * base.engine.dsp_packing // cols
        for d in range(top, max(-1, top - args.dsp_span), -1):
            for lrows in lut_rows_range(base, cap, cols, d, args.lut_span):
                acc = shape(base, cols, d, lrows)
                if d + lrows == 0 or not fits(acc, cap):
                    continue
                m = measure(acc, args.models, args.floor)
                if fastest is None or speed(m) > speed(fastest[1]):
                    fastest = (acc, m)
                if meets(m, args.floor) and (floored is None or speed(m) > speed(floored[1])):
                    floored = (acc, m)
        if fastest is None:
            tqdm.write(f"  {cols:2d} columns: no shape fits")
            continue
        tqdm.write(f"  {cols:2d} columns, fastest:       {describe(*fastest)}")
        tqdm.write(f"  {cols:2d} columns, fastest floor: "
                   + (describe(*floored) if floored else "none meets the floor"))
        if best_all is None or speed(fastest[1]) > speed(best_all[1]):
            best_all = fastest
        if floored and (best_floor is None or speed(floored[1]) > speed(best_floor[1])):
            best_floor = floored
    print(f"fastest shape:               {describe(*best_all)}")
    if best_floor is None:
        print("fastest shape meeting the floor: none")
    else:
        print(f"fastest shape meeting the floor: {describe(*best_floor)}")
        print(f"the floor costs {1 - speed(best_floor[1]) / speed(best_all[1]):.1%} of the "
              "fastest shape's speed (geometric mean of the models' FPS)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accel", default="xc7z020", help="preset name or YAML (default xc7z020)")
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet18"])
    ap.add_argument("--cols", nargs="+", type=int, default=list(COLS), metavar="C",
                    help="column counts to try (default 4 to 64)")
    ap.add_argument("--floor", type=float, default=0.9,
                    help="utilisation every compute-bound layer must reach (default 0.9)")
    ap.add_argument("--k-tile", type=int, default=None,
                    help="K tile of every shape (default: the preset's; the LUT cap stays the "
                         "preset's own)")
    ap.add_argument("--dsp-span", type=int, default=8,
                    help="DSP-core row counts tried per column count, from the most down")
    ap.add_argument("--lut-span", type=int, default=16,
                    help="LUT-core row counts tried per DSP-core count, from the most down")
    main(ap.parse_args())
