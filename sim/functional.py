"""Functional (bit-exact) mode: the engine's integer outputs, computed in numba.

Semantics are the foundation's, not re-derived: a code word's integer level is the
format's ``int_level_table`` entry (for SP2 that is exactly the two-shifts-and-add of
``Sp2Format.hw_mul``, for fixed the signed multiplier operand, for PoT the single shift),
products accumulate exactly, and requantization is ``quant.ref.requantize`` (round half to
even of ``(acc + bias) * mult / 2**shift``, optional ReLU, clamp). Before a GEMM the
accumulator bound is proven with ``quant.ref.check_accumulator``, so the int32 / int64
kernels cannot overflow and no wrap-around is relied on (``NUMBA_DISABLE_JIT=1`` gives the
same integers).
"""

from __future__ import annotations

import numba
import numpy as np

from quant.artifact import Artifact, Layer
from quant.errors import ArtifactError, ConfigError, OverflowRiskError, ShapeError
from quant.formats import ActFormat, Scheme, weight_format
from quant.jit import round_shift_scalar
from quant.ops import gemm_of
from quant.ops.gemm import from_columns, gemm_requant
from quant.ops.matmul import matmul_dims
from quant.ref import check_accumulator
from quant.requant import REQUANTIZER
from quant.rows import QuantizedRows
from sim.arch import Accelerator
from sim.ops import sim_op


