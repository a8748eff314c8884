"""The synth workflow (``fpim synth``): Yosys ``synth_xilinx`` of an accelerator's engine
datapath or of its whole top, next to the analytical resource model's estimate of the same
blocks."""

from __future__ import annotations

from dataclasses import dataclass

from fpim.progress import Progress, silent
from hw.generate import generate
from hw.model import DATAPATH_KEYS, TOP_KEYS, compare, datapath_model, top_model
from hw.synth import SynthResult, find_yosys, synthesize
from quant.errors import ConfigError
from sim.arch import Accelerator

#: Yosys time limits (seconds): the datapath, and the whole top (its buffers and controller
#: take Yosys several times longer; the mid-size preset about 11 minutes on 2 loaded cores).
DATAPATH_TIMEOUT = 600.0
TOP_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Synthesis:
    """Measured cells, the model's estimate, and one comparison row per resource."""

    top: str
    family: str
    scope: str
    measured: SynthResult
    model: dict[str, object]
    comparison: list[dict[str, object]]
    whole_top: bool = False


def synthesize_engine(accel: Accelerator, family: str | None = None,
                      yosys: str | None = None, progress: Progress = silent, *,
                      whole_top: bool = False, timeout: float | None = None) -> Synthesis:
    """Synthesize the generated datapath (``whole_top``: the whole accelerator top) for
    ``family`` (default: from the part's DSP type) with the ``yosys`` binary (default: on
    PATH) within ``timeout`` seconds (default :data:`DATAPATH_TIMEOUT` or
    :data:`TOP_TIMEOUT`) and compare it with the model; the two phases (generation, Yosys)
    are reported to ``progress``."""
    if timeout is None:
        timeout = TOP_TIMEOUT if whole_top else DATAPATH_TIMEOUT
    if not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    family = family or accel.part.family
    exe = find_yosys(yosys)  # before the generation, which takes a while
    with progress(f"generate and synthesize {accel.name}") as report:
        report(0, 2)
        text, manifest = generate(accel, datapath_only=not whole_top)
        report(1, 2)
        res = synthesize(text, manifest["top"], family, yosys=exe, timeout=timeout)
        report(2, 2)
    if whole_top:
        model = top_model(accel)
        comparison = compare(res.summary, model, TOP_KEYS)
    else:
        model = datapath_model(accel)
        comparison = compare(res.summary, model, DATAPATH_KEYS)
    return Synthesis(manifest["top"], family, manifest["scope"], res, model, comparison,
                     whole_top)
