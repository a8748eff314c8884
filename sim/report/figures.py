"""The report's plots: records in, PNG bytes out (matplotlib's Agg renderer, no pyplot).

Every figure is drawn with matplotlib's default style, the DejaVu Sans font shipped with
matplotlib and no ``Software`` text chunk, at :data:`SIZE_PX`, so the same records give
byte-identical files on the same matplotlib and FreeType.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib as mpl
import matplotlib.colors
import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sim.report.metrics import Ceilings

WIDTH_IN, HEIGHT_IN, DPI = 10.0, 5.0, 100
#: Pixel size of every plot (width, height).
SIZE_PX = (round(WIDTH_IN * DPI), round(HEIGHT_IN * DPI))
_RC = {"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "font.size": 9,
       "svg.hashsalt": "fpim", "axes.grid": True, "grid.alpha": 0.3}
#: Colours of the three parts of a layer's cycles (and reused for other series).
COMPUTE, STALL, VECTOR = "#3b75af", "#d1603d", "#7fa36b"
LayerRow = Mapping[str, object]


def render(draw: Callable[[Figure], None]) -> bytes:
    """PNG bytes of a :data:`SIZE_PX` figure that ``draw`` fills in."""
    with mpl.style.context("default"), mpl.rc_context(_RC):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _layer_axis(ax: Axes, names: Sequence[str]) -> None:
    """Layer names under the bars: all of them up to 60 layers, else about 40 evenly."""
    n = len(names)
    step = 1 if n <= 60 else math.ceil(n / 40)
    ticks = list(range(0, n, step))
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=90,
                  fontsize=max(5.0, min(8.0, 360 / max(1, len(ticks)))))
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_xlabel("layer")


def cycles(rows: Sequence[LayerRow], title: str) -> bytes:
    """Per-layer cycles stacked: compute and stall on the engine, vector-unit cycles."""
    names = [str(r["name"]) for r in rows]
    vec = [r["unit"] == "vector" for r in rows]
    comp = [0 if v else int(r["compute_cycles"]) for r, v in zip(rows, vec, strict=True)]
    stall = [int(r["stall_cycles"]) for r in rows]
    vcyc = [int(r["cycles"]) if v else 0 for r, v in zip(rows, vec, strict=True)]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = range(len(rows))
        ax.bar(x, comp, color=COMPUTE, label="compute")
        ax.bar(x, stall, bottom=comp, color=STALL, label="stall (waiting for DRAM)")
        ax.bar(x, vcyc, color=VECTOR, label="vector unit")
        _layer_axis(ax, names)
        ax.set_ylabel("cycles")
        ax.set_title(title)
        ax.legend(loc="upper right")

    return render(draw)


def roofline(rows: Sequence[LayerRow], ceil: Ceilings, title: str) -> bytes:
    """Every engine layer at (operations per DRAM byte read, achieved GOPS), under the
    engine's compute ceiling and the DRAM read ceiling."""
    pts = [(float(r["ops_per_byte"]), float(r["gops"]), str(r["op"])) for r in rows
           if r["ops_per_byte"] is not None]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = [p[0] for p in pts] or [1.0]
        ridge = ceil.ridge
        lo = min([*xs, ridge or xs[0]]) / 4
        hi = max([*xs, ridge or xs[0]]) * 4
        if ceil.dram_read_gbytes_per_s is not None and ridge is not None:
            bw = ceil.dram_read_gbytes_per_s
            ax.plot([lo, ridge], [bw * lo, ceil.compute_gops], color="black")
            ax.plot([ridge, hi], [bw * ridge, bw * hi], color="black", linestyle=":", lw=0.8)
            ax.annotate(f"DRAM read {bw:g} GB/s", (lo * 1.3, bw * lo * 3), fontsize=8)
            ax.plot([lo, ridge], [ceil.compute_gops] * 2, color="black", linestyle=":", lw=0.8)
            ax.plot([ridge, hi], [ceil.compute_gops] * 2, color="black")
        else:
            ax.plot([lo, hi], [ceil.compute_gops] * 2, color="black")
        ax.annotate(f"compute {ceil.compute_gops:g} GOPS", (hi / 1.2, ceil.compute_gops * 1.1),
                    fontsize=8, ha="right", va="bottom")
        for i, kind in enumerate(sorted({p[2] for p in pts})):
            sel = [p for p in pts if p[2] == kind]
            ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=18, marker="osD^v"[i % 5],
                       label=kind, zorder=3)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xlabel("operations per DRAM byte read")
        ax.set_ylabel("GOPS")
        ax.set_title(title)
        if pts:
            ax.legend(loc="lower right")

    return render(draw)


