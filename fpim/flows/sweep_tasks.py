"""What a sweep runs on a worker: one function per stage, and the wrapper that turns its
outcome into a record.

Each stage function takes plain objects (an :class:`~sim.arch.Accelerator`, a workload,
training configs) and the payloads of the tasks it depends on, and returns
``(result, payload)``: a JSON-able dict of numbers and an object for dependent tasks (the
float weights, the QAT artifact) or None. Nothing here reads or writes the sweep's output
directory: the client stores every record, so workers need no shared file system.

The heavy imports (torch for accuracy, Amaranth and Yosys for synthesis, cocotb for
verification) are made by the stage that needs them, so that a simulate-only sweep starts
its workers in a second.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fpim.flows.simulate import simulate
from quant.artifact import Artifact
from quant.errors import FpimError
from sim.arch import Accelerator
from sim.ops import from_artifact
from sim.workload import Workload

StageFn = Callable[..., tuple[dict[str, Any], Any]]


def train_float(model: str, width: int, data: str, float_cfg: Any) -> tuple[dict, bytes]:
    """Train the float model once; payload: its state_dict as ``torch.save`` bytes."""
    from fpim.flows.metrics import accuracy
    from fpim.flows.quantize import float_model
    from quant.data import load_dataset
    from quant.torch.train import predict

    ds = load_dataset(data)
    with tempfile.TemporaryDirectory(prefix="fpim-float-") as tmp:
        ckpt = Path(tmp) / "float.pt"
        net, _ = float_model(model, ds, float_cfg, width=width, checkpoint=ckpt,
                             progress=False)
        blob = ckpt.read_bytes()
    return {"float_accuracy": round(accuracy(predict(net, ds.x_test), ds.y_test), 4)}, blob


def measure_accuracy(model: str, width: int, data: str, qat_cfg: Any, float_cfg: Any,
                     train_cfg: Any, float_state: bytes) -> tuple[dict, Artifact]:
    """QAT (or PTQ: no epochs) from the shared float weights, export, integer accuracy;
    payload: the artifact. The workflow is :func:`fpim.flows.quantize.quantize_workflow`."""
    from fpim.flows.quantize import quantize_workflow
    from quant.artifact import load_artifact
    from quant.data import load_dataset

    ds = load_dataset(data)
    with tempfile.TemporaryDirectory(prefix="fpim-qat-") as tmp:
        ckpt = Path(tmp) / "float.pt"
        ckpt.write_bytes(float_state)
        r = quantize_workflow(model, ds, qat_cfg, float_cfg, train_cfg, out=Path(tmp) / "art",
                              width=width, float_checkpoint=ckpt, progress=False)
        art = load_artifact(Path(tmp) / "art")
    keep = ("float_accuracy", "fakequant_accuracy", "quant_accuracy", "agreement",
            "sp2_rows", "rows")
    return {k: r[k] for k in keep}, art


def simulate_point(accel: Accelerator, wl: Workload | None, art: Artifact | None, mode: str,
                   *upstream: Artifact) -> tuple[dict, None]:
    """Time the workload (or the upstream QAT artifact) on ``accel``; totals and the
    resource model's estimate of the whole accelerator."""
    if upstream:
        art = upstream[0]
        wl = from_artifact(art)
    assert wl is not None
    r = simulate(accel, wl, art, mode=mode).result
    t = r.totals()
    res = r.resources
    return {"fps": t["fps"], "latency_ms": t["latency_ms"], "cycles": t["total_cycles"],
            "stall_cycles": t["stall_cycles"], "gops": t["gops"], "lut": res["lut"],
            "ff": res["ff"], "dsp": res["dsp"], "bram36": res["bram36"]}, None


def synth_point(accel: Accelerator, family: str | None, yosys: str | None
                ) -> tuple[dict, None]:
    """Yosys synthesis of the engine datapath (:mod:`fpim.flows.synth`): measured cells."""
    from fpim.flows.synth import synthesize_engine

    s = synthesize_engine(accel, family, yosys)
    m = s.measured.summary
    return {"synth_lut": m["lut"], "synth_ff": m["ff"], "synth_dsp": m["dsp"],
            "synth_carry": m["carry"], "model_datapath_lut": s.model["lut"],
            "yosys_seconds": round(s.measured.seconds, 2)}, None


