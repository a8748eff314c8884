"""The verify workflow (``fpim verify``): the accelerator's Verilog, built with Verilator, runs
random GEMMs and one layer of a QAT artifact back to back on the fast harness
(:mod:`hw.tb.fast`), the stream-level cocotb testbench (:mod:`hw.tb.accel_tb`) or both; every
output is compared with :mod:`quant.ref` and every GEMM's cycles with the simulator's cycle
mode. With ``all_layers`` every layer of the artifact runs on one DUT
(:func:`hw.tb.network.verify_network`); with ``block`` one encoder block of a ViT artifact
runs op by op, GEMMs on the GEMM top and vector ops on the vector unit's components
(:func:`hw.tb.block.verify_block`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fpim.flows.fit import check_fit
from fpim.progress import Progress, silent
from hw.generate import top_name
from hw.ops import Runs, rtl_op
from hw.tb import HARNESSES
from hw.tb.block import (
    OpRecord,
    VectorUnits,
    block_layers,
    block_vector_config,
    check_block_gemms,
    engine_layers,
)
from hw.tb.cases import GemmCase, random_cases
from hw.tb.engine import (
    REPO,
    Outcome,
    artifact_layer_case,
    build_accel,
    outcome,
    run_verilator,
)
from hw.tb.fast import FastRun, build_fast
from hw.tb.network import LayerRecord
from quant.artifact import load_artifact
from quant.errors import ArtifactError, ConfigError, check_choice
from quant.ops.matmul import MATMUL
from sim.arch import Accelerator
from sim.resources import rtl_runs_matmul


@dataclass(frozen=True)
class Verification:
    """The outcome of every case, and what the run took."""

    top: str
    outcomes: list[Outcome]
    artifact_skipped: str | None  # why the default artifact layer could not run
    log: Path | None
    build_seconds: float
    run_seconds: float
    layers: list[LayerRecord] = field(default_factory=list)
    logits_equal: bool | None = None  # None: no whole network run
    block_ops: list[OpRecord] = field(default_factory=list)  # --block: one record per op
    block_image: str | None = None  # which image the block ran on

    @property
    def passed(self) -> int:
        return sum(o.passed for o in (*self.outcomes, *self.layers, *self.block_ops))

    @property
    def failed(self) -> int:
        return len(self.outcomes) + len(self.layers) + len(self.block_ops) - self.passed + \
            int(self.logits_equal is False)

    @property
    def first_failure(self) -> str | None:
        return next((o.failure() for o in (*self.outcomes, *self.layers, *self.block_ops)
                     if not o.passed),
                    None if self.logits_equal is not False else "logits differ")

    @property
    def rtl_cycles(self) -> int:
        return sum(o.cycles_rtl for o in self.outcomes) + \
            sum(r.gemm.cycles_rtl for r in self.layers if r.gemm is not None) + \
            sum(r.cycles_rtl or 0 for r in self.block_ops)


def _cases(accel: Accelerator, count: int, seed: int, artifact: str | None,
           layer: str | None, with_artifact: bool) -> tuple[list[GemmCase], str | None]:
    """The random cases, then the artifact layer's; and why the default layer was skipped."""
    if artifact is not None and with_artifact:  # one layer (not --all-layers)
        if layer is None:
            raise ConfigError("layer must name a conv/linear layer of --artifact, not missing")
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
           layer: str | None = None, with_artifact: bool = True, harness: str = "fast",
           out_pattern: str = "mild", all_layers: bool = False,
           build_dir: str | None = None, say: Callable[[str], None] = lambda msg: None,
           progress: Progress = silent, block: int | None = None,
           vector_verilog: dict[str, str] | None = None) -> Verification | None:
    """Run ``count`` random GEMMs (seeded) and, with ``with_artifact``, the artifact's
    ``layer`` (default: the shipped artifact's verification layer, skipped with the reason
    when it cannot run) on the Verilator model of ``accel`` under ``harness``, built (cached
    per Verilog content) under ``build_dir``. With ``all_layers`` every layer of
    ``artifact`` runs instead of one, on the fast harness after the random cases (one bar per
    layer). ``say`` receives a line before each step; ``progress`` shows each step as it
    runs. With ``block`` (an encoder block's index) block ``block`` of the ViT ``artifact``
    runs op by op after the random cases (fast harness and the vector unit's components;
    ``vector_verilog`` replaces a component's generated Verilog, for mutation tests). None
    when there is nothing to run."""
    check_choice("harness", harness, HARNESSES)
    if all_layers and artifact is None:
        raise ConfigError("all-layers needs --artifact DIR, not missing")
    blk = _check_block(accel, artifact, block) if block is not None else None
    whole = all_layers or blk is not None
    cases, skipped = _cases(accel, count, seed, artifact, layer,
                            with_artifact and not whole)
    if not cases and not whole:
        return None
    quiet = io.StringIO()  # cocotb's runner prints every command it runs
    t0 = time.perf_counter()
    fast = harness != "stream" or whole
    stream = harness != "fast" and bool(cases)
    say(f"building the Verilator model{'s' if fast and stream else ''} of {accel.name} "
        "(cached per Verilog content) ...")
    with progress("Verilator build"), contextlib.redirect_stdout(quiet):
        b = build_accel(accel, build_dir) if stream else None
        fb = build_fast(accel, None if build_dir is None else Path(build_dir) / "fast",
                        matmul=whole and _needs_matmul(accel, artifact)) \
            if fast else None
        units = None
        if blk is not None:
            root = Path(build_dir) if build_dir is not None else REPO / "build" / "cocotb"
            units = VectorUnits(accel, block_vector_config(accel, blk[1]), root,
                                vector_verilog)
            for unit in sorted({la.op for la in blk[1]} & {"layernorm", "gelu", "softmax"}):
                for fmt in {_in_fmt(blk[0], la) for la in blk[1] if la.op == unit}:
                    units.get(unit, fmt)
            if any(la.op == "matmul" for la in blk[1]):
                units.get("requant")
    t1 = time.perf_counter()
    outcomes: list[Outcome] = []
    log = None
    if stream:
        say(f"running {len(cases)} GEMMs under cocotb (seed {seed}) ...")
        log = b.directory / "verify.log"
        with progress("cocotb run"), contextlib.redirect_stdout(quiet):
            outcomes += run_verilator(accel, cases, seed=seed, build=b, log_file=log,
                                      patterns={"out": out_pattern})
    layers: list[LayerRecord] = []
    logits_equal = None
    if fast:
        with FastRun(accel, fb) as run:
            if harness != "stream" and cases:
                say(f"running {len(cases)} GEMMs on the fast harness (seed {seed}) ...")
                with progress("fast harness run") as report:
                    outcomes += _run_fast(accel, run, cases, harness == "both", report)
            if all_layers:
                layers, logits_equal = _network(accel, artifact, run, say, progress)
            if blk is not None:
                ops, image = _block(accel, blk[0], block, run, units, say, progress)
    t2 = time.perf_counter()
    if blk is None:
        ops, image = [], None
    return Verification(top_name(accel), outcomes, skipped, log, t1 - t0, t2 - t1, layers,
                        logits_equal, ops, image)