def utilisation(rows: Sequence[LayerRow], title: str) -> bytes:
    """MAC utilisation per layer: the whole engine (bars), each core and the cap the
    array's shape sets (markers)."""
    names = [str(r["name"]) for r in rows]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = list(range(len(rows)))
        ax.bar(x, [float(r["mac_util"]) for r in rows], color=COMPUTE, label="engine")
        ax.scatter(x, [float(r["util_dsp"]) for r in rows], marker="_", s=60, color="black",
                   label="DSP core", zorder=3)
        ax.scatter(x, [float(r["util_lut"]) for r in rows], marker="x", s=14, color=STALL,
                   label="LUT core", zorder=3)
        capped = [i for i, r in enumerate(rows) if float(r["shape_cap"]) > 0]
        ax.scatter(capped, [float(rows[i]["shape_cap"]) for i in capped], marker="v", s=12,
                   color="dimgray", label="array shape's cap", zorder=3)
        _layer_axis(ax, names)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("MACs / PE-cycles")
        ax.set_title(title)
        ax.legend(loc="lower left")  # over the bars' feet, not their tops

    return render(draw)


#: The resources a part is measured in, as plotted.
RESOURCES = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram36", "BRAM36"))


def resources(series: Mapping[str, Mapping[str, float]], budget: Mapping[str, int],
              title: str) -> bytes:
    """Each series' LUT/FF/DSP/BRAM36 as a share of the part's ``budget`` (bars labelled
    with the counts)."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        n = len(series)
        width = 0.8 / max(1, n)
        for i, (label, used) in enumerate(series.items()):
            xs = [j + (i - (n - 1) / 2) * width for j in range(len(RESOURCES))]
            pct = [100 * used[k] / budget[k] for k, _ in RESOURCES]
            bars = ax.bar(xs, pct, width, label=label)
            ax.bar_label(bars, [f"{used[k]:,}" for k, _ in RESOURCES], fontsize=7)
        ax.axhline(100, color="black", lw=0.8)
        top = max(100 * used[k] / budget[k] for used in series.values() for k, _ in RESOURCES)
        ax.set_ylim(0, max(125.0, 1.15 * top))
        ax.set_xticks(range(len(RESOURCES)),
                      [f"{name}\n(part: {budget[k]:,})" for k, name in RESOURCES])
        ax.set_ylabel("% of the part")
        ax.set_title(title)
        ax.legend(loc="upper right")

    return render(draw)


@dataclass(frozen=True)
class CaseCycles:
    """One RTL verification case: the simulator's and the RTL's cycles."""

    name: str
    cycles_sim: int
    cycles_rtl: int
    passed: bool


def verification(cases: Sequence[CaseCycles], title: str) -> bytes:
    """Simulator and RTL cycles side by side for every case (failures marked)."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        x = list(range(len(cases)))
        ax.bar([i - 0.2 for i in x], [c.cycles_sim for c in cases], 0.4, color=COMPUTE,
               label="simulator (cycle mode)")
        ax.bar([i + 0.2 for i in x], [c.cycles_rtl for c in cases], 0.4, color=STALL,
               label="RTL (Verilator)")
        bad = [i for i, c in enumerate(cases) if not c.passed]
        if bad:
            ax.scatter(bad, [max(cases[i].cycles_sim, cases[i].cycles_rtl) * 1.3 for i in bad],
                       marker="v", color="red", label="failed", zorder=3)
        _layer_axis(ax, [c.name for c in cases])
        ax.set_xlabel("case")
        ax.set_yscale("log")
        ax.set_ylabel("cycles")
        ax.set_title(title)
        ax.legend(loc="upper left")

    return render(draw)