def verify_point(accel: Accelerator, cases: int, seed: int) -> tuple[dict, None]:
    """Random GEMMs on the point's RTL, on the fast harness (:mod:`fpim.flows.verify`)."""
    from fpim.flows.verify import verify

    v = verify(accel, cases, seed=seed, with_artifact=False)
    assert v is not None  # cases >= 1
    return {"verify_passed": v.passed, "verify_failed": v.failed}, None


def pim_point(macro: Any, data: str | None, limit: int | None, seed: int,
              art: Artifact | None, *upstream: Artifact) -> tuple[dict, None]:
    """The artifact (or the upstream QAT artifact) on a chip of PIM macros: cost and
    accuracy (:mod:`fpim.flows.pim_deploy`, which reads an artifact directory)."""
    from fpim.flows.pim_deploy import chip_cost, evaluate
    from quant.artifact import save_artifact

    with tempfile.TemporaryDirectory(prefix="fpim-pim-") as tmp:
        path = Path(tmp) / "art"
        save_artifact(upstream[0] if upstream else art, path)
        cost = chip_cost(path, macro).totals
        acc = evaluate(path, macro, data=data, limit=limit, seed=seed)
    return {"pim_accuracy": acc["pim_accuracy"], "pim_digital_accuracy": acc["digital_accuracy"],
            "pim_cycles": cost["cycles"], "pim_latency_us": cost["latency_us"],
            "pim_energy_uj": cost["energy_uj"]}, None


#: The function of each task stage (``float`` is the float training accuracy shares).
STAGE_FUNCTIONS: dict[str, StageFn] = {
    "float": train_float, "accuracy": measure_accuracy, "simulate": simulate_point,
    "synth": synth_point, "verify": verify_point, "pim": pim_point,
}


def error_record(stage: str, exc: BaseException) -> dict[str, Any]:
    """The record of a task that kept raising something other than an FpimError: failed,
    ``transient`` (not cached, so that a re-run tries again)."""
    return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}".splitlines()[0],
            "result": {}, "payload": None, "seconds": 0.0, "stage": stage, "transient": True}


def run_batch(items: list[tuple[str, StageFn, tuple, list[dict]]], retries: int
              ) -> list[dict[str, Any]]:
    """Records of several tasks (stage, function, arguments, dependency records) that take
    milliseconds each, run as one Dask task; each is tried ``retries`` more times when it
    raises, as Dask would try a task of its own."""
    out = []
    for stage, fn, args, deps in items:
        for attempt in range(retries + 1):
            try:
                out.append(run_task(stage, fn, args, *deps))
                break
            except Exception as exc:
                if attempt == retries:
                    out.append(error_record(stage, exc))
    return out


def run_task(stage: str, fn: StageFn, args: tuple, *deps: dict) -> dict[str, Any]:
    """Run one task; its record: ``status`` (``ok`` or ``failed``), ``reason``, ``result``,
    ``payload`` and ``seconds``.

    A stage that raises an :class:`~quant.errors.FpimError` (the design does not take the
    workload, a tool refuses it) has failed for this point, deterministically: the record
    says why. Any other exception propagates, so that Dask retries the task.
    """
    t0 = time.perf_counter()
    for d in deps:
        if d["status"] != "ok":
            return {"status": "failed", "reason": f"needs {d['stage']}, which failed",
                    "result": {}, "payload": None, "seconds": 0.0, "stage": stage}
    try:
        result, payload = fn(*args, *(d["payload"] for d in deps))
    except FpimError as exc:
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "result": {},
                "payload": None, "seconds": time.perf_counter() - t0, "stage": stage}
    return {"status": "ok", "reason": "", "result": result, "payload": payload,
            "seconds": time.perf_counter() - t0, "stage": stage}
