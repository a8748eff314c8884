"""The report workflow (``fpim report``): check everything a report needs, then simulate (and
synthesize, verify, cost on PIM macros, or search), render with :mod:`sim.report` and write
the report directory atomically.

Planning (:func:`plan_run`, :func:`plan_search`, :func:`check_out_dir`) does every check
that can fail on the inputs and none of the work, so a bad input costs one line and no time.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fpim.flows.fit import check_fit
from fpim.flows.pim_deploy import accuracy_grid, chip_cost, limited_test_split
from fpim.flows.simulate import load_workload, simulate
from fpim.flows.synth import synthesize_engine
from fpim.flows.verify import verify
from fpim.progress import Progress, silent
from hw.synth import find_yosys
from hw.tb.verilator import find_verilator
from quant.artifact import load_artifact
from quant.errors import ConfigError, check_fraction, check_int_range
from quant.fileio import replace_dir_atomic
from sim.arch import Accelerator
from sim.engine import check_workload
from sim.pim import PimMacro
from sim.report import RunRecords, msq_files, run_files
from sim.search import explore_msq, search_base
from sim.workload import Workload

#: Where reports go unless told otherwise: ``reports/<run>``.
REPORTS_DIR = Path("reports")


def check_out_dir(path: str | Path) -> Path:
    """``path`` as a Path if a report directory can be written there (an existing directory
    is replaced); otherwise :class:`ConfigError` naming it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"out must be a directory, not {str(path)!r} (a file)")
    if p.is_dir() and any(p.iterdir()) and not _is_report(p):
        raise ConfigError(f"out must be a new directory or an earlier report, not "
                          f"{str(path)!r} (it holds other files, which it would replace)")
    anc = p.absolute().parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise ConfigError(f"out must be below a directory, not {str(path)!r} ({anc} is a file)")
    try:  # the only reliable test (root, read-only mounts): make and remove a directory
        Path(tempfile.mkdtemp(dir=anc, prefix=".fpim-report-check-")).rmdir()
    except OSError as exc:
        raise ConfigError(f"out must be in a writable directory, not {str(path)!r} ({anc}: "
                          f"{exc.strerror})") from None
    return p


def _is_report(directory: Path) -> bool:
    try:
        schema = json.loads((directory / "summary.json").read_text()).get("schema", "")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(schema, str) and schema.startswith("report-")


def write_report(out: str | Path, files: dict[str, bytes]) -> None:
    """Replace directory ``out`` with ``files`` (name → content) in one step."""
    def fill(tmp: Path) -> None:
        for name, data in files.items():
            (tmp / name).write_bytes(data)

    replace_dir_atomic(out, fill)


@dataclass(frozen=True)
class RunPlan:
    """A checked run report: the workload fits the accelerator and every tool is there."""

    accel: Accelerator
    workload: Workload
    artifact_dir: str | None
    mode: str
    synth: bool
    family: str | None
    yosys: str | None
    verify_cases: int | None
    seed: int
    macro: PimMacro | None
    batch: int
    pim_images: int | None = None


def plan_run(accel: Accelerator, *, artifact: str | None = None, model: str | None = None,
             topology: str | None = None, gemm: bool | None = None,
             input_shape: tuple[int, ...] | None = None, batch: int = 1,
             sp2_fraction: float | None = None, mode: str = "cycle", synth: bool = False,
             family: str | None = None, yosys: str | None = None,
             verify_cases: int | None = None, seed: int = 0,
             macro: PimMacro | None = None, pim_images: int | None = None) -> RunPlan:
    """Load the workload of one source (as :func:`fpim.flows.simulate.load_workload`) and
    check it runs on ``accel``; with ``synth`` that Yosys is there, with ``verify_cases``
    that Verilator is, with ``macro`` that the source is an artifact; with ``pim_images``
    (the PIM accuracy grid's test images) that there is a macro and that many test
    images."""
    check_int_range("batch", batch, 1, 1 << 20)
    if sp2_fraction is not None:
        check_fraction("sp2_fraction", sp2_fraction)
    wl, art = load_workload(accel, artifact=artifact, model=model, topology=topology,
                            gemm=gemm, input_shape=input_shape, batch=batch,
                            sp2_fraction=sp2_fraction)
    if art is not None:
        check_fit(art, accel)
    check_workload(wl, accel)
    if synth:
        find_yosys(yosys)
    if verify_cases is not None:
        check_int_range("verify_cases", verify_cases, 1, 100_000)
        find_verilator()
    if macro is not None and artifact is None:
        raise ConfigError("macro needs an artifact (--artifact) to cost on PIM macros, "
                          "not a model or topology")
    if pim_images is not None:
        if macro is None or artifact is None:
            raise ConfigError("pim_accuracy needs a macro (--pim) and an artifact "
                              "(--artifact), not missing")
        limited_test_split(load_artifact(artifact), pim_images, "pim_limit")
    return RunPlan(accel, wl, artifact, mode, synth, family, yosys, verify_cases, seed, macro,
                   batch, pim_images)


