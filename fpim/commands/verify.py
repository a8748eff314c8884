"""``fpim verify``: the preset's RTL on Verilator against the reference and the simulator."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

from fpim.output import format_table, print_json
from quant.errors import check_int_range
from sim.config import load_accelerator

EXAMPLES = """examples:
  fpim verify --accel tiny                       # 24 random GEMMs + one artifact layer
  fpim verify --accel tiny --cases 200 --seed 7
  fpim verify --accel tiny --beats burst --out-pattern heavy --json
  fpim verify --accel tiny --artifact build/demo/artifact --layer layer1.0.conv1

Exit status: 0 all cases pass, 1 some case failed (the first failure and the seed to
reproduce it are printed), 2 bad input or a missing tool.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="run random GEMMs on the preset's Verilog (cocotb + Verilator)",
        description="Generate the preset's accelerator Verilog (as fpim rtl does), build it "
                    "with Verilator, and run N random GEMMs plus one layer of the shipped QAT "
                    "artifact back to back under cocotb. Every output element is compared "
                    "with quant.ref and every GEMM's busy cycles with the simulator's cycle "
                    "mode for the same memory timing.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--accel", required=True, metavar="PRESET_OR_YAML",
                   help="accelerator preset (e.g. tiny) or YAML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. engine.cols=3 (repeatable)")
    p.add_argument("--cases", type=int, default=24, metavar="N",
                   help="random GEMMs (default 24; 0..100000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cases and stimulus")
    p.add_argument("--beats", choices=("burst", "paced"), default="paced",
                   help="load beats back to back or at the DRAM's rate (default paced)")
    p.add_argument("--out-pattern", choices=("always", "mild", "heavy"), default="mild",
                   help="back-pressure on the out stream (default mild; heavy only checks "
                        "that cycles are not below the simulator's)")
    p.add_argument("--artifact", default=None, metavar="DIR",
                   help="QAT artifact whose layer runs as the last case (default: the shipped "
                        "configs/artifacts/cnn_msq4_digits)")
    p.add_argument("--layer", default=None, metavar="NAME",
                   help="its conv/linear layer, on digits test image 0 (default features.3 of "
                        "the shipped artifact; required with --artifact)")
    p.add_argument("--no-artifact", action="store_true",
                   help="skip the QAT artifact layer")
    p.add_argument("--build-dir", default=None, metavar="DIR",
                   help="Verilator build directory root (default build/cocotb)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from hw.tb.cases import random_cases
    from hw.tb.engine import artifact_layer_case, build_accel, run_verilator
    from quant.errors import ArtifactError, ConfigError

    n = check_int_range("cases", args.cases, 0, 100_000)
    accel = load_accelerator(args.accel, args.overrides)
    cases = random_cases(accel, n, seed=args.seed)
    skipped = None
    if args.artifact is not None and args.layer is None:
        raise ConfigError("layer must name a conv/linear layer of --artifact, not missing")
    if not args.no_artifact:
        kw = {} if args.artifact is None else {"art_dir": args.artifact}
        if args.layer is not None:
            kw["layer"] = args.layer
        try:
            cases.append(artifact_layer_case(accel, **kw))
        except ArtifactError as exc:
            if args.artifact is not None:
                raise
            skipped = str(exc)
    if not cases:
        _say("fpim verify: nothing to run (--cases 0 and no artifact layer)")
        return 0
    quiet = io.StringIO()  # cocotb's runner prints every command it runs
    t0 = time.perf_counter()
    _say(f"building the Verilator model of {accel.name} (cached per Verilog content) ...")
    with contextlib.redirect_stdout(quiet):
        b = build_accel(accel, args.build_dir)
    t1 = time.perf_counter()
    _say(f"running {len(cases)} GEMMs under cocotb (seed {args.seed}) ...")
    with contextlib.redirect_stdout(quiet):
        outcomes = run_verilator(accel, cases, seed=args.seed, build=b,
                                 log_file=b.directory / "verify.log",
                                 patterns={"beats": args.beats, "out": args.out_pattern})
    t2 = time.perf_counter()
    passed = sum(o.passed for o in outcomes)
    failed = len(outcomes) - passed
    first = next((o.failure() for o in outcomes if not o.passed), None)
    sets = "".join(f" --set {o}" for o in args.overrides)
    repro = (f"fpim verify --accel {args.accel}{sets} --cases {n} --seed {args.seed} "
             f"--beats {args.beats} --out-pattern {args.out_pattern}")
    if args.json:
        print_json({"accel": accel.name, "top": b.top, "seed": args.seed,
                    "passed": passed, "failed": failed, "first_failure": first,
                    "artifact_skipped": skipped, "reproduce": repro,
                    "build_seconds": round(t1 - t0, 2), "run_seconds": round(t2 - t1, 2),
                    "rtl_cycles": sum(o.cycles_rtl for o in outcomes),
                    "cases": [o.to_dict() for o in outcomes]})
    else:
        rows = [(o.name, o.description.split(": ", 1)[1], o.cycles_sim, o.cycles_rtl,
                 "yes" if o.outputs_equal else "NO", "pass" if o.passed else "FAIL")
                for o in outcomes]
        print(format_table(("case", "GEMM", "cycles_sim", "cycles_rtl", "outputs equal",
                            "result"), rows))
        print(f"\n{passed} passed, {failed} failed; {sum(o.cycles_rtl for o in outcomes)} "
              f"RTL cycles simulated in {t2 - t1:.1f} s (build {t1 - t0:.1f} s); log "
              f"{b.directory / 'verify.log'}")
        if skipped:
            print(f"artifact layer skipped: {skipped}")
        if first:
            print(f"first failure: {first}\nreproduce: {repro}")
    return 0 if failed == 0 else 1
