"""GEMM cases for the accelerator top, written once and run at every level.

A :class:`GemmCase` is one GEMM as the host gives it to :class:`hw.accel.GemmAccelerator`:
per-row weight code words and schemes, activations, per-row requantization, and the DRAM
timing the testbench plays (bytes per cycle, latency). It carries its expected output
(:mod:`quant.ref`: GEMM + requantize, or an artifact layer's integer inference) and the
simulator's cycle-mode prediction (:func:`sim.timing.schedule_cycles`) for the same configuration.
Cases are random (:func:`random_case`, :func:`random_cases`) or one layer of a QAT artifact
(:func:`artifact_case`), and travel to a cocotb process as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from hw.generate import PARAM_DEPTH, check_gemm
from hw.ops import LEVEL, Runs, rtl_op
from hw.params import matmul_words
from quant.errors import ArtifactError, ConfigError, check_int_range
from quant.formats import ActFormat, Scheme
from quant.msq import msq_assign
from quant.ops import gemm_of
from quant.ops.gemm import gemm_requant, output_columns
from quant.ops.matmul import MATMUL, matmul_acc
from quant.ref import gemm, requantize
from quant.requant import REQUANTIZER
from quant.rows import QuantizedRows, quantize_rows
from sim.arch import Accelerator
from sim.resources import matmul_block_violation, rtl_runs_matmul
from sim.timing import (
    CHAIN_FORCE,
    CHAIN_HOST,
    CHAIN_NONE,
    TILINGS,
    GemmShape,
    ScheduleResult,
    Tiling,
    ceil_div,
    deal_fits,
    deal_sequence,
    first_block_rows,
    gemm_tiling,
    resident_fits,
    row_steps,
    schedule_cycles,
)

#: DRAM timings the random cases draw from: (bytes per cycle or None = unlimited, latency).
MEMORY_TIMINGS = ((None, 0), (None, 3), (4, 4), (2, 1), (1, 0), (8, 12), (3, 7))


def core_rows(scheme_ids) -> dict[str, np.ndarray]:
    """Layer row indices of each core, in core order: the fixed-point rows on the DSP core,
    the others on the LUT core."""
    fixed = np.asarray(scheme_ids) == int(Scheme.FIXED)
    return {"dsp": np.flatnonzero(fixed), "lut": np.flatnonzero(~fixed)}


@dataclass(frozen=True, eq=False)
class GemmCase:
    """One GEMM with its expected output and predicted cycles (see the module docstring).

    Members:
        name: label used in reports (``random-3``, ``artifact:features.3``).
        seed: the seed that generated it (None for artifact cases).
        words: (M, K) weight code words, rows in layer order.
        scheme_ids: (M,) per-row :class:`~quant.formats.Scheme` (FIXED → DSP core).
        x: (K, N) activation codes.
        mult, shift, bias, relu: (M,) requantization per row.
        want: (M, N) expected outputs.
        bw, lat: DRAM bytes per cycle (None: unlimited) and latency in cycles.
        cycles: the simulator's cycle-mode count for this GEMM and memory.
        dram_read: bytes the simulator loads (weights and activations).
        out_bits, out_signed: the output format the post-processor clamps to
            (:meth:`quant.requant.Requantizer.output_format` of the layer's).
        matmul: an activation x activation GEMM (sim.timing R11): ``words`` are the
            weight-role operand's values (``act_bits`` at most, signed if ``a_signed``),
            ``x`` the streamed operand's (signed if ``b_signed``), ``want`` the
            accumulators; the requantization fields are unused.
        tiling: ``(order, resident)`` the command carries instead of the host's R3 choice
            (:func:`sim.timing.gemm_tiling`), and ``cycles``/``dram_read`` are for, or
            ``(0, 0, *deal)`` for a dealt GEMM (R3c, an engine with column group B); None:
            the host's.
        prefetch: R10b, ``(rows_dsp, rows_lut, steps)`` of the next case's first weight
            block, which this case's command prefetches (the next case runs right after
            it on the same top); None: no prefetch.
        preloaded: R10b, the case before prefetched this case's first weight block.
        ``cycles`` and ``dram_read`` count both (:func:`chained`).
    """

    name: str
    seed: int | None
    words: np.ndarray
    scheme_ids: np.ndarray
    x: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    bias: np.ndarray
    relu: np.ndarray
    want: np.ndarray
    bw: int | None
    lat: int
    cycles: int
    dram_read: int
    out_bits: int
    out_signed: bool
    matmul: bool = False
    a_signed: bool = False
    b_signed: bool = False
    tiling: tuple[int, ...] | None = None
    prefetch: tuple[int, int, int] | None = None
    preloaded: bool = False

    @property
    def out_fmt(self) -> ActFormat:
        return ActFormat(self.out_bits, self.out_signed)

    @property
    def fixed_rows(self) -> np.ndarray:
        """Layer row indices on the DSP core, in core order."""
        return core_rows(self.scheme_ids)["dsp"]

    @property
    def lut_rows(self) -> np.ndarray:
        """Layer row indices on the LUT core, in core order."""
        return core_rows(self.scheme_ids)["lut"]

    @property
    def mnk(self) -> tuple[int, int, int]:
        return self.words.shape[0], self.x.shape[1], self.x.shape[0]

    def describe(self) -> str:
        m, n, k = self.mnk
        bw = "unlimited" if self.bw is None else f"{self.bw} B/cycle"
        what = (f"matmul M={m} N={n} K={k}, a {'signed' if self.a_signed else 'unsigned'}, "
                f"b {'signed' if self.b_signed else 'unsigned'}, accumulators out"
                if self.matmul else
                f"M={m} ({len(self.fixed_rows)} fixed + {len(self.lut_rows)} LUT) N={n} "
                f"K={k}, out {self.out_fmt}")
        return (f"{self.name}: {what}, DRAM {bw}, latency {self.lat}"
                + ("" if self.tiling is None else
                   f", deal {self.tiling[2:]}" if len(self.tiling) > 2 else
                   f", order {self.tiling[0]}{' resident' if self.tiling[1] else ''}")
                + (", preloaded" if self.preloaded else "")
                + ("" if self.prefetch is None else ", prefetches the next")
                + ("" if self.seed is None else f", seed {self.seed}"))

    def to_json(self) -> dict:
        d = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.tolist() if isinstance(v, np.ndarray) else v
        return d

    @classmethod
    def from_json(cls, d: dict) -> GemmCase:
        arrays = {"words", "scheme_ids", "x", "mult", "shift", "bias", "relu", "want"}
        kw = {k: (np.asarray(v, dtype=np.int64) if k in arrays else v) for k, v in d.items()}
        for key in ("tiling", "prefetch"):
            if kw.get(key) is not None:
                kw[key] = tuple(int(v) for v in kw[key])
        return cls(**kw)


def weight_beat(accel: Accelerator, core: str, values: list[int], matmul: bool = False
                ) -> list[int]:
    """``core``'s weight words of one K step carrying ``values`` (its used rows' in order):
    one code word per row, or a matmul's ``act_bits`` values laid end to end in the DSP
    rows' words (:func:`hw.params.matmul_words`)."""
    e = accel.engine
    rows = e.dsp_rows if core == "dsp" else e.lut_rows
    if matmul and core == "dsp":
        return matmul_words(values, e.act_bits, e.weight_bits, rows)
    return [int(v) for v in values] + [0] * (rows - len(values))


