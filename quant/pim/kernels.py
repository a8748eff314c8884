"""Numba kernels of the PIM arithmetic (:mod:`quant.pim.arith`): one ADC conversion and the
bit-serial GEMM on bit-packed operands.

They are the arithmetic's executable definition, shared by the macro simulator
(:func:`sim.pim.pim_gemm`) and the PIM-QAT forward pass (:func:`bit_serial_conv`), so the
two compute the same integers. Every group sum of 1-bit inputs and a weight slice is a
popcount of the AND of the packed planes (LLVM ``ctpop``).
"""

from __future__ import annotations

import llvmlite.ir
import numba
import numba.extending
import numpy as np

from quant.errors import ConfigError, ShapeError
from quant.jit import round_shift_scalar
from quant.pim.arith import PimPlan
from quant.ref import im2col


@numba.njit(cache=True)
def convert(p: np.int64, shift: np.int64, cmin: np.int64, cmax: np.int64, beta: float,
             sigma: float) -> np.int64:
    """One ADC conversion of ``p``, the integer analog sum times the plan's ``adc_mult``
    (see quant.pim): ``round(p / 2**shift)`` clipped, with the non-idealities."""
    if beta == 0.0 and sigma == 0.0:
        code = round_shift_scalar(p, shift)
    else:
        v = p / float(np.int64(1) << shift)
        if beta != 0.0:
            v = v * (1.0 - beta * abs(v) / cmax)
        if sigma != 0.0:
            v += sigma * np.random.standard_normal()
        code = np.int64(np.rint(v))  # rint rounds half to even
    return min(max(code, cmin), cmax)



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
                       planes: np.ndarray, shifts: np.ndarray, mult: int, oshifts: np.ndarray,
                       cmax: int) -> np.ndarray:
    """The ideal bit-serial GEMM on packed operands: every group sum is popcounts.

    The innermost loop runs over the N columns (contiguous), so it vectorizes; the ADC
    rounds ``p * mult / 2**s`` half to even branch-free:
    ``(q + 2**(s-1) - 1 + ((q >> s) & 1)) >> s`` with ``q = p * mult``.
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
                        np.int64(1) << (oshifts[si] + slices[si, 1] + planes[pi, 1]))
                    if slices[si, 3] - lo == 1 and words == 1 and s > 0:  # 1-bit cells
                        wv = wp[m, g, lo, 0]
                        xr = xp[g, pi, 0]
                        for n in range(n_cols):
                            q = np.int64(_ctpop(wv & xr[n])) * mult
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
                            q = p[n] * mult
                            row[n] += coef * min((q + bias + ((q >> s) & 1)) >> s, cmax)
                    else:
                        for n in range(n_cols):
                            row[n] += coef * min(p[n] * mult, cmax)
    return out


@numba.njit(cache=True)
def _bit_serial_gemm(wp: np.ndarray, xp: np.ndarray, slices: np.ndarray, planes: np.ndarray,
                     shifts: np.ndarray, mult: int, oshifts: np.ndarray, cmin: int, cmax: int,
                     beta: float, sigma: float, seed: int) -> np.ndarray:
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
                        c = convert(p * mult, shifts[si], cmin, cmax, beta, sigma)
                        acc += planes[pi, 0] * slices[si, 0] * (
                            c << (oshifts[si] + slices[si, 1] + planes[pi, 1]))
            out[m, n] = acc
    return out


def plan_arrays(pl: PimPlan) -> tuple[np.ndarray, ...]:
    """The plan as the kernels take it: ``slices``, ``planes``, ``adc_shift`` and
    ``out_shift`` int64 arrays."""
    return (np.array(pl.slices, dtype=np.int64).reshape(-1, 4),
            np.array(pl.planes, dtype=np.int64).reshape(-1, 2),
            np.array(pl.adc_shift, dtype=np.int64), np.array(pl.out_shift, dtype=np.int64))


def bit_serial_conv(x: np.ndarray, w_int: np.ndarray, pl: PimPlan, kernel: tuple[int, int],
                    padding: int = 0, stride: int = 1) -> np.ndarray:
    """The ideal bit-serial PIM GEMM of an im2col conv, with bit-packed operands.

    ``x`` (B, C, H, W) holds unsigned input codes of ``pl.a_bits`` bits, ``w_int`` (M, K)
    signed integer weights of ``pl.w_bits`` bits with ``K = C * kh * kw``; a linear layer
    is a 1x1 conv on (B, K, 1, 1). Returns the (M, B * L) int64 result that
    :func:`pim_gemm` computes on the im2col columns — each group sum of 1-bit inputs and a
    weight slice is a sum of popcounts, so nothing but the ADC rounding is approximate.
    Only for ideal arithmetic (no noise, no transfer curve) and unsigned inputs. The result
    is in units of ``pl.step``.
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
    slices, planes, shifts, oshifts = plan_arrays(pl)
    if pl.a_bits <= 8:  # codes fit the byte-wise gather
        xp = _pack_conv(xa.astype(np.int32, copy=False), int(kernel[0]), int(kernel[1]),
                        int(padding), int(stride), a.group_size, planes)
    else:
        cols = im2col(xa.astype(np.int64, copy=False), (int(kernel[0]), int(kernel[1])),
                      int(stride), int(padding))
        xp = _pack_cols(np.ascontiguousarray(cols), pl.a_bits, a.group_size, planes)
    wp = _pack_weights(np.asarray(w_int, dtype=np.int64), pl.w_bits, a.group_size)
    return _bit_serial_packed(wp, xp, slices, planes, shifts, pl.adc_mult, oshifts,
                              a.code_max)

