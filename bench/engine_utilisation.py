"""MAC utilisation of the shipped presets (issue 21's acceptance table).

For each model and preset, what ``fpim simulate --model M --accel P --json`` computes: the
run's MAC utilisation (MACs over the engine's PE-cycles), FPS, DRAM bytes, and the
compute-bound layers (roofline verdict of :meth:`sim.results.RunResult.bound`) with their
lowest utilisation and how many reach 90 %; the layers under 90 % are listed with their
shapes, the utilisation the array's shape allows them (``shape_cap``,
:meth:`sim.results.RunResult.shape_cap`: e.g. N = 49 on 12 columns fills 49 of 60 column
slots) and their utilisation without stall cycles (the ceiling of any memory-side change:
what remains under it is fill, drain and geometry). Each compute-bound layer's utilisation
is also set against its shape cap (the lowest ratio, and how many reach 90 % of their cap:
what fill, drain and stalls cost). Each DRAM-bound layer (left of the roofline's ridge) is
listed with how close it comes to its
roofline (:meth:`sim.results.RunResult.of_roofline`: its bytes at the DRAM bandwidth over its
cycles) and its bytes read over :func:`min_read_bytes` (each weight and each activation read
once: no tiling can read less).

Run: ``.venv/bin/python bench/engine_utilisation.py [--models resnet50 resnet18]
[--accels xc7z020 xc7z045] [--batch 1 2]``. ``--batch`` runs each model at every given
batch size (``fpim simulate --batch``: the images of a batch are columns of one GEMM, so a
7x7 layer's N = 49 becomes 98 at batch 2); FPS is images per second.
Prints measured numbers only; nothing here is a test.
"""

from __future__ import annotations

import argparse

from fpim.flows.simulate import load_workload, simulate
from sim.config import load_accelerator
from sim.timing import ceil_div


def min_read_bytes(e, la: dict) -> int:
    """Bytes a layer reads when every weight-role and activation value is read once."""
    wbits = e.act_bits if la["op"] == "matmul" else e.weight_bits  # R11b
    return la["groups"] * (ceil_div(la["m"] * la["k"] * wbits, 8)
                           + ceil_div(la["k"] * la["n"] * e.act_bits, 8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet18"])
    ap.add_argument("--accels", nargs="+", default=["xc7z020", "xc7z045"])
    ap.add_argument("--batch", nargs="+", type=int, default=[1],
                    help="batch sizes (default 1)")
    args = ap.parse_args()
    for accel_name in args.accels:
        accel = load_accelerator(accel_name)
        e = accel.engine
        for model, batch in ((m, b) for m in args.models for b in args.batch):
            wl, _ = load_workload(accel, model=model, batch=batch)
            r = simulate(accel, wl).result
            rows = r.to_dict()["layers"]
            compute = [la for la in rows if la["bound"] == "compute"]
            low = [la for la in compute if la["mac_util"] < 0.9]
            tag = f"{model} batch {batch}" if batch > 1 else model
            print(f"{tag} on {accel_name} ({e.dsp_rows}+{e.lut_rows} rows x {e.cols}, "
                  f"k_tile {accel.memory.k_tile}): MAC utilisation {r.mac_util():.1%}, "
                  f"{r.fps:.2f} FPS, {r.total_cycles:,} cycles ({r.stall_cycles:,} stall), "
                  f"DRAM {sum(la['dram_bytes'] for la in rows) / 1e6:.1f} MB")
            dram = [la["name"] for la in rows if la["bound"] == "dram"]
            lowest = min(la["mac_util"] for la in compute)
            of_cap = min(compute, key=lambda la: la["mac_util"] / la["shape_cap"])
            print(f"  compute-bound layers: {len(compute)}, lowest {lowest:.1%}, "
                  f"{len(compute) - len(low)} at >= 90 %; DRAM-bound: {len(dram)}")
            print(f"  of their shape cap: lowest {of_cap['mac_util'] / of_cap['shape_cap']:.1%} "
                  f"({of_cap['name']}), "
                  f"{sum(la['mac_util'] >= 0.9 * la['shape_cap'] for la in compute)} at >= 90 %")
            for la in low:
                free = la["macs"] / (r.pes * la["compute_cycles"])
                print(f"    {la['name']}: M={la['m']} N={la['n']} K={la['k']} "
                      f"util {la['mac_util']:.1%} (shape cap {la['shape_cap']:.1%}, "
                      f"without stalls {free:.1%})")
            for layer, la in zip(r.layers, rows, strict=True):
                if la["bound"] != "dram":
                    continue
                read = r.read_bytes(layer)
                print(f"    DRAM-bound {la['name']}: M={la['m']} N={la['n']} K={la['k']} "
                      f"util {la['mac_util']:.1%}, {la['of_roofline']:.1%} of its roofline, "
                      f"reads {read:,} B = {read / min_read_bytes(e, la):.2f}x each operand "
                      "once")


if __name__ == "__main__":
    main()