def with_memory(accel: Accelerator, bw: int | None, lat: int) -> Accelerator:
    """``accel`` with the DRAM timing the testbench plays."""
    return dataclasses.replace(accel, memory=dataclasses.replace(
        accel.memory, dram_bytes_per_cycle=bw, dram_latency=lat))


def command(accel: Accelerator, m_fixed: int, m_lut: int, n: int, k: int,
            out_fmt: ActFormat | None = None, *, matmul: tuple[bool, bool] | None = None,
            tiling: tuple[int, ...] | None = None,
            prefetch: tuple[int, int, int] | None = None, preloaded: bool = False
            ) -> dict[str, int]:
    """The ``cmd`` fields of one GEMM: R1-R3 as the host computes them (R3's tiling: loop
    order and residency, :func:`sim.timing.gemm_tiling`), and the output
    format (default: the engine's activations). ``matmul``: ``(a_signed, b_signed)`` of an
    activation x activation GEMM (R11: its R3 tiling with the weight role at ``act_bits``),
    for a top built with the matmul path (``hw.accel.GemmAccelerator(..., matmul=True)``).
    ``tiling``: ``(order, resident)`` to write instead of R3's. ``prefetch``: the next
    command's first weight block ``(rows_dsp, rows_lut, steps)`` (R10b,
    :func:`next_block`); ``preloaded``: this command's first weight block was prefetched."""
    e = accel.engine
    out = e.act_format if out_fmt is None else out_fmt
    f = row_steps(m_fixed, m_lut, e.dsp_rows, e.lut_rows)
    tiling = _as_tiling(tiling) if tiling is not None else _host_tiling(
        accel, m_fixed, m_lut, n, k, matmul is not None)
    fields = {"m_fixed": m_fixed, "m_lut": m_lut, "n": n, "k": k, "f": f,
              "order": tiling.order, "resident": int(tiling.resident),
              "qa": m_fixed // f, "ra": m_fixed % f, "qb": m_lut // f, "rb": m_lut % f,
              "out_bits": out.bits, "out_signed": int(out.signed), "pre": int(preloaded),
              "pf": int(prefetch is not None)}
    if prefetch is not None:
        fields |= dict(zip(("pf_rows_dsp", "pf_rows_lut", "pf_steps"), prefetch, strict=True))
    if matmul is not None:  # the fields of a top with the matmul path (0 when left out)
        fields |= {"matmul": 1, "a_signed": int(matmul[0]), "b_signed": int(matmul[1])}
    if e.group_b_cols:  # R3c: the deal itself goes into the top's deal table
        fields["dealt"] = int(tiling.dealt)
    return fields


