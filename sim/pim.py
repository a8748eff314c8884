"""PIM macro simulator: the macro description, the functional numba kernel and the cost model.

The arithmetic (decomposition schemes, ADC step, transfer curve, noise) is defined once in
:mod:`quant.pim`; this module maps a layer's integer GEMM onto crossbar macros, computes
every group conversion with a numba kernel, and estimates cycles, energy and area.

Cost model (per GEMM ``M x K`` weights, ``N`` activation vectors), weights stationary:

* a macro holds ``rows`` inputs by ``cols // columns_per_output`` outputs; a layer needs
  ``tiles = ceil(K / rows) * ceil(M * columns_per_output / cols)`` macro tiles;
* one activation vector on one tile costs ``planes * groups * ceil(cols_used / adcs) *
  adc_latency`` cycles: each input step (one plane for parallel inputs, ``a_bits`` planes
  for bit-serial) activates each group of ``group_size`` rows in turn, and each ADC
  converts its share of the used columns one after another;
* with ``tiles <= macros`` the tiles run in parallel and ``floor(macros / tiles)`` copies of
  the layer split the ``N`` vectors; otherwise the tiles run in ``ceil(tiles / macros)``
  passes, each preceded by writing the weights (``rows * write_cycles_per_row``);
* energy = conversions x ``energy_adc_pj`` + cell MACs x ``energy_cell_fj`` + digital
  shift-adds (one per conversion) x ``energy_shift_add_pj``; area = ``macros`` x
  ``area_mm2``. The defaults are approximations; each preset names its sources.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba
import numpy as np

from quant.errors import ConfigError, ShapeError, check_int_range
from quant.formats import ActFormat
from quant.pim import PimArith, PimPlan, plan
from sim.functional import _round_shift  # the one numba round-half-even shift

_SCHEME_CODE = {"native": 0, "differential": 1, "bit_serial": 2}
PRESET_DIR = Path(__file__).resolve().parent.parent / "configs" / "pim"


@dataclass(frozen=True)
class PimMacro:
    """One PIM macro type and how many of them a chip has.

    Members:
        name: preset name.
        rows, cols: crossbar size (cells), each >= 1.
        arith: the arithmetic (:class:`quant.pim.PimArith`); ``group_size <= rows``.
        adcs: ADCs per macro, 1..cols; ``ceil(cols / adcs)`` columns share one ADC.
        adc_latency: cycles per conversion, >= 1.
        macros: macros on the chip, >= 1.
        clock_mhz: macro clock in MHz, > 0.
        write_cycles_per_row: cycles to program one crossbar row when weights must be
            reloaded (only when a layer needs more tiles than the chip has macros).
        energy_adc_pj: energy per ADC conversion, pJ.
        energy_cell_fj: energy per cell multiply-accumulate in the array, fJ.
        energy_shift_add_pj: energy per digital shift-add of one ADC code, pJ.
        area_mm2: area of one macro including its ADCs, mm^2.
        approximation: True when the numbers only approximate a published design.
        sources: where each default comes from.
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
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive number, not {v!r}")
        for name in ("energy_adc_pj", "energy_cell_fj", "energy_shift_add_pj"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a number >= 0, not {v!r}")

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
        raise ConfigError(f"unknown PIM macro field {sorted(unknown)[0]!r}; allowed: "
                          f"{', '.join(sorted(MACRO_FIELDS | {'arith'}))}")
    arith = data.get("arith", {})
    bad = set(arith) - ARITH_FIELDS
    if bad:
        raise ConfigError(f"unknown PIM arith field {sorted(bad)[0]!r}; allowed: "
                          f"{', '.join(sorted(ARITH_FIELDS))}")
    rest = {k: v for k, v in data.items() if k != "arith"}
    rest.setdefault("name", name)
    return PimMacro(arith=PimArith(**arith), **rest)


def load_macro(preset: str) -> PimMacro:
    """Load a preset by name (``configs/pim/<name>.yaml``) or from a YAML file path."""
    import yaml

    path = Path(preset)
    if not path.suffix:
        path = PRESET_DIR / f"{preset}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise ConfigError(f"macro must be a preset name ({', '.join(names)}) or a YAML file, "
                          f"not {preset!r}")
    with path.open() as f:
        return macro_from_dict(yaml.safe_load(f), name=path.stem)