def energy(rows: Sequence[LayerRow], title: str) -> bytes:
    """Energy per layer on PIM macros."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.bar(range(len(rows)), [float(r["energy_uj"]) for r in rows], color=VECTOR)
        _layer_axis(ax, [str(r["name"]) for r in rows])
        ax.set_ylabel("energy, µJ")
        ax.set_title(title)

    return render(draw)


@dataclass(frozen=True)
class Curve:
    """A labelled line of (SP2 fraction, frames per second) points."""

    label: str
    points: tuple[tuple[float, float], ...]


def fraction(curves: Sequence[Curve], dsp_only_fps: float, title: str) -> bytes:
    """Throughput against the fraction of rows on the LUT core, with the best DSP-only
    engine for reference; each curve's fastest point marked."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for c in curves:
            xs, ys = [p[0] for p in c.points], [p[1] for p in c.points]
            (line,) = ax.plot(xs, ys, marker=".", label=c.label)
            best = max(range(len(ys)), key=lambda i: (ys[i], -xs[i]))
            ax.scatter([xs[best]], [ys[best]], s=60, facecolors="none",
                       edgecolors=line.get_color(), zorder=3)
        ax.axhline(dsp_only_fps, color="black", linestyle="--", lw=0.8,
                   label=f"best DSP-only engine ({dsp_only_fps:.2f} FPS)")
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("fraction of rows on the LUT core (SP2)")
        ax.set_ylabel("frames per second")
        ax.set_title(title)
        ax.legend(loc="lower right")

    return render(draw)


@dataclass(frozen=True)
class EnginePoint:
    """One engine of a search: throughput, LUTs, DSPs, whether it is mixed, Pareto-optimal."""

    fps: float
    lut: int
    dsp: int
    mixed: bool
    pareto: bool


def pareto(points: Sequence[EnginePoint], title: str) -> bytes:
    """FPS against LUTs, coloured by DSP slices; the Pareto-optimal engines circled."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        dsps = [p.dsp for p in points]
        norm = mpl.colors.Normalize(min(dsps), max(max(dsps), min(dsps) + 1))
        handles = []
        for mixed, marker, label in ((True, "o", "mixed"), (False, "s", "DSP only")):
            sel = [p for p in points if p.mixed == mixed]
            if sel:
                sc = ax.scatter([p.lut for p in sel], [p.fps for p in sel], c=[p.dsp for p in sel],
                                cmap="viridis", norm=norm, marker=marker, s=22)
                handles.append(Line2D([], [], ls="", marker=marker, color="grey", label=label))
        front = [p for p in points if p.pareto]
        ax.scatter([p.lut for p in front], [p.fps for p in front], s=90, facecolors="none",
                   edgecolors="red", zorder=3)
        handles.append(Line2D([], [], ls="", marker="o", markersize=10, markerfacecolor="none",
                              color="red", label=f"Pareto front ({len(front)} engines: FPS, "
                                                 "LUT, DSP)"))
        fig.colorbar(sc, ax=ax, label="DSP slices")
        ax.set_xlabel("LUTs (resource model)")
        ax.set_ylabel("frames per second")
        ax.set_title(title)
        ax.legend(handles=handles, loc="upper left")

    return render(draw)


def lines(curves: Sequence[Curve], xlabel: str, ylabel: str, title: str) -> bytes:
    """One line of (x, y) points per curve, markers on the points (accuracy against the
    LUT-scheme fraction per bit width and part, or against ADC noise per ADC resolution)."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        for c in curves:
            ax.plot([p[0] for p in c.points], [p[1] for p in c.points], marker="o", ms=4,
                    label=c.label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if curves:
            ax.legend(loc="best")

    return render(draw)


def front_scatter(points: Sequence[tuple[float, float, bool]], xlabel: str, ylabel: str,
                  title: str) -> bytes:
    """Points (x, y, on the Pareto front): all of them, the front's circled in red."""

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.scatter([p[0] for p in points], [p[1] for p in points], s=16, color=COMPUTE,
                   label=f"feasible points ({len(points)})")
        front = [p for p in points if p[2]]
        ax.scatter([p[0] for p in front], [p[1] for p in front], s=80, facecolors="none",
                   edgecolors="red", zorder=3, label=f"Pareto front ({len(front)} points)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="best")

    return render(draw)
