"""Run GEMM cases on the accelerator's Verilog under cocotb + Verilator and check them.

:func:`run_verilator` generates the preset's Verilog (:func:`hw.generate.generate`, the same
text ``fpim rtl`` writes), builds it once per content, runs :mod:`hw.tb.accel_tb` on every
case back to back, and returns one :class:`Outcome` per case: outputs compared element by
element with the reference, ``busy`` cycles compared with the simulator's cycle mode, and
the bytes requested compared with the simulator's DRAM reads. :func:`artifact_layer_case`
picks the shipped QAT artifact's layer used by ``fpim verify`` and the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hw.generate import generate, top_name
from hw.tb.cases import GemmCase, artifact_case, case_command, command_deal
from hw.tb.verilator import build_verilog, run
from quant.errors import ArtifactError, ConfigError, SimulationError, check_choice
from sim.arch import Accelerator
from sim.config import CONFIG_DIR

#: Stimulus patterns (see hw.tb.accel_tb): output back-pressure, idle probability.
OUT_PATTERNS = ("always", "mild", "heavy")
DEFAULT_PATTERNS = {"out": "mild", "idle": 0.25}
#: The QAT artifact shipped for verification (see configs/artifacts/README.md).
ARTIFACT = CONFIG_DIR / "artifacts" / "cnn_msq4_digits"
ARTIFACT_LAYER = "features.3"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Outcome:
    """One case on the RTL: what it is, both cycle counts, and the first failure if any."""

    name: str
    description: str
    cycles_sim: int
    cycles_rtl: int
    outputs_equal: bool
    first_mismatch: tuple[int, int, int, int] | None  # (row, col, rtl, reference)
    dram_bytes_equal: bool
    cycles_must_equal: bool
    y: np.ndarray = field(repr=False, compare=False, default=None)  # the RTL's outputs

    @property
    def cycles_ok(self) -> bool:
        if self.cycles_must_equal:
            return self.cycles_rtl == self.cycles_sim
        return self.cycles_rtl >= self.cycles_sim

    @property
    def passed(self) -> bool:
        return self.outputs_equal and self.cycles_ok and self.dram_bytes_equal

    def failure(self) -> str | None:
        """One line saying what failed first, or None."""
        if self.first_mismatch is not None:
            r, c, got, want = self.first_mismatch
            return f"{self.name}: output[{r}, {c}] = {got}, reference {want}"
        if not self.outputs_equal:
            return f"{self.name}: not every output element was produced"
        if not self.cycles_ok:
            return (f"{self.name}: RTL took {self.cycles_rtl} cycles, the simulator predicts "
                    f"{self.cycles_sim} ({self.cycles_rtl - self.cycles_sim:+d})")
        if not self.dram_bytes_equal:
            return f"{self.name}: requested bytes differ from the simulator's DRAM reads"
        return None

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["y"]
        return {**d, "passed": self.passed}


def build_dir_for(accel: Accelerator, verilog: str, root: str | os.PathLike | None = None
                  ) -> Path:
    """Build directory of one Verilog text of a preset's top (one per parameter set):
    ``build/cocotb/accel-<top>-<first 10 hex digits of the Verilog's SHA-256>``."""
    base = Path(root) if root is not None else REPO / "build" / "cocotb"
    digest = hashlib.sha256(verilog.encode()).hexdigest()[:10]
    return base / f"accel-{top_name(accel)}-{digest}"


def build_accel(accel: Accelerator, root: str | os.PathLike | None = None,
                verilog: str | None = None, *, matmul: bool = False):
    """Compile the preset's accelerator top (``matmul``: with the matmul path; or the given
    Verilog text of it) under ``root`` (default ``build/cocotb``)."""
    text = verilog if verilog is not None else generate(accel, matmul=matmul)[0]
    return build_verilog(text, top_name(accel), build_dir_for(accel, text, root))


