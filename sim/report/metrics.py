"""Numbers a report derives from simulation records: per-layer intensity and throughput,
the roofline ceilings of an accelerator, and the Pareto front of a search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sim.arch import Accelerator
from sim.results import RunResult
from sim.search import Candidate, Exploration


@dataclass(frozen=True)
class Ceilings:
    """Roofline ceilings: the engine's peak and the DRAM read bandwidth (None: unlimited)."""

    compute_gops: float
    dram_read_gbytes_per_s: float | None

    @property
    def ridge(self) -> float | None:
        """Operations per byte read above which a layer can be compute-bound."""
        if self.dram_read_gbytes_per_s is None:
            return None
        return self.compute_gops / self.dram_read_gbytes_per_s


def ceilings(accel: Accelerator) -> Ceilings:
    """Every PE doing one MAC (2 operations) per cycle, and R7's read channel, at the clock."""
    hz = accel.clock_mhz * 1e6
    bw = accel.memory.dram_bytes_per_cycle
    return Ceilings(2 * accel.engine.pes * hz / 1e9, None if bw is None else bw * hz / 1e9)


def layer_rows(result: RunResult) -> list[dict[str, object]]:
    """The rows of ``layers.csv``: each layer's record and what derives from it."""
    rows = []
    hz = result.clock_mhz * 1e6
    for la in result.layers:
        engine = la.m > 0
        read = result.read_bytes(la) if engine else 0
        seconds = la.cycles / hz
        rows.append({
            **asdict(la),
            "unit": "engine" if engine else "vector",
            "dram_read_bytes": read,
            "ops_per_byte": 2 * la.macs / read if engine and read else None,
            "gops": 2 * la.macs / seconds / 1e9 if la.cycles else 0.0,
            "mac_util": result.mac_util(la),
            "shape_cap": result.shape_cap(la),
        })
    return rows


def pareto_flags(cands: Sequence[Candidate]) -> list[bool]:
    """For each engine, whether no other is at least as fast with at most its LUTs and DSPs
    and strictly better in one of the three."""
    def dominates(a: Candidate, b: Candidate) -> bool:
        return (a.fps >= b.fps and a.lut <= b.lut and a.dsp <= b.dsp
                and (a.fps > b.fps or a.lut < b.lut or a.dsp < b.dsp))

    return [not any(dominates(o, c) for o in cands) for c in cands]


def engine_rows(x: Exploration) -> list[dict]:
    """One row per engine of ``x`` (mixed ones first; the columns of ``engines.csv``)."""
    engines = [*x.mixed, *x.dsp_only]
    flags = pareto_flags(engines)
    return [{"engine": i, "kind": "mixed" if i < len(x.mixed) else "dsp_only", **c.to_dict(),
             "pareto": int(f)} for i, (c, f) in enumerate(zip(engines, flags, strict=True))]
