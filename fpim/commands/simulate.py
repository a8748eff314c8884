"""``fpim simulate``: time a workload on an accelerator preset (and optionally compute it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fpim.commands.options import (
    accelerator,
    add_accel,
    add_csv,
    add_json,
    add_progress,
    add_seed,
    add_simulation,
    add_workload,
    check_csv,
    progress,
    refuse_ignored_workload,
    refuse_unless,
    torch_model_shape,
    workload_source,
)
from fpim.output import format_table, print_json
from quant.errors import ConfigError, check_int_range
from quant.fileio import write_atomic

EXAMPLES = """examples:
  fpim simulate --model resnet50 --accel xc7z020                 # shipped topology, cycle mode
  fpim simulate --topology configs/workloads/deit_base.csv --accel xczu9eg --json
  fpim simulate --model resnet18 --accel xc7z045 --set engine.cols=16 --mode analytical
  fpim simulate --model resnet18 --accel tiny --set memory.dram_bytes_per_cycle=null \\
                --set memory.dram_latency=0 --mode plain      # plain output-stationary count
  fpim simulate --artifact runs/a --accel tiny --functional      # bit-exact outputs too
  fpim simulate --model deit_tiny --accel xczu9eg --functional   # whole DeiT-T, random weights
  fpim simulate --model deit_tiny --accel xczu9eg --functional \\
                --checkpoint deit_tiny_patch16_224-a1311bcf.pth --images 2  # your weights
  fpim simulate --model mynet.py:make --input-shape 1,3,32,32 --accel xc7z020  # your model
  fpim simulate --model mypkg.models:build --input-shape 1,3,32,32 --accel xc7z020
  fpim simulate --model mynet.onnx --accel xc7z020                # exported to ONNX
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="cycles, stalls, throughput, resources (and bit-exact outputs)",
        description="Simulate a workload on the mixed-scheme GEMM engine: per-layer cycles, "
                    "stall cycles, core utilization, DRAM bytes; totals, latency, FPS, GOPS "
                    "and the resource estimate. Timing rules: docs/timing.md.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload(p)
    add_accel(p)
    add_simulation(p)
    p.add_argument("--functional", action="store_true",
                   help="also compute bit-exactly in numba and compare with the reference: "
                        "an artifact or a DeiT (deit_tiny, deit_small, deit_base: its integer "
                        "artifact built in-process, PTQ) as a whole network, every value "
                        "against quant.infer; any other workload GEMM by GEMM on random "
                        "inputs against quant.ref")
    p.add_argument("--checkpoint", metavar="FILE", default=None,
                   help="--model deit_* --functional only: the float weights (timm layout; "
                        ".pth/.pt state_dict, optionally under 'model', or .safetensors; the "
                        "loader of fpim quantize --checkpoint) to quantize instead of random "
                        "weights")
    p.add_argument("--images", type=int, default=None,
                   help="--functional with --artifact or --model deit_*: random input images "
                        "(seeded by --seed) the whole network is computed on; a DeiT is also "
                        "calibrated on as many other random images (default 1)")
    add_seed(p, "the functional inputs and a DeiT's random weights and calibration images "
                "(--functional only; default 0)", default=None)
    p.add_argument("--max-cycles", type=int, default=None,
                   help="stop the cycle kernel here and report where (--mode cycle only; "
                        "default: no limit)")
    add_progress(p)
    add_json(p, "tables")
    add_csv(p, "the per-layer table (every column of the JSON's layers)")
    p.set_defaults(func=run)


def _refuse_ignored(args: argparse.Namespace) -> None:
    """Refuse options that would have no effect on the given workload and mode."""
    from fpim.flows.simulate import DEIT_MODELS

    refuse_ignored_workload(args)
    source = workload_source(args)
    refuse_unless(args.sp2_fraction, not args.artifact, "--sp2-fraction",
                  "to --model and --topology (an artifact has its own schemes)", source)
    refuse_unless(args.seed, args.functional, "--seed", "with --functional", "without it")
    refuse_unless(args.images, args.functional, "--images", "with --functional", "without it")
    whole = bool(args.artifact) or args.model in DEIT_MODELS
    refuse_unless(args.images, whole, "--images", "to --artifact or --model "
                  f"{'|'.join(DEIT_MODELS)} (whole networks)", source)
    refuse_unless(args.checkpoint, args.model in DEIT_MODELS, "--checkpoint",
                  f"to --model {'|'.join(DEIT_MODELS)}", source)
    refuse_unless(args.checkpoint, args.functional, "--checkpoint", "with --functional",
                  "without it")
    refuse_unless(args.max_cycles, args.mode == "cycle", "--max-cycles", "to --mode cycle",
                  f"--mode {args.mode}")


