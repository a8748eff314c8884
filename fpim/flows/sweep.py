"""The sweep workflow (``fpim sweep``): every point of a spec through its stages, as one Dask
task graph, with a content-addressed cache in the output directory.

**Plan.** Each point becomes an accelerator (:func:`sim.config.load_accelerator`, the point's
axes as ``--set`` overrides) and one task per stage. A task's key is the hash of exactly
what its result depends on, plus the stage function and the fpim version:

* ``float`` (float training): model, width, data, seed, float recipe;
* ``accuracy``: the float task, scheme, weight/activation bits, LUT-scheme fraction (msq),
  recipe; the float model is trained once and shared, and points that differ only in what
  accuracy does not depend on (the part, the columns, the DRAM) share one accuracy task;
* ``simulate``: the accelerator and the workload (or the accuracy task whose artifact it
  runs) and the mode; ``synth``: the engine datapath and the synthesis family;
  ``verify``: the accelerator and the cases.

A point that cannot be built (an engine that does not fit its part, a packing the width does
not allow) is recorded as ``infeasible`` with the reason, before anything runs.

**Run.** Tasks missing from the cache are submitted to a Dask cluster (an embedded
``LocalCluster`` or a running scheduler) with their dependencies as futures, or run in this
process in dependency order (``workers=0``). The client writes each record as it arrives,
atomically; a worker that dies has its task rescheduled by Dask, and a re-run after an
interruption computes only what is missing.

**Outputs** (``out/``): ``cache/<stage>/<key>.json`` (one record per task, plus the float
weights and artifacts), ``results.csv`` / ``results.jsonl`` / ``results.txt`` (one row per
point), ``pareto.csv`` / ``pareto.txt`` (the points no other feasible point beats in every
objective: FPS, LUT, DSP, accuracy; :mod:`fpim.flows.sweep_results`), ``spec.json`` and the
plots (``fps_vs_lut.png``, ``fps_vs_dsp.png``, ``accuracy_vs_fraction.png``: what the stages
measured, drawn by :mod:`sim.report.figures`).

Why CSV and JSON lines rather than Parquet: one small JSON file per result is atomic by
construction (written to a temporary name, then renamed), whereas appending rows to a
Parquet file means rewriting it or keeping many fragments; the tables are a few thousand
rows, read by people, spreadsheets and the report machinery; and pyarrow is a large
dependency for that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fpim import __version__
from fpim.flows.pim_deploy import macro_with
from fpim.flows.simulate import load_workload
from fpim.flows.sweep_results import (
    pareto_front,
    pareto_objectives,
    result_rows,
    write_plots,
    write_tables,
)
from fpim.flows.sweep_spec import (
    MACRO_SECTION,
    SOURCES,
    SweepSpec,
    is_accel_key,
    macro_path,
    resolve,
)
from fpim.flows.sweep_tasks import STAGE_FUNCTIONS, StageFn, error_record, run_batch, run_task
from quant.artifact import MANIFEST_NAME, load_artifact, save_artifact
from quant.errors import ConfigError, FpimError
from quant.fileio import write_atomic
from sim.arch import Accelerator
from sim.config import accelerator_from_dict, apply_overrides, load_accelerator
from sim.resources import estimate_resources, fits
from sim.workload import Workload

#: Retries of a task that raised something other than an FpimError (worker deaths are
#: rescheduled by Dask itself, up to ``distributed.scheduler.allowed-failures``).
RETRIES = 2
#: Stages whose tasks take milliseconds: sent to the cluster in batches (a Dask task costs
#: about a millisecond of scheduling and more on a loaded machine).
BATCHED = ("simulate",)
BATCH_MAX = 64
#: Stages whose records have a payload file next to them (float weights, artifacts).
PAYLOAD_STAGES = ("float", "accuracy")


@dataclass(frozen=True)
class Task:
    """One computation: its key, stage, the inputs its key hashes, the arguments of the
    stage function and the keys of the tasks whose payloads follow them."""

    key: str
    stage: str
    inputs: dict[str, Any]
    args: tuple
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Point:
    """A design point: its axis values, its task per stage, or why it cannot be built."""

    index: int
    values: dict[str, Any]
    tasks: dict[str, str]
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """Points and their distinct tasks (a dependency comes before its dependents)."""

    spec: SweepSpec
    points: list[Point]
    tasks: dict[str, Task]


@dataclass(frozen=True)
class SweepRun:
    """What a run did and found."""

    out: Path
    executor: str
    points: int
    tasks: int
    computed: int
    cached: int
    failed_tasks: int
    status: dict[str, int]
    rows: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    objectives: list[tuple[str, str]]
    seconds: float
    files: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------

def canonical(obj: object) -> str:
    """The one JSON text of ``obj`` that its key hashes (sorted keys, no spaces)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def task_key(stage: str, inputs: dict[str, Any], fn: StageFn) -> str:
    """``<stage>-<hash>`` of the inputs, the stage function and the fpim version."""
    code = fn.func if isinstance(fn, functools.partial) else fn
    body = canonical({"stage": stage, "inputs": inputs, "fpim": __version__,
                      "function": f"{code.__module__}.{code.__qualname__}"})
    return f"{stage}-{hashlib.sha256(body.encode()).hexdigest()[:20]}"


