# amaranth: UnusedElaboratable=no
"""Random engine shapes through the simulator and the RTL (Amaranth): the levels agree on
every engine the simulator accepts.

A shape is drawn as a user would vary the tiny preset with ``--set``: rows per core 0..5
(one-row cores, DSP-only and LUT-only engines included), columns, DSP packing 1/2/4, the
part, the LUT scheme, weight and activation widths and signedness, ``k_tile`` (1 included)
and the DRAM timing. A shape that sim.config refuses is refused by every level (they all
take the accelerator from it) and is skipped. On every other one, random GEMMs (ragged
around the array and the load block) run through the simulator (:mod:`sim.functional` for
outputs, :func:`sim.engine.simulate` in cycle mode for cycles) and the accelerator top in
Amaranth's simulator: outputs equal the reference bit for bit and the RTL's busy cycles
equal the simulator's. ``tests/cocotb/accel/test_accel.py`` runs three such shapes on
Verilator, where the requested DRAM bytes are compared too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st

from hw.generate import PARAM_DEPTH, check_gemm, generate
from hw.tb.cases import random_case, random_cases, with_memory
from quant.errors import ConfigError, ShapeError
from quant.formats import WEIGHT_BITS, Scheme
from sim.arch import PARTS, allowed_packings
from sim.engine import simulate
from sim.workload import GemmOp, Workload, splits_from_ids
from tests.equivalence.levels import AmaranthSimulator, NumbaSimulator, Reference
from tests.equivalence.workloads import shaped

pytestmark = pytest.mark.filterwarnings("error")

MAX_ROWS = 5
#: Wide enough for every drawn GEMM (5-bit PoT or 8-bit fixed weights, 6-bit activations,
#: K <= 43).
ACC_BITS = 32


@st.composite
def shapes(draw) -> dict:
    """Fields for :func:`tests.equivalence.workloads.shaped`: an engine shape and DRAM, drawn
    within sim.arch's rules (weight widths of the schemes used, packings of the part)."""
    dsp = draw(st.integers(0, MAX_ROWS))
    lut = draw(st.integers(0 if dsp else 1, MAX_ROWS))
    scheme = draw(st.sampled_from(["sp2", "pot"]))
    # Up to 5 bits with a LUT core: 6-bit PoT words would overflow ACC_BITS.
    lo = WEIGHT_BITS[Scheme.parse(scheme) if lut else Scheme.FIXED].start
    weight_bits = draw(st.integers(lo, 5 if lut else 8))
    signed = draw(st.booleans())
    act_bits = draw(st.integers(2 if signed else 1, 6))
    part = draw(st.sampled_from(["XC7Z020", "XCZU9EG"]))
    packings = allowed_packings(PARTS[part].dsp_type, max(weight_bits, act_bits))
    return {"dsp_rows": dsp, "lut_rows": lut, "cols": draw(st.integers(1, 5)),
            "dsp_packing": draw(st.sampled_from(packings)), "part": part,
            "lut_scheme": scheme, "weight_bits": weight_bits, "act_bits": act_bits,
            "act_signed": signed, "acc_bits": ACC_BITS, "k_tile": draw(st.integers(1, 20)),
            "dram_bytes_per_cycle": draw(st.none() | st.integers(1, 8)),
            "dram_latency": draw(st.integers(0, 12))}


def gemms(accel, data, count: int) -> list:
    """``count`` random GEMMs around ``accel``'s array and load block, on its DRAM."""
    e, mem = accel.engine, accel.memory
    out = []
    for i in range(count):
        m = data.draw(st.integers(1, 2 * max(e.dsp_rows, e.lut_rows) + 2), label=f"m{i}")
        n = data.draw(st.integers(1, 2 * e.cols + 1), label=f"n{i}")
        k = data.draw(st.integers(1, 2 * mem.k_tile + 3), label=f"k{i}")
        seed = data.draw(st.integers(0, 1 << 16), label=f"seed{i}")
        out.append(random_case(accel, m, n, k, seed, bw=mem.dram_bytes_per_cycle,
                               lat=mem.dram_latency, name=f"shape-{i}"))
    return out


def simulated_cycles(accel, case) -> int:
    """The GEMM as a one-layer workload through the simulator's front door (cycle mode)."""
    m, n, k = case.mnk
    op = GemmOp("gemm", "gemm", m, n, k, splits=splits_from_ids(case.scheme_ids))
    return simulate(Workload("case", (op,)), with_memory(accel, case.bw, case.lat)).total_cycles


