"""Fixed-point MAC PE (hw.pe_fixed.FixedMacPe) on Verilator under cocotb, exact against
``FixedFormat.hw_mul`` (testbench: tests/cocotb/pe_tb.py)."""

from __future__ import annotations

import cocotb
import pytest

from tests.cocotb.pe_tb import TB
from tests.cocotb.tbutil import failure_summary, run_paramset, tb_params

PARAMSETS = {
    "fixed4-uint4": {"scheme": "fixed", "bits": 4, "act_bits": 4, "act_signed": False,
                     "acc_bits": 24},
    "fixed8-int8": {"scheme": "fixed", "bits": 8, "act_bits": 8, "act_signed": True,
                    "acc_bits": 32},
}


@cocotb.test()
async def random_cases(dut):
    """Every code word against the extreme activations, runs of the largest products, then
    random steps with idle cycles and restarts; ``acc`` checked every cycle."""
    await TB(dut, tb_params()).random_cases()


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_pe_fixed_verilator(paramset: str) -> None:
    from hw.pe_fixed import FixedMacPe
    from tests.cocotb.pe_tb import pe_formats

    params = PARAMSETS[paramset]
    tests, failed, log = run_paramset(FixedMacPe(*pe_formats(params)), "pe_fixed", paramset,
                                      __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)