# ---------------------------------------------------------------------------------------
# the functional kernel
# ---------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _convert(p: np.int64, shift: np.int64, cmin: np.int64, cmax: np.int64, beta: float,
             sigma: float) -> np.int64:
    """One ADC conversion of the integer analog sum ``p`` (see quant.pim)."""
    if beta == 0.0 and sigma == 0.0:
        code = _round_shift(p, shift)
    else:
        v = p / float(np.int64(1) << shift)
        if beta != 0.0:
            v = v * (1.0 - beta * abs(v) / cmax)
        if sigma != 0.0:
            v += sigma * np.random.standard_normal()
        code = np.int64(np.rint(v))  # rint rounds half to even
    return min(max(code, cmin), cmax)


@numba.njit(cache=True)
def _pim_gemm(w: np.ndarray, x: np.ndarray, group: int, scheme: int, w_bits: int,
              a_bits: int, slices: np.ndarray, planes: np.ndarray, shifts: np.ndarray,
              cmin: int, cmax: int, beta: float, sigma: float, seed: int) -> np.ndarray:
    m_rows, k_len = w.shape
    n_cols = x.shape[1]
    np.random.seed(seed)
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
    wmask = (np.int64(1) << w_bits) - 1
    amask = (np.int64(1) << a_bits) - 1
    for m in range(m_rows):
        for n in range(n_cols):
            acc = np.int64(0)
            for g0 in range(0, k_len, group):
                g1 = min(g0 + group, k_len)
                if scheme == 0:  # native: one signed conversion
                    p = np.int64(0)
                    for k in range(g0, g1):
                        p += w[m, k] * x[k, n]
                    acc += _convert(p, shifts[0], cmin, cmax, beta, sigma) << shifts[0]
                elif scheme == 1:  # differential: two unsigned conversions
                    pp = np.int64(0)
                    pn = np.int64(0)
                    for k in range(g0, g1):
                        wk = w[m, k]
                        if wk > 0:
                            pp += wk * x[k, n]
                        else:
                            pn -= wk * x[k, n]
                    cp = _convert(pp, shifts[0], cmin, cmax, beta, sigma)
                    cn = _convert(pn, shifts[0], cmin, cmax, beta, sigma)
                    acc += (cp - cn) << shifts[0]
                else:  # bit-serial: one unsigned conversion per plane and slice
                    for pi in range(planes.shape[0]):
                        psign = planes[pi, 0]
                        pshift = planes[pi, 1]
                        for si in range(slices.shape[0]):
                            smul = slices[si, 0]
                            sshift = slices[si, 1]
                            lo = slices[si, 2]
                            smask = (np.int64(1) << (slices[si, 3] - lo)) - 1
                            p = np.int64(0)
                            for k in range(g0, g1):
                                bit = ((x[k, n] & amask) >> pshift) & 1
                                if bit:
                                    p += ((w[m, k] & wmask) >> lo) & smask
                            c = _convert(p, shifts[si], cmin, cmax, beta, sigma)
                            acc += psign * smul * (c << (shifts[si] + sshift + pshift))
            out[m, n] = acc
    return out


