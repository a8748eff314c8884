"""``fpim search msq``: the SP2 fraction and engine split with the most throughput on a part."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING

from fpim.commands.options import (
    add_batch,
    add_csv,
    add_json,
    add_msq_search,
    add_progress,
    add_search_budget,
    add_set,
    add_workload,
    check_csv,
    checked,
    progress,
    refuse_ignored_workload,
    torch_model_shape,
    workload_source,
)
from fpim.output import format_table, print_json, table_csv
from quant.errors import check_positive

if TYPE_CHECKING:
    from quant.artifact import Artifact
    from sim.arch import Accelerator
    from sim.workload import Workload

EXAMPLES = """examples:
  fpim search msq --part XC7Z020 --bits 4 --model resnet18
  fpim search msq --part XC7Z045 --bits 4 --topology configs/workloads/resnet50.csv --json
  fpim search msq --part XC7Z020 --bits 4 --model resnet18 --save best.yaml
  fpim simulate --model resnet18 --accel best.yaml --mode analytical --sp2-fraction 0.75
  fpim search msq --part configs/xc7z020.yaml --set engine.acc_bits=32 --bits 4 \
                  --model resnet50
  fpim search msq --part my_part.yaml --bits 4 --model mypkg.models:build \\
                  --input-shape 1,3,32,32 --csv engines.csv
  fpim search msq --part XC7Z020 --bits 4 --packing 1     # unpacked DSPs only
  fpim search msq --part XC7Z020 --bits 4 --artifact configs/artifacts/cnn_msq4_digits \
                  --save cnn.yaml      # the artifact's own schemes: only the engine varies
  fpim simulate --artifact configs/artifacts/cnn_msq4_digits --accel cnn.yaml \
                --mode analytical      # the command --save prints: the same cycles
