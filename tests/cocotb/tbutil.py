"""What fpim's unit cocotb testbenches share: the pytest-side build-and-run of one parameter
set, the hand-off of parameters and seed to the cocotb process, clock and reset, packing of
flat Verilog vectors, and a scoreboard that names the seed of a mismatch.

Sampling discipline (cocotb 1.9 on Verilator): inputs change after ``FallingEdge(clk)``;
outputs are read 1 ns later (:func:`settle`), when combinational paths have settled and
before the rising edge that registers them (the clock period is 10 ns).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hw.tb.vector_tb import (  # noqa: F401 (shared with fpim verify --block)
    CLOCK_NS,
    pack,
    settle,
    start_clock_and_reset,
    to_signed,
    unpack,
)

REPO = Path(__file__).resolve().parents[2]
PARAMS_ENV = "FPIM_TB_PARAMS"
SEED_ENV = "FPIM_TB_SEED"
DEFAULT_SEED = 20240607


def tb_seed() -> int:
    """The stimulus seed: ``$FPIM_TB_SEED`` if set, else the fixed default (the pytest side
    hands its value on to the cocotb process)."""
    return int(os.environ.get(SEED_ENV, DEFAULT_SEED))


# --- pytest side ---------------------------------------------------------------------------


def build_dir(unit: str, paramset: str) -> Path:
    """``build/cocotb/<unit>-<paramset>/`` (git-ignored), one per parameter set."""
    return REPO / "build" / "cocotb" / f"{unit}-{paramset}"


def run_paramset(component, unit: str, paramset: str, test_module: str, params: dict, *,
                 verilog: str | None = None, env: dict[str, str] | None = None
                 ) -> tuple[int, int, Path]:
    """Build ``component`` (or the Verilog text ``verilog`` of it) with Verilator as module
    ``unit`` and run the cocotb module ``test_module`` (a dotted name under ``tests.cocotb``)
    on it with ``params``, the seed and ``env`` in the environment.

    Returns ``(tests, failed, log)``, ``log`` being the simulator's output file.
    """
    from hw.tb.verilator import build, build_verilog, run

    d = build_dir(unit, paramset)
    log = d / "sim.log"
    env = {**(env or {}), PARAMS_ENV: json.dumps(params), SEED_ENV: str(tb_seed())}
    b = build(component, unit, d) if verilog is None else build_verilog(verilog, unit, d)
    tests, failed = run(b, test_module, test_dir=d, env=env, log_file=log)
    return tests, failed, log


def failure_summary(log: Path, lines: int = 6) -> str:
    """The scoreboard's error lines of a run (for the pytest assertion message)."""
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log})"
    errors = [ln.strip() for ln in text if "ERROR" in ln or "mismatch" in ln]
    return " | ".join(errors[:lines]) + f" (log: {log})"


# --- cocotb side ---------------------------------------------------------------------------

def tb_params() -> dict:
    """The parameter set handed over by :func:`run_paramset`."""
    return json.loads(os.environ[PARAMS_ENV])


class Scoreboard:
    """Exact comparisons of DUT values against the reference; fails with the seed."""

    def __init__(self, log, seed: int, shown: int = 5) -> None:
        self.log = log
        self.seed = seed
        self.shown = shown
        self.checked = 0
        self.mismatches: list[str] = []

    def compare(self, got, want, what: str) -> None:
        self.checked += 1
        if got != want:
            msg = f"mismatch at {what}: got {got}, want {want}"
            if len(self.mismatches) < self.shown:
                self.log.error(msg)
            self.mismatches.append(msg)

    def finish(self, at_least: int) -> None:
        """Raise unless every comparison matched and at least ``at_least`` were made."""
        self.log.info("scoreboard: %d checked, %d mismatches (seed %d)", self.checked,
                      len(self.mismatches), self.seed)
        if self.mismatches:
            raise AssertionError(f"{len(self.mismatches)} of {self.checked} comparisons "
                                 f"mismatched (seed {self.seed}); first: {self.mismatches[0]}")
        if self.checked < at_least:
            raise AssertionError(f"only {self.checked} comparisons were made, expected at "
                                 f"least {at_least} (seed {self.seed})")
