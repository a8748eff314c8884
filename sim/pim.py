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

import llvmlite.ir
import numba
import numba.extending
import numpy as np

from quant.errors import ConfigError, ShapeError, check_int_range, check_positive
from quant.formats import ActFormat
from quant.pim import PimArith, PimPlan, plan
from quant.ref import im2col
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
            check_positive(name, getattr(self, name))
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
def _pim_gemm(w: np.ndarray, x: np.ndarray, group: int, scheme: int, shifts: np.ndarray,
              cmin: int, cmax: int, beta: float, sigma: float, seed: int) -> np.ndarray:
    """Native (scheme 0) and differential (1) GEMM; bit-serial is :func:`_bit_serial_gemm`."""
    m_rows, k_len = w.shape
    n_cols = x.shape[1]
    np.random.seed(seed)
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
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
                else:  # differential: two unsigned conversions
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
    shifts = np.array(pl.adc_shift, dtype=np.int64)
    beta, sigma = float(arith.nonlinearity), float(arith.noise_lsb)
    if arith.scheme != "bit_serial":
        return _pim_gemm(w.astype(np.int64), xa, arith.group_size, _SCHEME_CODE[arith.scheme],
                         shifts, arith.code_min, arith.code_max, beta, sigma, int(seed))
    # bit-serial: every group sum of 1-bit inputs and a weight slice is popcounts of the
    # bit-packed operands; one conversion per (group, plane, slice)
    slices = np.array(pl.slices, dtype=np.int64).reshape(-1, 4)
    planes = np.array(pl.planes, dtype=np.int64).reshape(-1, 2)
    wp = _pack_weights(w.astype(np.int64), w_bits, arith.group_size)
    xp = _pack_cols(np.ascontiguousarray(xa, dtype=np.int64), x_fmt.bits, arith.group_size,
                    planes)
    return _bit_serial_gemm(wp, xp, slices, planes, shifts, arith.code_min, arith.code_max,
                            beta, sigma, int(seed))


# ---------------------------------------------------------------------------------------
# bit-serial with bit-packed operands (the PIM-QAT forward pass)
# ---------------------------------------------------------------------------------------


@numba.extending.intrinsic
def _ctpop(typingctx, v):
    """Population count of a uint64 (LLVM ``ctpop``: one instruction on x86-64)."""
    if not (isinstance(v, numba.types.Integer) and v.bitwidth == 64 and not v.signed):
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [llvmlite.ir.IntType(64)])
        return builder.call(fn, args)

    return numba.types.uint64(numba.types.uint64), codegen


@numba.njit(cache=True)
def _pack_cols(x: np.ndarray, a_bits: int, group: int, planes: np.ndarray) -> np.ndarray:
    """(K, N) input codes → their bit planes, packed: (G, P, words, N) uint64.

    Bit ``j`` of word ``w`` of group ``g`` is plane ``p`` (bit ``planes[p, 1]`` of the
    ``a_bits``-bit two's-complement code) of row ``g * group + 64 * w + j``.
    """
    k_len, n_cols = x.shape
    groups = (k_len + group - 1) // group
    words = (group + 63) // 64
    out = np.zeros((groups, planes.shape[0], words, n_cols), dtype=np.uint64)
    amask = (np.int64(1) << a_bits) - 1
    for k in range(k_len):
        g = k // group
        r = k - g * group
        bit = np.uint64(r & 63)
        src = x[k]
        for pi in range(planes.shape[0]):
            sh = planes[pi, 1]
            dst = out[g, pi, r >> 6]
            for n in range(n_cols):
                dst[n] |= np.uint64(((src[n] & amask) >> sh) & 1) << bit
    return out