def command_deal(accel: Accelerator, case: GemmCase) -> tuple[int, ...]:
    """R3c: the deal of ``case``'s command (empty unless it is dealt), what the host writes
    into the top's deal table before the command."""
    if not accel.engine.group_b_cols:
        return ()
    if case.tiling is not None:
        return _as_tiling(case.tiling).deal
    m, n, k = case.mnk
    return _host_tiling(with_memory(accel, case.bw, case.lat), len(case.fixed_rows),
                        m - len(case.fixed_rows), n, k, case.matmul).deal


def _host_tiling(accel: Accelerator, m_fixed: int, m_lut: int, n: int, k: int,
                 matmul: bool) -> Tiling:
    """The host's tiling of a GEMM on ``accel`` with its memory (R3, R3c's deal on an engine
    with column group B; ``matmul``: the weight role at ``act_bits``, R11b)."""
    e, mem = accel.engine, accel.memory
    return gemm_tiling(GemmShape(m_fixed, m_lut, n, k), e.dsp_rows, e.lut_rows, e.cols,
                       mem.k_tile, e.act_bits if matmul else e.weight_bits, e.act_bits,
                       group_b=e.group_b_cols, bw=mem.dram_bytes_per_cycle,
                       lat=mem.dram_latency, shared=e.shared_post)


def _as_tiling(tiling: tuple[int, ...]) -> Tiling:
    """A case's ``(order, resident)`` pair (``(0, 0, *deal)``: dealt, R3c) as
    :class:`sim.timing.Tiling`."""
    return Tiling(tiling[0], bool(tiling[1]), tuple(int(v) for v in tiling[2:]))


def case_command(accel: Accelerator, case: GemmCase) -> dict[str, int]:
    """The ``cmd`` fields of ``case``."""
    m, n, k = case.mnk
    return command(with_memory(accel, case.bw, case.lat), len(case.fixed_rows),
                   m - len(case.fixed_rows), n, k, case.out_fmt,
                   matmul=(case.a_signed, case.b_signed) if case.matmul else None,
                   tiling=case.tiling, prefetch=case.prefetch, preloaded=case.preloaded)


def next_block(accel: Accelerator, m_fixed: int, m_lut: int, k: int) -> tuple[int, int, int]:
    """R10b: ``(rows_dsp, rows_lut, steps)`` of a GEMM's first weight block, what the
    command before it prefetches."""
    e = accel.engine
    a0, b0 = first_block_rows(m_fixed, m_lut, e.dsp_rows, e.lut_rows)
    return int(a0), int(b0), min(accel.memory.k_tile, k)


