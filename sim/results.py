"""Result records of a simulation run (per layer and totals) and their CSV/JSON forms."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from sim.resources import accel_vector_unit, estimate_resources, with_vector_unit
from sim.timing import write_back_bytes

if TYPE_CHECKING:
    from sim.arch import Accelerator
    from sim.workload import Attention


@dataclass(frozen=True)
class LayerResult:
    """One layer: sizes, rows per scheme, cycles (= compute + stall), utilization, traffic.

    ``util_dsp`` / ``util_lut`` are each core's MACs over its PE-cycles in this layer;
    ``dram_bytes`` counts loads and output write-back. ``hidden_cycles``: a vector op's
    cycles that overlap the engine (rule R16 of :mod:`sim.timing`), not in ``cycles``.
    ``shape_cycles``: the fewest cycles the array's shape allows the layer (its output
    tiles at K cycles each, :func:`sim.timing.shape_cycles`; 0 off the engine), never more
    than ``compute_cycles``.
    """

    name: str
    op: str
    m: int
    n: int
    k: int
    groups: int
    rows_fixed: int
    rows_lut: int
    cycles: int
    compute_cycles: int
    stall_cycles: int
    util_dsp: float
    util_lut: float
    macs: int
    dram_bytes: int
    hidden_cycles: int = 0
    shape_cycles: int = 0


@dataclass(frozen=True)
class RunResult:
    """A whole run of ``batch`` images: layers and totals at the accelerator's clock.

    ``fps`` is images per second (``batch`` images per run), ``latency_ms`` the time of one
    run (the whole batch)."""

    workload: str
    accelerator: str
    mode: str
    clock_mhz: float
    dsp_used: int
    layers: tuple[LayerResult, ...]
    resources: dict
    batch: int = 1
    pes: int = 0  # the engine's PEs (rows x cols)
    read_bw: int | None = None  # DRAM bytes per cycle (None: unlimited)
    act_bits: int = 8
    acc_bits: int = 32

    @staticmethod
    def build(workload: str, accel: Accelerator, mode: str, layers: list[LayerResult],
              batch: int = 1, attn: Attention | None = None) -> RunResult:
        """With ``attn`` (a transformer's tokens and features,
        :func:`sim.workload.attention_of`) the resources count the vector unit too
        (:func:`sim.resources.accel_vector_unit`, the ViT search's figure): ``vector_unit``
        holds its share, ``lut``/``ff``/``dsp``/``bram36`` the whole design's."""
        vector = None if attn is None else accel_vector_unit(accel, attn)
        res = with_vector_unit(estimate_resources(accel), vector)
        d = res.to_dict()
        dsp = res.dsp
        if vector is not None:
            d["vector_unit"] = vector.to_dict()
        d["budget"] = {"lut": accel.part.lut, "ff": accel.part.ff, "dsp": accel.part.dsp,
                       "bram36": accel.part.bram36, "part": accel.part.name}
        e = accel.engine
        return RunResult(workload, accel.name, mode, float(accel.clock_mhz), dsp,
                         tuple(layers), d, batch, e.rows * e.cols,
                         accel.memory.dram_bytes_per_cycle, e.act_bits, e.acc_bits)

    def mac_util(self, la: LayerResult | None = None) -> float:
        """MACs over the engine's PE-cycles, of layer ``la`` or of the whole run."""
        macs, cycles = (self.macs, self.total_cycles) if la is None else (la.macs, la.cycles)
        return macs / (self.pes * cycles) if self.pes and cycles else 0.0

    def read_bytes(self, la: LayerResult) -> int:
        """Layer ``la``'s DRAM bytes read: its DRAM bytes less its write-back (R9)."""
        bits = self.acc_bits if la.op == "matmul" else self.act_bits  # R9, R11d
        return la.dram_bytes - write_back_bytes(la.m, la.n, bits, la.groups)

    def bound(self, la: LayerResult) -> str:
        """Roofline verdict, the layer's position against the ridge (``sim.report``'s
        roofline): ``dram`` when reading its bytes at the DRAM bandwidth takes longer than
        its MACs at one per PE and cycle (its operations per byte read below the ridge's),
        ``compute`` otherwise, ``vector`` off the engine. A property of the layer's MACs and
        bytes, not of how well the array's shape fits it: :meth:`of_roofline` is that."""
        if not la.macs:
            return "vector"
        if self.read_bw is not None and self.read_bytes(la) * self.pes > la.macs * self.read_bw:
            return "dram"
        return "compute"

    def of_roofline(self, la: LayerResult) -> float:
        """The layer's roofline cycles (the larger of its MACs at one per PE and cycle and
        its bytes read at the DRAM bandwidth) over its cycles: 1.0 on the roofline. Equal to
        :meth:`mac_util` for a compute-bound layer; for a DRAM-bound one, how close it comes
        to the bandwidth's limit."""
        if not la.cycles or not self.pes:
            return 0.0
        best = la.macs / self.pes
        if self.read_bw is not None:
            best = max(best, self.read_bytes(la) / self.read_bw)
        return best / la.cycles

    def shape_cap(self, la: LayerResult) -> float:
        """The MAC utilisation the array's shape allows the layer: its MACs over the PEs
        times its ``shape_cycles`` (0 off the engine). What :meth:`mac_util` lacks of it is
        fill, drain and stalls; what this lacks of 1.0 is the layer's M and N against the
        cores' rows and the columns (a 7x7 layer, N = 49, on 12 columns fills 49 of 60)."""
        return la.macs / (self.pes * la.shape_cycles) if self.pes and la.shape_cycles else 0.0

    @property
    def total_cycles(self) -> int:
        return sum(la.cycles for la in self.layers)

    @property
    def stall_cycles(self) -> int:
        return sum(la.stall_cycles for la in self.layers)

    @property
    def compute_cycles(self) -> int:
        return sum(la.compute_cycles for la in self.layers)

    @property
    def macs(self) -> int:
        return sum(la.macs for la in self.layers)

    @property
    def latency_ms(self) -> float:
        return self.total_cycles / (self.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        """Images per second."""
        return self.batch * 1e3 / self.latency_ms if self.total_cycles else 0.0

    @property
    def gops(self) -> float:
        """Operations (2 per MAC) per second, in 1e9."""
        return 2 * self.macs / (self.latency_ms * 1e-3) / 1e9 if self.total_cycles else 0.0

    @property
    def gops_per_dsp(self) -> float:
        return self.gops / self.dsp_used if self.dsp_used else 0.0

    @property
    def gops_per_klut(self) -> float:
        """GOPS per thousand LUTs of the resource estimate."""
        lut = self.resources.get("lut", 0)
        return self.gops / (lut / 1e3) if lut else 0.0

    @property
    def engine_cycles(self) -> int:
        """Cycles of the GEMM layers (compute and stall)."""
        return sum(la.cycles for la in self.layers if la.macs)

    @property
    def vector_cycles(self) -> int:
        """Cycles of the vector ops that the engine does not hide (R10, R14-R16)."""
        return sum(la.cycles for la in self.layers if not la.macs)

    @property
    def hidden_vector_cycles(self) -> int:
        """Vector cycles that overlap the engine (R16)."""
        return sum(la.hidden_cycles for la in self.layers)

    def totals(self) -> dict:
        return {
            "batch": self.batch, "total_cycles": self.total_cycles,
            "compute_cycles": self.compute_cycles, "stall_cycles": self.stall_cycles,
            "engine_cycles": self.engine_cycles, "vector_cycles": self.vector_cycles,
            "hidden_vector_cycles": self.hidden_vector_cycles,
            "macs": self.macs,
            "latency_ms": self.latency_ms, "fps": self.fps, "gops": self.gops,
            "gops_per_dsp": self.gops_per_dsp, "gops_per_klut": self.gops_per_klut,
            "mac_util": self.mac_util(),
            "dram_bytes": sum(la.dram_bytes for la in self.layers),
        }

    def to_dict(self) -> dict:
        return {
            "workload": self.workload, "accelerator": self.accelerator, "mode": self.mode,
            "clock_mhz": self.clock_mhz, **self.totals(), "resources": self.resources,
            "layers": [{**asdict(la), "mac_util": self.mac_util(la), "bound": self.bound(la),
                        "of_roofline": self.of_roofline(la), "shape_cap": self.shape_cap(la)}
                       for la in self.layers],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        names = [f.name for f in fields(LayerResult)]
        w = csv.writer(out, lineterminator="\n")
        # the JSON's layer fields, in its order
        w.writerow([*names, "mac_util", "bound", "of_roofline", "shape_cap"])
        for la in self.layers:
            w.writerow([f"{v:.6f}" if isinstance(v, float) else v
                        for v in (*(getattr(la, n) for n in names), self.mac_util(la),
                                  self.bound(la), self.of_roofline(la), self.shape_cap(la))])
        return out.getvalue()