#: The fields the explicit examples share.
EXAMPLE = {"cols": 3, "dsp_packing": 1, "part": "XC7Z020", "lut_scheme": "sp2",
           "weight_bits": 4, "act_bits": 4, "act_signed": False, "acc_bits": ACC_BITS,
           "k_tile": 4, "dram_bytes_per_cycle": 2, "dram_latency": 3}


@settings(max_examples=30, deadline=None)
@given(shape=shapes(), data=st.data())
@example(shape=EXAMPLE | {"dsp_rows": 2, "lut_rows": 0}, data=None)  # DSP only
@example(shape=EXAMPLE | {"dsp_rows": 0, "lut_rows": 3, "lut_scheme": "pot"}, data=None)
@example(shape=EXAMPLE | {"dsp_rows": 1, "lut_rows": 2, "k_tile": 1}, data=None)
@example(shape=EXAMPLE | {"dsp_rows": 2, "lut_rows": 1, "dsp_packing": 2}, data=None)
@example(shape=EXAMPLE | {"dsp_rows": 3, "lut_rows": 1, "dsp_packing": 4, "part": "XCZU9EG"},
         data=None)
@example(shape=EXAMPLE | {"dsp_rows": 1, "lut_rows": 1, "lut_scheme": "pot", "weight_bits": 2},
         data=None)
@example(shape=EXAMPLE | {"dsp_rows": 1, "lut_rows": 0, "cols": 1}, data=None)
def test_random_engine_shapes_agree_on_every_level(shape, data) -> None:
    try:
        accel = shaped("shape", **shape)
    except ConfigError:
        reject()  # refused by sim.config, so by every level alike
    if data is None:  # an explicit example: fixed GEMMs, one of them a single PE
        mem = accel.memory
        cases = [random_case(accel, m, n, k, seed, bw=mem.dram_bytes_per_cycle,
                             lat=mem.dram_latency, name=f"example-{seed}")
                 for m, n, k, seed in ((1, 1, 1, 1), (7, 8, 9, 2))]
    else:
        cases = gemms(accel, data, 2)
    truth = Reference().run(accel, cases)
    for level in (NumbaSimulator(), AmaranthSimulator()):
        for c, got, want in zip(cases, level.run(accel, cases), truth, strict=True):
            np.testing.assert_array_equal(got.y, want.y, err_msg=f"{level.name}: {c.describe()}")
            assert got.cycles == c.cycles, f"{level.name}: {c.describe()}"
    for c in cases:
        assert simulated_cycles(accel, c) == c.cycles, c.describe()


@pytest.mark.parametrize(("dsp", "lut", "scheme", "bits"), [
    (1, 0, "sp2", 4), (0, 1, "sp2", 4), (1, 1, "sp2", 4), (1, 3, "sp2", 4), (2, 0, "sp2", 4),
    (0, 2, "pot", 2)])
def test_edge_shapes_emit_verilog_without_zero_width_signals(dsp, lut, scheme, bits) -> None:
    """A one-row core, a one-step block, a missing core or 2-bit PoT weights (shift 0 only)
    leave no zero-width signal, which would be written ``[-1:0]``."""
    text, manifest = generate(shaped("edge", dsp_rows=dsp, lut_rows=lut, lut_scheme=scheme,
                                     weight_bits=bits, k_tile=1, cols=1))
    assert "[-1:0]" not in text
    widths = {p["name"]: p["width"] for p in manifest["ports"]}
    assert widths["w_load__payload"] == (dsp + lut) * bits + 1  # present cores' words, last


def test_a_gemm_beyond_one_command_of_the_top_is_refused() -> None:
    """The generated top holds 64 rows of requantization parameters per core and 16-bit
    command fields: a case beyond them is refused when it is made (it would wrap around
    silently), and the random cases of a large engine stay within them."""
    big = shaped("big", dsp_rows=30, lut_rows=0)
    with pytest.raises(ShapeError, match=rf"^GEMM fixed rows must be at most {PARAM_DEPTH} per "
                       r"command of the generated top \(its parameter memory\), not 65$"):
        random_case(big, PARAM_DEPTH + 1, 2, 3, seed=0)
    with pytest.raises(ShapeError, match=r"^GEMM N must be below 65536 per command of the "
                       r"generated top \(16-bit fields\), not 65536$"):
        check_gemm(1, 0, 1 << 16, 1)
    sizes = [c.mnk[0] for c in random_cases(big, 30, seed=1)]
    assert max(sizes) <= PARAM_DEPTH < 3 * 30 and max(sizes) > PARAM_DEPTH // 2