def pim_gemm(w_int: np.ndarray, x: np.ndarray, w_bits: int, x_fmt: ActFormat,
             arith: PimArith, seed: int = 0) -> np.ndarray:
    """``W · X`` computed the way the macro does: groups, ADC, periphery shift-add.

    ``w_int`` holds (M, K) signed integers of ``w_bits`` bits (e.g. fixed-point levels),
    ``x`` (K, N) integers of ``x_fmt``. Noise draws follow ``seed``. Returns (M, N) int64.
    """
    w = np.asarray(w_int)
    xa = x_fmt.check(x)
    if w.dtype.kind not in "iu":
        raise ShapeError(f"weights must be integers, not dtype {w.dtype}")
    if w.ndim != 2 or xa.ndim != 2 or w.shape[1] != xa.shape[0]:
        raise ShapeError(f"cannot multiply weights {w.shape} by activations {xa.shape}: "
                         "need (M, K) and (K, N)")
    pl = plan(arith, w_bits, x_fmt.bits, x_fmt.signed)
    lim = (1 << (w_bits - 1)) - 1
    if w.size and int(np.abs(w).max()) > lim:
        raise ConfigError(f"weights must lie in -{lim}..{lim} for w_bits={w_bits}, "
                          f"not {int(w[np.abs(w) > lim].flat[0])}")
    return _pim_gemm(w.astype(np.int64), xa, arith.group_size,
                     _SCHEME_CODE[arith.scheme], w_bits, x_fmt.bits,
                     np.array(pl.slices, dtype=np.int64).reshape(-1, 4),
                     np.array(pl.planes, dtype=np.int64).reshape(-1, 2),
                     np.array(pl.adc_shift, dtype=np.int64), arith.code_min, arith.code_max,
                     float(arith.nonlinearity), float(arith.noise_lsb), int(seed))


# ---------------------------------------------------------------------------------------
# the cost model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PimLayerCost:
    """Cycles, energy and mapping of one GEMM on a chip of PIM macros."""

    name: str
    m: int
    k: int
    n: int
    tiles: int
    passes: int
    replication: int
    conversions: int
    cycles: int
    energy_uj: float
    latency_us: float


def layer_cost(macro: PimMacro, name: str, m: int, k: int, n: int, w_bits: int,
               a_bits: int, a_signed: bool = False) -> PimLayerCost:
    """Cost of one ``M x K`` by ``K x N`` GEMM (see the module docstring)."""
    for label, v in (("M", m), ("K", k), ("N", n)):
        check_int_range(label, v, 1, 1 << 40)
    pl: PimPlan = plan(macro.arith, w_bits, a_bits, a_signed)
    cpo = pl.columns_per_output
    if cpo > macro.cols:
        raise ConfigError(f"cols must be at least {cpo} for {macro.arith.scheme} with "
                          f"w_bits={w_bits}, not {macro.cols}")
    outs_per_macro = macro.cols // cpo
    row_tiles = math.ceil(k / macro.rows)
    col_tiles = math.ceil(m / outs_per_macro)
    tiles = row_tiles * col_tiles
    g = macro.arith.group_size
    rows_used = min(k, macro.rows)
    groups = math.ceil(rows_used / g)
    cols_used = min(m, outs_per_macro) * cpo
    planes = len(pl.planes)
    per_vector = planes * groups * math.ceil(cols_used / macro.adcs) * macro.adc_latency
    if tiles <= macro.macros:
        passes, replication = 1, macro.macros // tiles
        cycles = math.ceil(n / replication) * per_vector
    else:
        passes, replication = math.ceil(tiles / macro.macros), 1
        cycles = passes * (n * per_vector + macro.rows * macro.write_cycles_per_row)
    groups_total = math.ceil(k / g)  # conversions use the real K, not the padded tile
    conversions = n * m * groups_total * pl.conversions_per_group
    cell_macs = n * m * k * planes * len(pl.slices) * (2 if cpo == 2 else 1)
    energy_pj = (conversions * (macro.energy_adc_pj + macro.energy_shift_add_pj)
                 + cell_macs * macro.energy_cell_fj * 1e-3)
    return PimLayerCost(name, m, k, n, tiles, passes, replication, conversions, cycles,
                        energy_pj * 1e-6, cycles / macro.clock_mhz)
