"""Accelerator description: frozen, validated dataclasses for the part, engine and memory.

One :class:`Accelerator` object drives the simulator (``sim``), the RTL generator (``hw``)
and the resource model. Build it from a YAML preset in ``configs/`` with
:func:`load_accelerator`, optionally with ``--set``-style overrides
(``engine.cols=16``, see :func:`apply_overrides`). Nothing inside the packages sees a raw
dict: :func:`accelerator_from_dict` is the single place YAML becomes dataclasses.

The machine is the mixed-scheme GEMM engine of ``ACCELERATOR.md`` section 1 (Mix and
Match, arXiv 2012.04240): a DSP core of ``dsp_rows x cols`` fixed-point PEs and a LUT core
of ``lut_rows x cols`` SP2/PoT shift-add PEs sharing one activation stream. The timing rules
are in :mod:`sim.timing`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from quant.errors import ConfigError, check_choice, check_int_range, check_positive
from quant.formats import WEIGHT_BITS, ActFormat, Scheme

#: Where the shipped presets live (``configs/<name>.yaml``).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

DSP_TYPES = ("DSP48E1", "DSP48E2")
LUT_SCHEMES = ("sp2", "pot")


@dataclass(frozen=True)
class FpgaPart:
    """An FPGA part's resource budget (public datasheets; see ``PARTS``).

    Members:
        name: part number, e.g. ``XC7Z020``.
        lut: 6-input LUTs.
        ff: flip-flops.
        dsp: DSP slices.
        dsp_type: ``DSP48E1`` (25x18 multiplier, Zynq-7000) or ``DSP48E2`` (27x18, UltraScale+).
        bram36: 36 Kb block RAMs.
    """

    name: str
    lut: int
    ff: int
    dsp: int
    dsp_type: str
    bram36: int

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("part.name must be a non-empty string, not ''")
        for f in ("lut", "ff", "dsp", "bram36"):
            check_int_range(f"part.{f}", getattr(self, f), 1, 1 << 30)
        check_choice("part.dsp_type", self.dsp_type, DSP_TYPES)

    @property
    def family(self) -> str:
        """Yosys ``synth_xilinx`` family: ``xc7`` or ``xcup``."""
        return "xc7" if self.dsp_type == "DSP48E1" else "xcup"


#: Parts from their datasheets (ALGORITHMS.md section 5).
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


@dataclass(frozen=True)
class GemmEngine:
    """The two-core output-stationary GEMM engine.

    Members:
        dsp_rows: rows of the DSP core (fixed-point PEs, one multiply each); 0 = no DSP core.
        lut_rows: rows of the LUT core (SP2 or PoT shift-add PEs); 0 = no LUT core.
        cols: columns shared by both cores (output positions per tile), >= 1.
        weight_bits: weight code width of every row (both schemes).
        act_bits: activation width (input and requantized output), 1..16.
        act_signed: signed activations (symmetric) instead of unsigned (after ReLU).
        acc_bits: signed accumulator width, 8..64.
        dsp_packing: PEs per DSP slice: 1, 2 (two products sharing the activation, weights
            and activations <= 8 bits) or 4 (4-bit, DSP48E2 only).
        lut_scheme: scheme of the LUT core's rows, ``sp2`` or ``pot``.
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

    def __post_init__(self) -> None:
        check_int_range("engine.dsp_rows", self.dsp_rows, 0, 4096)
        check_int_range("engine.lut_rows", self.lut_rows, 0, 4096)
        if self.dsp_rows + self.lut_rows == 0:
            raise ConfigError("engine.dsp_rows + engine.lut_rows must be at least 1, not 0")
        check_int_range("engine.cols", self.cols, 1, 4096)
        check_choice("engine.lut_scheme", self.lut_scheme, LUT_SCHEMES)
        lo = max(WEIGHT_BITS[Scheme.FIXED].start, WEIGHT_BITS[self.lut_core_scheme].start)
        hi = min(WEIGHT_BITS[Scheme.FIXED].stop, WEIGHT_BITS[self.lut_core_scheme].stop) - 1
        if self.lut_rows == 0:
            lo, hi = WEIGHT_BITS[Scheme.FIXED].start, WEIGHT_BITS[Scheme.FIXED].stop - 1
        check_int_range("engine.weight_bits", self.weight_bits, lo, hi,
                        f"for fixed{'' if self.lut_rows == 0 else ' and ' + self.lut_scheme}")
        check_int_range("engine.act_bits", self.act_bits, 2 if self.act_signed else 1, 16)
        check_int_range("engine.acc_bits", self.acc_bits, 8, 64)
        check_choice("engine.dsp_packing", self.dsp_packing, (1, 2, 4))
        if self.dsp_packing == 2 and max(self.weight_bits, self.act_bits) > 8:
            raise ConfigError("engine.dsp_packing must be 1 for operands wider than 8 bits, "
                              f"not {self.dsp_packing}")
        if self.dsp_packing == 4 and max(self.weight_bits, self.act_bits) > 4:
            raise ConfigError("engine.dsp_packing must be 1 or 2 for operands wider than 4 "
                              f"bits, not {self.dsp_packing}")

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
    """On-chip buffers (each double-buffered: two banks of the given size) and DRAM.

    Members:
        k_tile: reduction steps per load block (a tile's K is streamed in chunks of this).
        weight_bank_kib: size of one weight-buffer bank, KiB.
        act_bank_kib: size of one activation-buffer bank, KiB.
        out_bank_kib: size of one output-buffer bank, KiB.
        dram_bytes_per_cycle: DRAM read bandwidth in bytes per engine cycle (an integer >= 1),
            or ``None`` for unlimited (loads take no time).
        dram_latency: cycles from a load request to its first byte (>= 0).
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
    """Element-wise unit for non-GEMM ops (softmax, LayerNorm, GELU, residual add, pooling).

    Cycles of a vector op over ``E`` elements: ``ceil(E * cost / lanes)`` with ``cost`` the
    op's cycles per element per lane from ``costs`` (``default`` for unlisted ops).
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
            check_int_range(f"vector.costs.{n}", c, 0, 1 << 16)

    def cost(self, op: str) -> int:
        table = dict(self.costs)
        return table.get(op, table["default"])