def run_verilator(accel: Accelerator, cases: list[GemmCase], *, seed: int = 0,
                  patterns: dict | None = None, build=None,
                  log_file: str | os.PathLike | None = None, matmul: bool | None = None
                  ) -> list[Outcome]:
    """Run ``cases`` back to back on the Verilated accelerator; one outcome per case.
    ``matmul``: whether the top (``build``, default built here) has the matmul path;
    default: if a case is a matmul."""
    pat = {**DEFAULT_PATTERNS, **(patterns or {})}
    check_choice("patterns.out", pat["out"], OUT_PATTERNS)
    mm = any(c.matmul for c in cases) if matmul is None else matmul
    if not mm and any(c.matmul for c in cases):
        raise ConfigError("matmul must be True for matmul cases (the top's matmul path), "
                          "not False")
    b = build or build_accel(accel, matmul=mm)
    spec = {"settings": {"accel": accel.to_dict() | {"name": accel.name}, "seed": seed,
                         "patterns": pat, "matmul": mm},
            "cases": [c.to_json() | {"command": case_command(accel, c),
                                      "deal": list(command_deal(accel, c))} for c in cases]}
    with tempfile.TemporaryDirectory(prefix="fpim-tb-") as tmp:
        cases_path, results_path = Path(tmp, "cases.json"), Path(tmp, "results.json")
        cases_path.write_text(json.dumps(spec))
        log = log_file or Path(tmp, "sim.log")
        try:
            run(b, "hw.tb.accel_tb", test_dir=tmp, log_file=log,
                env={"FPIM_TB_CASES": str(cases_path), "FPIM_TB_RESULTS": str(results_path)})
        except SimulationError:
            if not results_path.exists():
                raise
        if not results_path.exists():
            raise SimulationError(f"the cocotb run on {b.top} wrote no results; see its log")
        results = json.loads(results_path.read_text())
    strict = pat["out"] != "heavy"
    return [outcome(c, np.asarray(r["y"], dtype=np.int64), int(r["cycles"]),
                    sum(int(q[3]) for q in r["requests"]), strict)
            for c, r in zip(cases, results, strict=True)]


def outcome(case: GemmCase, y: np.ndarray, cycles: int, req_bytes: int,
            strict: bool = True) -> Outcome:
    """``case``'s outcome from the RTL's outputs ``y`` (-999 where none was produced), busy
    cycles and requested bytes; ``strict``: cycles must equal the simulator's."""
    equal = bool(np.array_equal(y, case.want))
    first = None
    if not equal:
        bad = np.argwhere((y != case.want) & (y != -999))
        if len(bad):
            i, j = (int(v) for v in bad[0])
            first = (i, j, int(y[i, j]), int(case.want[i, j]))
    return Outcome(case.name, case.describe(), case.cycles, cycles, equal, first,
                   req_bytes == case.dram_read, strict, y)


def artifact_layer_case(accel: Accelerator, *, image_index: int = 0, bw: int | None = None,
                        lat: int | None = None, art_dir: str | os.PathLike | None = None,
                        layer: str = ARTIFACT_LAYER) -> GemmCase:
    """The shipped artifact's ``layer`` on digits test image ``image_index`` as a case.

    The DRAM timing defaults to the preset's own memory.
    """
    from quant.artifact import load_artifact

    art = load_artifact(art_dir or ARTIFACT)
    mem = accel.memory
    return artifact_case(accel, art, layer, digits_image(art, image_index),
                         bw=mem.dram_bytes_per_cycle if bw is None else bw,
                         lat=mem.dram_latency if lat is None else lat)


def digits_image(art, index: int) -> np.ndarray:
    """Digits test image ``index`` of a digits artifact (its test images are bundled)."""
    from quant.data import load_digits

    if art.meta.get("data") != "digits":
        raise ArtifactError(f"artifact data must be digits for a verification layer (its "
                            f"test images are bundled), not {art.meta.get('data')!r}")
    return load_digits(seed=int(art.meta.get("float_seed", 0))).x_test[index]