def chained(accel: Accelerator, cases: list[GemmCase], chain: list[int]) -> list[GemmCase]:
    """``cases`` run back to back on one top with R10b's prefetches: ``chain[i]`` (one of
    :data:`sim.timing.CHAIN_NONE`, ``CHAIN_HOST``, ``CHAIN_FORCE``) for case ``i`` and
    ``i + 1``; each case's ``cycles``/``dram_read`` from the simulator's run of the whole
    sequence, ``prefetch``/``preloaded`` where it prefetched. The cases share one DRAM
    timing and carry no matmul."""
    if len({(c.bw, c.lat) for c in cases}) > 1 or any(c.matmul for c in cases):
        raise ConfigError("chained cases share one DRAM timing and carry no matmul")
    e = accel.engine
    mem = (with_memory(accel, cases[0].bw, cases[0].lat) if cases else accel).memory
    params = np.array([[len(c.fixed_rows), len(c.lut_rows), c.mnk[1], c.mnk[2], 1]
                       for c in cases], dtype=np.int64).reshape(-1, 5)
    out, _ = schedule_cycles(params, e.dsp_rows, e.lut_rows, e.cols, mem.k_tile,
                             e.weight_bits, e.act_bits, mem.dram_bytes_per_cycle,
                             mem.dram_latency, None, packing=e.dsp_packing,
                             tilings=[None if c.tiling is None else _as_tiling(c.tiling)
                                      for c in cases], chain=chain, group_b=e.group_b_cols,
                             shared=e.shared_post)
    return [dataclasses.replace(
        c, cycles=r.cycles, dram_read=r.dram_read, preloaded=r.preloaded,
        prefetch=next_block(accel, *params[i + 1, :2], int(params[i + 1, 3]))
        if r.prefetch else None) for i, (c, r) in enumerate(zip(cases, out, strict=True))]


def predicted(accel: Accelerator, m_fixed: int, m_lut: int, n: int, k: int, *,
              groups: int = 1, matmul: bool = False, tiling: tuple[int, ...] | None = None
              ) -> ScheduleResult:
    """``groups`` identical GEMMs in the simulator's cycle mode (the kernel behind
    ``sim.engine.simulate(..., "cycle")``): their cycles, stalls and DRAM bytes read;
    ``matmul``: the weight role at ``act_bits`` (R11b), as the simulator times a matmul;
    ``tiling``: ``(order, resident)`` instead of R3's."""
    e, mem = accel.engine, accel.memory
    out, _ = schedule_cycles(np.array([[m_fixed, m_lut, n, k, groups]]), e.dsp_rows,
                             e.lut_rows, e.cols, mem.k_tile, e.weight_bits, e.act_bits,
                             mem.dram_bytes_per_cycle, mem.dram_latency, None,
                             [e.act_bits if matmul else e.weight_bits],
                             packing=e.dsp_packing,
                             tilings=None if tiling is None else [_as_tiling(tiling)],
                             group_b=e.group_b_cols, shared=e.shared_post)
    return out[0]


def expected(rows: QuantizedRows, x: np.ndarray, accel: Accelerator, mult, shift, bias,
             relu, out_fmt: ActFormat) -> np.ndarray:
    """Reference outputs: quant.ref GEMM then per-row requantize to ``out_fmt`` (ReLU per
    row)."""
    e = accel.engine
    acc = gemm(rows, x, e.act_format, acc_bits=e.acc_bits)
    on = requantize(acc, mult, shift, out_fmt, bias=bias, relu=True)
    off = requantize(acc, mult, shift, out_fmt, bias=bias, relu=False)
    return np.where(np.asarray(relu, bool)[:, None], on, off)