def _accel_inputs(accel: Accelerator) -> dict[str, Any]:
    d = accel.to_dict()
    d.pop("name")  # a name changes nothing that is computed
    return d


class _Planner:
    """Builds the tasks of each point, sharing equal tasks and the loaded workloads."""

    def __init__(self, spec: SweepSpec, functions: dict[str, StageFn]) -> None:
        self.spec = spec
        self.fn = functions
        self.tasks: dict[str, Task] = {}
        self._workloads: dict[tuple, tuple[Workload, Any, str]] = {}
        self._presets: dict[str, dict[str, Any]] = {}

    def add(self, new: dict[str, Task], stage: str, inputs: dict[str, Any], args: tuple,
            deps: tuple[str, ...] = ()) -> str:
        key = task_key(stage, inputs, self.fn[stage])
        if key not in self.tasks and key not in new:
            new[key] = Task(key, stage, inputs, args, deps)
        return key

    def point(self, index: int, values: dict[str, Any]) -> Point:
        new: dict[str, Task] = {}
        try:
            keys = self._tasks(values, new)
        except FpimError as exc:
            return Point(index, values, {}, str(exc))
        self.tasks.update(new)
        return Point(index, values, keys)

    def _accelerator(self, values: dict[str, Any]) -> Accelerator:
        """The point's accelerator: its preset with the point's axes as ``--set``
        overrides (applied to the preset's plain data, parsed from YAML once)."""
        name = values["accel"]
        if name not in self._presets:
            base = load_accelerator(resolve(self.spec.root, name) if Path(name).suffix
                                    else name)
            self._presets[name] = base.to_dict()
        sets = [f"{k}={json.dumps(v)}" for k, v in values.items() if is_accel_key(k)]
        data = self._presets[name]
        accel = accelerator_from_dict(apply_overrides(data, sets), data["name"])
        cap = self.spec.constraints.lut_cap
        if not fits(accel, cap):
            raise ConfigError(f"engine needs {estimate_resources(accel).lut} LUT, more than "
                              f"lut_cap {cap:g} of part {accel.part.name}'s {accel.part.lut}")
        return accel

    def _workload(self, accel: Accelerator, values: dict[str, Any]
                  ) -> tuple[Workload, Any, str]:
        kind = self.spec.source
        assert kind is not None
        e = accel.engine
        frac = values.get("fraction", e.lut_rows / e.rows)
        value = values[kind]
        memo = (kind, value, None if kind == "artifact" else frac)
        if memo not in self._workloads:
            src = str(resolve(self.spec.root, value)) if kind != "model" else value
            wl, art = load_workload(accel, **{kind: src}, sp2_fraction=frac)
            digest = hashlib.sha256(canonical(dataclasses.asdict(wl)).encode()).hexdigest()
            self._workloads[memo] = (wl, art, digest)
        return self._workloads[memo]

    def _tasks(self, values: dict[str, Any], new: dict[str, Task]) -> dict[str, str]:
        spec = self.spec
        accel = self._accelerator(values)
        ai = _accel_inputs(accel)
        keys: dict[str, str] = {}
        if spec.accuracy is not None:
            keys["accuracy"] = self._accuracy(accel, values, new)
        if "simulate" in spec.stages:
            mode = spec.simulate.mode
            if "accuracy" in keys:
                keys["simulate"] = self.add(new, "simulate", {
                    "accel": ai, "accuracy": keys["accuracy"], "mode": mode},
                    (accel, None, None, mode), (keys["accuracy"],))
            else:
                wl, art, digest = self._workload(accel, values)
                keys["simulate"] = self.add(new, "simulate", {
                    "accel": ai, "workload": digest, "mode": mode}, (accel, wl, art, mode))
        if "synth" in spec.stages:
            family = spec.synth.family or accel.part.family
            keys["synth"] = self.add(new, "synth", {
                "engine": dataclasses.asdict(accel.engine), "dsp_type": accel.part.dsp_type,
                "family": family}, (accel, family, spec.synth.yosys))
        if "verify" in spec.stages:
            v = spec.verify
            keys["verify"] = self.add(new, "verify", {
                "accel": ai, "cases": v.cases, "seed": v.seed}, (accel, v.cases, v.seed))
        if "pim" in spec.stages:
            keys["pim"] = self._pim(accel, values, keys.get("accuracy"), new)
        return keys

    def _pim(self, accel: Accelerator, values: dict[str, Any], accuracy: str | None,
             new: dict[str, Task]) -> str:
        """The pim task of the QAT artifact (``accuracy``) or of the artifact axis's."""
        prefix = MACRO_SECTION + "."
        macro = macro_with(macro_path(self.spec.root, values["macro"]),
                           {k[len(prefix):]: v for k, v in values.items()
                            if k.startswith(prefix)})
        o = self.spec.pim
        inputs = {"macro": {k: v for k, v in macro.to_dict().items()
                            if k not in ("name", "sources")},  # words, not arithmetic
                  "options": dataclasses.asdict(o)}
        args = (macro, o.data, o.limit, o.seed)
        if accuracy is not None:
            return self.add(new, "pim", {**inputs, "accuracy": accuracy}, (*args, None),
                            (accuracy,))
        _, art, _ = self._workload(accel, values)
        path = resolve(self.spec.root, values["artifact"]) / MANIFEST_NAME
        content = json.loads(path.read_text())["content_hash"]
        return self.add(new, "pim", {**inputs, "artifact": content}, (*args, art))

    def _accuracy(self, accel: Accelerator, values: dict[str, Any],
                  new: dict[str, Task]) -> str:
        # torch is imported only by sweeps that measure accuracy (seconds of start-up)
        from quant.torch.qat import QATConfig
        from quant.torch.train import TrainConfig

        r = self.spec.accuracy
        assert r is not None
        e = accel.engine
        model, seed = values["model"], values.get("seed", 0)
        scheme = values.get("scheme", "msq")
        frac = values.get("fraction", e.lut_rows / e.rows) if scheme == "msq" else None
        fcfg = TrainConfig(epochs=r.float_epochs, lr=r.float_lr, batch_size=r.batch_size,
                           seed=seed)
        tcfg = TrainConfig(epochs=r.qat_epochs, lr=r.lr, batch_size=r.batch_size, seed=seed)
        qcfg = QATConfig(scheme=scheme, bits=e.weight_bits, act_bits=e.act_bits,
                         sp2_fraction=0.5 if frac is None else frac, msq_rule=r.msq_rule,
                         first_last_bits=r.first_last_bits or None,
                         input_bits=r.input_bits or e.act_bits,
                         pool_extra_bits=r.pool_extra_bits)
        base = {"model": model, "width": r.width, "data": r.data}
        fkey = self.add(new, "float", {**base, "train": dataclasses.asdict(fcfg)},
                        (model, r.width, r.data, fcfg))
        q = dataclasses.asdict(qcfg)
        if frac is None:
            q.pop("sp2_fraction"), q.pop("msq_rule")
        return self.add(new, "accuracy", {
            "float": fkey, "qat": q, "method": r.method, "train": dataclasses.asdict(tcfg)},
            (model, r.width, r.data, qcfg, fcfg, tcfg), (fkey,))


