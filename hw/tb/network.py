"""A whole artifact on the RTL: every GEMM layer on one DUT, the host doing the rest.

:func:`verify_network` runs the layers of a QAT artifact in order on one input image, as
:mod:`quant.infer` does, except that every layer the GEMM engine runs (:data:`hw.ops.RTL_OPS`)
goes to the fast harness (:class:`hw.tb.fast.FastRun`, one DUT for the whole network, no reset
between layers): the host lays the layer's input out as GEMM columns, writes the command
(with the layer's output format) and the parameters, and turns the RTL's output rows back
into the layer's value; a matmul runs one command per head (:func:`hw.tb.cases.matmul_cases`)
and the host requantizes the heads' accumulators. Pooling, additions and flattening run on the host
(:func:`quant.infer.run_layer`) on the RTL's values. Every value is compared bit for bit with
integer inference of the whole artifact, and every GEMM layer's busy cycles and requested
bytes with the simulator's cycle mode for the preset's memory, run as the simulator runs the
whole artifact: a GEMM layer's command prefetches the next GEMM layer's first weight block
where the simulator's host does (sim.timing R10b, :func:`sim.engine.gemm_plan`).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hw.ops import Runs, rtl_op
from hw.tb.cases import core_rows, layer_case, matmul_cases, next_block
from hw.tb.engine import Outcome, outcome
from hw.tb.fast import FastRun
from quant.artifact import Artifact
from quant.infer import quantize_input, run_artifact, run_layer
from quant.ops import gemm_of
from quant.ops.gemm import from_columns, output_columns
from quant.ops.matmul import MATMUL, matmul_out
from sim.arch import Accelerator
from sim.timing import ScheduleResult


@dataclass(frozen=True)
class LayerRecord:
    """One layer of the network run: its value equal to integer inference or not, and for a
    GEMM layer its outcome on the RTL (cycles, bytes, first mismatch)."""

    name: str
    op: str
    equal: bool
    seconds: float
    gemm: Outcome | None = None

    @property
    def passed(self) -> bool:
        return self.equal and (self.gemm is None or self.gemm.passed)

    def failure(self) -> str | None:
        if self.gemm is not None and not self.gemm.passed:
            return self.gemm.failure()
        return None if self.equal else f"{self.name}: value differs from quant.infer"

    def to_dict(self) -> dict:
        d = {"name": self.name, "op": self.op, "runs_on": "rtl" if self.gemm else "host",
             "equal": self.equal, "passed": self.passed, "seconds": round(self.seconds, 3)}
        if self.gemm is not None:
            g = self.gemm
            d |= {"gemm": g.description.split(": ", 1)[1], "cycles_sim": g.cycles_sim,
                  "cycles_rtl": g.cycles_rtl, "dram_bytes_equal": g.dram_bytes_equal,
                  "first_mismatch": g.first_mismatch}
        return d


def verify_network(accel: Accelerator, art: Artifact, image: np.ndarray, run: FastRun, *,
                   on_layer: Callable[[int, int, str], None] = lambda i, n, name: None
                   ) -> tuple[list[LayerRecord], bool]:
    """Every layer of ``art`` on ``image`` (GEMM layers on ``run``'s DUT); returns one record
    per layer and whether the final output (the logits) equals integer inference.
    ``on_layer(i, total, name)`` is called before layer ``i``."""
    from sim.engine import gemm_plan
    from sim.functional import check_artifact
    from sim.ops import from_artifact

    check_artifact(art, accel)
    plan = gemm_plan(from_artifact(art), accel)
    gemms = [la for la in art.layers
             if rtl_op(la.op) is Runs.ENGINE and la.op != MATMUL.name]
    following = {a.name: b for a, b in itertools.pairwise(gemms)}  # the next weight GEMM
    q = quantize_input(art, image[None])
    ref = run_artifact(art, q, return_values=True)
    vals: dict[str, np.ndarray] = {"input": q}
    fmts = {"input": art.input.fmt}
    records = []
    for i, layer in enumerate(art.layers):
        on_layer(i, len(art.layers), layer.name)
        t = time.perf_counter()
        xs = [vals[s] for s in layer.inputs]
        gemm = None
        if rtl_op(layer.op) is Runs.ENGINE and layer.op == MATMUL.name:
            y, gemm = matmul_on_rtl(accel, layer, xs, [fmts[s] for s in layer.inputs], run)
        elif rtl_op(layer.op) is Runs.ENGINE:
            y, gemm = gemm_on_rtl(accel, layer, xs[0], ref[layer.name], run,
                                  plan.get(layer.name), following.get(layer.name))
        else:
            y = run_layer(layer, xs, [fmts[s] for s in layer.inputs])
        vals[layer.name] = y
        fmts[layer.name] = layer.out.fmt
        equal = bool(np.array_equal(y, ref[layer.name]))
        records.append(LayerRecord(layer.name, layer.op, equal, time.perf_counter() - t, gemm))
    return records, bool(np.array_equal(vals[art.output], ref[art.output]))


def gemm_on_rtl(accel: Accelerator, layer, x: np.ndarray, want: np.ndarray, run: FastRun,
                planned: ScheduleResult | None = None, following=None
                ) -> tuple[np.ndarray, Outcome]:
    """A weight-GEMM layer on one image ``x`` as one command on ``run``'s DUT: its value
    (integer inference's ``want`` where the RTL wrote nothing, so later layers still run)
    and its outcome against ``want``. ``planned``: the simulator's record of the layer in
    the whole run (its cycles and bytes, R10b's preload and prefetch; None: the layer
    alone); ``following``: the next GEMM layer, whose first weight block it prefetches."""
    mem = accel.memory
    cols, spatial = gemm_of(layer).to_columns(layer, x)
    case = layer_case(accel, layer, cols, output_columns(want),
                      bw=mem.dram_bytes_per_cycle, lat=mem.dram_latency)
    if planned is not None:
        block = None
        if planned.prefetch:
            rows = following.rows
            mf = len(core_rows(rows.scheme_ids)["dsp"])
            block = next_block(accel, mf, rows.shape[0] - mf, rows.shape[1])
        case = dataclasses.replace(case, cycles=planned.cycles, dram_read=planned.dram_read,
                                   preloaded=planned.preloaded, prefetch=block)
    r = run.run(case, None if following is None else following.rows)
    gemm = outcome(case, r.y, r.cycles, r.req_bytes)
    return from_columns(np.where(r.y == -999, case.want, r.y), 1, spatial), gemm


def matmul_on_rtl(accel: Accelerator, layer, xs: list[np.ndarray], in_fmts: list,
                   run: FastRun) -> tuple[np.ndarray, Outcome]:
    """A matmul layer on one image: each head one command on ``run``'s DUT (sim.timing R11),
    then the host's requantizer on the accumulators; the layer's value and one outcome for
    all heads (cycles and bytes summed, the first mismatching head's element)."""
    mem = accel.memory
    cases = matmul_cases(accel, xs[0][0], xs[1][0], in_fmts[0], in_fmts[1],
                         transpose_a=bool(layer.attrs["transpose_a"]),
                         bw=mem.dram_bytes_per_cycle, lat=mem.dram_latency,
                         name=f"artifact:{layer.name}")
    heads = [outcome(c, r.y, r.cycles, r.req_bytes)
             for c, r in zip(cases, run.run_many(cases), strict=True)]
    acc = np.stack([np.where(o.y == -999, c.want, o.y) for c, o in zip(cases, heads,
                                                                       strict=True)])
    first = next((o.first_mismatch for o in heads if o.first_mismatch is not None), None)
    desc = cases[0].describe().split(": ", 1)[1]
    gemm = Outcome(f"artifact:{layer.name}", f"artifact:{layer.name}: {len(cases)} heads of "
                   f"{desc}", sum(c.cycles for c in cases), sum(o.cycles_rtl for o in heads),
                   all(o.outputs_equal for o in heads), first,
                   all(o.dram_bytes_equal for o in heads), True, acc)
    return matmul_out(layer, acc)[None], gemm