def make_case(name: str, seed: int | None, rows: QuantizedRows, x: np.ndarray,
              accel: Accelerator, mult, shift, bias, relu, *, bw: int | None, lat: int,
              want: np.ndarray | None = None, out_fmt: ActFormat | None = None,
              tiling: tuple[int, ...] | None = None) -> GemmCase:
    """A case from its parts; ``want`` defaults to :func:`expected`, ``out_fmt`` to the
    engine's activation format, ``tiling`` to the host's (R3). The GEMM must fit one
    command of the generated top (:func:`hw.generate.check_gemm`)."""
    mf = int(np.sum(rows.scheme_ids == int(Scheme.FIXED)))
    check_gemm(mf, rows.shape[0] - mf, x.shape[1], x.shape[0])
    acc = with_memory(accel, bw, lat)
    mult, shift, bias, relu = (np.asarray(v, dtype=np.int64) for v in (mult, shift, bias, relu))
    out = accel.engine.act_format if out_fmt is None else out_fmt
    if want is None:
        want = expected(rows, x, acc, mult, shift, bias, relu, out)
    pred = predicted(acc, mf, rows.shape[0] - mf, x.shape[1], x.shape[0], tiling=tiling)
    return GemmCase(name, seed, rows.words.astype(np.int64),
                    rows.scheme_ids.astype(np.int64), np.asarray(x, dtype=np.int64), mult,
                    shift, bias, relu, np.asarray(want, dtype=np.int64), bw, lat, pred.cycles,
                    pred.dram_read, out.bits, out.signed, tiling=tiling)


def random_case(accel: Accelerator, m: int, n: int, k: int, seed: int, *,
                bw: int | None = None, lat: int = 0, name: str | None = None,
                tiling: tuple[int, ...] | None = None) -> GemmCase:
    """Random MSQ rows (random fixed/LUT split), activations with edge values, requantization.

    The LUT-scheme fraction is drawn in [0, 1], so some cases put every row on one core. On
    an engine with one core (a DSP-only or LUT-only engine) every row is on that core. The
    output format is the engine's activations in half the cases, otherwise any format the
    post-processor clamps to (:func:`random_out_format`). ``tiling``: the command's
    ``(order, resident)`` instead of the host's (R3).
    """
    e = accel.engine
    rng = np.random.default_rng(seed)
    frac = float(rng.choice([0.0, 1.0, rng.uniform(0.1, 0.9)], p=[0.1, 0.1, 0.8]))
    w = rng.normal(size=(m, k))
    if e.dsp_rows and e.lut_rows:
        rows = msq_assign(w, frac, e.weight_bits, lut_scheme=e.lut_scheme)
    else:  # the one core's scheme (weight_bits may be out of the other scheme's range)
        rows = quantize_rows(w, Scheme.FIXED if e.dsp_rows else e.lut_core_scheme,
                             e.weight_bits)
    act = e.act_format
    x = rng.integers(act.qmin, act.qmax + 1, size=(k, n))
    x[0, 0] = act.qmax  # an edge value in every case
    mult = rng.integers(1 << 14, 1 << 16, size=m)
    shift = rng.integers(10, 20, size=m)
    bias = rng.integers(-300, 301, size=m)
    relu = rng.integers(0, 2, size=m)
    return make_case(name or f"random-{seed}", seed, rows, x, accel, mult, shift, bias, relu,
                     bw=bw, lat=lat, out_fmt=random_out_format(accel, seed), tiling=tiling)


def allowed_tilings(accel: Accelerator, m_fixed: int, m_lut: int, n: int, k: int
                    ) -> list[tuple[int, int]]:
    """The ``(order, resident)`` pairs a command may carry for this GEMM (R3, R5b)."""
    e, kt = accel.engine, accel.memory.k_tile
    f, jn = row_steps(m_fixed, m_lut, e.dsp_rows, e.lut_rows), ceil_div(n, e.cols)
    return [(t.order, int(t.resident)) for t in TILINGS
            if not t.resident or resident_fits(t.order, f, jn, k, kt, e.group_b_cols)]


def random_deal(accel: Accelerator, m_fixed: int, m_lut: int, n: int,
                rng: np.random.Generator) -> tuple[int, ...]:
    """R3c: a random legal deal of a GEMM's row steps on ``accel``'s column groups (each
    step's split uniform, or with probability 0.3 per step all to group A), the first
    :func:`sim.timing.deal_fits` accepts of 1000 draws (else every step to group A, always
    legal)."""
    e = accel.engine
    nf = row_steps(m_fixed, m_lut, e.dsp_rows, e.lut_rows)
    ca, cb = e.cols - e.group_b_cols, e.group_b_cols
    for _ in range(1000):
        deal = tuple(n if rng.random() < 0.3 else int(rng.integers(0, n + 1))
                     for _ in range(nf))
        if deal_fits(deal_sequence(n, np.array(deal, dtype=np.int64), ca, cb)):
            return deal
    return (n,) * nf