@dataclass(frozen=True)
class Accelerator:
    """A complete accelerator: part, engine, memory, vector unit and clock.

    Construction validates that the engine fits the part (DSP, LUT, BRAM36 from the
    analytical resource model in :mod:`sim.resources`) and that each buffer bank holds
    one tile (see :mod:`sim.timing`).
    """

    name: str
    part: FpgaPart
    engine: GemmEngine
    memory: Memory = field(default_factory=Memory)
    vector: VectorUnit = field(default_factory=VectorUnit)
    clock_mhz: float = 100.0

    def __post_init__(self) -> None:
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)) \
                or not (math.isfinite(self.clock_mhz) and 0 < self.clock_mhz <= 2000):
            raise ConfigError(f"clock_mhz must be a number in (0, 2000], not {self.clock_mhz!r}")
        e, m = self.engine, self.memory
        if e.dsp_packing == 4 and self.part.dsp_type != "DSP48E2":
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
        from sim.resources import estimate_resources  # resources imports this module

        est = estimate_resources(self)
        for res, have in (("dsp", self.part.dsp), ("lut", self.part.lut),
                          ("ff", self.part.ff), ("bram36", self.part.bram36)):
            used = getattr(est, res)
            if used > have:
                raise ConfigError(
                    f"engine needs {used} {res.upper()} but part {self.part.name} has {have} "
                    f"(dsp_rows={e.dsp_rows}, lut_rows={e.lut_rows}, cols={e.cols})"
                )

    @property
    def cycle_ns(self) -> float:
        return 1000.0 / self.clock_mhz

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the YAML schema) for JSON output and round trips."""
        d = dataclasses.asdict(self)
        d["vector"]["costs"] = {n: c for n, c in self.vector.costs}
        return d


# ---------------------------------------------------------------------------------------
# YAML and overrides
# ---------------------------------------------------------------------------------------

_SECTIONS = {"engine": GemmEngine, "memory": Memory, "vector": VectorUnit}


def _build(cls: type, data: object, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, not {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where} has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(names))}")
    return cls(**data)


def accelerator_from_dict(data: object, name: str = "custom") -> Accelerator:
    """Build an :class:`Accelerator` from plain data (a parsed YAML preset)."""
    if not isinstance(data, dict):
        raise ConfigError(f"accelerator config must be a mapping, not {data!r}")
    allowed = {"name", "part", "engine", "memory", "vector", "clock_mhz"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"accelerator config has unknown key {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(allowed))}")
    part_data = data.get("part")
    if isinstance(part_data, str):
        part = get_part(part_data)
    elif isinstance(part_data, dict):
        base = dict(dataclasses.asdict(get_part(part_data["name"]))) \
            if str(part_data.get("name", "")).upper() in PARTS else {}
        base.update(part_data)
        part = _build(FpgaPart, base, "part")
    else:
        raise ConfigError(f"part must be a part name or a mapping, not {part_data!r}")
    if "engine" not in data:
        raise ConfigError("accelerator config must have an 'engine' section")
    engine = _build(GemmEngine, data["engine"], "engine")
    memory = _build(Memory, data.get("memory", {}), "memory")
    vec = dict(data.get("vector", {}) or {})
    if "costs" in vec:
        costs = vec["costs"]
        if not isinstance(costs, dict):
            raise ConfigError(f"vector.costs must be a mapping of op to cycles, not {costs!r}")
        merged = dict(VectorUnit().costs)
        merged.update(costs)
        vec["costs"] = tuple(merged.items())
    vector = _build(VectorUnit, vec, "vector")
    kwargs: dict[str, Any] = {}
    if "clock_mhz" in data:
        kwargs["clock_mhz"] = data["clock_mhz"]
    return Accelerator(name=str(data.get("name", name)), part=part, engine=engine,
                       memory=memory, vector=vector, **kwargs)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``engine.cols=16`` into (``["engine", "cols"]``, 16); the value is YAML."""
    if "=" not in text:
        raise ConfigError(f"override must look like section.key=value, not {text!r}")
    key, _, raw = text.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"override must look like section.key=value, not {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override value of {key.strip()} is not valid YAML: {raw!r}") from exc
    return path, value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` override applied."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for p in path[:-1]:
            if p not in node or not isinstance(node[p], dict):
                if isinstance(node.get(p), str) and p == "part":  # part given by name
                    node[p] = {"name": node[p]}
                else:
                    node[p] = {}
            node = node[p]
        node[path[-1]] = value
    return out


def preset_names() -> list[str]:
    """Names of the shipped accelerator presets (``configs/*.yaml`` with an engine)."""
    out = []
    for p in sorted(CONFIG_DIR.glob("*.yaml")):
        out.append(p.stem)
    return out


def load_accelerator(preset: str | Path, overrides: list[str] | tuple[str, ...] = ()
                     ) -> Accelerator:
    """Load a shipped preset by name (``xc7z020``) or a YAML file path, then apply overrides."""
    path = Path(preset)
    if not path.suffix:
        path = CONFIG_DIR / f"{str(preset).lower()}.yaml"
        if not path.is_file():
            raise ConfigError(f"accelerator preset must be one of {', '.join(preset_names())} "
                              f"or a YAML file, not {str(preset)!r}")
    elif not path.is_file():
        raise ConfigError(f"accelerator file must exist, not {str(preset)!r}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping, not {type(data).__name__}")
    data = apply_overrides(data, overrides)
    return accelerator_from_dict(data, name=path.stem)


def replace_engine(accel: Accelerator, **changes: Any) -> Accelerator:
    """A copy of ``accel`` with engine fields changed (validated again)."""
    return dataclasses.replace(accel, engine=dataclasses.replace(accel.engine, **changes))
