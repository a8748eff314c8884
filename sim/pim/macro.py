"""The PIM macro description: crossbar size, arithmetic, ADCs, timing, energy and area; presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from quant.errors import (
    ConfigError,
    check_bool,
    check_int_range,
    check_name,
    check_positive,
    check_real,
    check_required,
)
from quant.pim import PimArith
from sim.config import read_yaml

PRESET_DIR = Path(__file__).resolve().parent.parent.parent / "configs" / "pim"


@dataclass(frozen=True)
class PimMacro:
    """One PIM macro type and how many of them a chip has.

    Members:
        name: preset name.
        rows, cols: crossbar size (cells), each 1..2^16.
        arith: the arithmetic (:class:`quant.pim.PimArith`); ``group_size <= rows``.
        adcs: ADCs per macro, 1..cols; ``ceil(cols / adcs)`` columns share one ADC.
        adc_latency: cycles per conversion, 1..2^16.
        macros: macros on the chip, 1..2^20.
        clock_mhz: macro clock in MHz, > 0.
        write_cycles_per_row: cycles to program one crossbar row when weights must be
            reloaded (only when a layer needs more tiles than the chip has macros), 0..2^16.
        energy_adc_pj: energy per ADC conversion, pJ, >= 0.
        energy_cell_fj: energy per cell multiply-accumulate in the array, fJ, >= 0.
        energy_shift_add_pj: energy per digital shift-add of one ADC code, pJ, >= 0.
        area_mm2: area of one macro including its ADCs, mm^2, > 0.
        approximation: True when the numbers only approximate a published design; a bool.
        sources: where each default comes from (a mapping of field to text).
    """

    name: str
    rows: int
    cols: int
    arith: PimArith
    adcs: int
    adc_latency: int = 1
    macros: int = 1
    clock_mhz: float = 100.0
    write_cycles_per_row: int = 1
    energy_adc_pj: float = 1.0
    energy_cell_fj: float = 1.0
    energy_shift_add_pj: float = 0.05
    area_mm2: float = 1.0
    approximation: bool = True
    sources: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        check_name("name", self.name)
        if not isinstance(self.arith, PimArith):
            raise ConfigError(f"arith must be a PimArith, not {self.arith!r}")
        check_int_range("rows", self.rows, 1, 1 << 16)
        check_int_range("cols", self.cols, 1, 1 << 16)
        check_int_range("adcs", self.adcs, 1, self.cols, f"(at most cols={self.cols})")
        check_int_range("adc_latency", self.adc_latency, 1, 1 << 16)
        check_int_range("macros", self.macros, 1, 1 << 20)
        check_int_range("write_cycles_per_row", self.write_cycles_per_row, 0, 1 << 16)
        if self.arith.group_size > self.rows:
            raise ConfigError(f"group_size must be at most rows={self.rows}, "
                              f"not {self.arith.group_size}")
        for name in ("clock_mhz", "area_mm2"):
            check_positive(name, getattr(self, name))
        for name in ("energy_adc_pj", "energy_cell_fj", "energy_shift_add_pj"):
            check_real(name, getattr(self, name), 0)
        check_bool("approximation", self.approximation)
        if not isinstance(self.sources, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.sources.items()):
            raise ConfigError(f"sources must be a mapping of field name to text, "
                              f"not {self.sources!r}")

    @property
    def input_mode(self) -> str:
        """``bit_serial`` for the bit-serial scheme, else ``parallel`` (multi-bit inputs)."""
        return "bit_serial" if self.arith.scheme == "bit_serial" else "parallel"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_mode"] = self.input_mode
        return d


MACRO_FIELDS = {f for f in PimMacro.__dataclass_fields__} - {"arith"}
ARITH_FIELDS = set(PimArith.__dataclass_fields__)


def macro_from_dict(data: dict, name: str = "custom") -> PimMacro:
    """Build a :class:`PimMacro` from plain data (YAML); unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"a PIM macro description must be a mapping, not {type(data).__name__}")
    unknown = set(data) - MACRO_FIELDS - {"arith"}
    if unknown:
        raise ConfigError(f"unknown PIM macro field {sorted(unknown, key=str)[0]!r}; allowed: "
                          f"{', '.join(sorted(MACRO_FIELDS | {'arith'}))}")
    arith = data.get("arith")
    arith = {} if arith is None else arith
    if not isinstance(arith, dict):
        raise ConfigError(f"arith must be a mapping, not {arith!r}")
    bad = set(arith) - ARITH_FIELDS
    if bad:
        raise ConfigError(f"unknown PIM arith field {sorted(bad, key=str)[0]!r}; allowed: "
                          f"{', '.join(sorted(ARITH_FIELDS))}")
    rest = {k: v for k, v in data.items() if k != "arith"}
    rest.setdefault("name", name)
    check_required(PimMacro, {**rest, "arith": arith}, "")
    return PimMacro(arith=PimArith(**arith), **rest)


def load_macro(preset: str) -> PimMacro:
    """Load a preset by name (``configs/pim/<name>.yaml``) or from a YAML file path."""
    path = Path(preset)
    names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    if not path.suffix:
        if str(preset) not in names:
            raise ConfigError(f"macro must be a preset name ({', '.join(names)}) or a YAML "
                              f"file, not {preset!r}")
        path = PRESET_DIR / f"{preset}.yaml"
    return macro_from_dict(read_yaml(path, "macro file"), name=path.stem)
