"""cocotb testbench of the accumulating PEs (the ports of hw.pe_base: w, x, valid, first, acc),
shared by the fixed PE's and the shift PEs' test modules; the reference is
``WeightFormat.hw_mul``.
"""

from __future__ import annotations

import numpy as np
from cocotb.triggers import FallingEdge

from quant.formats import ActFormat, Scheme, WeightFormat, weight_format
from tests.cocotb.tbutil import Scoreboard, settle, start_clock_and_reset, tb_seed, to_signed

N_RANDOM = 300


def pe_formats(params: dict) -> tuple[WeightFormat, ActFormat, int]:
    """``(fmt, act, acc_bits)`` of a PE parameter set ``{scheme, bits, act_bits, act_signed,
    acc_bits}``."""
    return (weight_format(params["scheme"], params["bits"]),
            ActFormat(params["act_bits"], params["act_signed"]), params["acc_bits"])


def pe_cases(fmt: WeightFormat, act: ActFormat, seed: int, n_random: int = N_RANDOM):
    """``(w, x, valid, first)`` per cycle: edge cases, then ``n_random`` random cycles.

    Edges: every code word (all ``2**bits`` but PoT words beyond the exponent cap, so also
    the most negative fixed word, zero
    fields and negative SP2 terms, which ``hw_mul`` and the RTL both define) against the
    extreme activations, each restarting the accumulator; then runs of the largest positive
    and negative products accumulated without restart. Random cycles are idle (``valid``
    low, the other inputs garbage) one time in five and restart one time in five.
    """
    rng = np.random.default_rng(seed)
    words = np.arange(1 << fmt.bits)
    if fmt.scheme == Scheme.POT:  # words beyond POT_MAX_EXPONENT are not codes (the PE's
        words = np.flatnonzero(fmt.valid_words)  # shifter is sized by the cap)
    xs_edge = sorted({act.qmin, act.qmin + 1, 0, 1, act.qmax - 1, act.qmax})
    cases = [(int(w), x, 1, 1) for w in words for x in xs_edge]
    for x in (act.qmin, act.qmax):
        products = fmt.hw_mul(words, x)
        for pick in (np.argmax(products), np.argmin(products)):
            cases += [(int(words[pick]), x, 1, int(i == 0)) for i in range(8)]
    for _ in range(n_random):
        valid = int(rng.random() >= 0.2)
        cases.append((int(words[rng.integers(0, len(words))]),
                      int(rng.integers(act.qmin, act.qmax + 1)), valid,
                      int(rng.random() < 0.2)))
    return cases


class TB:
    """Clock, reset, a driver of one ``(w, x, valid, first)`` step per cycle, and a monitor
    comparing ``acc`` every cycle with the accumulated ``hw_mul`` of the steps so far."""

    def __init__(self, dut, params: dict) -> None:
        self.dut = dut
        self.fmt, self.act, self.acc_bits = pe_formats(params)
        self.seed = tb_seed()
        self.scoreboard = Scoreboard(dut._log, self.seed)
        dut._log.info("PE %s-%d, %s activations, acc %d bits, seed %d", self.fmt.name,
                      self.fmt.bits, self.act, self.acc_bits, self.seed)

    def drive(self, w: int, x: int, valid: int, first: int) -> None:
        self.dut.w.value = w
        self.dut.x.value = x & ((1 << self.act.bits) - 1)
        self.dut.valid.value = valid
        self.dut.first.value = first

    async def reset(self) -> None:
        self.drive(0, 0, 0, 0)
        await start_clock_and_reset(self.dut)

    def acc(self) -> int:
        return to_signed(self.dut.acc.value.integer, self.acc_bits)

    async def run(self, cases) -> None:
        """Drive ``cases`` back to back and check ``acc`` after each one."""
        limit = 1 << (self.acc_bits - 1)
        model = 0
        self.scoreboard.compare(self.acc(), 0, "reset")
        for i, (w, x, valid, first) in enumerate(cases):
            self.drive(w, x, valid, first)
            if valid:
                model = (0 if first else model) + int(self.fmt.hw_mul(w, x))
            if not -limit <= model < limit:
                raise AssertionError(f"stimulus overflows the {self.acc_bits}-bit accumulator "
                                     f"at case {i}: {model}")
            await FallingEdge(self.dut.clk)
            await settle()
            self.scoreboard.compare(self.acc(), model,
                                    f"case {i} (w={w:#x}, x={x}, valid={valid}, first={first})")
        self.scoreboard.finish(len(cases))

    async def random_cases(self) -> None:
        await self.reset()
        await self.run(pe_cases(self.fmt, self.act, self.seed))