"""

#: Columns of the Pareto front's table (text and --csv), named as in the JSON.
PARETO_COLUMNS = ("fps", "lut", "dsp", "bram36", "dsp_rows", "lut_rows", "cols",
                  "dsp_packing", "lanes", "lut_per_head", "k_tile")

VIT_EXAMPLES = """examples:
  fpim search vit --part XCZU9EG --model deit_base --bits 8
  fpim search vit --part XCZU9EG --model deit_base --bits 4 --json
  fpim search vit --part XCZU9EG --model deit_base --bits 8 --fps-target 10 --save vit.yaml
  fpim simulate --model deit_base --accel vit.yaml --mode cycle --sp2-fraction 0.0
                                            # the command --save prints: the same FPS
  fpim search vit --part configs/xczu9eg.yaml --set clock_mhz=200 --model deit_base --bits 8
  fpim search vit --part XCZU9EG --topology my_vit.csv --gemm --bits 8 --packing 2
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search an MSQ ratio and engine split for a part",
        description="Design searches. 'msq': choose the SP2 fraction and the DSP/LUT engine "
                    "split that maximize throughput within a part's LUT/DSP/BRAM budget "
                    "(analytical mode) and report the speedup over a DSP-only engine.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_subparsers(dest="search", metavar="SEARCH", required=True)
    m = what.add_parser(
        "msq", help="SP2 fraction and engine split (Mix and Match)",
        description="Every engine is built on a template: a preset YAML given as --part, "
                    "or for a part the shipped preset of that part (the dataclass defaults "
                    "for a part without one). The template gives the memory, clock, vector "
                    "unit, accumulator width, LUT scheme and activation sign; the search "
                    "changes the rows, columns, DSP packing, widths (--bits) and grows buffer "
                    "banks to hold a tile. Every assumption is printed; --save writes the "
                    "recommended design as a preset that fpim simulate reproduces exactly. "
                    "With --artifact the artifact's own per-layer schemes and widths are "
                    "timed (--bits must be its weight bits, the LUT scheme is its own) and "
                    "only the engine varies; an artifact with SP2/PoT rows needs a LUT core, "
                    "so a mixed engine is recommended, the DSP-only baseline timing the "
                    "same shapes all fixed point.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_part(m, default_model="resnet18")
    add_msq_search(m)
    m.add_argument("--save", metavar="YAML",
                   help="write the recommended design (the faster of the best mixed and the "
                        "best DSP-only engine; with --artifact, the fastest that runs it) as "
                        "a preset YAML for --accel")
    add_csv(m, "every engine timed (the columns of a search report's engines.csv)")
    add_progress(m)
    add_json(m, "text")
    m.set_defaults(func=run)
    v = what.add_parser(
        "vit", help="LUT-scheme fraction, engine split, vector lanes and tiling of a ViT "
                    "(Auto-ViT-Acc, VAQF)",
        description="Search a vision transformer's accelerator on a part (Auto-ViT-Acc, "
                    "arXiv 2208.05163): the LUT rows per head (the same split in every head "
                    "of q, k and v), the engine split (DSP rows, LUT rows, packing, "
                    "columns), the vector lanes and the load-block depth, within the part's "
                    "DSP, FF, BRAM36 and --lut-cap of its LUTs (engine and vector unit "
                    "together, sim.resources; the weight buffer carries the attention's K "
                    "and V, timing rule R11b). The sweep is timed in analytical mode, "
                    "the finalists in cycle mode. Prints the best design, the DSP-only "
                    "baseline and the Pareto front (FPS vs LUT vs DSP); with --fps-target, "
                    "the smallest design that meets it (VAQF, arXiv 2201.06618). Engines are "
                    "built on a template as for 'search msq'.",
        epilog=VIT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_part(v, default_model="deit_base")
    v.add_argument("--fps-target", type=checked(check_positive, "fps-target", float),
                   metavar="F", help="frames per second to meet with the smallest design")
    v.add_argument("--acc-bits", type=int, metavar="N",
                   help="accumulator bits of every engine (default: the narrowest each "
                        "needs: with both schemes for mixed engines, fixed point for "
                        "DSP-only ones)")
    add_search_budget(v, "design (engine and vector unit)")
    v.add_argument("--save", metavar="YAML",
                   help="write the recommended design (the best, or with --fps-target the "
                        "smallest that meets it) as a preset YAML for --accel")
    add_csv(v, "the whole Pareto front")
    add_progress(v)
    add_json(v, "text")
    v.set_defaults(func=run_vit)


def _add_part(p: argparse.ArgumentParser, default_model: str) -> None:
    """``--part``, ``--set``, ``--bits`` and the workload options of every search."""
    p.add_argument("--part", required=True, metavar="NAME_OR_YAML",
                   help="FPGA part (XC7Z020, XC7Z045, XCZU9EG), a YAML file of its fields "
                        "(name, lut, ff, dsp, dsp_type, bram36), or a preset YAML (the "
                        "template itself; --set applies to it)")
    add_set(p)
    p.add_argument("--bits", required=True, type=int, help="weight and activation bits (3..8)")
    add_workload(p, default_model=default_model)
    add_batch(p)


def reproduce_command(args: argparse.Namespace, accel: str, fraction: float | None,
                      mode: str = "analytical") -> str:
    """The ``fpim simulate`` command that times ``accel`` on the searched workload at
    ``fraction`` (None: the workload's own schemes, an artifact's) in ``mode`` as the search
    did."""
    argv = ["fpim", "simulate", *workload_source(args).split(" ", 1)]
    if args.gemm:
        argv.append("--gemm")
    if args.input_shape:
        argv += ["--input-shape", ",".join(map(str, args.input_shape))]
    if args.batch:
        argv += ["--batch", str(args.batch)]
    argv += ["--accel", accel, "--mode", mode]
    if fraction is not None:
        argv += ["--sp2-fraction", repr(fraction)]
    return shlex.join(argv)


def artifact_template(art: Artifact, template: Accelerator, bits: int) -> Accelerator:
    """``template`` for a search on ``art``'s own schemes: its engine at ``bits`` (which must
    be the artifact's weight bits) with the artifact's LUT scheme; the artifact is checked
    to run on such an engine (:func:`fpim.flows.fit.check_fit`) before any work."""
    import dataclasses

    import numpy as np

    from fpim.flows.fit import check_fit
    from quant.errors import ConfigError
    from quant.formats import Scheme
    from sim.ops import sim_op

    engine_layers = [x for x in art.layers if sim_op(x.op).engine]
    widths = sorted({int(x.attrs["weight_bits"]) for x in engine_layers})
    if len(widths) == 1 and widths[0] != bits:
        raise ConfigError(f"bits must be the artifact's weight bits {widths[0]} (--artifact "
                          f"fixes them), not {bits}")
    ids = {int(i) for x in engine_layers for i in np.unique(x.tensors["scheme_ids"])}
    lut_ids = sorted(ids - {int(Scheme.FIXED)})
    e = template.engine
    lut_scheme = Scheme(lut_ids[0]).label if len(lut_ids) == 1 else e.lut_scheme
    e = dataclasses.replace(e, weight_bits=bits, act_bits=bits, lut_scheme=lut_scheme)
    template = dataclasses.replace(template, engine=e)
    probe = dataclasses.replace(template, engine=dataclasses.replace(
        e, dsp_rows=1, lut_rows=1 if lut_ids else 0, dsp_packing=1))
    check_fit(art, probe)
    return template


def _prepare(args: argparse.Namespace, search: str) -> tuple[Accelerator, Workload, float]:
    """Check a search's options before any work and load its template and workload (an
    artifact's: :func:`artifact_template`); the LUT cap too."""
    from fpim.flows.simulate import load_workload
    from quant.errors import ConfigError, check_fraction, check_int_range
    from quant.fileio import check_output
    from sim.search import search_template

    if args.artifact or args.topology:
        args.model = None  # the default model gives way to the source given
    if args.artifact and search != "msq":
        raise ConfigError(f"--artifact applies only to search msq, simulate and report, not to "
                          f"search {search} (an artifact fixes the LUT rows of each head, "
                          "which this search chooses): give its shapes with --model or "
                          "--topology, or time the artifact on a design with fpim simulate "
                          "--artifact DIR --accel YAML")
    refuse_ignored_workload(args)
    lut_cap = check_fraction("lut_cap", args.lut_cap)
    batch = 1 if args.batch is None else check_int_range("batch", args.batch, 1, 1 << 20)
    if hasattr(args, "csv"):
        check_csv(args)
    if args.save is not None:
        check_output(args.save, "save")
    torch_model_shape(args)
    template = search_template(args.part, args.overrides)
    wl, art = load_workload(template, artifact=args.artifact, model=args.model,
                            topology=args.topology, gemm=True if args.gemm else None,
                            input_shape=args.input_shape, batch=batch)
    if art is not None:
        template = artifact_template(art, template, args.bits)
    return template, wl, lut_cap


def run(args: argparse.Namespace) -> int:
    from quant.fileio import write_atomic
    from sim.report.metrics import engine_rows
    from sim.report.schema import ENGINE_COLUMNS, csv_text
    from sim.search import design_yaml, explore_msq, search_base, summarize

    template, wl, lut_cap = _prepare(args, "msq")
    packings = tuple(args.packing) if args.packing else None
    own = args.artifact is not None  # the artifact's schemes are timed as they are
    search_base(wl, template, args.bits, args.ideal_memory, packings,
                own_schemes=own)  # refuse before work
    with progress(args)("MSQ search") as report:
        x = explore_msq(wl, template, args.bits, ideal_memory=args.ideal_memory,
                        lut_cap=lut_cap, packings=packings, on_step=report, own_schemes=own)
    r = summarize(x)
    pick = r["best"] if r["recommended"] == "mixed" else r["dsp_only"]
    if args.save is not None:
        r["simulate_command"] = reproduce_command(args, args.save,
                                                  None if own else pick["sp2_fraction"])
        header = (f"fpim search msq: the recommended {r['recommended']} engine for "
                  f"{r['workload']} on {r['part']} at {r['bits']} bits "
                  f"({pick['cycles']} cycles, LUT {pick['lut']}).\n"
                  f"Reproduce: {r['simulate_command']}")
        write_atomic(args.save, design_yaml(x, header))
    if args.csv is not None:
        write_atomic(args.csv, csv_text(ENGINE_COLUMNS, engine_rows(x)))
    if args.json:
        print_json(r)
        return 0
    _print_text(r, args)
    return 0


def _print_text(r: dict, args: argparse.Namespace) -> None:
    b, d, a = r["best"], r["dsp_only"], r["assumptions"]
    mem = "unlimited DRAM bandwidth" if r["ideal_memory"] else "preset DRAM model"
    print(f"{r['workload']} on {r['part']}, {r['bits']}-bit, {mem}, {r['candidates']} engines, "
          f"batch {a['batch']}")
    print(f"best mixed: dsp_rows={b['dsp_rows']} lut_rows={b['lut_rows']} cols={b['cols']} "
          f"packing={b['dsp_packing']} sp2_fraction={b['sp2_fraction']:.2f}: {b['cycles']} "
          f"cycles, {b['fps']:.2f} FPS (LUT {b['lut']}, DSP {b['dsp']}, BRAM36 {b['bram36']})")
    print(f"DSP only:   dsp_rows={d['dsp_rows']} cols={d['cols']} packing={d['dsp_packing']}: "
          f"{d['cycles']} cycles, {d['fps']:.2f} FPS (LUT {d['lut']}, DSP {d['dsp']}, "
          f"BRAM36 {d['bram36']})")
    print(f"speedup over DSP-only: {r['speedup']:.2f}x (compute only {r['compute_speedup']:.2f}x)"
          f"; paper: {r['paper_speedup']}")
    if len(r["by_packing"]) > 1:
        print("  over the best DSP-only engine with packing "
              + ", ".join(f"{k}: {v['speedup']:.2f}x (compute {v['compute_speedup']:.2f}x)"
                          for k, v in r["by_packing"].items()))
    if r["own_schemes"] and r["recommended"] == "mixed":
        pays = "pays" if r["mixing_pays"] else "does not pay"
        print(f"verdict: the artifact's schemes need a LUT core: the mixed engine is the "
              f"recommended design (against the same shapes all fixed point on a DSP-only "
              f"engine, mixing {pays}: {r['speedup']:.2f}x)")
    elif r["own_schemes"]:
        print("verdict: the artifact's rows are all fixed point: the DSP-only engine is the "
              "recommended design")
    elif not r["mixing_pays"]:
        print(f"verdict: mixing does not pay here: the fastest mixed engine runs at "
              f"{r['speedup']:.2f}x the fastest DSP-only engine; the DSP-only engine is the "
              "recommended design")
    else:
        print("verdict: mixing pays; the mixed engine is the recommended design")
    p = a["part"]
    m = a["memory"]
    bw = ("unlimited" if m["dram_bytes_per_cycle"] is None
          else f"{m['dram_bytes_per_cycle']} B/cycle")
    print(f"assumptions: template {a['template']} ({a['clock_mhz']:g} MHz, vector "
          f"{a['vector_lanes']} lanes); part {p['name']} (LUT {p['lut']}, FF {p['ff']}, "
          f"DSP {p['dsp']} {p['dsp_type']}, BRAM36 {p['bram36']})")
    print(f"  accumulator {a['acc_bits']} bits from the template (the workload needs "
          f"{a['acc_bits_needed']}); {a['lut_scheme']} LUT core; activations "
          f"{'signed' if a['act_signed'] else 'unsigned'}")
    print(f"  engines within {100 * a['lut_cap']:g}% of the LUTs; DSP core: "
          f"{a['dsp_budget']}; packings {a['packings']}; columns {a['cols']}; "
          f"{a['lut_core_sizes_per_engine']} LUT-core sizes each; "
          + (f"SP2 fraction {a['sp2_fractions'][0]:.3f} (the artifact's)" if r["own_schemes"]
             else "SP2 fractions 0..1 step 0.05"))
    print(f"  schemes: {a['schemes']}")
    print(f"  memory: k_tile {m['k_tile']}, DRAM {bw}, latency {m['dram_latency']} cycles; "
          f"{a['buffer_banks']}; timed in {a['mode']}")
    if args.save is not None:
        print(f"saved the recommended design to {args.save}; reproduce: "
              f"{r['simulate_command']}")


def run_vit(args: argparse.Namespace) -> int:
    from quant.fileio import write_atomic
    from sim.search import preset_yaml
    from sim.vit_search import check_vit_args, explore_vit, summarize, vit_bases

    template, wl, lut_cap = _prepare(args, "vit")
    check_vit_args(lut_cap, ())
    packings = tuple(args.packing) if args.packing else None
    vit_bases(wl, template, args.bits, packings, args.acc_bits)  # refuse before work
    with progress(args)("ViT search") as report:
        x = explore_vit(wl, template, args.bits, lut_cap=lut_cap, packings=packings,
                        on_step=report, acc_bits=args.acc_bits)
        r = summarize(x, args.fps_target)
    pick = r["recommended"]
    if args.save is not None:
        r["simulate_command"] = reproduce_command(args, args.save, pick["lut_fraction"],
                                                  "cycle")
        met = "target" in r and r["target"]["met"]
        what = (f"smallest design that meets {args.fps_target:g} FPS" if met else
                f"recommended ({'mixed' if r['mixing_pays'] else 'DSP-only'}) design")
        header = (f"fpim search vit: the {what} for {r['workload']} on {r['part']} "
                  f"at {r['bits']} bits ({pick['fps']:.2f} FPS; LUT {pick['lut']}, DSP "
                  f"{pick['dsp']} with the vector unit).\n"
                  f"Reproduce: {r['simulate_command']}")
        write_atomic(args.save, preset_yaml(r["design"], header))
    if args.csv is not None:
        write_atomic(args.csv, table_csv(PARETO_COLUMNS, [[c[k] for k in PARETO_COLUMNS]
                                                          for c in r["pareto"]]))
    if args.json:
        print_json(r)
        return 0
    _print_vit(r, args)
    return 0


def _vit_design(c: dict) -> str:
    kind = "mixed" if c["lut_per_head"] else "DSP only"
    rows = (f"dsp_rows={c['dsp_rows']} lut_rows={c['lut_rows']}" if c["lut_per_head"]
            else f"dsp_rows={c['dsp_rows']}")
    split = (f", {c['lut_per_head']}/{c['head_dim']} rows per head on the LUT core"
             if c["lut_per_head"] else "")
    return (f"{kind}: {rows} cols={c['cols']} packing={c['dsp_packing']} "
            f"lanes={c['lanes']} k_tile={c['k_tile']} acc={c['acc_bits']}{split}\n"
            f"    {c['fps']:.2f} FPS, {c['gops']:.1f} GOPS, {c['gops_per_dsp']:.3f} GOPS/DSP, "
            f"{c['gops_per_klut']:.2f} GOPS/kLUT, MAC utilisation {100 * c['mac_util']:.1f}% "
            f"({c['mode']} mode); LUT {c['lut']}, FF {c['ff']}, DSP {c['dsp']}, "
            f"BRAM36 {c['bram36']}")


def _print_vit(r: dict, args: argparse.Namespace) -> None:
    a = r["assumptions"]
    sims = r["simulations"]
    print(f"{r['workload']} on {r['part']}, {r['bits']}-bit, {r['lut_scheme']} LUT rows, "
          f"{r['clock_mhz']:g} MHz: {r['candidates']} designs ({sims['analytical']} "
          f"analytical and {sims['cycle']} cycle-mode simulations)")
    print("best " + _vit_design(r["best"]))
    blocks = ", ".join(f"{k} LUT {v['lut']} / DSP {v['dsp']} / BRAM36 {v['bram36']}"
                       for k, v in r["blocks"].items())
    print(f"    of which {blocks}")
    print("baseline " + _vit_design(r["dsp_only"]))
    verdict = ("mixing pays: the mixed design is recommended" if r["mixing_pays"] else
               "mixing does not pay here: the DSP-only design is recommended")
    print(f"speedup over the DSP-only baseline: {r['speedup']:.2f}x; {verdict}")
    front = r["pareto"]
    shown = front[:15]
    print(f"Pareto front (FPS vs LUT vs DSP, analytical), {len(front)} designs"
          + (f", the {len(shown)} fastest:" if len(shown) < len(front) else ":"))
    print(format_table(PARETO_COLUMNS, [
        [f"{c[k]:.2f}" if isinstance(c[k], float) else c[k] for k in PARETO_COLUMNS]
        for c in shown]))
    if "target" in r:
        t = r["target"]
        if t["met"]:
            print(f"smallest design for {t['fps']:g} FPS ({100 * t['size']:.1f}% of its "
                  "tightest resource) " + _vit_design(t["design"]))
        else:
            print(f"no design meets {t['fps']:g} FPS on {r['part']}: the fastest runs at "
                  f"{r['best']['fps']:.2f} FPS")
    print(f"reference: {r['reference']}")
    p = a["part"]
    print(f"assumptions: template {a['template']} ({a['clock_mhz']:g} MHz); part {p['name']} "
          f"(LUT {p['lut']}, FF {p['ff']}, DSP {p['dsp']} {p['dsp_type']}, BRAM36 "
          f"{p['bram36']}); {a['budget']} ({100 * a['lut_cap']:g}%)")
    print(f"  {a['tokens']} tokens, head dim {a['head_dim']}: {a['fraction']}; "
          f"accumulators {a['acc_bits_mixed']} bits (mixed), {a['acc_bits_dsp_only']} "
          f"(DSP only); activations {'signed' if a['act_signed'] else 'unsigned'}")
    print(f"  packings {a['packings']}, columns {a['cols']}, lanes {a['lanes']}, DSP shares "
          f"{a['dsp_shares']}, k_tile {a['k_tiles']}; {a['modes']}")
    if args.save is not None:
        print(f"saved the recommended design to {args.save}; reproduce: "
              f"{r['simulate_command']}")