def random_out_format(accel: Accelerator, seed: int) -> ActFormat:
    """The engine's activation format (p = 1/2) or a random one of at most
    ``REQUANTIZER.max_out_bits`` bits, from its own generator (``[seed, 1]``) so the rest of
    a case does not depend on it."""
    rng = np.random.default_rng([seed, 1])
    if rng.random() < 0.5:
        return accel.engine.act_format
    signed = bool(rng.integers(0, 2))
    return ActFormat(int(rng.integers(1 + signed, REQUANTIZER.max_out_bits + 1)), signed)


def random_cases(accel: Accelerator, count: int, seed: int) -> list[GemmCase]:
    """``count`` random cases: shapes around and off the array and K-tile sizes (at most
    :data:`hw.generate.PARAM_DEPTH` rows), every memory timing of :data:`MEMORY_TIMINGS`;
    case ``i`` has seed ``seed * 100003 + i``. Odd cases are *random tilings*: the command
    carries any allowed tiling (:func:`allowed_tilings`: both loop orders, resident or not
    where R5b allows), not only the host's R3 choice; on an engine with column group B,
    those with ``K <= k_tile`` a random legal deal (R3c, :func:`random_deal`)."""
    check_int_range("count", count, 0, 100_000)
    e, kt = accel.engine, accel.memory.k_tile
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        m = int(rng.integers(1, min(3 * max(e.dsp_rows, e.lut_rows) + 2, PARAM_DEPTH) + 1))
        n = int(rng.integers(1, 3 * e.cols + 2))
        k = int(rng.integers(1, 2 * kt + 6))
        bw, lat = MEMORY_TIMINGS[i % len(MEMORY_TIMINGS)]
        s = seed * 100_003 + i
        case = random_case(accel, m, n, k, s, bw=bw, lat=lat, name=f"random-{i}")
        if i % 2:  # the rows' split is random_case's: the tiling from its own generator
            mf = len(case.fixed_rows)
            options = allowed_tilings(accel, mf, m - mf, n, k)
            trng = np.random.default_rng([s, 2])
            tiling = options[int(trng.integers(0, len(options)))]
            if e.group_b_cols and k <= kt:  # R3c: a random legal deal
                tiling = (0, 0, *random_deal(accel, mf, m - mf, n, trng))
            pred = predicted(with_memory(accel, bw, lat), mf, m - mf, n, k, tiling=tiling)
            case = dataclasses.replace(case, tiling=tiling, cycles=pred.cycles,
                                       dram_read=pred.dram_read)
        out.append(case)
    return out


def matmul_cases(accel: Accelerator, a: np.ndarray, b: np.ndarray, a_fmt: ActFormat,
                 b_fmt: ActFormat, *, transpose_a: bool = False, bw: int | None = None,
                 lat: int = 0, name: str = "matmul", seed: int | None = None
                 ) -> list[GemmCase]:
    """The groups of one matmul (:mod:`quant.ops.matmul`: ``a`` ``(G, M, K)``, or ``(G, K,
    M)`` with ``transpose_a``, and ``b`` ``(G, K, N)`` in the formats ``a_fmt``/``b_fmt``)
    as one case per group (sim.timing R11: each group is one GEMM command from an empty
    buffer, for a top built with the matmul path), expecting
    :func:`quant.ops.matmul.matmul_acc`'s accumulators and the simulator's cycles of one
    group (the weight role at ``act_bits``). Raises :class:`~quant.errors.ConfigError`
    unless the generated top can have the matmul path
    (:func:`sim.resources.rtl_runs_matmul`), the operands have at most ``act_bits`` bits
    and the weight buffer holds the blocks (:func:`sim.resources.matmul_block_violation`).
    """
    e = accel.engine
    if not rtl_runs_matmul(e):
        raise ConfigError(f"engine must have the generated top's matmul path (an unpacked DSP "
                          f"core whose accumulators hold an act_bits x act_bits product), not "
                          f"dsp_rows {e.dsp_rows}, dsp_packing {e.dsp_packing}, acc_bits "
                          f"{e.acc_bits}")
    for what, f in (("a", a_fmt), ("b", b_fmt)):
        if f.bits > e.act_bits:
            raise ConfigError(f"matmul operand {what} format must have at most engine.act_bits "
                              f"{e.act_bits} bits (R11c), not {f}")
    acc = matmul_acc(a, b, a_fmt, b_fmt, transpose_a, e.acc_bits)
    opa = np.swapaxes(np.asarray(a), -1, -2) if transpose_a else np.asarray(a)
    g, m, k = opa.shape
    n = acc.shape[-1]
    check_gemm(m, 0, n, k)
    why = matmul_block_violation(accel, m, k)
    if why is not None:
        raise ConfigError(why)
    pred = predicted(with_memory(accel, bw, lat), m, 0, n, k, matmul=True)
    zeros = np.zeros(m, dtype=np.int64)
    return [GemmCase(f"{name}-h{h}", seed, opa[h].astype(np.int64),
                     np.full(m, int(Scheme.FIXED), dtype=np.int64),
                     np.asarray(b[h], dtype=np.int64), zeros, zeros, zeros, zeros,
                     acc[h].astype(np.int64), bw, lat, pred.cycles, pred.dram_read,
                     e.act_bits, e.act_signed, True, a_fmt.signed, b_fmt.signed)
            for h in range(g)]