def plan_sweep(spec: SweepSpec, functions: dict[str, StageFn] | None = None) -> Plan:
    """Every point's accelerator and tasks; raises :class:`ConfigError` when no point can
    be built (the spec is wrong rather than some of its points)."""
    planner = _Planner(spec, {**STAGE_FUNCTIONS, **(functions or {})})
    points = [planner.point(i, values) for i, values in enumerate(spec.points())]
    if all(p.reason for p in points):
        raise ConfigError(f"no point of sweep {spec.name} can be built; point 0: "
                          f"{points[0].reason}")
    return Plan(spec, points, planner.tasks)


# ---------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------

class Cache:
    """``out/cache/<stage>/<key>.json`` records and their payloads; a record is written
    after its payload, so a record on disk means a complete result."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def record_path(self, task: Task) -> Path:
        return self.root / task.stage / f"{task.key}.json"

    def payload_path(self, task: Task) -> Path:
        return self.root / task.stage / (f"{task.key}.pt" if task.stage == "float"
                                         else task.key)

    def load(self, task: Task) -> dict[str, Any] | None:
        p = self.record_path(task)
        if not p.is_file():
            return None
        rec = json.loads(p.read_text())
        if rec["status"] == "ok" and task.stage in PAYLOAD_STAGES \
                and not self.payload_path(task).exists():
            return None
        return rec

    def load_payload(self, task: Task) -> Any:
        p = self.payload_path(task)
        return p.read_bytes() if task.stage == "float" else load_artifact(p)

    def store(self, task: Task, rec: dict[str, Any]) -> None:
        if rec["status"] == "ok" and task.stage == "float":
            write_atomic(self.payload_path(task), rec["payload"])
        elif rec["status"] == "ok" and task.stage == "accuracy":
            save_artifact(rec["payload"], self.payload_path(task))
        body = {k: rec[k] for k in ("stage", "status", "reason", "result")}
        body.update(key=task.key, fpim=__version__, inputs=task.inputs,
                    seconds=round(rec["seconds"], 3))
        write_atomic(self.record_path(task), json.dumps(body, indent=1, sort_keys=True) + "\n")


def _prepare_out(out: Path, spec: SweepSpec, resume: bool) -> None:
    """Refuse an output directory that holds another sweep unless resuming."""
    marker = out / "spec.json"
    text = json.dumps(spec_dict(spec), indent=1, sort_keys=True) + "\n"
    if marker.is_file():
        if not resume and marker.read_text() != text:
            raise ConfigError(f"out {str(out)!r} holds a sweep of another spec; pass --resume "
                              f"to reuse its results (cached by content) or choose a new "
                              f"directory")
    elif resume:
        raise ConfigError(f"--resume needs a sweep in out {str(out)!r}, not none "
                          f"(no spec.json)")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"out must be a new or empty directory or a sweep's, not "
                          f"{str(out)!r} (it holds other files)")
    write_atomic(marker, text)


def spec_dict(spec: SweepSpec) -> dict[str, Any]:
    """Plain data of ``spec`` (``spec.json``: what a re-run compares)."""
    d = dataclasses.asdict(spec)
    d["root"] = str(spec.root)
    d["axes"] = {a.name: list(a.values) for a in spec.axes}
    return d


# ---------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------

OnResult = Callable[[Task, dict[str, Any]], None]


def _run_serial(todo: list[Task], fns: dict[str, StageFn], given: dict[str, dict],
                done: Callable[[Task, dict], None]) -> None:
    records = dict(given)
    for t in todo:
        rec = run_batch([(t.stage, fns[t.stage], t.args, [records[d] for d in t.deps])], 0)[0]
        records[t.key] = rec
        done(t, rec)


def _batches(client: Any, todo: list[Task], given: dict[str, dict]) -> list[list[Task]]:
    """The tasks of :data:`BATCHED` stages that wait for no other task and that no task
    waits for, in groups: at least four per worker, at most :data:`BATCH_MAX` tasks each."""
    needed = {d for t in todo for d in t.deps}
    loose = [t for t in todo if t.stage in BATCHED and t.key not in needed
             and all(d in given for d in t.deps)]
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(1, min(BATCH_MAX, math.ceil(len(loose) / (4 * workers))))
    return [loose[i:i + size] for i in range(0, len(loose), size)]


def _run_dask(client: Any, todo: list[Task], fns: dict[str, StageFn],
              given: dict[str, dict], done: Callable[[Task, dict], None]) -> None:
    from dask.distributed import as_completed

    futures: dict[str, Any] = {}  # of the tasks others depend on, by task key
    pending: dict[str, tuple[Any, list[Task]]] = {}  # Dask key → future, its tasks
    batches = _batches(client, todo, given)
    for chunk in batches:
        items = [(t.stage, fns[t.stage], t.args, [given[d] for d in t.deps]) for t in chunk]
        key = "batch-" + hashlib.sha256(" ".join(t.key for t in chunk).encode()).hexdigest()
        fut = client.submit(run_batch, items, RETRIES, key=key[:26])
        pending[fut.key] = (fut, chunk)
    batched = {t.key for chunk in batches for t in chunk}
    for t in todo:
        if t.key in batched:
            continue
        deps = [futures[d] if d in futures else given[d] for d in t.deps]
        fut = client.submit(run_task, t.stage, fns[t.stage], t.args, *deps,
                            key=t.key, retries=RETRIES)
        futures[t.key] = fut
        pending[fut.key] = (fut, [t])
    try:
        for fut in as_completed([f for f, _ in pending.values()]):
            _, chunk = pending.pop(fut.key)
            try:
                got = fut.result()
                recs = got if isinstance(got, list) else [got]
            except Exception as exc:  # still raising after the retries, or lost workers
                recs = [error_record(t.stage, exc) for t in chunk]
            # the client keeps no future once the records are stored; tasks still to run
            # keep their inputs on the cluster
            futures.pop(fut.key, None)
            fut.release()
            for t, rec in zip(chunk, recs, strict=True):
                done(t, rec)
    finally:
        if pending:  # interrupted: nothing more is wanted
            client.cancel([f for f, _ in pending.values()])


def _dashboard(client: Any) -> str:
    if importlib.util.find_spec("bokeh") is None:
        return "dask dashboard: unavailable (install bokeh to get one)"
    return f"dask dashboard: {client.dashboard_link}"


@contextlib.contextmanager
def dask_client(workers: int | None, scheduler: str | None,
                say: Callable[[str], None]) -> Iterator[tuple[Any, str]]:
    """A client of the scheduler at ``scheduler``, or of a new ``LocalCluster`` of
    ``workers`` single-threaded worker processes (default: one per core); and its name."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise ConfigError(f"scheduler must be a reachable Dask scheduler address, not "
                              f"{scheduler!r} ({type(exc).__name__})") from None
        with client:
            say(_dashboard(client))
            yield client, f"scheduler {scheduler}"
        return
    # a free port: 8787 may be taken by another cluster on this machine
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        n = len(cluster.workers)
        say(f"local Dask cluster: {n} worker process{'es' if n > 1 else ''}")
        say(_dashboard(client))
        yield client, f"LocalCluster of {n} worker{'s' if n > 1 else ''}"


