"""``fpim sweep``: a design-space sweep on Dask (accuracy, simulation, synthesis, RTL
verification per point), cached by content in the output directory."""

from __future__ import annotations

import argparse
import sys

from fpim.commands.options import add_json
from fpim.output import print_json

#: Pareto rows printed (all of them are in pareto.txt / pareto.csv).
SHOWN = 20

EXAMPLES = """examples:
  fpim sweep configs/sweeps/quick.yaml --out runs/quick            # LocalCluster, 1 worker/core
  fpim sweep configs/sweeps/codesign.yaml --workers 2 --out runs/codesign
  fpim sweep configs/sweeps/codesign.yaml --scheduler tcp://HOST:8786 --out runs/codesign
  fpim sweep configs/sweeps/codesign.yaml --out runs/codesign --resume   # after an interruption
  fpim sweep configs/sweeps/quick.yaml --workers 0 --out runs/q   # serial, in this process

The spec format is documented in fpim/flows/sweep_spec.py and by the shipped specs in
configs/sweeps/. Outputs: results.csv/.jsonl/.txt (one row per point), pareto.csv/.txt,
fps_vs_lut.png and fps_vs_dsp.png (with simulate), accuracy_vs_fraction.png (with accuracy),
cache/ (one JSON record per task; a re-run computes only what is missing).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="design-space sweep on Dask: accuracy, simulation, synthesis per point",
        description="Run every point of a sweep spec (axes x stages, with constraints) as "
                    "one Dask task graph: on an embedded LocalCluster (default), on a "
                    "running scheduler (--scheduler), or serially (--workers 0). Each "
                    "result is cached under --out by the hash of what it depends on; "
                    "points that share an accuracy or a synthesis share one task.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", metavar="SPEC.yaml", help="sweep spec (see configs/sweeps/)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the embedded LocalCluster (default: one "
                            "per core; 0: run serially in this process)")
    p.add_argument("--out", default="runs/sweep", metavar="DIR",
                   help="output directory: tables and the result cache (default runs/sweep)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out (an interrupted run, or an extended "
                        "spec): every cached result is reused")
    add_json(p, "the summary and Pareto table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fpim.flows.sweep import run_sweep
    from fpim.flows.sweep_results import pareto_columns, to_text
    from fpim.flows.sweep_spec import load_spec

    spec = load_spec(args.spec)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        r = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                      resume=args.resume, progress=sys.stderr.isatty(), say=say)
    except KeyboardInterrupt:
        say(f"interrupted: every finished result is saved in {args.out}/cache; continue with "
            f"fpim sweep {args.spec} --out {args.out} --resume")
        return 130
    summary = {"spec": spec.name, "out": str(r.out), "executor": r.executor,
               "points": r.points, "status": r.status, "tasks": r.tasks,
               "computed": r.computed, "cached": r.cached, "failed_tasks": r.failed_tasks,
               "seconds": round(r.seconds, 2), "objectives": r.objectives, "files": r.files,
               "plots": r.plots}
    if args.json:
        print_json({**summary, "pareto": r.pareto})
        return 0
    status = ", ".join(f"{n} {s}" for s, n in sorted(r.status.items()))
    print(f"sweep {spec.name}: {r.points} points ({status}); {r.tasks} tasks: "
          f"{r.computed} computed ({r.failed_tasks} failed), {r.cached} cached; "
          f"{r.seconds:.1f} s on {r.executor}")
    if r.objectives:
        goals = ", ".join(f"{c} ({d})" for c, d in r.objectives)
        print(f"\nPareto front ({len(r.pareto)} points; {goals}):")
        print(to_text(pareto_columns(spec), r.pareto, SHOWN))
    print(f"\nresults: {r.out}/results.csv (.jsonl, .txt), Pareto front: {r.out}/pareto.csv")
    if r.plots:
        print(f"plots: {', '.join(r.plots)}")
    return 0
