"""fpim sweep scaling: a synthesis-bound sweep serially and on LocalClusters of 1 and 2 worker
processes (wall time, speed-up, efficiency side by side), and the per-task overhead of Dask
on the simulate-only spec (configs/sweeps/quick.yaml).

Run: ``.venv/bin/python bench/sweep_scaling.py`` (about 3 x the serial synthesis time;
``--synth-points 4`` halves it, ``--repeat 3`` takes medians of interleaved runs). Every run
writes a fresh output directory, so nothing comes from the cache; clusters are started
before their clock starts (start-up is printed apart).
Prints measured numbers only; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from dask.distributed import Client, LocalCluster

from fpim.flows.sweep import run_sweep
from fpim.flows.sweep_spec import load_spec, spec_from_dict
from fpim.output import format_table

ROOT = Path(__file__).resolve().parent.parent


def synth_spec(points: int):
    """``points`` (4 or 8) one-column engines of equal size: LUT scheme x family (x bits)."""
    axes = {"accel": "tiny", "engine.cols": 1, "engine.dsp_rows": 1, "engine.lut_rows": 1,
            "engine.lut_scheme": ["sp2", "pot"], "part": ["XC7Z020", "XCZU9EG"]}
    if points == 8:
        axes["engine.weight_bits"] = [3, 4]
    return spec_from_dict({"name": f"synth{points}", "stages": ["synth"], "axes": axes}, ROOT)


def timed(spec, workers: int, tmp: Path, tag: str = "") -> dict:
    """One run of ``spec`` into a new directory: serially (0) or on a new LocalCluster."""
    out = tmp / f"{spec.name}-{workers}{tag}"
    if workers == 0:
        t = time.perf_counter()
        r = run_sweep(spec, out, workers=0)
        return {"workers": 0, "seconds": time.perf_counter() - t, "startup": 0.0, "run": r}
    t = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        startup = time.perf_counter() - t
        t = time.perf_counter()
        r = run_sweep(spec, out, client=client)
        return {"workers": workers, "seconds": time.perf_counter() - t, "startup": startup,
                "run": r}


def task_seconds(out: Path) -> float:
    """The time spent inside the stage functions (the records' ``seconds``)."""
    return sum(json.loads(p.read_text())["seconds"] for p in (out / "cache").rglob("*.json"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth-points", type=int, choices=(4, 8), default=8,
                    help="synthesis tasks of the scaling sweep (default 8)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run serial, 1 and 2 workers this many times, interleaved, and take "
                         "each one's median (evens out a machine shared with other jobs)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fpim-sweep-bench-") as d:
        tmp = Path(d)
        spec = synth_spec(args.synth_points)
        rounds = [[timed(spec, w, tmp, f"-{i}") for w in (0, 1, 2)]
                  for i in range(max(1, args.repeat))]
        runs = [sorted((rnd[j] for rnd in rounds), key=lambda r: r["seconds"])[len(rounds) // 2]
                for j in range(3)]
        serial = runs[0]["seconds"]
        scaling = [{"executor": "serial" if r["workers"] == 0 else
                    f"LocalCluster, {r['workers']} worker{'s' if r['workers'] > 1 else ''}",
                    "tasks": r["run"].computed, "seconds": round(r["seconds"], 1),
                    "speedup": round(serial / r["seconds"], 2),
                    "efficiency": round(serial / r["seconds"] / max(1, r["workers"]), 2),
                    "startup_s": round(r["startup"], 1)} for r in runs]
        quick = load_spec(ROOT / "configs/sweeps/quick.yaml")
        overhead = []
        for w in (0, 2):
            r = timed(quick, w, tmp)
            inside = task_seconds(tmp / f"{quick.name}-{w}")
            n = r["run"].computed
            overhead.append({
                "executor": "serial" if w == 0 else f"LocalCluster, {w} workers",
                "tasks": n, "seconds": round(r["seconds"], 2),
                "in_tasks_s": round(inside, 2),
                "overhead_ms_per_task": round(1e3 * (r["seconds"] * max(1, w) - inside) / n,
                                              2)})
    if args.json:
        json.dump({"load_average": load, "scaling": scaling, "overhead": overhead},
                  sys.stdout, indent=2)
        print()
        return 0
    print(f"synthesis-bound sweep: {spec.name} ({len(spec)} Yosys runs of one-column "
          f"engines), median of {max(1, args.repeat)}; 1-minute load average at the start "
          f"{load:.1f} on {os.cpu_count()} cores")
    print(format_table(list(scaling[0]), [list(r.values()) for r in scaling]))
    print(f"\nper-task overhead on {quick.name}.yaml ({len(quick)} simulate points, batched): "
          f"(wall x workers - time inside the tasks) / tasks")
    print(format_table(list(overhead[0]), [list(r.values()) for r in overhead]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
