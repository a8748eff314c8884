"""The report of an MSQ search (:func:`sim.search.explore_msq`): throughput against the
LUT-scheme fraction and the Pareto front of FPS, LUTs and DSP slices over every engine."""

from __future__ import annotations

from dataclasses import asdict

from sim.report import figures
from sim.report.document import Code, Document, Image, Section, bundle, table
from sim.report.metrics import engine_rows, pareto_flags
from sim.report.schema import ENGINE_COLUMNS, FRACTION_COLUMNS, csv_text
from sim.search import Candidate, Exploration, summarize


def _engine(c: Candidate) -> str:
    return f"{c.dsp_rows} DSP + {c.lut_rows} LUT rows x {c.cols}, packing {c.dsp_packing}"


def _row(label: str, c: Candidate) -> tuple[str, ...]:
    return (label, str(c.dsp_rows), str(c.lut_rows), str(c.cols), str(c.dsp_packing),
            f"{c.sp2_fraction:.2f}", f"{c.cycles:,}", f"{c.fps:.2f}", f"{c.lut:,}",
            f"{c.dsp:,}", f"{c.bram36:,}")


_HEADERS = ("engine", "DSP rows", "LUT rows", "cols", "packing", "SP2 fraction", "cycles",
            "FPS", "LUT", "DSP", "BRAM36")


def msq_files(x: Exploration, command: str) -> dict[str, bytes]:
    """Every file of the report by name (see docs/report.md)."""
    s = summarize(x)
    engines = [*x.mixed, *x.dsp_only]
    flags = pareto_flags(engines)
    rows = engine_rows(x)
    fracs = [{"engine": i, **asdict(p)} for i, sweep in enumerate(x.sweeps) for p in sweep]
    best = Candidate(**s["best"])
    base = Candidate(**s["dsp_only"])
    head = f"MSQ search: {x.workload} on {s['part']}, {x.bits}-bit"
    mem = ("unlimited DRAM bandwidth" if x.ideal_memory else
           f"the DRAM model of {x.template.name}")
    curves = []
    if x.mixed:
        i = x.mixed.index(best) if best in x.mixed else 0
        curves.append(figures.Curve(f"fastest engine ({_engine(x.mixed[i])})",
                                    tuple((p.sp2_fraction, p.fps) for p in x.sweeps[i])))
        envelope: dict[float, float] = {}
        for sweep in x.sweeps:
            for p in sweep:
                envelope[p.sp2_fraction] = max(envelope.get(p.sp2_fraction, 0.0), p.fps)
        curves.append(figures.Curve("fastest of all mixed engines at each fraction",
                                    tuple(sorted(envelope.items()))))
    front = sorted(((i, c) for i, (c, f) in enumerate(zip(engines, flags, strict=True)) if f),
                   key=lambda ic: -ic[1].fps)
    points = [figures.EnginePoint(c.fps, c.lut, c.dsp, i < len(x.mixed), f)
              for i, (c, f) in enumerate(zip(engines, flags, strict=True))]
    sections = (
        Section("Search", (
            Code(command),
            f"{s['candidates']} engines on {s['part']} ({len(x.mixed)} mixed, "
            f"{len(x.dsp_only)} DSP-only) with {mem}, at most {100 * x.lut_cap:g}% of the "
            f"LUTs, DSP packings {', '.join(map(str, s['packings']))}; each timed in "
            "analytical mode at SP2 fractions 0, 0.05, ..., 1 (sim/search.py).",
            table(_HEADERS, [_row("fastest", best), _row("fastest DSP-only", base)]),
            f"Speedup over the fastest DSP-only engine: {s['speedup']:.2f}x "
            f"({s['compute_speedup']:.2f}x in compute cycles); the paper reports "
            f"{s['paper_speedup']}.",
        )),
        Section("Throughput against the LUT-scheme fraction", (
            Image("fraction.png", "throughput against the SP2 fraction",
                  figures.fraction(curves, base.fps, f"{head}: FPS against SP2 fraction"),
                  "Frames per second when that fraction of every layer's rows runs on the "
                  "LUT core; circles mark each curve's fastest fraction."),
        )),
        Section("Pareto front", (
            Image("pareto.png", "Pareto front of FPS, LUTs and DSP slices",
                  figures.pareto(points, f"{head}: engines"),
                  "Every engine the search timed, at its fastest fraction; circled: no other "
                  "engine is at least as fast with no more LUTs and DSP slices."),
            table(("engines.csv #", *_HEADERS[1:]),
                  [_row(str(i), c) for i, c in front]),
        )),
    )
    tables = {"engines.csv": csv_text(ENGINE_COLUMNS, rows),
              "fractions.csv": csv_text(FRACTION_COLUMNS, fracs)}
    summary = {"schema": "report-msq/1", "command": command, "accelerator": x.template.name,
               "search": s}
    return bundle(Document(head, sections), tables, summary)
