"""``fpim verify``: the preset's RTL on Verilator against the reference and the simulator."""

from __future__ import annotations

import argparse
import shlex
import sys

from fpim.commands.options import (
    accelerator,
    add_accel,
    add_csv,
    add_json,
    add_progress,
    add_seed,
    check_csv,
    progress,
    refuse_unless,
)
from fpim.output import print_json, print_table
from hw.tb import HARNESSES
from quant.errors import ConfigError, check_int_range
from quant.fileio import check_output

EXAMPLES = """examples:
  fpim verify --accel tiny                       # 24 random GEMMs + one artifact layer
  fpim verify --accel tiny --cases 200 --seed 7
  fpim verify --accel tiny --harness stream --out-pattern heavy --json
  fpim verify --accel tiny --artifact build/demo/artifact --layer layer1.0.conv1
  fpim verify --accel tiny --artifact build/demo/artifact --all-layers   # the whole network
  fpim verify --accel tiny --set engine.act_signed=true --artifact build/vit --block 0 --cases 0
                                                 # encoder block 0 of a ViT, op by op

Exit status: 0 all cases pass, 1 some case failed (the first failure and the seed to
reproduce it are printed), 2 bad input or a missing tool.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="run random GEMMs on the preset's Verilog (cocotb + Verilator)",
        description="Generate the preset's accelerator Verilog (as fpim rtl does), build it "
                    "with Verilator, and run N random GEMMs plus one layer of the shipped QAT "
                    "artifact back to back on one DUT: on the fast harness (DRAM and streams "
                    "in Verilog), the stream-level cocotb testbench (idle cycles, "
                    "back-pressure) or both. Every output element is compared "
                    "with quant.ref and every GEMM's busy cycles with the simulator's cycle "
                    "mode for the same memory timing. --all-layers runs every layer of "
                    "--artifact instead, GEMMs on the RTL and the rest on the host.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_accel(p)
    p.add_argument("--cases", type=int, default=24, metavar="N",
                   help="random GEMMs (default 24; 0..100000)")
    add_seed(p, "the cases and stimulus")
    p.add_argument("--harness", choices=HARNESSES, default="fast",
                   help="fast: DRAM and streams as Verilog around the top (default); stream: "
                        "the cocotb stream-level testbench; both")
    p.add_argument("--out-pattern", choices=("always", "mild", "heavy"), default=None,
                   help="stream harness: back-pressure on the out stream (default mild; "
                        "heavy only checks that cycles are not below the simulator's)")
    p.add_argument("--artifact", default=None, metavar="DIR",
                   help="QAT artifact whose layer runs as the last case (default: the shipped "
                        "configs/artifacts/cnn_msq4_digits)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="its conv/linear layer, on digits test image 0 (default features.3 of "
                        "the shipped artifact; required with --artifact)")
    p.add_argument("--all-layers", action="store_true",
                   help="run every layer of --artifact on one DUT (fast harness; GEMM layers "
                        "on the RTL, the others on the host) on digits test image 0, each "
                        "value compared with quant.infer and each layer's cycles with the "
                        "simulator")
    p.add_argument("--block", type=int, default=None, metavar="N",
                   help="run encoder block N (layers blocks.N.*) of the ViT --artifact op by "
                        "op: GEMMs on the GEMM top (fast harness), layernorm, softmax, gelu "
                        "and a matmul's requant on the vector unit's Verilated components, "
                        "residual adds, layout ops and host matmuls on the host; each op's "
                        "inputs are the RTL's outputs of the ops before it. Every value is "
                        "compared with quant.infer and every RTL op's cycles with the "
                        "simulator's per-layer table")
    p.add_argument("--no-artifact", action="store_true",
                   help="skip the QAT artifact layer")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="Verilator build directory root (default build/cocotb)")
    add_progress(p)
    add_csv(p, "the per-case table")
    add_json(p)
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def reproduce_line(args: argparse.Namespace) -> str:
    """The command that runs the same cases again: every option that changes them."""
    words = ["fpim", "verify", "--accel", args.accel]
    for o in args.overrides:
        words += ["--set", o]
    words += ["--cases", str(args.cases), "--seed", str(args.seed), "--harness", args.harness]
    if args.out_pattern is not None:
        words += ["--out-pattern", args.out_pattern]
    if args.no_artifact:
        words.append("--no-artifact")
    else:
        words += (["--artifact", args.artifact] if args.artifact else []) + \
                 (["--layer", args.layer] if args.layer else []) + \
                 (["--all-layers"] if args.all_layers else []) + \
                 (["--block", str(args.block)] if args.block is not None else [])
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from fpim.flows.verify import verify

    n = check_int_range("cases", args.cases, 0, 100_000)
    refuse_unless(args.artifact, not args.no_artifact, "--artifact", "without --no-artifact",
                  "with it")
    refuse_unless(args.layer, not args.no_artifact, "--layer", "without --no-artifact",
                  "with it")
    refuse_unless(args.out_pattern, args.harness != "fast", "--out-pattern",
                  "with --harness stream or both", "with --harness fast")
    if args.all_layers:
        refuse_unless(args.layer, False, "--layer", "without --all-layers", "with it")
        refuse_unless(True, args.artifact is not None, "--all-layers", "with --artifact DIR",
                      "without it")
    if args.block is not None:
        refuse_unless(args.layer, False, "--layer", "without --block", "with it")
        refuse_unless(args.all_layers, False, "--all-layers", "without --block", "with it")
        refuse_unless(True, args.artifact is not None, "--block", "with --artifact DIR",
                      "without it")
        if args.harness != "fast":
            raise ConfigError(f"--harness must be fast with --block (the block's GEMMs run on "
                              f"the fast harness), not {args.harness}")
    if args.build_dir is not None:
        check_output(args.build_dir, "build-dir", directory=True)
    check_csv(args)
    accel = accelerator(args)
    v = verify(accel, n, seed=args.seed, artifact=args.artifact, layer=args.layer,
               with_artifact=not args.no_artifact, harness=args.harness,
               out_pattern=args.out_pattern or "mild",
               all_layers=args.all_layers, build_dir=args.build_dir, say=_say,
               progress=progress(args), block=args.block)
    if v is None:
        _say("fpim verify: nothing to run (--cases 0 and no artifact layer)")
        return 0
    repro = reproduce_line(args)
    if args.json:
        print_json({"accel": accel.name, "top": v.top, "seed": args.seed,
                    "passed": v.passed, "failed": v.failed, "first_failure": v.first_failure,
                    "artifact_skipped": v.artifact_skipped, "reproduce": repro,
                    "build_seconds": round(v.build_seconds, 2),
                    "run_seconds": round(v.run_seconds, 2), "rtl_cycles": v.rtl_cycles,
                    "harness": args.harness, "cases": [o.to_dict() for o in v.outcomes],
                    "layers": [r.to_dict() for r in v.layers],
                    "logits_equal": v.logits_equal,
                    "block": None if args.block is None else {
                        "index": args.block, "image": v.block_image,
                        "ops": [r.to_dict() for r in v.block_ops]}})
    else:
        rows = [(o.name, o.description.split(": ", 1)[1], o.cycles_sim, o.cycles_rtl,
                 "yes" if o.outputs_equal else "NO", "pass" if o.passed else "FAIL")
                for o in v.outcomes]
        raw = [(o.name, o.description, o.cycles_sim, o.cycles_rtl, o.outputs_equal, o.passed)
               for o in v.outcomes]
        for r in v.layers:
            what = r.gemm.description.split(": ", 1)[1] if r.gemm else f"{r.op} (host)"
            sim, rtl = (r.gemm.cycles_sim, r.gemm.cycles_rtl) if r.gemm else ("", "")
            rows.append((r.name, what, sim, rtl, "yes" if r.equal else "NO",
                         "pass" if r.passed else "FAIL"))
            raw.append((r.name, what, sim if r.gemm else None, rtl if r.gemm else None,
                        r.equal, r.passed))
        if args.block is not None:
            _block_table(v, args)
        else:
            print_table(("name", "description", "cycles_sim", "cycles_rtl", "outputs_equal",
                         "passed"), rows, args.csv, raw)
        print(f"\n{v.passed} passed, {v.failed} failed; {v.rtl_cycles} RTL cycles simulated "
              f"in {v.run_seconds:.1f} s (build {v.build_seconds:.1f} s)"
              + (f"; log {v.log}" if v.log else ""))
        if v.logits_equal is not None:
            print(f"logits {'identical to' if v.logits_equal else 'DIFFER from'} quant.infer")
        if v.artifact_skipped:
            print(f"artifact layer skipped: {v.artifact_skipped}")
        if v.first_failure:
            print(f"first failure: {v.first_failure}\nreproduce: {repro}")
    return 0 if v.failed == 0 else 1


def _block_table(v, args: argparse.Namespace) -> None:
    """The random cases (if any), then one row per op of the block, then its summary."""
    rows = [(o.name, "gemm top", "yes" if o.outputs_equal else "NO", o.cycles_rtl,
             o.cycles_sim, "pass" if o.passed else "FAIL") for o in v.outcomes]
    raw = [(o.name, "gemm top", o.outputs_equal, o.cycles_rtl, o.cycles_sim, o.passed)
           for o in v.outcomes]
    for r in v.block_ops:
        rows.append((r.name, r.runs_on, "yes" if r.equal else "NO",
                     "" if r.cycles_rtl is None else r.cycles_rtl,
                     "" if r.cycles_rtl is None or r.cycles_sim is None else r.cycles_sim,
                     "pass" if r.passed else "FAIL"))
        raw.append((r.name, r.runs_on, r.equal, r.cycles_rtl,
                    r.cycles_sim if r.cycles_rtl is not None else None, r.passed))
    print_table(("op", "runs_on", "outputs_equal", "cycles_rtl", "cycles_sim", "passed"),
                rows, args.csv, raw)
    ops = v.block_ops
    rtl = [r for r in ops if r.cycles_rtl is not None]
    print(f"\nblock {args.block} on {v.block_image}: {len(ops)} ops, "
          f"{sum(not r.equal for r in ops)} with outputs differing from quant.infer; "
          f"{len(rtl)} on the RTL ({sum(r.runs_on == 'gemm top' for r in rtl)} on the GEMM "
          f"top, {sum(r.runs_on.startswith('vector') for r in rtl)} on the vector unit), "
          f"cycles equal to the simulator's in {sum(bool(r.cycles_equal) for r in rtl)}/"
          f"{len(rtl)}; {len(ops) - len(rtl)} on the host")
    print("cycles compared: a GEMM's busy cycles (cycle mode); a vector op's first input beat "
          "to last output beat, stall-free (R14/R15); the softmax's own R14 cycles (the "
          "table's exposed + hidden cycles of R16)")
