"""The results of a sweep: one row per point, the Pareto front, and the tables written to
the output directory (CSV, JSON lines, aligned text)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fpim.flows.sweep_spec import SweepSpec
from fpim.output import format_table
from quant.fileio import write_atomic

if TYPE_CHECKING:
    from fpim.flows.sweep import Point

#: Columns each stage adds to the results table, in order.
METRICS = {
    "accuracy": ("float_accuracy", "quant_accuracy", "accuracy_drop"),
    "simulate": ("fps", "latency_ms", "cycles", "stall_cycles", "lut", "ff", "dsp", "bram36"),
    "synth": ("synth_lut", "synth_ff", "synth_dsp", "synth_carry"),
    "verify": ("verify_passed", "verify_failed"),
    "pim": ("pim_accuracy", "pim_digital_accuracy", "pim_cycles", "pim_latency_us",
            "pim_energy_uj"),
}


def _constraint_reason(spec: SweepSpec, result: dict[str, Any]) -> str:
    c = spec.constraints
    q, f = result.get("quant_accuracy"), result.get("float_accuracy")
    if c.min_accuracy is not None and q < c.min_accuracy:
        return f"accuracy {q:g} % is below the floor {c.min_accuracy:g} %"
    if c.max_accuracy_drop is not None and f - q > c.max_accuracy_drop:
        return (f"accuracy drops {f - q:.4g} points from float, more than "
                f"{c.max_accuracy_drop:g}")
    return ""


def result_rows(spec: SweepSpec, points: list[Point], records: dict[str, dict]
                ) -> list[dict[str, Any]]:
    """One row per point: its axis values, status (ok, infeasible, failed or missing),
    reason and the metrics of its stages (None where a stage has no result)."""
    rows = []
    for p in points:
        row: dict[str, Any] = {"point": p.index, **p.values, "status": "ok",
                               "reason": p.reason}
        metrics: dict[str, Any] = {}
        if p.reason:
            row["status"] = "infeasible"
        for stage in spec.stages:
            rec = records.get(p.tasks.get(stage, ""))
            if rec is not None and rec["status"] == "ok":
                metrics.update(rec["result"])
            elif rec is not None and row["status"] == "ok":
                row["status"], row["reason"] = "failed", f"{stage}: {rec['reason']}"
            elif rec is None and row["status"] == "ok":
                row["status"], row["reason"] = "missing", f"{stage}: not computed"
        if "float_accuracy" in metrics:
            metrics["accuracy_drop"] = round(metrics["float_accuracy"]
                                             - metrics["quant_accuracy"], 4)
            why = _constraint_reason(spec, metrics) if row["status"] == "ok" else ""
            if why:
                row["status"], row["reason"] = "infeasible", why
        for stage in spec.stages:
            for m in METRICS[stage]:
                row[m] = metrics.get(m)
        rows.append(row)
    return rows


def pareto_objectives(spec: SweepSpec) -> list[tuple[str, str]]:
    """(column, ``max`` or ``min``) of the objectives the spec's stages measure: FPS, LUT
    and DSP (the simulator's whole-accelerator estimate, else the synthesized datapath),
    accuracy."""
    obj = []
    if "simulate" in spec.stages:
        obj += [("fps", "max"), ("lut", "min"), ("dsp", "min")]
    elif "synth" in spec.stages:
        obj += [("synth_lut", "min"), ("synth_dsp", "min")]
    if "accuracy" in spec.stages:
        obj.append(("quant_accuracy", "max"))
    return obj


def pareto_front(rows: list[dict[str, Any]], objectives: list[tuple[str, str]],
                 group_by: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The ``ok`` rows no other ``ok`` row of the same group (equal ``group_by`` columns:
    the workload, since frame rates of different models do not compare) dominates: at
    least as good in every objective, better in one. By group, then the first objective
    (best first)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not objectives:
        return []
    sign = np.array([1.0 if d == "max" else -1.0 for _, d in objectives])
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in ok:
        groups.setdefault(tuple(r[c] for c in group_by), []).append(r)
    front = []
    for members in groups.values():
        v = np.array([[float(r[c]) for c, _ in objectives] for r in members]) * sign
        front += [r for i, r in enumerate(members)
                  if not np.any(np.all(v >= v[i], axis=1) & np.any(v > v[i], axis=1))]
    first, d = objectives[0]
    return sorted(front, key=lambda r: (tuple(str(r[c]) for c in group_by),
                                        -r[first] if d == "max" else r[first], r["point"]))


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    return str(v)


def _short(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else ("-" if v is None else str(v))


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """Rows as CSV (floats exactly, in their shortest round-trip form)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r[c]) for c in columns])
    return buf.getvalue()


