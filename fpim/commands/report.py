"""``fpim report``: a report directory (HTML, markdown, CSV, JSON, PNG plots) of one run or
one MSQ search."""

from __future__ import annotations

import argparse
import functools
import shlex
from pathlib import Path

from fpim.commands.options import (
    accelerator,
    add_accel,
    add_msq_search,
    add_progress,
    add_seed,
    add_simulation,
    add_workload,
    progress,
    torch_model_shape,
)
from quant.errors import ConfigError

EXAMPLES = """examples:
  fpim report --artifact configs/artifacts/cnn_msq4_digits --accel xc7z020 \\
              --pim sram512x128_adc7                        # -> reports/cnn_msq4_digits_xc7z020/
  fpim report --model resnet50 --accel xc7z020 --out /tmp/r50
  fpim report --model resnet18 --accel tiny --synth --verify  # Yosys and RTL cycles too
  fpim report --search msq --accel xc7z020 --bits 4 --model resnet18

Files (columns and keys: docs/report.md): index.html (self-contained), index.md, summary.json,
layers.csv and cycles.png, roofline.png, utilisation.png, resources.png [, verify.png,
pim_energy.png, pim_layers.csv, pim_accuracy.png]; a search writes engines.csv,
fractions.csv, fraction.png and pareto.png instead of the layer files.
"""

#: Options of a run report and of a search report (the other kind refuses them).
RUN_OPTIONS = ("mode", "sp2_fraction", "batch", "synth", "family", "yosys", "verify",
               "verify_cases", "seed", "pim", "pim_accuracy", "pim_limit")
SEARCH_OPTIONS = ("bits", "ideal_memory", "lut_cap", "packing")
#: Options that only mean something next to another.
NEEDS = {"family": "synth", "yosys": "synth", "verify_cases": "verify", "seed": "verify",
         "gemm": "topology", "input_shape": "model", "pim_accuracy": "pim",
         "pim_limit": "pim_accuracy"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write a report (HTML, markdown, CSV, JSON, plots) of a run or a search",
        description="Simulate a workload on an accelerator (the numbers of fpim simulate "
                    "--json) and write reports/<run>/ (or --out): per-layer cycles, a "
                    "roofline, MAC utilisation and resources as PNG plots, index.html "
                    "(self-contained) and index.md, layers.csv and summary.json. --synth adds "
                    "Yosys's count of the datapath, --verify the RTL's cycles per case, "
                    "--pim the energy per layer on PIM macros. --search msq reports the MSQ "
                    "search instead: throughput against the LUT-scheme fraction and the "
                    "Pareto front. The directory is replaced in one step.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_workload(p)
    add_accel(p)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="report directory: a new one, or an earlier report it replaces "
                        "(default: reports/<run>)")
    add_progress(p)
    run = p.add_argument_group("run report")
    add_simulation(run)
    run.add_argument("--synth", action="store_true",
                     help="also synthesize the engine datapath with Yosys (minutes for a full "
                          "preset) and plot it next to the model")
    run.add_argument("--family", choices=("xc7", "xcup"), default=None,
                     help="with --synth: synth_xilinx family (default: from the part)")
    run.add_argument("--yosys", default=None, metavar="PATH",
                     help="with --synth: yosys binary (default: PATH)")
    run.add_argument("--verify", action="store_true",
                     help="also run the RTL on Verilator (as fpim verify) and plot simulator "
                          "vs RTL cycles per case")
    run.add_argument("--verify-cases", type=int, default=24, metavar="N",
                     help="with --verify: random GEMMs besides the shipped artifact's layer "
                          "(default 24)")
    add_seed(run, "the --verify cases")
    run.add_argument("--pim", metavar="MACRO", default=None,
                     help="with --artifact: also cost it on this PIM macro preset or YAML "
                          "(energy per layer, as fpim pim simulate)")
    run.add_argument("--pim-accuracy", action="store_true",
                     help="with --pim: also the artifact's test accuracy on the macro with "
                          "thermal noise 0, 0.25, 0.5 LSB and the macro's ADC bits -1, 0, +1 "
                          "(about a second per 100 images per point on digits)")
    run.add_argument("--pim-limit", type=int, default=100, metavar="N",
                     help="with --pim-accuracy: test images per point (default 100)")
    search = p.add_argument_group("search report")
    search.add_argument("--search", choices=("msq",), default=None,
                        help="report the MSQ search on --accel's part, memory and clock")
    search.add_argument("--bits", type=int, default=None,
                        help="weight and activation bits (3..8), required with --search")
    add_msq_search(search)
    p.set_defaults(func=functools.partial(_run, p))


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The ``fpim report`` command that gives ``args``: every option not at its default
    (but ``--progress``, which changes no output)."""
    words = ["fpim", "report"]
    for a in parser._actions:
        value = getattr(args, a.dest, None)
        if not a.option_strings or value is None or value == a.default or \
                a.dest == "progress":
            continue
        flag = a.option_strings[-1]
        if isinstance(a, argparse._StoreTrueAction):
            words.append(flag)
        elif isinstance(a, argparse._AppendAction):
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One line for an option the chosen kind of report does not take."""
    given = {d for d in (*RUN_OPTIONS, *SEARCH_OPTIONS, *NEEDS)
             if getattr(args, d) != parser.get_default(d)}
    if args.search:
        wrong = [d for d in RUN_OPTIONS if d in given]
        if wrong:
            raise ConfigError(f"{_flag(wrong[0])} must be left out with --search (a run report "
                              "option), not given")
        if args.artifact:
            raise ConfigError("search workload must be --model or --topology, not --artifact "
                              "(fpim search msq --artifact DIR --save YAML searches the "
                              "engine for an artifact's own schemes)")
        if args.bits is None:
            raise ConfigError("bits must be given with --search, not missing")
    else:
        wrong = [d for d in SEARCH_OPTIONS if d in given]
        if wrong:
            raise ConfigError(f"{_flag(wrong[0])} must come with --search msq, not alone")
    for d, need in NEEDS.items():
        if d in given and not getattr(args, need):
            raise ConfigError(f"{_flag(d)} must come with {_flag(need)}, not alone")


