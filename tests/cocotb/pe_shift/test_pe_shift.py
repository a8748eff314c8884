"""The shift PEs (hw.pe_sp2.Sp2Pe, hw.pe_pot.PotPe) on Verilator under cocotb, exact against
``Sp2Format.hw_mul`` / ``PotFormat.hw_mul`` (testbench: tests/cocotb/pe_tb.py), and a
mutant SP2 PE with a wrong shift constant that the same testbench must reject.

PoT is tested at 6 bits: its words reach the exponent cap (quant.formats.POT_MAX_EXPONENT,
shifts up to 15 places), which 7- and 8-bit PoT words share; PoT-4 is the same shifter with
fewer cases (left out to keep the suite's Verilator builds few).
"""

from __future__ import annotations

import cocotb
import pytest

from tests.cocotb.pe_tb import TB, pe_formats
from tests.cocotb.tbutil import failure_summary, run_paramset, tb_params

PARAMSETS = {
    "sp2-4-uint4": {"scheme": "sp2", "bits": 4, "act_bits": 4, "act_signed": False,
                    "acc_bits": 24},
    "sp2-8-int8": {"scheme": "sp2", "bits": 8, "act_bits": 8, "act_signed": True,
                   "acc_bits": 40},
    "pot-6-int8": {"scheme": "pot", "bits": 6, "act_bits": 8, "act_signed": True,
                   "acc_bits": 48},
}
# S - i1 of the SP2-4 PE (S = 3) with the constant 2 instead: every term of i1 shifts wrong.
SP2_SHIFT_ORIGINAL = "2'h3 - w[2:1]"
SP2_SHIFT_MUTANT = "2'h2 - w[2:1]"


@cocotb.test()
async def random_cases(dut):
    """Every code word against the extreme activations, runs of the largest products, then
    random steps with idle cycles and restarts; ``acc`` checked every cycle."""
    await TB(dut, tb_params()).random_cases()


def shift_pe(params: dict):
    from hw.pe_pot import PotPe
    from hw.pe_sp2 import Sp2Pe

    return {"sp2": Sp2Pe, "pot": PotPe}[params["scheme"]](*pe_formats(params))


@pytest.mark.parametrize("paramset", PARAMSETS)
def test_pe_shift_verilator(paramset: str) -> None:
    params = PARAMSETS[paramset]
    tests, failed, log = run_paramset(shift_pe(params), "pe_shift", paramset, __name__, params)
    assert failed == 0 and tests >= 1, failure_summary(log)


def test_pe_shift_mutant_is_caught() -> None:
    from hw.synth import emit_verilog

    params = PARAMSETS["sp2-4-uint4"]
    original = emit_verilog(shift_pe(params), "pe_shift")
    assert original.count(SP2_SHIFT_ORIGINAL) == 1, "the SP2-4 Verilog changed: update the edit"
    mutant = original.replace(SP2_SHIFT_ORIGINAL, SP2_SHIFT_MUTANT)
    assert mutant != original
    tests, failed, log = run_paramset(None, "pe_shift", "sp2-4-uint4-mutant", __name__, params,
                                      verilog=mutant)
    assert tests >= 1 and failed == tests, "the mutant SP2 PE passed the testbench"
    assert "mismatch at" in log.read_text(), "the mutant failed, but not on the scoreboard"