def run_sweep(spec: SweepSpec, out: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, client: Any = None, resume: bool = False,
              progress: bool = False, say: Callable[[str], None] = lambda msg: None,
              functions: dict[str, StageFn] | None = None,
              on_result: OnResult | None = None) -> SweepRun:
    """Run ``spec`` into directory ``out``: every task missing from its cache, on ``client``
    (a ``dask.distributed.Client``), the scheduler at ``scheduler``, a new LocalCluster of
    ``workers`` processes (None: one per core), or in this process (``workers=0``).

    ``functions`` replaces stage functions (tests, benchmarks); ``on_result`` is called after
    each record is stored. Every check of the spec and every point is made before the first
    task starts.
    """
    t0 = time.perf_counter()
    if workers is not None and not (isinstance(workers, int) and workers >= 0):
        raise ConfigError(f"workers must be a non-negative integer, not {workers!r}")
    if scheduler is not None and workers is not None:
        raise ConfigError("workers must not be given with a scheduler (its workers run)")
    fns = {**STAGE_FUNCTIONS, **(functions or {})}
    plan = plan_sweep(spec, fns)
    out = Path(out)
    _prepare_out(out, spec, resume)
    cache = Cache(out / "cache")
    records: dict[str, dict] = {}
    for key, t in plan.tasks.items():
        rec = cache.load(t)
        if rec is not None:
            records[key] = rec
    todo = [t for k, t in plan.tasks.items() if k not in records]
    # the cached results the tasks to run depend on, with their payloads
    given = {d: {**records[d], "payload": cache.load_payload(plan.tasks[d])
                 if records[d]["status"] == "ok" else None}
             for t in todo for d in t.deps if d in records}
    failed = 0
    bar = _progress_bar(len(todo), progress)

    def done(t: Task, rec: dict) -> None:
        nonlocal failed
        if not rec.get("transient"):  # a deterministic outcome: keep it
            cache.store(t, rec)
        failed += rec["status"] != "ok"
        records[t.key] = {k: v for k, v in rec.items() if k != "payload"}
        bar.update(1)
        if on_result is not None:
            on_result(t, rec)

    say(f"sweep {spec.name}: {len(plan.points)} points, {len(plan.tasks)} tasks "
        f"({len(todo)} to run, {len(records)} cached)")
    try:
        if not todo:
            executor = "the cache (nothing to run)"
        elif client is not None:
            executor = "the given Dask client"
            _run_dask(client, todo, fns, given, done)
        elif workers == 0:
            executor = "serial (this process)"
            _run_serial(todo, fns, given, done)
        else:
            with dask_client(workers, scheduler, say) as (c, executor):
                _run_dask(c, todo, fns, given, done)
    finally:
        bar.close()
    rows = result_rows(spec, plan.points, records)
    objectives = pareto_objectives(spec)
    front = pareto_front(rows, objectives, tuple(n for n in spec.names if n in SOURCES))
    files = write_tables(out, spec, rows, front)
    plots = write_plots(out, spec, rows, front)
    status: dict[str, int] = {}
    for r in rows:
        status[r["status"]] = status.get(r["status"], 0) + 1
    return SweepRun(out, executor, len(plan.points), len(plan.tasks), len(todo),
                    len(plan.tasks) - len(todo), failed, status, rows, front, objectives,
                    time.perf_counter() - t0, files + plots, plots)


def _progress_bar(total: int, show: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="sweep", unit="task", disable=not show or not total,
                leave=False)