def to_text(columns: list[str], rows: list[dict[str, Any]], limit: int | None = None) -> str:
    """Rows as an aligned text table (at most ``limit`` rows)."""
    shown = rows if limit is None else rows[:limit]
    text = format_table(columns, [[_short(r[c]) for c in columns] for r in shown])
    if len(shown) < len(rows):
        text += f"\n... {len(rows) - len(shown)} more rows"
    return text


def result_columns(spec: SweepSpec) -> list[str]:
    """The results table's columns."""
    return ["point", *spec.names, "status", "reason",
            *(m for s in spec.stages for m in METRICS[s])]


def pareto_columns(spec: SweepSpec) -> list[str]:
    """The Pareto table's columns: the point, its axes and the objectives."""
    return ["point", *spec.names, *(c for c, _ in pareto_objectives(spec))]


def write_tables(out: Path, spec: SweepSpec, rows: list[dict[str, Any]],
                 front: list[dict[str, Any]]) -> list[str]:
    """``results.{csv,jsonl,txt}`` and ``pareto.{csv,txt}``, each written atomically."""
    cols = result_columns(spec)
    front_cols = pareto_columns(spec)
    files = {
        "results.csv": to_csv(cols, rows),
        "results.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
        "results.txt": to_text(cols, rows) + "\n",
        "pareto.csv": to_csv(front_cols, front),
        "pareto.txt": to_text(front_cols, front) + "\n",
    }
    for name, text in files.items():
        write_atomic(out / name, text)
    return [str(out / n) for n in files]


#: Axes that tell the accuracy curves apart (all but the fraction, which is their x).
CURVE_AXES = ("model", "scheme", "engine.weight_bits", "engine.act_bits", "part", "accel")


def sweep_plots(spec: SweepSpec, rows: list[dict[str, Any]], front: list[dict[str, Any]]
                ) -> dict[str, bytes]:
    """The sweep's plots by file name: FPS against LUT and against DSP of the feasible
    points (the Pareto front circled) when the simulate stage ran, and the quantized
    accuracy against the LUT-scheme fraction (one line per model, scheme, bits and part
    axis value) when the accuracy stage ran over a fraction axis."""
    from sim.report import figures  # matplotlib: only once the tables are written

    plots: dict[str, bytes] = {}
    on_front = {r["point"] for r in front}
    ok = [r for r in rows if r["status"] == "ok" and r.get("fps") is not None]
    for res, name in (("lut", "LUTs"), ("dsp", "DSP slices")):
        if ok:
            pts = [(float(r[res]), float(r["fps"]), r["point"] in on_front) for r in ok]
            plots[f"fps_vs_{res}.png"] = figures.front_scatter(
                pts, f"{name} (resource model)", "frames per second",
                f"sweep {spec.name}: frames per second against {name}")
    known = [r for r in rows if r.get("quant_accuracy") is not None and "fraction" in r]
    if known:
        by = [a for a in CURVE_AXES if a in spec.names]
        curves: dict[tuple, list[tuple[float, float]]] = {}
        for r in known:
            curves.setdefault(tuple(r[a] for a in by), []).append(
                (float(r["fraction"]), float(r["quant_accuracy"])))
        plots["accuracy_vs_fraction.png"] = figures.lines(
            [figures.Curve(", ".join(f"{a}={v}" for a, v in zip(by, key, strict=True))
                           or "accuracy", tuple(sorted(set(pts))))
             for key, pts in curves.items()],
            "fraction of rows on the LUT core", "test accuracy, %",
            f"sweep {spec.name}: quantized accuracy against the LUT-scheme fraction")
    return plots


def write_plots(out: Path, spec: SweepSpec, rows: list[dict[str, Any]],
                front: list[dict[str, Any]]) -> list[str]:
    """:func:`sweep_plots` written into ``out``, each atomically; their paths."""
    plots = sweep_plots(spec, rows, front)
    for name, png in plots.items():
        write_atomic(out / name, png)
    return [str(out / n) for n in plots]
