"""Simulate a workload on the mixed-scheme GEMM engine: cycles, stalls, utilization, bytes.

:func:`simulate` is the entry point. ``mode`` picks the fidelity level, all following the
rules of :mod:`sim.timing`:

* ``cycle`` — the numba kernel that steps every chunk tile with the DRAM model;
* ``analytical`` — closed forms (equal to ``cycle`` with unlimited bandwidth, a lower bound
  otherwise);
* ``plain`` — a plain output-stationary array of ``dsp_rows + lut_rows`` rows without a
  memory model, for cross-checks with other systolic simulators.

Bit-exact outputs are :mod:`sim.functional`'s job; :func:`simulate` only times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant.errors import ConfigError, CycleLimitError, FpimError, check_choice, check_int_range
from quant.formats import Scheme, weight_format
from quant.ref import check_accumulator
from sim.arch import Accelerator
from sim.resources import rtl_runs_matmul
from sim.results import LayerResult, RunResult
from sim.timing import (
    CHAIN_HOST,
    CHAIN_NONE,
    NO_LIMIT,
    GemmShape,
    ScheduleResult,
    analytical_cycles,
    attention_cycles,
    attention_steps,
    compute_cycles,
    dealt_compute_cycles,
    gemm_tiling,
    plain_os_cycles,
    schedule_cycles,
    shape_cycles,
    vector_op_cycles,
    vector_op_steps,
    write_back_bytes,
)
from sim.workload import GemmOp, VectorOp, Workload, attention_of

MODES = ("cycle", "analytical", "plain")


@dataclass(frozen=True)
class _Row:
    op_index: int
    m_fixed: int
    m_lut: int
    count: int


@dataclass
class _Totals:
    """One op's sums over its GEMM rows."""

    cycles: int = 0
    compute: int = 0
    stall: int = 0
    dram_read: int = 0
    shape: int = 0


def check_workload(wl: Workload, accel: Accelerator) -> None:
    """Raise if a layer cannot run on ``accel`` (missing core, accumulator too narrow)."""
    e = accel.engine
    if not wl.ops:
        raise ConfigError(f"workload {wl.name!r} must have at least one op")
    x_max = e.act_format.max_abs
    w_fix = weight_format(Scheme.FIXED, e.weight_bits).max_abs_int
    w_lut = weight_format(e.lut_core_scheme, e.weight_bits).max_abs_int if e.lut_rows else 0
    for i, o in enumerate(wl.ops):
        if isinstance(o, VectorOp) and o.pipelined:
            check_attention(wl, i)
    for o in wl.gemms:
        if o.splits is None:
            raise ConfigError(f"layer {o.name!r} has no row split: give an sp2 fraction")
        if o.rows_lut and e.lut_rows == 0:
            raise ConfigError(f"layer {o.name!r} has {o.rows_lut} {e.lut_scheme} rows but "
                              "engine.lut_rows is 0")
        if o.rows_fixed and e.dsp_rows == 0:
            raise ConfigError(f"layer {o.name!r} has {o.rows_fixed} fixed rows but "
                              "engine.dsp_rows is 0")
        w_max = max(w_fix if o.rows_fixed else 0, w_lut if o.rows_lut else 0)
        a_max = x_max
        if o.kind == "matmul":  # R11c: act_bits operands, signed or unsigned
            if o.rows_lut:
                raise ConfigError(f"layer {o.name!r}: a matmul's rows must all be fixed point "
                                  f"(R11a), not {o.rows_lut} {e.lut_scheme} rows")
            if not rtl_runs_matmul(e):  # the one limit the RTL's matmul path has
                raise ConfigError(
                    f"layer {o.name!r}: a matmul runs on an unpacked DSP core whose "
                    f"act_bits + 1-bit operands fit 16 bits and whose accumulators hold "
                    f"their product (R11c, sim.resources.rtl_runs_matmul), not dsp_rows "
                    f"{e.dsp_rows}, dsp_packing {e.dsp_packing}, act_bits {e.act_bits}, "
                    f"acc_bits {e.acc_bits}")
            w_max = a_max = matmul_operand_max(e.act_bits)
        try:
            check_accumulator(o.k, w_max, a_max, e.acc_bits)
        except FpimError as exc:
            raise type(exc)(f"layer {o.name!r}: engine.{exc}") from None