def random_matmul_cases(accel: Accelerator, groups: int, m: int, n: int, k: int, seed: int,
                        *, bw: int | None = None, lat: int = 0, name: str | None = None
                        ) -> list[GemmCase]:
    """A random matmul of ``groups`` heads (:func:`matmul_cases`): each operand signed or
    unsigned, of ``act_bits`` bits (3 in 4 cases) or fewer, ``transpose_a`` either way; the
    values uniform over the format's whole range with its ``qmin`` and ``qmax`` planted, or
    (1 case in 4) only ``qmin`` and ``qmax``, the largest accumulators."""
    e = accel.engine
    rng = np.random.default_rng(seed)

    def fmt() -> ActFormat:
        signed = bool(rng.integers(0, 2))
        low = 2 if signed else 1
        bits = e.act_bits if rng.random() < 0.75 or e.act_bits == low else int(
            rng.integers(low, e.act_bits))
        return ActFormat(bits, signed)

    def values(f: ActFormat, shape: tuple[int, ...], extreme: bool) -> np.ndarray:
        if extreme:
            return rng.choice(np.array([f.qmin, f.qmax]), size=shape)
        v = rng.integers(f.qmin, f.qmax + 1, size=shape)
        flat = v.reshape(-1)
        flat[0], flat[-1] = f.qmax, f.qmin
        return v

    a_fmt, b_fmt = fmt(), fmt()
    t = bool(rng.integers(0, 2))
    extreme = rng.random() < 0.25
    a = values(a_fmt, (groups, k, m) if t else (groups, m, k), extreme)
    b = values(b_fmt, (groups, k, n), extreme)
    return matmul_cases(accel, a, b, a_fmt, b_fmt, transpose_a=t, bw=bw, lat=lat,
                        name=name or f"matmul-{seed}", seed=seed)


def random_matmul_groups(accel: Accelerator, count: int, seed: int
                         ) -> list[list[GemmCase]]:
    """``count`` random matmuls (:func:`random_matmul_cases`) of 1 to 3 heads, shapes around
    and off the array and K-tile sizes (M within the weight buffer's room and
    :data:`hw.generate.PARAM_DEPTH`), every memory timing of :data:`MEMORY_TIMINGS`; matmul
    ``i`` has seed ``seed * 100003 + i``."""
    check_int_range("count", count, 0, 100_000)
    e, kt = accel.engine, accel.memory.k_tile
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        k = int(rng.integers(1, 2 * kt + 6))
        ms = [m for m in range(1, min(3 * e.dsp_rows + 2, PARAM_DEPTH) + 1)
              if matmul_block_violation(accel, m, k) is None]
        m = int(rng.choice(ms))
        n = int(rng.integers(1, 3 * e.cols + 2))
        g = int(rng.integers(1, 4))
        bw, lat = MEMORY_TIMINGS[i % len(MEMORY_TIMINGS)]
        out.append(random_matmul_cases(accel, g, m, n, k, seed * 100_003 + i, bw=bw, lat=lat,
                                       name=f"matmul-{i}"))
    return out


