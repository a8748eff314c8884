"""Accelerator description: frozen, validated dataclasses for the part, engine and memory.

One :class:`Accelerator` object drives the simulator (``sim``), the RTL generator (``hw``)
and the resource model. This module holds the dataclasses only; :mod:`sim.config` builds
them from YAML presets (the single place YAML becomes dataclasses) and checks that the
engine fits the part.

Every field, its units, range and default, and every shipped preset's values: docs/presets.md
(generated from these docstrings by :mod:`sim.presets_doc`).

The machine is the mixed-scheme GEMM engine of docs/simulator.md (Mix and
Match, arXiv 2012.04240): a DSP core of ``dsp_rows x cols`` fixed-point PEs and a LUT core
of ``lut_rows x cols`` SP2/PoT shift-add PEs sharing one activation stream. The timing rules
are in :mod:`sim.timing`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from quant.errors import (
    ConfigError,
    check_bool,
    check_choice,
    check_int_range,
    check_name,
    check_positive,
    check_real,
)
from quant.formats import WEIGHT_BITS, ActFormat, Scheme
from quant.requant import REQUANTIZER

DSP_TYPES = ("DSP48E1", "DSP48E2")
#: Yosys ``synth_xilinx`` family of each DSP slice type's parts, and back.
FAMILY_DSP = {"xc7": "DSP48E1", "xcup": "DSP48E2"}
LUT_SCHEMES = ("sp2", "pot")


@dataclass(frozen=True)
class FpgaPart:
    """An FPGA part's resource budget (public datasheets; see ``PARTS``).

    Members:
        name: part number, e.g. ``XC7Z020``; a known part's name fills the fields left out.
        lut: 6-input LUTs, 1..2^30.
        ff: flip-flops, 1..2^30.
        dsp: DSP slices, 1..2^30.
        dsp_type: ``DSP48E1`` (25x18 multiplier, Zynq-7000) or ``DSP48E2`` (27x18, UltraScale+).
        bram36: 36 Kb block RAMs, 1..2^30.
    """

    name: str
    lut: int
    ff: int
    dsp: int
    dsp_type: str
    bram36: int

    def __post_init__(self) -> None:
        check_name("part.name", self.name)
        for f in ("lut", "ff", "dsp", "bram36"):
            check_int_range(f"part.{f}", getattr(self, f), 1, 1 << 30)
        check_choice("part.dsp_type", self.dsp_type, DSP_TYPES)

    @property
    def family(self) -> str:
        """Yosys ``synth_xilinx`` family: ``xc7`` or ``xcup``."""
        return next(f for f, d in FAMILY_DSP.items() if d == self.dsp_type)


#: Parts from their public datasheets (LUT, FF, DSP slices and type, BRAM36).
PARTS: dict[str, FpgaPart] = {
    p.name: p
    for p in (
        FpgaPart("XC7Z020", lut=53_200, ff=106_400, dsp=220, dsp_type="DSP48E1", bram36=140),
        FpgaPart("XC7Z045", lut=218_600, ff=437_200, dsp=900, dsp_type="DSP48E1", bram36=545),
        FpgaPart("XCZU9EG", lut=274_080, ff=548_160, dsp=2_520, dsp_type="DSP48E2", bram36=912),
    )
}


def get_part(name: str) -> FpgaPart:
    """The part called ``name`` (case-insensitive)."""
    key = str(name).upper()
    if key not in PARTS:
        raise ConfigError(f"part must be one of {', '.join(PARTS)}, not {name!r}")
    return PARTS[key]


def allowed_packings(dsp_type: str, width: int) -> tuple[int, ...]:
    """DSP packings (PEs per DSP slice) possible for operands of ``width`` bits.

    Two products sharing an activation need operands of at most 8 bits (Xilinx WP486), four
    need at most 4 bits and the 27x18 DSP48E2. The one rule :class:`GemmEngine`,
    :class:`Accelerator` and the searches use.
    """
    out = [1]
    if width <= 8:
        out.append(2)
    if width <= 4 and dsp_type == "DSP48E2":
        out.append(4)
    return tuple(out)


@dataclass(frozen=True)
class GemmEngine:
    """The two-core output-stationary GEMM engine.

    Members:
        dsp_rows: rows of the DSP core (fixed-point PEs, one multiply each), 0..4096; 0 = no
            DSP core (``dsp_rows + lut_rows >= 1``).
        lut_rows: rows of the LUT core (SP2 or PoT shift-add PEs), 0..4096; 0 = no LUT core.
        cols: columns shared by both cores (output positions per tile), 1..4096.
        weight_bits: weight code width of every row (both schemes), bits: fixed 2..16, with a
            LUT core also within the LUT scheme's widths (sp2 3..8, pot 2..8).
        act_bits: activation width (input and requantized output), bits, 1..16 (2..16
            signed).
        act_signed: signed activations (symmetric) instead of unsigned (after ReLU); a bool.
        acc_bits: signed accumulator width, bits, 8..64
            (``quant.requant.REQUANTIZER.acc_bits``).
        dsp_packing: PEs per DSP slice: 1, 2 (two products sharing the activation, weights
            and activations <= 8 bits) or 4 (4-bit, DSP48E2 only).
        lut_scheme: scheme of the LUT core's rows, ``sp2`` or ``pot``.
        group_b_cols: columns of column group B, 0..cols-1: the last ``group_b_cols``
            columns take their weights from a second weight stream, so a row step's output
            positions can be dealt out between the groups (``sim.timing`` rule R3c); 0 (the
            default): one group, every column on one weight stream.
        shared_post: one post-processor shared by both cores (a bool): a tile's drain
            takes the DSP core's rows, then the LUT core's (``a_f + b_f`` cycles instead of
            ``max(a_f, b_f)``, ``sim.timing`` rule R4), for one set of requantization lanes
            instead of one per core. False (the default): each core has its own.
    """

    dsp_rows: int
    lut_rows: int
    cols: int
    weight_bits: int = 4
    act_bits: int = 4
    act_signed: bool = False
    acc_bits: int = 32
    dsp_packing: int = 1
    lut_scheme: str = "sp2"
    group_b_cols: int = 0
    shared_post: bool = False

    def __post_init__(self) -> None:
        check_bool("engine.act_signed", self.act_signed)
        check_bool("engine.shared_post", self.shared_post)
        check_int_range("engine.dsp_rows", self.dsp_rows, 0, 4096)
        check_int_range("engine.lut_rows", self.lut_rows, 0, 4096)
        if self.dsp_rows + self.lut_rows == 0:
            raise ConfigError("engine.dsp_rows + engine.lut_rows must be at least 1, not 0")
        check_int_range("engine.cols", self.cols, 1, 4096)
        check_int_range("engine.group_b_cols", self.group_b_cols, 0, self.cols - 1,
                        f"(0: one column group; below engine.cols {self.cols})")
        check_choice("engine.lut_scheme", self.lut_scheme, LUT_SCHEMES)
        lo = max(WEIGHT_BITS[Scheme.FIXED].start, WEIGHT_BITS[self.lut_core_scheme].start)
        hi = min(WEIGHT_BITS[Scheme.FIXED].stop, WEIGHT_BITS[self.lut_core_scheme].stop) - 1
        if self.lut_rows == 0:
            lo, hi = WEIGHT_BITS[Scheme.FIXED].start, WEIGHT_BITS[Scheme.FIXED].stop - 1
        check_int_range("engine.weight_bits", self.weight_bits, lo, hi,
                        f"for fixed{'' if self.lut_rows == 0 else ' and ' + self.lut_scheme}")
        check_int_range("engine.act_bits", self.act_bits, 2 if self.act_signed else 1, 16)
        check_int_range("engine.acc_bits", self.acc_bits, *REQUANTIZER.acc_bits)
        check_choice("engine.dsp_packing", self.dsp_packing, (1, 2, 4))
        width = max(self.weight_bits, self.act_bits)
        if self.dsp_packing not in allowed_packings("DSP48E2", width):
            ok = " or ".join(map(str, allowed_packings("DSP48E2", width)))
            raise ConfigError(f"engine.dsp_packing must be {ok} for operands wider than "
                              f"{4 if width <= 8 else 8} bits, not {self.dsp_packing}")

    @property
    def lut_core_scheme(self) -> Scheme:
        return Scheme.parse(self.lut_scheme)

    @property
    def rows(self) -> int:
        return self.dsp_rows + self.lut_rows

    @property
    def act_format(self) -> ActFormat:
        return ActFormat(self.act_bits, self.act_signed)

    @property
    def pes(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class Memory:
    """On-chip buffers (each load buffer a ring of two banks of the given size, R6) and DRAM.

    Members:
        k_tile: reduction steps per load block (a tile's K is streamed in chunks of this),
            1..2^20.
        weight_bank_kib: size of one weight-buffer bank, KiB, > 0; at least one tile
            (rows x k_tile x weight_bits).
        act_bank_kib: size of one activation-buffer bank, KiB, > 0; at least one tile
            (cols x k_tile x act_bits).
        out_bank_kib: size of one output-buffer bank, KiB, > 0; at least one tile
            (rows x cols x act_bits).
        dram_bytes_per_cycle: DRAM read bandwidth in bytes per engine cycle, 1..2^20, or
            ``null`` for unlimited (loads take no time).
        dram_latency: cycles from a load request to its first byte, 0..2^20.
    """

    k_tile: int = 256
    weight_bank_kib: float = 16.0
    act_bank_kib: float = 16.0
    out_bank_kib: float = 4.0
    dram_bytes_per_cycle: int | None = 8
    dram_latency: int = 100

    def __post_init__(self) -> None:
        check_int_range("memory.k_tile", self.k_tile, 1, 1 << 20)
        for f in ("weight_bank_kib", "act_bank_kib", "out_bank_kib"):
            check_positive(f"memory.{f}", getattr(self, f))
        if self.dram_bytes_per_cycle is not None:
            check_int_range("memory.dram_bytes_per_cycle", self.dram_bytes_per_cycle, 1,
                            1 << 20, "(or null for unlimited)")
        check_int_range("memory.dram_latency", self.dram_latency, 0, 1 << 20)

    @property
    def unlimited(self) -> bool:
        return self.dram_bytes_per_cycle is None and self.dram_latency == 0


@dataclass(frozen=True)
class VectorUnit:
    """The vector unit for non-GEMM ops (softmax, LayerNorm, GELU, residual add, pooling).

    Softmax and LayerNorm with known rows (artifacts, the DeiT workloads), GELU, the
    position embedding and a matmul's requantizer run the pipelines of rules R12-R16 of
    ``sim.timing`` (docs/timing.md): passes of ``ceil(n / lanes)`` beats plus fixed depths.
    Every other op over ``E`` elements (add, pooling, the ops of torch and ONNX workloads)
    takes ``ceil(E * cost / lanes)`` with ``cost`` the op's cycles per element per lane
    from ``costs`` (``default`` for unlisted ops; rule R10).

    Members:
        lanes: elements per cycle, 1..2^16.
        costs: R10's cycles per element per lane of each op, 0..2^16 each (a YAML mapping
            of op name to cycles, merged into the defaults; must keep ``default``).
    """

    lanes: int = 16
    costs: tuple[tuple[str, int], ...] = (
        ("softmax", 4), ("layernorm", 4), ("gelu", 2), ("add", 1), ("pool", 1),
        ("default", 1),
    )

    def __post_init__(self) -> None:
        check_int_range("vector.lanes", self.lanes, 1, 1 << 16)
        names = [n for n, _ in self.costs]
        if "default" not in names:
            raise ConfigError("vector.costs must include a 'default' entry")
        for n, c in self.costs:
            check_name("vector.costs key", n)
            check_int_range(f"vector.costs.{n}", c, 0, 1 << 16)

    def cost(self, op: str) -> int:
        table = dict(self.costs)
        return table.get(op, table["default"])


@dataclass(frozen=True)
class Accelerator:
    """A complete accelerator: part, engine, memory, vector unit and clock.

    Construction validates the description itself (each buffer bank holds one tile, see
    :mod:`sim.timing`; the DSP packing exists on the part). Whether the engine fits the
    part's LUT/FF/DSP/BRAM36 is the resource model's question
    (:func:`sim.resources.fit_violations`); :func:`sim.config.accelerator_from_dict` asks it
    for every accelerator built from a preset.

    Members:
        name: preset name (default: the YAML file's name).
        part: the FPGA part: a part name (a key of ``PARTS``) or a mapping of its fields.
        engine: the GEMM engine (section ``engine``).
        memory: buffers and DRAM (section ``memory``).
        vector: the vector unit (section ``vector``).
        clock_mhz: engine clock, MHz, (0, 2000].
    """

    name: str
    part: FpgaPart
    engine: GemmEngine
    memory: Memory = field(default_factory=Memory)
    vector: VectorUnit = field(default_factory=VectorUnit)
    clock_mhz: float = 100.0

    def __post_init__(self) -> None:
        check_name("name", self.name)
        check_real("clock_mhz", self.clock_mhz, 0, 2000, lo_open=True)
        e, m = self.engine, self.memory
        if e.dsp_packing not in allowed_packings(self.part.dsp_type, 4):
            raise ConfigError(f"engine.dsp_packing must be 1 or 2 on {self.part.dsp_type}, not 4")
        need = {
            "weight_bank_kib": (e.rows * m.k_tile * e.weight_bits,
                                f"{e.rows} rows x k_tile {m.k_tile} x {e.weight_bits} bits"),
            "act_bank_kib": (e.cols * m.k_tile * e.act_bits,
                             f"{e.cols} cols x k_tile {m.k_tile} x {e.act_bits} bits"),
            "out_bank_kib": (e.rows * e.cols * e.act_bits,
                             f"{e.rows} rows x {e.cols} cols x {e.act_bits} bits"),
        }
        for f, (bits, what) in need.items():
            kib = bits / 8 / 1024
            if getattr(m, f) < kib:
                raise ConfigError(f"memory.{f} must be at least {kib:g} to hold one tile "
                                  f"({what}), not {getattr(m, f)!r}")

    @property
    def cycle_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the YAML schema) for JSON output and round trips."""
        d = dataclasses.asdict(self)
        d["vector"]["costs"] = {n: c for n, c in self.vector.costs}
        return d