def matmul_operand_max(act_bits: int) -> int:
    """Largest operand magnitude of a matmul (R11c): ``act_bits`` bits, signed or unsigned."""
    return (1 << act_bits) - 1


def check_attention(wl: Workload, i: int) -> None:
    """Raise unless the pipelined softmax ``wl.ops[i]`` sits between two matmuls of its
    groups (rule R16)."""
    o = wl.ops[i]
    near = [wl.ops[j] if 0 <= j < len(wl.ops) else None for j in (i - 1, i + 1)]
    if not all(isinstance(n, GemmOp) and n.kind == "matmul" and n.groups == o.groups
               for n in near):
        got = ", ".join("nothing" if n is None else
                        f"{n.name!r} ({n.kind if isinstance(n, GemmOp) else n.op}, "
                        f"{n.groups} groups)" for n in near)
        raise ConfigError(f"layer {o.name!r}: a pipelined softmax must sit between two matmuls "
                          f"of its {o.groups} groups (R16), not between {got}")


def _check_cycle_counts(wl: Workload, rows: list[_Row], accel: Accelerator) -> None:
    """Refuse a workload whose counts could overflow the cycle kernel's int64 arithmetic.

    A GEMM's cycles never exceed its compute cycles plus all its loads back to back (R7,
    R8), which the analytical timing bounds from above; the kernel's limit is
    :data:`~sim.timing.NO_LIMIT` on the running sum.
    """
    e, mem = accel.engine, accel.memory
    total = 0
    for r in rows:
        g = wl.ops[r.op_index]
        t = analytical_cycles(GemmShape(r.m_fixed, r.m_lut, g.n, g.k), e.dsp_rows, e.lut_rows,
                              e.cols, mem.k_tile, _role_bits(g, accel), e.act_bits,
                              mem.dram_bytes_per_cycle, mem.dram_latency,
                              packing=e.dsp_packing, shared=e.shared_post)
        total += r.count * (t.compute + t.cycles + t.dram_read)
        if total > NO_LIMIT:
            raise ConfigError(f"layer {g.name!r}: cycle mode counts must stay below "
                              f"{NO_LIMIT} (int64), not up to {total}; the analytical mode "
                              f"has no such limit")


def _role_bits(o: GemmOp, accel: Accelerator) -> int:
    """Width of the operand in the weight role (R11b: a matmul's is an activation)."""
    e = accel.engine
    return e.act_bits if o.kind == "matmul" else e.weight_bits


def _rows(wl: Workload) -> list[_Row]:
    out = []
    for i, o in enumerate(wl.ops):
        if isinstance(o, GemmOp):
            for a, b, c in o.splits or ():
                out.append(_Row(i, a, b, c))
    return out


def prefetch_chain(wl: Workload, rows: list[_Row] | None = None) -> list[int]:
    """R10b, the host's side: per GEMM row of ``wl`` (in run order; ``rows``: its rows when
    already listed), :data:`CHAIN_HOST` where the row may prefetch the next row's first
    weight block — both one GEMM with weights (``groups = 1``, not a matmul) and ops that
    follow each other — else :data:`CHAIN_NONE`; the cycle kernel then prefetches where it
    ends in time."""
    rows = _rows(wl) if rows is None else rows

    def one(r: _Row) -> bool:
        return r.count == 1 and wl.ops[r.op_index].kind != "matmul"

    return [CHAIN_HOST if i + 1 < len(rows) and one(r) and one(rows[i + 1])
            and rows[i + 1].op_index == r.op_index + 1 else CHAIN_NONE
            for i, r in enumerate(rows)]