def _check_block(accel: Accelerator, artifact: str | None, block: int):
    """The artifact and block ``block``'s layers, checked before any build: a ViT artifact,
    the index in range, every GEMM layer of the block fits ``accel``."""
    if artifact is None:
        raise ConfigError("block needs --artifact DIR (a ViT artifact), not missing")
    art = load_artifact(artifact)
    layers = block_layers(art, block)
    for name in engine_layers(layers):
        check_fit(art, accel, only=name)
    check_block_gemms(layers)
    if any(la.op == MATMUL.name for la in layers) and rtl_op(MATMUL.name) is Runs.ENGINE \
            and not rtl_runs_matmul(accel.engine):
        e = accel.engine
        raise ConfigError(f"engine must have the generated top's matmul path for block "
                          f"{block}'s attention (an unpacked DSP core whose accumulators "
                          f"hold an act_bits x act_bits product), not dsp_rows {e.dsp_rows}, "
                          f"dsp_packing {e.dsp_packing}, acc_bits {e.acc_bits}")
    return art, layers


def _in_fmt(art, layer):
    src = layer.inputs[0]
    return art.input.fmt if src == "input" else art.layer(src).out.fmt


def _block(accel: Accelerator, art, block: int, run: FastRun, units, say, progress):
    """Block ``block`` of ``art`` op by op, one progress bar per op."""
    from hw.tb.block import block_image, verify_block

    image, what = block_image(art)
    say(f"running encoder block {block} ({len(block_layers(art, block))} layers) on {what} ...")
    bar = contextlib.ExitStack()

    def on_op(i: int, n: int, name: str) -> None:
        bar.close()
        bar.enter_context(progress(f"op {i + 1}/{n} {name}"))

    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet):
            return verify_block(accel, art, block, image, run, units, on_op=on_op), what
    finally:
        bar.close()


def _needs_matmul(accel: Accelerator, artifact: str) -> bool:
    """Whether a network or block run needs the top's matmul path: the artifact has a matmul
    layer (sim.timing R11) and the engine can have the path (else the matmul layer fails
    with the reason, hw.tb.cases.matmul_cases)."""
    art = load_artifact(artifact)
    return rtl_runs_matmul(accel.engine) and any(la.op == MATMUL.name for la in art.layers)


def _run_fast(accel: Accelerator, run: FastRun, cases: list[GemmCase], tag: bool,
              report) -> list[Outcome]:
    """The cases' outcomes on the fast harness (names tagged ``@fast`` next to the stream
    harness's)."""
    out = []
    for i, (c, r) in enumerate(zip(cases, run.run_many(cases), strict=True)):
        o = outcome(c, r.y, r.cycles, r.req_bytes)
        out.append(dataclasses.replace(o, name=f"{o.name}@fast") if tag else o)
        report(i + 1, len(cases))
    return out


def _network(accel: Accelerator, artifact: str, run: FastRun, say, progress
             ) -> tuple[list[LayerRecord], bool]:
    """Every layer of ``artifact`` on digits test image 0, one progress bar per layer."""
    from hw.tb.engine import digits_image
    from hw.tb.network import verify_network
    from quant.artifact import load_artifact

    art = load_artifact(artifact)
    image = digits_image(art, 0)
    say(f"running all {len(art.layers)} layers of {artifact} on one DUT ...")
    bar = contextlib.ExitStack()

    def on_layer(i: int, n: int, name: str) -> None:
        bar.close()
        bar.enter_context(progress(f"layer {i + 1}/{n} {name}"))

    try:
        return verify_network(accel, art, image, run, on_layer=on_layer)
    finally:
        bar.close()
