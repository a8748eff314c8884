"""The verify workflow (``fpim verify``): the accelerator's Verilog, built with Verilator, runs
random GEMMs and one layer of a QAT artifact back to back under cocotb; every output is
compared with :mod:`quant.ref` and every GEMM's cycles with the simulator's cycle mode.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fpim.flows.fit import check_fit
from fpim.progress import Progress, silent
from hw.tb.cases import GemmCase, random_cases
from hw.tb.engine import Outcome, artifact_layer_case, build_accel, run_verilator
from quant.artifact import load_artifact
from quant.errors import ArtifactError, ConfigError
from sim.arch import Accelerator


@dataclass(frozen=True)
class Verification:
    """The outcome of every case, and what the run took."""

    top: str
    outcomes: list[Outcome]
    artifact_skipped: str | None  # why the default artifact layer could not run
    log: Path
    build_seconds: float
    run_seconds: float

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.passed

    @property
    def first_failure(self) -> str | None:
        return next((o.failure() for o in self.outcomes if not o.passed), None)

    @property
    def rtl_cycles(self) -> int:
        return sum(o.cycles_rtl for o in self.outcomes)


def _cases(accel: Accelerator, count: int, seed: int, artifact: str | None,
           layer: str | None, with_artifact: bool) -> tuple[list[GemmCase], str | None]:
    """The random cases, then the artifact layer's; and why the default layer was skipped."""
    if artifact is not None and layer is None:
        raise ConfigError("layer must name a conv/linear layer of --artifact, not missing")
    if artifact is not None and with_artifact:
        # the layer name first, then whether that layer (alone) runs on the engine
        check_fit(load_artifact(artifact), accel, only=layer)
    cases = random_cases(accel, count, seed=seed)
    if not with_artifact:
        return cases, None
    kw: dict = {} if artifact is None else {"art_dir": artifact}
    if layer is not None:
        kw["layer"] = layer
    try:
        cases.append(artifact_layer_case(accel, **kw))
    except ArtifactError as exc:
        if artifact is not None:
            raise
        return cases, str(exc)
    return cases, None


def verify(accel: Accelerator, count: int, *, seed: int = 0, artifact: str | None = None,
           layer: str | None = None, with_artifact: bool = True, beats: str = "paced",
           out_pattern: str = "mild", build_dir: str | None = None,
           say: Callable[[str], None] = lambda msg: None, progress: Progress = silent
           ) -> Verification | None:
    """Run ``count`` random GEMMs (seeded) and, with ``with_artifact``, the artifact's
    ``layer`` (default: the shipped artifact's verification layer, skipped with the reason
    when it cannot run) on the Verilator model of ``accel``, built (cached per Verilog
    content) under ``build_dir``. ``say`` receives a line before each step; ``progress`` shows
    each step's time as it runs (the run reports no per-case progress of its own). None
    when there is nothing to run."""
    cases, skipped = _cases(accel, count, seed, artifact, layer, with_artifact)
    if not cases:
        return None
    quiet = io.StringIO()  # cocotb's runner prints every command it runs
    t0 = time.perf_counter()
    say(f"building the Verilator model of {accel.name} (cached per Verilog content) ...")
    with progress("Verilator build"), contextlib.redirect_stdout(quiet):
        b = build_accel(accel, build_dir)
    t1 = time.perf_counter()
    say(f"running {len(cases)} GEMMs under cocotb (seed {seed}) ...")
    log = b.directory / "verify.log"
    with progress("cocotb run"), contextlib.redirect_stdout(quiet):
        outcomes = run_verilator(accel, cases, seed=seed, build=b, log_file=log,
                                 patterns={"beats": beats, "out": out_pattern})
    t2 = time.perf_counter()
    return Verification(b.top, outcomes, skipped, log, t1 - t0, t2 - t1)