def _schedule(wl: Workload, rows: list[_Row], accel: Accelerator, max_cycles: int | None
              ) -> tuple[list[ScheduleResult], int]:
    """The cycle kernel over ``rows`` with the host's R10b prefetches."""
    _check_cycle_counts(wl, rows, accel)
    e, mem, ops = accel.engine, accel.memory, wl.ops
    params = np.array([[r.m_fixed, r.m_lut, ops[r.op_index].n, ops[r.op_index].k, r.count]
                       for r in rows], dtype=np.int64).reshape(-1, 5)
    return schedule_cycles(params, e.dsp_rows, e.lut_rows, e.cols, mem.k_tile,
                           e.weight_bits, e.act_bits, mem.dram_bytes_per_cycle,
                           mem.dram_latency, max_cycles,
                           [_role_bits(ops[r.op_index], accel) for r in rows],
                           packing=e.dsp_packing, chain=prefetch_chain(wl, rows),
                           group_b=e.group_b_cols, shared=e.shared_post)


def gemm_plan(wl: Workload, accel: Accelerator) -> dict[str, ScheduleResult]:
    """The cycle mode's record of every GEMM op of one GEMM (``groups = 1``, one row), by
    op name: cycles, bytes, and R10b's prefetch and preload, as the host issues the run's
    commands (what a testbench running the layers in order must reproduce)."""
    check_workload(wl, accel)
    rows = _rows(wl)
    out, _ = _schedule(wl, rows, accel, None)
    return {wl.ops[r.op_index].name: res for r, res in zip(rows, out, strict=True)
            if r.count == 1 and wl.ops[r.op_index].groups == 1}


