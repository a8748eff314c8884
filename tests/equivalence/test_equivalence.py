"""Three levels, one truth: every level gives the reference's outputs bit for bit, and every
level that models time gives the numba simulator's cycle count, on the same workloads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tests.equivalence.levels import LEVELS, NumbaSimulator, Reference
from tests.equivalence.workloads import ACCEL, WORKLOADS, cases

CASES = cases()
TRUTH = Reference().run(ACCEL, CASES)
CLOCK = NumbaSimulator().run(ACCEL, CASES)


def test_workloads_are_nontrivial() -> None:
    assert len(CASES) == len(WORKLOADS)
    assert any(len(c.fixed_rows) and len(c.lut_rows) for c in CASES)
    assert all((t.y != 0).any() for t in TRUTH[1:])  # outputs that can disagree


@pytest.mark.parametrize("level", LEVELS, ids=[lv.name for lv in LEVELS])
def test_level_agrees(level) -> None:
    if level.name in ("verilator", "fast-harness") and shutil.which("verilator") is None:
        pytest.skip("verilator not installed (make test installs it)")
    got = level.run(ACCEL, CASES)
    assert len(got) == len(CASES)
    for c, g, t, clk in zip(CASES, got, TRUTH, CLOCK, strict=True):
        np.testing.assert_array_equal(g.y, t.y, err_msg=f"{level.name}: {c.describe()}")
        if level.models_time:
            assert g.cycles == clk.cycles, f"{level.name}: {c.describe()}"