def _run_name(args: argparse.Namespace, accel_name: str) -> str:
    if args.model:
        from quant.modelspec import parse_model

        stem = parse_model(args.model).label  # factory function, ONNX file stem or name
    else:
        stem = Path((args.artifact or args.topology).rstrip("/")).stem
    return f"msq{args.bits}_{stem}_{accel_name}" if args.search else f"{stem}_{accel_name}"


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from fpim.flows.pim_deploy import macro_with
    from fpim.flows.report import (
        REPORTS_DIR,
        check_out_dir,
        plan_run,
        plan_search,
        run_report,
        search_report,
        write_report,
    )

    _check_options(parser, args)
    accel = accelerator(args)
    out = check_out_dir(args.out or REPORTS_DIR / _run_name(args, accel.name))
    shape = torch_model_shape(args)
    command = command_line(parser, args)
    gemm = True if args.gemm else None
    if args.search:
        plan = plan_search(accel, model=args.model, topology=args.topology, gemm=gemm,
                           bits=args.bits, ideal_memory=args.ideal_memory,
                           lut_cap=args.lut_cap,
                           packings=tuple(args.packing) if args.packing else None)
        files = search_report(plan, command, progress(args))
    else:
        plan = plan_run(accel, artifact=args.artifact, model=args.model,
                        topology=args.topology, gemm=gemm, input_shape=shape,
                        batch=1 if args.batch is None else args.batch,
                        sp2_fraction=args.sp2_fraction, mode=args.mode,
                        synth=args.synth, family=args.family, yosys=args.yosys,
                        verify_cases=args.verify_cases if args.verify else None,
                        seed=args.seed, macro=macro_with(args.pim) if args.pim else None,
                        pim_images=args.pim_limit if args.pim_accuracy else None)
        files = run_report(plan, command, progress(args))
    write_report(out, files)
    plots = sorted(n for n in files if n.endswith(".png"))
    print(f"report: {out / 'index.html'} ({len(files)} files; plots: {', '.join(plots)})")
    return 0
