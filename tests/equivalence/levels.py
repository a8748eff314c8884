"""The four levels of fpim behind one hook each: run a batch of GEMM cases, return what the
level produces (outputs, and cycles where the level models time).

* :class:`Reference` — ``quant.ref`` (numpy, integer-exact): outputs only.
* :class:`NumbaSimulator` — ``sim.functional`` (numba) for outputs, ``sim.engine.simulate``
  cycle mode for cycles.
* :class:`AmaranthSimulator` — the accelerator top in Amaranth's simulator.
* :class:`Verilator` — the generated Verilog under cocotb + Verilator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.tb.cases import GemmCase, predicted, with_memory
from quant.rows import QuantizedRows


@dataclass(frozen=True)
class LevelResult:
    y: np.ndarray
    cycles: int | None


def rows_of(case: GemmCase, bits: int) -> QuantizedRows:
    m = case.words.shape[0]
    return QuantizedRows(case.words, case.scheme_ids.astype(np.int8), np.ones(m), bits)


class Level:
    """One level: :meth:`run` is the only hook a level implements."""

    name = "level"
    models_time = False

    def run(self, accel, cases: list[GemmCase]) -> list[LevelResult]:
        raise NotImplementedError


class Reference(Level):
    name = "reference"

    def run(self, accel, cases):
        from hw.tb.cases import expected

        e = accel.engine
        return [LevelResult(expected(rows_of(c, e.weight_bits), c.x, accel, c.mult, c.shift,
                                     c.bias, c.relu, c.out_fmt), None) for c in cases]


class NumbaSimulator(Level):
    name = "numba-simulator"
    models_time = True

    def run(self, accel, cases):
        from sim.functional import gemm, requantize

        e = accel.engine
        out = []
        for c in cases:
            acc = gemm(rows_of(c, e.weight_bits), c.x, e.act_format, e.acc_bits)
            relu = c.relu.astype(bool)[:, None]
            y = np.where(relu,
                         requantize(acc, c.mult, c.shift, c.out_fmt, bias=c.bias, relu=True),
                         requantize(acc, c.mult, c.shift, c.out_fmt, bias=c.bias))
            mf = len(c.fixed_rows)
            m, n, k = c.mnk
            cycles = predicted(with_memory(accel, c.bw, c.lat), mf, m - mf, n, k).cycles
            out.append(LevelResult(y, cycles))
        return out


class AmaranthSimulator(Level):
    name = "amaranth-simulator"
    models_time = True

    def run(self, accel, cases):
        from hw.tb.amaranth_bench import run_case

        return [LevelResult(r.y, r.cycles) for r in
                (run_case(with_memory(accel, c.bw, c.lat), c) for c in cases)]


class Verilator(Level):
    name = "verilator"
    models_time = True

    def run(self, accel, cases):
        from hw.tb.engine import run_verilator

        outcomes = run_verilator(accel, cases, patterns={"out": "always",
                                                         "idle": 0.0})
        return [LevelResult(o.y, o.cycles_rtl) for o in outcomes]


class FastHarness(Level):
    name = "fast-harness"
    models_time = True

    def run(self, accel, cases):
        from hw.tb.fast import run_fast

        return [LevelResult(o.y, o.cycles_rtl) for o in run_fast(accel, cases)]


LEVELS = (Reference(), NumbaSimulator(), AmaranthSimulator(), Verilator(), FastHarness())