def run(args: argparse.Namespace) -> int:
    from fpim.flows.simulate import DEIT_MODELS, deit_artifact, load_workload, simulate
    from quant.infer import MAX_IMAGES
    from sim.timing import NO_LIMIT

    _refuse_ignored(args)
    images = 1 if args.images is None else check_int_range("images", args.images, 1, MAX_IMAGES)
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        raise ConfigError(f"checkpoint must be an existing file, not {args.checkpoint!r}")
    batch = 1 if args.batch is None else check_int_range("batch", args.batch, 1, 1 << 20)
    if args.max_cycles is not None:
        check_int_range("max-cycles", args.max_cycles, 1, NO_LIMIT)
    check_csv(args)
    torch_model_shape(args)
    accel = accelerator(args)
    wl, art = load_workload(accel, artifact=args.artifact, model=args.model,
                            topology=args.topology, gemm=True if args.gemm else None,
                            input_shape=args.input_shape, batch=batch,
                            sp2_fraction=args.sp2_fraction)
    build = None
    if args.functional and args.model in DEIT_MODELS:
        def build():
            return deit_artifact(accel, args.model, checkpoint=args.checkpoint,
                                 seed=args.seed or 0, images=images,
                                 sp2_fraction=args.sp2_fraction, progress=progress(args))
    sim = simulate(accel, wl, art, mode=args.mode, max_cycles=args.max_cycles,
                   functional=args.functional, seed=args.seed or 0, images=images, build=build)
    result, data = sim.result, sim.to_dict()

    if args.csv is not None:
        write_atomic(args.csv, result.to_csv())
    if args.json:
        print_json(data)
    else:
        rows = [(la.name, la.op, la.m, la.n, la.k, la.groups, la.rows_fixed, la.rows_lut,
                 la.cycles, la.stall_cycles, la.hidden_cycles, f"{la.util_dsp:.2f}",
                 f"{la.util_lut:.2f}", f"{result.mac_util(la):.2f}", result.bound(la),
                 *((f"{result.of_roofline(la):.2f}", f"{result.shape_cap(la):.2f}") if la.macs
                   else ("", "")))
                for la in result.layers]
        print(format_table(("name", "op", "m", "n", "k", "groups", "rows_fixed", "rows_lut",
                            "cycles", "stall_cycles", "hidden_cycles", "util_dsp", "util_lut",
                            "mac_util", "bound", "of_roofline", "shape_cap"), rows))
        t = result.totals()
        r = data["resources"]
        print(f"\n{wl.name} on {accel.name} ({args.mode} mode, {accel.clock_mhz:g} MHz): "
              f"{t['total_cycles']} cycles ({t['stall_cycles']} stall), "
              f"{t['latency_ms']:.3f} ms per batch of {t['batch']}, {t['fps']:.2f} FPS "
              f"(images/s), {t['gops']:.1f} GOPS, "
              f"{t['gops_per_dsp']:.3f} GOPS/DSP, {t['gops_per_klut']:.3f} GOPS/kLUT, "
              f"MAC utilisation {t['mac_util']:.1%}")
        print(f"cycles: engine {t['engine_cycles']} ({t['compute_cycles'] - t['vector_cycles']}"
              f" compute + {t['stall_cycles']} DRAM stall), vector unit {t['vector_cycles']} "
              f"not hidden + {t['hidden_vector_cycles']} hidden behind the engine")
        print(f"resources (estimate): LUT {r['lut']}/{accel.part.lut}, FF {r['ff']}/"
              f"{accel.part.ff}, DSP {r['dsp']}/{accel.part.dsp}, BRAM36 {r['bram36']}/"
              f"{accel.part.bram36}"
              + (f" (vector unit included: LUT {r['vector_unit']['lut']}, DSP "
                 f"{r['vector_unit']['dsp']})" if "vector_unit" in r else ""))
        frac = data["config"]["sp2_fraction"]
        if frac is not None:
            how = ("--sp2-fraction" if args.sp2_fraction is not None else
                   "the engine's split lut_rows / (dsp_rows + lut_rows)")
            print(f"sp2_fraction {frac:g} of each layer's rows on the LUT core ({how})")
        if sim.functional is not None:
            f = sim.functional
            rate = f" at {f['gmacs_per_s']:.2f} GMAC/s" if "gmacs_per_s" in f else ""
            if "layers_checked" in f:  # a whole network
                built = data["config"].get("built_artifact")
                how = "" if built is None else (
                    f" ({built['model']} artifact from {built['weights']} weights, seed "
                    f"{built['seed']}, PTQ on {built['calibration_images']} random image"
                    f"{'s' * (built['calibration_images'] != 1)})")
                print(f"functional: {'bit-exact' if f['bit_exact'] else 'MISMATCH'} against "
                      f"quant.infer on {f['images']} random image{'s' * (f['images'] != 1)}"
                      f"{how}: logits {'equal' if f['logits_bit_exact'] else 'DIFFER'}, "
                      f"{f['layers_checked'] - len(f['mismatched'])}/{f['layers_checked']} "
                      f"values equal (functional model {f['seconds']:.1f} s)")
                if f["mismatched"]:
                    print(f"mismatched values: {', '.join(f['mismatched'])}")
            else:
                print(f"functional: {'bit-exact' if f['bit_exact'] else 'MISMATCH'} against "
                      f"quant.ref{rate}")
    return 0 if sim.bit_exact else 1
