"""The report of one run: a workload simulated on an accelerator, optionally with Yosys's
resource count of the datapath, the RTL's cycles per verification case and the cost on PIM
macros. Records in (plain data; ``fpim.flows.report`` gathers them), files out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from sim.arch import Accelerator
from sim.report import figures
from sim.report.document import Code, Document, Image, Section, Table, bundle, table
from sim.report.metrics import ceilings, layer_rows
from sim.report.schema import LAYER_COLUMNS, PIM_COLUMNS, csv_text
from sim.results import RunResult

#: Layers listed in the "where the cycles go" table.
TOP_LAYERS = 10


@dataclass(frozen=True)
class RunRecords:
    """What a run report shows.

    Members:
        command: the command line that made the report.
        accel: the accelerator.
        result: the simulation (``fpim simulate --json`` is ``result.to_dict()``).
        synth: ``top``, ``family``, ``scope``, ``measured`` (Yosys: ``lut``, ``ff``,
            ``dsp``, ``bram36``, ...), ``model`` (the datapath estimate) and ``comparison``.
        verify: ``top``, ``passed``, ``failed``, ``artifact_skipped`` and ``cases``, each
            with ``name``, ``description``, ``cycles_sim``, ``cycles_rtl``,
            ``outputs_equal``, ``passed``.
        pim: ``macro``, ``layers`` (``sim.pim.PimLayerCost`` fields) and ``totals``.
        pim_accuracy: ``macro``, ``data``, ``images``, ``seed``, ``digital_accuracy`` and
            ``points``, each with ``adc_bits``, ``noise_lsb`` and ``pim_accuracy``.
        config: the simulation's effective configuration (``fpim simulate --json``'s
            ``config``).
    """

    command: str
    accel: Accelerator
    result: RunResult
    synth: Mapping[str, Any] | None = None
    verify: Mapping[str, Any] | None = None
    pim: Mapping[str, Any] | None = field(default=None)
    pim_accuracy: Mapping[str, Any] | None = None
    config: Mapping[str, Any] | None = None


def _n(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}"


def _count(v: float) -> int | float:
    """A resource count: an int, or a float when it has a half (BRAM36 of RAMB18 cells)."""
    return int(v) if float(v).is_integer() else float(v)


def run_files(rec: RunRecords) -> dict[str, bytes]:
    """Every file of the report by name (see docs/report.md)."""
    r, a = rec.result, rec.accel
    rows = layer_rows(r)
    ceil = ceilings(a)
    e = a.engine
    t = r.totals()
    head = f"{r.workload} on {r.accelerator}"
    sections = [Section("Run", (
        Code(rec.command),
        f"{r.workload} on the {r.accelerator} preset ({a.part.name}, "
        f"{e.dsp_rows} DSP rows + {e.lut_rows} {e.lut_scheme} rows x {e.cols} columns, "
        f"{e.weight_bits}-bit weights, {e.act_bits}-bit activations, {a.clock_mhz:g} MHz), "
        f"simulated in {r.mode} mode. Timing rules: docs/timing.md.",
        table(("total", "value"), [
            ("cycles", _n(t["total_cycles"])), ("compute cycles", _n(t["compute_cycles"])),
            ("stall cycles", _n(t["stall_cycles"])), ("latency, ms", f"{t['latency_ms']:.3f}"),
            (f"images per second (batch {t['batch']})", _n(t["fps"])), ("GOPS", f"{t['gops']:.1f}"),
            ("GOPS per DSP", f"{t['gops_per_dsp']:.3f}"), ("MACs", _n(t["macs"])),
            ("DRAM bytes", _n(t["dram_bytes"]))]),
    ))]
    top = sorted(rows, key=lambda x: -int(x["cycles"]))[:TOP_LAYERS]
    total = max(1, t["total_cycles"])
    sections.append(Section("Where the cycles go", (
        Image("cycles.png", "cycles per layer", figures.cycles(rows, f"{head}: cycles per layer"),
              "Compute and stall cycles of every layer on the engine, and the vector unit's."),
        table(("layer", "op", "cycles", "% of run", "stall", "MAC utilisation"),
              [(x["name"], x["op"], _n(int(x["cycles"])), f"{100 * int(x['cycles']) / total:.1f}",
                _n(int(x["stall_cycles"])), f"{float(x['mac_util']):.2f}") for x in top]),
    )))
    sections.append(_roofline(rows, ceil, head, a,
                              sum(r.bound(la) == "dram" for la in r.layers)))
    util = t["macs"] / (e.pes * total)
    sections.append(Section("MAC utilisation", (
        Image("utilisation.png", "MAC utilisation per layer",
              figures.utilisation(rows, f"{head}: MAC utilisation per layer"),
              "Bars: MACs over the engine's PE-cycles; markers: each core's own, and the "
              "most the array's shape allows the layer (its output tiles at K cycles each)."),
        f"Over the whole run the {e.pes} PEs do a MAC in {100 * util:.1f}% of their cycles.",
    )))
    sections.append(_resources(rec, head))
    tables = {"layers.csv": csv_text(LAYER_COLUMNS, rows)}
    if rec.verify is not None:
        sections.append(_verification(rec.verify, head))
    if rec.pim is not None:
        sections.append(_pim(rec.pim, head))
        tables["pim_layers.csv"] = csv_text(PIM_COLUMNS, rec.pim["layers"])
    if rec.pim_accuracy is not None:
        sections.append(_pim_accuracy(rec.pim_accuracy, head))
    summary = {"schema": "report-run/1", "command": rec.command, "simulation":
               {**r.to_dict(), **({} if rec.config is None else {"config": rec.config})},
               "ceilings": asdict(ceil), "synth": rec.synth, "verify": rec.verify,
               "pim": rec.pim, "pim_accuracy": rec.pim_accuracy}
    return bundle(Document(f"{head} ({r.mode} mode)", tuple(sections)), tables, summary)


def _roofline(rows: list[dict], ceil: figures.Ceilings, head: str, a: Accelerator,
              below: int) -> Section:
    """``below``: the engine layers left of the ridge (:meth:`RunResult.bound`)."""
    e, m = a.engine, a.memory
    text = (f"Compute ceiling {ceil.compute_gops:g} GOPS: {e.pes} PEs, 2 operations per MAC, "
            f"{a.clock_mhz:g} MHz. ")
    engine = [x for x in rows if x["ops_per_byte"] is not None]
    if ceil.ridge is None:
        text += "DRAM bandwidth unlimited: no memory ceiling."
    else:
        text += (f"DRAM read ceiling {ceil.dram_read_gbytes_per_s:g} GB/s "
                 f"({m.dram_bytes_per_cycle} bytes per cycle, timing rule R7; write-back "
                 f"has its own channel, R9). Ridge at {ceil.ridge:.2f} operations per byte: "
                 f"{below} of {len(engine)} engine layers lie left of it.")
    return Section("Roofline", (
        Image("roofline.png", "roofline", figures.roofline(rows, ceil, f"{head}: roofline"),
              "Each point is a layer on the engine: operations per DRAM byte read against "
              "the operations per second it achieves."),
        text,
    ))


def _resources(rec: RunRecords, head: str) -> Section:
    res = rec.result.resources
    budget = {k: int(res["budget"][k]) for k, _ in figures.RESOURCES}
    # BRAM36 may hold a RAMB18 half; the other resources are whole cells
    series = {"model: whole engine": {k: _count(res[k]) for k, _ in figures.RESOURCES}}
    headers = ["resource", "part", "model: whole engine"]
    cols = [[budget[k] for k, _ in figures.RESOURCES], list(series["model: whole engine"].values())]
    blocks: list = []
    if rec.synth is not None:
        s = rec.synth
        series["model: datapath"] = {k: int(s["model"][k]) for k, _ in figures.RESOURCES}
        series["Yosys: datapath"] = {k: int(s["measured"][k]) for k, _ in figures.RESOURCES}
        headers += ["model: datapath", "Yosys: datapath"]
        cols += [list(series["model: datapath"].values()),
                 list(series["Yosys: datapath"].values())]
        blocks.append(f"Yosys synth_xilinx ({s['family']}) of {s['top']}: {s['scope']}.")
    fig = figures.resources(series, budget, f"{head}: resources on {res['budget']['part']}")
    rows = [(name, *(_n(c[i]) for c in cols)) for i, (_, name) in enumerate(figures.RESOURCES)]
    return Section("Resources", (
        Image("resources.png", "resources against the part", fig,
              "Share of the part's LUT, FF, DSP and BRAM36; bars labelled with the counts."),
        table(headers, rows), *blocks, f"Model: {res['model']}.",
    ))


def _verification(v: Mapping[str, Any], head: str) -> Section:
    cases = [figures.CaseCycles(c["name"], int(c["cycles_sim"]), int(c["cycles_rtl"]),
                                bool(c["passed"])) for c in v["cases"]]
    equal = sum(c.cycles_sim == c.cycles_rtl for c in cases)
    text = (f"{v['passed']} passed, {v['failed']} failed on {v['top']} (cocotb + Verilator); "
            f"cycles equal in {equal} of {len(cases)} cases.")
    if v.get("artifact_skipped"):
        text += f" Artifact layer skipped: {v['artifact_skipped']}."
    return Section("RTL verification", (
        Image("verify.png", "simulator and RTL cycles per case",
              figures.verification(cases, f"{head}: simulator vs RTL cycles"),
              "Busy cycles of each GEMM case in the simulator's cycle mode and on the RTL."),
        text,
    ))


def _pim(p: Mapping[str, Any], head: str) -> Section:
    t = p["totals"]
    name = p["macro"].get("name", "")
    return Section("On PIM macros", (
        Image("pim_energy.png", "energy per layer on PIM macros",
              figures.energy(p["layers"], f"{head}: energy per layer on {name}"),
              "Energy of each conv/linear layer on the macro preset (fpim pim simulate)."),
        Table(("total", "value"), (
            ("macro", str(name)), ("cycles", _n(int(t["cycles"]))),
            ("ADC conversions", _n(int(t["conversions"]))),
            ("energy, µJ", f"{t['energy_uj']:.3f}"), ("latency, µs", f"{t['latency_us']:.2f}"),
            ("area, mm²", f"{t['area_mm2']:.3f}"), ("batch", str(t["batch"])))),
    ))


def _pim_accuracy(p: Mapping[str, Any], head: str) -> Section:
    curves: dict[int, list[tuple[float, float]]] = {}
    for q in p["points"]:
        curves.setdefault(int(q["adc_bits"]), []).append((float(q["noise_lsb"]),
                                                           float(q["pim_accuracy"])))
    fig = figures.lines([figures.Curve(f"{b}-bit ADC", tuple(pts)) for b, pts in curves.items()],
                        "thermal noise at the ADC input, LSB", "test accuracy, %",
                        f"{head}: accuracy on {p['macro']} against noise and ADC bits")
    return Section("Accuracy on PIM macros", (
        Image("pim_accuracy.png", "accuracy against ADC noise and bits", fig,
              "Test accuracy with every conv/linear GEMM on the macro (fpim pim eval), one "
              "line per ADC resolution."),
        f"First {p['images']} test images of {p['data']} (noise seed {p['seed']}); the "
        f"reference integer kernels score {p['digital_accuracy']:g} %.",
        table(("ADC bits", "noise, LSB", "accuracy, %"),
              [(q["adc_bits"], f"{q['noise_lsb']:g}", f"{q['pim_accuracy']:g}")
               for q in p["points"]]),
    ))