@numba.njit(cache=True)
def _pack_conv(x: np.ndarray, kh: int, kw: int, pad: int, stride: int, group: int,
               planes: np.ndarray) -> np.ndarray:
    """Input bit planes of the im2col of ``x`` (B, C, H, W) unsigned codes < 256, packed.

    Column ``n = b * L + oy * OW + ox`` and row ``k = c * kh * kw + ky * kw + kx`` (the
    order of ``F.unfold``/``quant.ref.im2col``); returns (G, P, words, N) uint64 where bit
    ``j`` of word ``w`` of group ``g`` is plane ``p`` of row ``g * group + 64 * w + j``.
    Each column is gathered as bytes (groups padded to whole words), then 8 bytes at a
    time turn into 8 bits of a plane by the multiply trick
    ``((bytes >> p) & 0x0101..01) * 0x0102040810204080 >> 56``.
    """
    b_n, c_n, h, w_ = x.shape
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w_ + 2 * pad - kw) // stride + 1
    k_len = c_n * kh * kw
    groups = (k_len + group - 1) // group
    words = (group + 63) // 64
    span = words * 64
    n_planes = planes.shape[0]
    out = np.zeros((groups, n_planes, words, b_n * oh * ow), dtype=np.uint64)
    col64 = np.zeros(groups * words * 8, dtype=np.uint64)
    col = col64.view(np.uint8)
    ones = np.uint64(0x0101010101010101)
    magic = np.uint64(0x0102040810204080)
    s56 = np.uint64(56)
    t_c = np.empty(k_len, np.int64)  # per row k: channel, kernel offsets, byte position
    t_ky = np.empty(k_len, np.int64)
    t_kx = np.empty(k_len, np.int64)
    t_pos = np.empty(k_len, np.int64)
    for k in range(k_len):
        t_c[k] = k // (kh * kw)
        t_ky[k] = (k // kw) % kh
        t_kx[k] = k % kw
        t_pos[k] = (k // group) * span + k % group
    for b in range(b_n):
        for oy in range(oh):
            for ox in range(ow):
                n = (b * oh + oy) * ow + ox
                y0 = oy * stride - pad
                x0 = ox * stride - pad
                inside = y0 >= 0 and x0 >= 0 and y0 + kh <= h and x0 + kw <= w_
                for k in range(k_len):
                    iy = y0 + t_ky[k]
                    ix = x0 + t_kx[k]
                    if inside or (0 <= iy < h and 0 <= ix < w_):
                        col[t_pos[k]] = x[b, t_c[k], iy, ix]
                    else:
                        col[t_pos[k]] = 0
                for g in range(groups):
                    for wd in range(words):
                        base = (g * span + wd * 64) >> 3
                        for pi in range(n_planes):
                            sh = np.uint64(planes[pi, 1])
                            word = np.uint64(0)
                            for j in range(8):
                                chunk = (col64[base + j] >> sh) & ones
                                word |= ((chunk * magic) >> s56) << np.uint64(8 * j)
                            out[g, pi, wd, n] = word
    return out


@numba.njit(cache=True)
def _pack_weights(w: np.ndarray, w_bits: int, group: int) -> np.ndarray:
    """(M, K) signed weights → (M, G, w_bits, words) uint64 of their two's-complement bits."""
    m_rows, k_len = w.shape
    groups = (k_len + group - 1) // group
    words = (group + 63) // 64
    out = np.zeros((m_rows, groups, w_bits, words), dtype=np.uint64)
    mask = (np.int64(1) << w_bits) - 1
    one = np.uint64(1)
    for m in range(m_rows):
        for k in range(k_len):
            u = w[m, k] & mask
            g = k // group
            r = k - g * group
            bit = one << np.uint64(r & 63)
            for j in range(w_bits):
                if (u >> j) & 1:
                    out[m, g, j, r >> 6] |= bit
    return out


@numba.njit(cache=True)
def _bit_serial_packed(wp: np.ndarray, xp: np.ndarray, slices: np.ndarray,
                       planes: np.ndarray, shifts: np.ndarray, cmax: int) -> np.ndarray:
    """The ideal bit-serial GEMM on packed operands: every group sum is popcounts.

    The innermost loop runs over the N columns (contiguous), so it vectorizes; the ADC
    rounds half to even branch-free: ``(p + 2**(s-1) - 1 + ((p >> s) & 1)) >> s``.
    """
    m_rows, groups, _, words = wp.shape
    n_cols = xp.shape[3]
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
    p = np.zeros(n_cols, dtype=np.int64)
    for m in range(m_rows):
        row = out[m]
        for g in range(groups):
            for si in range(slices.shape[0]):
                lo = slices[si, 2]
                s = shifts[si]
                bias = ((np.int64(1) << s) >> 1) - 1 if s > 0 else np.int64(0)
                for pi in range(planes.shape[0]):
                    coef = planes[pi, 0] * slices[si, 0] * (
                        np.int64(1) << (s + slices[si, 1] + planes[pi, 1]))
                    if slices[si, 3] - lo == 1 and words == 1 and s > 0:  # 1-bit cells
                        wv = wp[m, g, lo, 0]
                        xr = xp[g, pi, 0]
                        for n in range(n_cols):
                            q = np.int64(_ctpop(wv & xr[n]))
                            row[n] += coef * min((q + bias + ((q >> s) & 1)) >> s, cmax)
                        continue
                    p[:] = 0
                    for j in range(lo, slices[si, 3]):
                        for wd in range(words):
                            wv = wp[m, g, j, wd]
                            xr = xp[g, pi, wd]
                            for n in range(n_cols):
                                p[n] += np.int64(_ctpop(wv & xr[n])) << (j - lo)
                    if s > 0:
                        for n in range(n_cols):
                            q = (p[n] + bias + ((p[n] >> s) & 1)) >> s
                            row[n] += coef * min(q, cmax)
                    else:
                        for n in range(n_cols):
                            row[n] += coef * min(p[n], cmax)
    return out


@numba.njit(cache=True)
def _bit_serial_gemm(wp: np.ndarray, xp: np.ndarray, slices: np.ndarray, planes: np.ndarray,
                     shifts: np.ndarray, cmin: int, cmax: int, beta: float, sigma: float,
                     seed: int) -> np.ndarray:
    """Bit-serial GEMM on packed operands with any ADC (noise, transfer curve).

    Conversions happen in the order (m, n, group, plane, slice), one noise draw each.
    """
    m_rows, groups, _, words = wp.shape
    n_cols = xp.shape[3]
    np.random.seed(seed)
    out = np.zeros((m_rows, n_cols), dtype=np.int64)
    for m in range(m_rows):
        for n in range(n_cols):
            acc = np.int64(0)
            for g in range(groups):
                for pi in range(planes.shape[0]):
                    for si in range(slices.shape[0]):
                        lo = slices[si, 2]
                        p = np.int64(0)
                        for j in range(lo, slices[si, 3]):
                            for wd in range(words):
                                p += np.int64(_ctpop(wp[m, g, j, wd] & xp[g, pi, wd, n])) \
                                    << (j - lo)
                        c = _convert(p, shifts[si], cmin, cmax, beta, sigma)
                        acc += planes[pi, 0] * slices[si, 0] * (
                            c << (shifts[si] + slices[si, 1] + planes[pi, 1]))
            out[m, n] = acc
    return out


def bit_serial_conv(x: np.ndarray, w_int: np.ndarray, pl: PimPlan, kernel: tuple[int, int],
                    padding: int = 0, stride: int = 1) -> np.ndarray:
    """The ideal bit-serial PIM GEMM of an im2col conv, with bit-packed operands.

    ``x`` (B, C, H, W) holds unsigned input codes of ``pl.a_bits`` bits, ``w_int`` (M, K)
    signed integer weights of ``pl.w_bits`` bits with ``K = C * kh * kw``; a linear layer
    is a 1x1 conv on (B, K, 1, 1). Returns the (M, B * L) int64 result that
    :func:`pim_gemm` computes on the im2col columns — each group sum of 1-bit inputs and a
    weight slice is a sum of popcounts, so nothing but the ADC rounding is approximate.
    Only for ideal arithmetic (no noise, no transfer curve) and unsigned inputs.
    """
    a = pl.arith
    if a.scheme != "bit_serial" or not a.ideal or pl.a_signed:
        raise ConfigError("bit_serial_conv needs the bit_serial scheme, ideal arithmetic "
                          "and unsigned inputs")
    xa = np.ascontiguousarray(x)
    if xa.dtype.kind not in "iu":
        raise ShapeError(f"input codes must be integers, not dtype {xa.dtype}")
    if xa.ndim != 4 or w_int.shape[1] != xa.shape[1] * kernel[0] * kernel[1]:
        raise ShapeError(f"cannot apply weights {w_int.shape} with kernel {kernel} to "
                         f"inputs {xa.shape}")
    planes = np.array(pl.planes, dtype=np.int64).reshape(-1, 2)
    if pl.a_bits <= 8:  # codes fit the byte-wise gather
        xp = _pack_conv(xa.astype(np.int32, copy=False), int(kernel[0]), int(kernel[1]),
                        int(padding), int(stride), a.group_size, planes)
    else:
        cols = im2col(xa.astype(np.int64, copy=False), (int(kernel[0]), int(kernel[1])),
                      int(stride), int(padding))
        xp = _pack_cols(np.ascontiguousarray(cols), pl.a_bits, a.group_size, planes)
    wp = _pack_weights(np.asarray(w_int, dtype=np.int64), pl.w_bits, a.group_size)
    return _bit_serial_packed(wp, xp, np.array(pl.slices, dtype=np.int64).reshape(-1, 4),
                              planes, np.array(pl.adc_shift, dtype=np.int64), a.code_max)


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