def artifact_case(accel: Accelerator, art, layer_name: str, image: np.ndarray, *,
                  bw: int | None = None, lat: int = 0) -> GemmCase:
    """One conv/linear layer of a QAT artifact on one input image, as a GEMM case.

    The layer's op must run on the GEMM engine (:data:`hw.ops.RTL_OPS`). Its input comes
    from integer inference of the whole artifact on ``image``
    (:func:`quant.infer.run_artifact`), and so does the expected output; the command carries
    the layer's output format (:func:`quant.ops.gemm.gemm_requant`: the logits saturate at the
    widest signed format, the engine's output lane, in the reference as in the RTL).
    """
    from quant.infer import run_artifact
    from sim.functional import check_artifact

    check_artifact(art, accel, only=layer_name)  # the name first, then that layer's fit
    layer = art.layer(layer_name)
    runs = rtl_op(layer.op)
    if layer.op == MATMUL.name:
        raise ArtifactError(f"layer {layer_name!r}: a matmul runs one command per head "
                            "(matmul_cases); verify it with the whole network")
    if runs is not Runs.ENGINE:
        raise ArtifactError(f"layer {layer_name!r}: op must run on {Runs.ENGINE.value} at "
                            f"{LEVEL}, not {layer.op!r} (it runs on {runs.value})")
    vals = run_artifact(art, image[None], return_values=True)
    cols, _ = gemm_of(layer).to_columns(layer, vals[layer.inputs[0]])
    case = layer_case(accel, layer, cols, output_columns(vals[layer.name]), bw=bw, lat=lat)
    again = expected(layer.rows, cols, with_memory(accel, bw, lat), case.mult, case.shift,
                     case.bias, case.relu, case.out_fmt)
    if not np.array_equal(again, case.want):  # the two references must agree
        raise ArtifactError(f"layer {layer_name!r}: quant.ref and quant.infer disagree")
    return case


def layer_case(accel: Accelerator, layer, cols: np.ndarray, want: np.ndarray, *,
               bw: int | None, lat: int) -> GemmCase:
    """A GEMM layer on its (K, N) input columns as a case, expecting ``want`` (M, N); the
    format and ReLU of :func:`quant.ops.gemm.gemm_requant` (as :mod:`quant.infer`)."""
    t = layer.tensors
    fmt, relu = gemm_requant(layer)
    return make_case(f"artifact:{layer.name}", None, layer.rows, cols, accel, t["mult"],
                     t["shift"], t["bias"], np.full(layer.rows.shape[0], int(relu)), bw=bw,
                     lat=lat, want=want, out_fmt=fmt)


def save_cases(cases: list[GemmCase], path) -> None:
    with open(path, "w") as fh:
        json.dump([c.to_json() for c in cases], fh)


def load_cases(path) -> list[GemmCase]:
    with open(path) as fh:
        return [GemmCase.from_json(d) for d in json.load(fh)]


def random_chain(accel: Accelerator, count: int, seed: int, *, bw: int | None = None,
                 lat: int = 0) -> list[GemmCase]:
    """``count`` random cases of one DRAM timing to run back to back (:func:`chained`):
    odd ones with a random allowed tiling, each prefetching the next one's first weight
    block by the host's rule (R10b), every third one forced to even where that lengthens it."""
    check_int_range("count", count, 1, 10_000)
    rng = np.random.default_rng(seed)
    e, kt = accel.engine, accel.memory.k_tile
    out = []
    for i in range(count):
        m = int(rng.integers(1, min(3 * max(e.dsp_rows, e.lut_rows) + 2, PARAM_DEPTH) + 1))
        n, k = int(rng.integers(1, 3 * e.cols + 2)), int(rng.integers(1, 2 * kt + 6))
        case = random_case(accel, m, n, k, seed * 1000 + i, bw=bw, lat=lat,
                           name=f"chain-{i}")
        if i % 2:
            mf = len(case.fixed_rows)
            options = allowed_tilings(accel, mf, m - mf, n, k)
            case = dataclasses.replace(case, tiling=options[int(rng.integers(len(options)))])
        out.append(case)
    chain = [CHAIN_FORCE if i % 3 == 2 else CHAIN_HOST for i in range(count - 1)]
    return chained(accel, out, [*chain, CHAIN_NONE])
