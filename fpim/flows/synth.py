"""The synth workflow (``fpim synth``): Yosys ``synth_xilinx`` of an accelerator's engine
datapath, next to the analytical resource model's estimate of the same blocks."""

from __future__ import annotations

from dataclasses import dataclass

from fpim.progress import Progress, silent
from hw.generate import generate
from hw.model import compare, datapath_model
from hw.synth import SynthResult, find_yosys, synthesize
from sim.arch import Accelerator


@dataclass(frozen=True)
class Synthesis:
    """Measured cells, the model's estimate, and one comparison row per resource."""

    top: str
    family: str
    scope: str
    measured: SynthResult
    model: dict[str, int]
    comparison: list[dict[str, object]]


def synthesize_engine(accel: Accelerator, family: str | None = None,
                      yosys: str | None = None, progress: Progress = silent) -> Synthesis:
    """Synthesize the generated datapath for ``family`` (default: from the part's DSP type)
    with the ``yosys`` binary (default: on PATH) and compare it with the model; the two
    phases (generation, Yosys) are reported to ``progress``."""
    family = family or accel.part.family
    exe = find_yosys(yosys)  # before the generation, which takes a while
    with progress(f"generate and synthesize {accel.name}") as report:
        report(0, 2)
        text, manifest = generate(accel, datapath_only=True)
        report(1, 2)
        res = synthesize(text, manifest["top"], family, yosys=exe)
        report(2, 2)
    model = datapath_model(accel)
    return Synthesis(manifest["top"], family, manifest["scope"], res, model,
                     compare(res.summary, model))