def level_tables(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(3, 2**bits) int64 levels and bool validity per scheme id, from ``quant.formats``."""
    lv = np.zeros((len(Scheme), 1 << bits), dtype=np.int64)
    ok = np.zeros((len(Scheme), 1 << bits), dtype=np.bool_)
    for s in Scheme:
        try:
            fmt = weight_format(s, bits)
        except ConfigError:
            continue  # the scheme does not exist at this width; its rows are rejected
        lv[int(s)] = fmt.int_level_table
        ok[int(s)] = fmt.valid_words
    return lv, ok


@numba.njit(cache=True)
def _decode(words: np.ndarray, ids: np.ndarray, lv: np.ndarray, ok: np.ndarray,
            out: np.ndarray) -> int:
    """Integer levels of ``words`` by row scheme; returns the flat index of a bad word or -1."""
    m, k = words.shape
    for i in range(m):
        s = ids[i]
        for t in range(k):
            w = words[i, t]
            if w < 0 or w >= lv.shape[1] or not ok[s, w]:
                return i * k + t
            out[i, t] = lv[s, w]
    return -1


@numba.njit(parallel=True, cache=True)
def _gemm(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integer ``w @ x`` accumulating in the inputs' dtype (int32 or int64)."""
    m, k = w.shape
    n = x.shape[1]
    out = np.zeros((m, n), dtype=w.dtype)
    for i in numba.prange(m):
        row = out[i]
        for t in range(k):
            wv = w[i, t]
            if wv != 0:
                xr = x[t]
                for j in range(n):
                    row[j] += wv * xr[j]
    return out


@numba.njit(parallel=True, cache=True)
def _gemm_groups(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Integer ``w[g] @ x[g]`` for every group ``g`` (the inputs' dtype, int32 or int64)."""
    g, m, k = w.shape
    n = x.shape[2]
    out = np.zeros((g, m, n), dtype=w.dtype)
    for gi in numba.prange(g * m):
        h = gi // m
        i = gi - h * m
        row = out[h, i]
        for t in range(k):
            wv = w[h, i, t]
            if wv != 0:
                xr = x[h, t]
                for j in range(n):
                    row[j] += wv * xr[j]
    return out


def matmul(a: np.ndarray, b: np.ndarray, a_fmt: ActFormat, b_fmt: ActFormat,
           transpose_a: bool, acc_bits: int) -> np.ndarray:
    """Exact ``op(a) @ b`` over the last two axes (int64) on the numba GEMM, both operands
    streamed (rule R11 of :mod:`sim.timing`), equal to ``quant.ops.matmul.matmul_acc``:
    ``op(a)`` of each group in the weight role, ``b`` as the activations."""
    aa, bb = a_fmt.check(a), b_fmt.check(b)
    if transpose_a:
        aa = np.swapaxes(aa, -1, -2)
    if aa.shape[:-2] != bb.shape[:-2] or aa.shape[-1] != bb.shape[-2]:
        raise ShapeError(f"cannot multiply {aa.shape} by {bb.shape}: need (..., M, K) and "
                         "(..., K, N)")
    bound = check_accumulator(bb.shape[-2], a_fmt.max_abs, b_fmt.max_abs, acc_bits)
    lead = aa.shape[:-2]
    dt = np.int32 if bound < 1 << 31 else np.int64
    w = np.ascontiguousarray(aa.reshape(-1, *aa.shape[-2:]), dtype=dt)
    x = np.ascontiguousarray(bb.reshape(-1, *bb.shape[-2:]), dtype=dt)
    return _gemm_groups(w, x).astype(np.int64).reshape(*lead, aa.shape[-2], bb.shape[-1])


def run_matmul_layer(layer: Layer, xs: list[np.ndarray], in_fmts: list) -> np.ndarray:
    """One ``matmul`` artifact layer on a batch: the numba GEMM per head (R11), then the
    vector unit's dyadic requantizer (R11d, R15) on the numba requantizer."""
    a = layer.attrs
    acc = matmul(xs[0], xs[1], in_fmts[0], in_fmts[1], bool(a["transpose_a"]),
                 int(a["acc_bits"]))
    flat = acc.reshape(-1, acc.shape[-1])
    return requantize(flat, int(a["mult"]), int(a["shift"]), layer.out.fmt).reshape(acc.shape)


def int_weights(rows: QuantizedRows) -> np.ndarray:
    """(M, K) int64 integer levels of ``rows`` (numba decode through the format tables)."""
    lv, ok = level_tables(rows.bits)
    ids = np.asarray(rows.scheme_ids, dtype=np.int64)
    out = np.empty(rows.words.shape, dtype=np.int64)
    bad = _decode(np.ascontiguousarray(rows.words, dtype=np.int64), ids, lv, ok, out)
    if bad >= 0:
        i, t = divmod(bad, rows.words.shape[1])
        raise ConfigError(f"code word {int(rows.words[i, t])} at row {i} is not a valid "
                          f"{Scheme(int(ids[i])).label}-{rows.bits} code")
    return out


def gemm(rows: QuantizedRows, x: object, x_fmt: ActFormat, acc_bits: int = 32,
         w_int: np.ndarray | None = None) -> np.ndarray:
    """Mixed-scheme GEMM ``(M, K) x (K, N)`` → (M, N) int64, equal to ``quant.ref.gemm``.

    ``w_int`` (the decoded levels) may be passed to skip decoding when called repeatedly.
    """
    xa = x_fmt.check(x)
    if xa.ndim != 2 or xa.shape[0] != rows.shape[1]:
        raise ShapeError(f"cannot multiply weights {rows.shape} by activations {xa.shape}: "
                         "need (M, K) and (K, N)")
    bound = check_accumulator(rows.shape[1], rows.max_abs_int(), x_fmt.max_abs, acc_bits)
    wi = int_weights(rows) if w_int is None else w_int
    if bound < 1 << 31:
        return _gemm(wi.astype(np.int32), np.ascontiguousarray(xa, dtype=np.int32)) \
            .astype(np.int64)
    return _gemm(wi.astype(np.int64), np.ascontiguousarray(xa, dtype=np.int64))


@numba.njit(parallel=True, cache=True)
def _requant(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, bias: np.ndarray,
             relu: bool, lo: int, hi: int) -> np.ndarray:
    m, n = acc.shape
    out = np.empty((m, n), dtype=np.int64)
    for i in numba.prange(m):
        for j in range(n):
            y = round_shift_scalar((acc[i, j] + bias[i]) * mult[i], shift[i])
            if relu and y < 0:
                y = 0
            out[i, j] = min(max(y, lo), hi)
    return out


def requantize(acc: np.ndarray, mult: object, shift: object, out_fmt: ActFormat, *,
               bias: object | None = None, relu: bool = False) -> np.ndarray:
    """Per-row (axis 0) requantization of (M, N) accumulators, equal to ``quant.ref``'s.
    (A layer's logits saturate at the engine's output lane: ``out_fmt`` of
    :func:`quant.ops.gemm.gemm_requant`.)
    """
    a = np.asarray(acc)
    if a.ndim != 2 or a.dtype.kind not in "iu":
        raise ShapeError(f"accumulators must be a 2-D integer array, not {a.dtype} {a.shape}")
    m = a.shape[0]

    def per_row(v: object, name: str) -> np.ndarray:
        arr = np.asarray(v)
        if arr.dtype.kind not in "iu":
            raise ShapeError(f"{name} must be integers, not dtype {arr.dtype}")
        arr = np.broadcast_to(arr.astype(np.int64), (m,)) if arr.ndim == 0 else arr
        if arr.shape != (m,):
            raise ShapeError(f"{name} must be a scalar or have {m} entries, not {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.int64)

    mu = per_row(mult, "mult")
    sh = per_row(shift, "shift")
    bi = per_row(0 if bias is None else bias, "bias")
    if mu.size and mu.min() < 0:
        raise ConfigError("mult must be non-negative")
    if sh.size and (sh.min() < -62 or sh.max() > 62):
        raise ConfigError(f"shift must be in -62..62, not {int(np.max(np.abs(sh)))}")
    a64 = a.astype(np.int64)
    amax = (int(np.abs(a64).max()) if a64.size else 0) + (int(np.abs(bi).max()) if m else 0)
    worst = amax * (int(mu.max()) if m else 0) << max(0, -int(sh.min()) if m else 0)
    if worst >= 1 << 63:
        raise OverflowRiskError(f"(acc + bias) * mult reaches {worst}, which does not fit int64")
    return _requant(np.ascontiguousarray(a64), mu, sh, bi, bool(relu), out_fmt.qmin,
                    out_fmt.qmax)


def random_rows(rng: np.random.Generator, m: int, k: int, bits: int, m_lut: int,
                lut_scheme: Scheme = Scheme.SP2) -> QuantizedRows:
    """Random valid code words: the first ``m - m_lut`` rows fixed, the rest ``lut_scheme``."""
    ids = np.array([int(Scheme.FIXED)] * (m - m_lut) + [int(lut_scheme)] * m_lut, np.int8)
    words = np.empty((m, k), dtype=np.int64)
    for s in (Scheme.FIXED, lut_scheme):
        sel = ids == int(s)
        if sel.any():
            valid = np.flatnonzero(weight_format(s, bits).valid_words)
            words[sel] = rng.choice(valid, size=(int(sel.sum()), k))
    return QuantizedRows(words=words, scheme_ids=ids, alphas=np.ones(m), bits=bits)


# ---------------------------------------------------------------------------------------
# Whole artifacts
# ---------------------------------------------------------------------------------------

def _fits(fmt: ActFormat, engine_fmt: ActFormat) -> bool:
    return engine_fmt.qmin <= fmt.qmin and fmt.qmax <= engine_fmt.qmax


def check_artifact(art: Artifact, accel: Accelerator, only: str | None = None) -> None:
    """Raise :class:`~quant.errors.ArtifactError` if ``art`` cannot run on ``accel``: an op
    the simulator does not know, or an engine layer whose weights, formats or requantization
    (:data:`quant.requant.REQUANTIZER`: what the RTL post-processor computes) do not fit.
    With ``only`` (a layer name, checked first), that layer alone.

    Both simulation modes and ``fpim verify`` call it first, so an artifact the engine cannot
    run is refused by all of them, before any work."""
    e = accel.engine
    ef = e.act_format
    layers = art.layers if only is None else (art.layer(only),)
    for layer in layers:
        if sim_op(layer.op).streamed:
            _check_matmul(art, layer, accel)
        if not sim_op(layer.op).engine:
            continue
        where = f"layer {layer.name!r}"
        bits = int(layer.attrs["weight_bits"])
        if bits != e.weight_bits:
            raise ArtifactError(f"{where}: weight_bits must match engine.weight_bits "
                                f"{e.weight_bits}, not {bits}")
        ids = set(int(s) for s in np.unique(layer.tensors["scheme_ids"]))
        lut_ids = ids - {int(Scheme.FIXED)}
        if lut_ids and lut_ids != {int(e.lut_core_scheme)}:
            names = ", ".join(Scheme(s).label for s in sorted(lut_ids))
            raise ArtifactError(f"{where}: rows use {names} but the LUT core runs "
                                f"{e.lut_scheme}")
        if lut_ids and e.lut_rows == 0:
            raise ArtifactError(f"{where}: has {e.lut_scheme} rows but engine.lut_rows is 0")
        if int(Scheme.FIXED) in ids and e.dsp_rows == 0:
            raise ArtifactError(f"{where}: has fixed rows but engine.dsp_rows is 0")
        src = art.value(layer.inputs[0])
        if src.fmt is None or not _fits(src.fmt, ef):
            raise ArtifactError(f"{where}: input format {src.fmt} must fit the engine's "
                                f"activations {ef}")
        # The post-processor clamps to the layer's own output format (written into the GEMM's
        # command; REQUANTIZER.output_format). Outputs wider than the
        # engine's activations (a ResNet's residual branch, kept at a finer scale until the
        # add) go back to DRAM for the vector unit; they can never feed a GEMM directly,
        # which the input check above enforces. Write-back bytes are counted at the
        # engine's activation width (R9: write-back never stalls).
        if layer.out.fmt is not None and layer.out.fmt.bits > REQUANTIZER.max_out_bits:
            raise ArtifactError(f"{where}: output format {layer.out.fmt} must be at most "
                                f"{REQUANTIZER.max_out_bits} bits wide")
        _, k, _ = layer.gemm_dims
        try:
            bound = check_accumulator(k, layer.rows.max_abs_int(), src.fmt.max_abs, e.acc_bits)
        except OverflowRiskError as exc:
            raise ArtifactError(f"{where}: engine.{exc}") from None
        t = layer.tensors
        REQUANTIZER.check(where, e.acc_bits, t["mult"], t["shift"], t["bias"], acc_max=bound)


def _check_matmul(art: Artifact, layer: Layer, accel: Accelerator) -> None:
    """A matmul on the engine (R11): the DSP core, operands of at most ``act_bits`` bits,
    the accumulator bound at the engine's width."""
    e = accel.engine
    where = f"layer {layer.name!r}"
    if e.dsp_rows == 0:
        raise ArtifactError(f"{where}: a matmul runs on the DSP core (R11) but engine.dsp_rows "
                            "is 0")
    fmts = [art.value(s).fmt for s in layer.inputs]
    for name, f in zip(("a", "b"), fmts, strict=True):
        if f is None or f.bits > e.act_bits:
            raise ArtifactError(f"{where}: operand {name} format {f} must have at most "
                                f"engine.act_bits {e.act_bits} bits (R11c)")
    _, _, k, _ = matmul_dims(layer)
    try:
        check_accumulator(k, fmts[0].max_abs, fmts[1].max_abs, e.acc_bits)
    except OverflowRiskError as exc:
        raise ArtifactError(f"{where}: engine.{exc}") from None


def run_gemm_layer(layer: Layer, x: np.ndarray, in_fmt: ActFormat, acc_bits: int,
                   w_int: np.ndarray | None = None) -> np.ndarray:
    """One conv/linear artifact layer on a batch, through the numba GEMM and requantizer."""
    op = gemm_of(layer)
    t = layer.tensors
    cols, spatial = op.to_columns(layer, x)
    acc = gemm(layer.rows, cols, in_fmt, acc_bits, w_int=w_int)
    fmt, relu = gemm_requant(layer)  # the logits saturate at the engine's output lane
    y = requantize(acc, t["mult"], t["shift"], fmt, bias=t["bias"], relu=relu)
    return from_columns(y, x.shape[0], spatial)


def run_artifact(art: Artifact, codes: np.ndarray, accel: Accelerator) -> dict[str, np.ndarray]:
    """Every value of ``art`` on integer input ``codes`` as the engine computes it.

    Each layer runs its :data:`sim.ops.SIM_OPS` kernel: GEMM layers on the numba kernels
    above, the element-wise layers (add, pooling, flatten) — the vector unit's work — with
    the artifact's reference semantics (:func:`quant.infer.run_layer`).
    """
    check_artifact(art, accel)
    acc_bits = accel.engine.acc_bits

    def engine(layer: Layer, x: np.ndarray, x_fmt: ActFormat) -> np.ndarray:
        return run_gemm_layer(layer, x, x_fmt, acc_bits)

    vals: dict[str, np.ndarray] = {"input": codes}
    fmts = {"input": art.input.fmt}
    for layer in art.layers:
        vals[layer.name] = sim_op(layer.op).run(layer, [vals[s] for s in layer.inputs],
                                                [fmts[s] for s in layer.inputs], engine)
        fmts[layer.name] = layer.out.fmt
    return vals