def simulate(wl: Workload, accel: Accelerator, mode: str = "cycle",
             max_cycles: int | None = None) -> RunResult:
    """Time ``wl`` on ``accel``; returns per-layer and total results.

    ``max_cycles`` bounds the cycle kernel (``cycle`` mode); reaching it raises
    :class:`CycleLimitError` naming the layer and tile where it stopped.
    """
    check_choice("mode", mode, MODES)
    if max_cycles is not None:
        if mode != "cycle":
            raise ConfigError(f"max_cycles applies only to mode cycle, not {mode!r}")
        check_int_range("max_cycles", max_cycles, 1, NO_LIMIT)
    check_workload(wl, accel)
    e, mem = accel.engine, accel.memory
    rows = _rows(wl)
    per_op: dict[int, _Totals] = {}  # op index → its sums

    def add(i: int, cycles: int, comp: int, stall: int, dram: int) -> None:
        acc = per_op.setdefault(i, _Totals())
        acc.cycles += cycles
        acc.compute += comp
        acc.stall += stall
        acc.dram_read += dram

    ops = wl.ops
    if mode == "cycle":
        out, stop = _schedule(wl, rows, accel, max_cycles)
        if stop >= 0:
            r = rows[stop]
            done = sum(res.cycles for res in out[:stop])
            st = out[stop]
            raise CycleLimitError(
                f"cycle limit {max_cycles} reached in layer {ops[r.op_index].name!r} at tile "
                f"(column block {st.column_block}, row step {st.row_step}, k chunk "
                f"{st.k_chunk}) after {done + st.cycles} cycles"
            )
        for r, res in zip(rows, out, strict=True):
            g = ops[r.op_index]
            shape = GemmShape(r.m_fixed, r.m_lut, g.n, g.k)
            tiling = gemm_tiling(shape, e.dsp_rows, e.lut_rows, e.cols, mem.k_tile,
                                 _role_bits(g, accel), e.act_bits, group_b=e.group_b_cols,
                                 bw=mem.dram_bytes_per_cycle, lat=mem.dram_latency,
                                 shared=e.shared_post)
            comp = r.count * (dealt_compute_cycles(
                shape, e.dsp_rows, e.lut_rows, e.cols, e.group_b_cols, tiling.deal,
                e.dsp_packing, e.shared_post) if tiling.dealt else compute_cycles(
                shape, e.dsp_rows, e.lut_rows, e.cols, tiling.order, e.dsp_packing,
                e.shared_post))
            add(r.op_index, res.cycles, comp, res.stall, res.dram_read)
    else:
        chain = prefetch_chain(wl, rows)
        for i, r in enumerate(rows):
            g = ops[r.op_index]
            shape = GemmShape(r.m_fixed, r.m_lut, g.n, g.k)
            # R10b: a row the one before may prefetch for; as a lower bound, it did
            t = analytical_cycles(shape, e.dsp_rows, e.lut_rows, e.cols, mem.k_tile,
                                  _role_bits(g, accel), e.act_bits, mem.dram_bytes_per_cycle,
                                  mem.dram_latency, packing=e.dsp_packing,
                                  preloaded=i > 0 and chain[i - 1] != CHAIN_NONE,
                                  group_b=e.group_b_cols, shared=e.shared_post)
            if mode == "plain":
                c = plain_os_cycles(g.m, g.n, g.k, e.rows, e.cols)
                add(r.op_index, r.count * c, r.count * c, 0, r.count * t.dram_read)
            else:
                add(r.op_index, r.count * t.cycles, r.count * t.compute, r.count * t.stall,
                    r.count * t.dram_read)
    for r in rows:  # the shape's bound on each op's cycles
        g = ops[r.op_index]
        if mode == "plain":  # plain_os_cycles' array: one core of all the rows
            best = shape_cycles(GemmShape(0, g.m, g.n, g.k), 0, e.rows, e.cols)
        else:
            best = shape_cycles(GemmShape(r.m_fixed, r.m_lut, g.n, g.k), e.dsp_rows,
                                e.lut_rows, e.cols, group_b=e.group_b_cols,
                                k_tile=mem.k_tile)
        per_op[r.op_index].shape += r.count * best
    layers = []
    vec = accel.vector
    step = mode == "cycle"
    for i, o in enumerate(ops):
        if isinstance(o, VectorOp):
            timer = vector_op_steps if step else vector_op_cycles
            c = timer(o.op, o.elements, o.rows, o.length, vec.lanes, vec.cost(o.op))
            hidden = 0
            if o.pipelined and mode != "plain":  # R16
                s_all, c_all = per_op[i - 1].cycles, per_op[i + 1].cycles
                g = o.groups
                both = (attention_steps if step else attention_cycles)(
                    g, s_all // g, c // g, c_all // g)
                exposed = both - s_all - c_all
                c, hidden = exposed, c - exposed
            layers.append(LayerResult(name=o.name, op=o.op, m=0, n=0, k=0, groups=o.groups,
                                      rows_fixed=0, rows_lut=0, cycles=c, compute_cycles=c,
                                      stall_cycles=0, util_dsp=0.0, util_lut=0.0, macs=0,
                                      dram_bytes=0, hidden_cycles=hidden))
            continue
        tot = per_op[i]
        cyc = tot.cycles
        # R9; a matmul's accumulators leave unrequantized (R11d)
        write = write_back_bytes(o.m, o.n, e.acc_bits if o.kind == "matmul" else e.act_bits,
                                 o.groups)
        mac_fix = o.rows_fixed * o.n * o.k
        mac_lut = o.rows_lut * o.n * o.k
        if mode == "plain":
            cap = e.rows * e.cols * cyc
            u_d = u_l = (mac_fix + mac_lut) / cap if cap else 0.0
        else:
            u_d = mac_fix / (e.dsp_rows * e.cols * cyc) if e.dsp_rows else 0.0
            u_l = mac_lut / (e.lut_rows * e.cols * cyc) if e.lut_rows else 0.0
        layers.append(LayerResult(name=o.name, op=o.kind, m=o.m, n=o.n, k=o.k, groups=o.groups,
                                  rows_fixed=o.rows_fixed, rows_lut=o.rows_lut, cycles=cyc,
                                  compute_cycles=tot.compute, stall_cycles=tot.stall,
                                  util_dsp=u_d, util_lut=u_l, macs=o.macs,
                                  dram_bytes=tot.dram_read + write, shape_cycles=tot.shape))
    attn = attention_of(wl)  # a transformer: the vector unit counts in the resources
    return RunResult.build(wl.name, accel, mode, layers, wl.batch, attn)