def run_report(plan: RunPlan, command: str, progress: Progress = silent) -> dict[str, bytes]:
    """Simulate (as ``fpim simulate``), then synthesize, verify and cost as planned (the
    long steps reported to ``progress``); the report's files by name."""
    a = plan.accel
    sim = simulate(a, plan.workload, mode=plan.mode)
    synth = verification = pim = pim_acc = None
    if plan.synth:
        s = synthesize_engine(a, plan.family, plan.yosys, progress=progress)
        measured = {k: v for k, v in s.measured.to_dict().items() if k != "seconds"}
        synth = {"top": s.top, "family": s.family, "scope": s.scope, "measured": measured,
                 "model": s.model, "comparison": s.comparison}
    if plan.verify_cases is not None:
        v = verify(a, plan.verify_cases, seed=plan.seed, progress=progress)
        assert v is not None  # at least one random case
        keys = ("name", "description", "cycles_sim", "cycles_rtl", "outputs_equal", "passed")
        verification = {"top": v.top, "passed": v.passed, "failed": v.failed,
                        "artifact_skipped": v.artifact_skipped,
                        "cases": [{k: o.to_dict()[k] for k in keys} for o in v.outcomes]}
    if plan.macro is not None:
        assert plan.artifact_dir is not None
        pim = chip_cost(plan.artifact_dir, plan.macro, plan.batch).to_dict()
        if plan.pim_images is not None:
            pim_acc = accuracy_grid(plan.artifact_dir, plan.macro, plan.pim_images,
                                    progress=progress, field="pim_limit")
    return run_files(RunRecords(command, a, sim.result, synth, verification, pim, pim_acc,
                                sim.config))


@dataclass(frozen=True)
class SearchPlan:
    """A checked MSQ search report."""

    accel: Accelerator
    workload: Workload
    bits: int
    ideal_memory: bool
    lut_cap: float
    packings: tuple[int, ...] | None  # None: every packing the part allows


def plan_search(accel: Accelerator, *, model: str | None = None, topology: str | None = None,
                gemm: bool | None = None, bits: int, ideal_memory: bool = False,
                lut_cap: float = 0.8, packings: tuple[int, ...] | None = None) -> SearchPlan:
    """Load the workload (a shipped model or a topology) and check the search's arguments."""
    if model is None and topology is None:
        raise ConfigError("search must be given a model or a topology, not missing")
    wl, _ = load_workload(accel, model=model, topology=topology, gemm=gemm)
    check_fraction("lut_cap", lut_cap)
    search_base(wl, accel, bits, ideal_memory, packings)
    return SearchPlan(accel, wl, bits, ideal_memory, lut_cap, packings)


def search_report(plan: SearchPlan, command: str, progress: Progress = silent
                  ) -> dict[str, bytes]:
    """Run the MSQ search on ``plan.accel``'s part with its memory, clock and vector unit
    (each packing and column count reported to ``progress``); the report's files by name."""
    with progress("MSQ search") as report:
        x = explore_msq(plan.workload, plan.accel, plan.bits, plan.ideal_memory,
                        lut_cap=plan.lut_cap, packings=plan.packings, on_step=report)
    return msq_files(x, command)
