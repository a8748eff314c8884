"""The simulate workflow (``fpim simulate``): a workload (an artifact, a shipped topology, a
SCALE-Sim CSV or a torch model factory) on an accelerator, timed in one of the simulator's
modes and optionally computed bit-exactly in numba against :mod:`quant.ref`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fpim.flows.fit import check_fit
from fpim.progress import Progress, silent
from quant import ref
from quant.artifact import Artifact, load_artifact
from quant.errors import ConfigError, check_int_range
from quant.formats import Scheme
from quant.infer import MAX_IMAGES, run_artifact
from quant.modelspec import parse_model
from quant.ops.matmul import matmul_acc
from sim import functional as F
from sim.arch import Accelerator
from sim.engine import simulate as run_engine
from sim.onnx_workload import read_onnx
from sim.ops import from_artifact
from sim.results import RunResult
from sim.workload import (
    GemmOp,
    Workload,
    assign_fraction,
    batched,
    load_shipped,
    read_topology,
)


@dataclass(frozen=True)
class Simulation:
    """A simulated workload and, when asked for, the bit-exactness check of its GEMMs."""

    workload: Workload
    result: RunResult
    functional: dict | None = None
    config: dict | None = None

    @property
    def bit_exact(self) -> bool:
        """False only when the functional check ran and found a mismatch."""
        return self.functional is None or self.functional["bit_exact"]

    def to_dict(self) -> dict:
        data = self.result.to_dict()
        if self.functional is not None:
            data["functional"] = self.functional
        if self.config is not None:
            data["config"] = self.config
        return data


def load_workload(accel: Accelerator, *, artifact: str | None = None, model: str | None = None,
                  topology: str | None = None, gemm: bool | None = None,
                  input_shape: tuple[int, ...] | None = None, batch: int = 1,
                  sp2_fraction: float | None = None) -> tuple[Workload, Artifact | None]:
    """The workload of exactly one source for ``batch`` images, with ``sp2_fraction`` of
    each GEMM's rows on the LUT core (default: the engine's split); the artifact too when
    that is the source. A torch model's batch is ``input_shape``'s first size (``batch``
    must then be 1).

    ``model`` is a shipped workload name, a torch model factory (``PATH.py:FUNCTION`` or
    ``package.module:FUNCTION``, traced on ``input_shape``) or an ONNX file (its own input
    shape, or ``input_shape``); see :mod:`quant.modelspec`. ``gemm`` says whether
    ``topology`` is in SCALE-Sim's GEMM format (None: guess).
    """
    art = None
    if artifact:
        art = load_artifact(artifact)
        wl = from_artifact(art, batch=batch)
    elif topology:
        wl = batched(read_topology(topology, gemm=gemm), batch)
    elif model:
        spec = parse_model(model)
        if spec.is_factory or spec.kind == "onnx":
            if batch != 1:
                raise ConfigError(f"batch of a factory or ONNX model must be the first size of "
                                  f"its input shape, not {batch}")
        if spec.is_factory:
            # torch is imported only for a torch model (it costs seconds of start-up)
            from sim.torch_workload import from_factory

            wl = from_factory(spec, input_shape or ())
        elif spec.kind == "onnx":
            wl = read_onnx(spec.source, input_shape)
        else:
            wl = batched(load_shipped(model), batch)
    else:
        raise ConfigError("workload must be an artifact, a model or a topology, not missing")
    frac = effective_fraction(accel, sp2_fraction)
    source = {k: v for k, v in (("artifact", artifact), ("topology", topology),
                                ("model", model)) if v}
    if gemm is not None and topology:
        source["gemm"] = gemm
    if input_shape and model:
        source["input_shape"] = list(input_shape)
    origin = {"source": source, "sp2_fraction": None if art is not None else frac}
    return replace(assign_fraction(wl, frac), origin=origin), art


def effective_fraction(accel: Accelerator, sp2_fraction: float | None) -> float:
    """The fraction of rows a workload without schemes puts on the LUT core: ``sp2_fraction``,
    or the engine's split ``lut_rows / (dsp_rows + lut_rows)``."""
    e = accel.engine
    return sp2_fraction if sp2_fraction is not None else e.lut_rows / e.rows


def run_config(accel: Accelerator, wl: Workload, *, mode: str, max_cycles: int | None,
               functional: bool, seed: int, images: int = 1,
               artifact: Artifact | None = None) -> dict:
    """The full effective configuration of a simulation, so that it can be run again from
    its output alone: the accelerator as simulated (``accel``: the preset's data with every
    override applied, loadable with ``--accel`` once written as YAML; ``name`` is the
    preset's), the workload's source options and batch, and the derived values (the SP2
    fraction given to schemeless GEMMs: ``--sp2-fraction`` or the engine's split; None for
    an artifact, whose rows carry their schemes), the functional check's images and, for a
    whole network built from shapes (``artifact``), how it was built (its ``meta``)."""
    built = {"built_artifact": artifact.meta} if artifact is not None and functional else {}
    return {"accel": accel.to_dict(), "workload": wl.origin.get("source", {"name": wl.name}),
            "batch": wl.batch, "sp2_fraction": wl.origin.get("sp2_fraction"), "mode": mode,
            "max_cycles": max_cycles, "functional": functional, "seed": seed,
            **({"images": images} if functional else {}), **built}


#: Shipped workloads that ``--functional`` runs as whole networks (:func:`deit_artifact`).
DEIT_MODELS = ("deit_tiny", "deit_small", "deit_base")


def deit_artifact(accel: Accelerator, model: str, *, checkpoint: str | None = None,
                  seed: int = 0, images: int = 1, sp2_fraction: float | None = None,
                  progress: Progress = silent, **model_kwargs: object) -> Artifact:
    """The integer artifact of DeiT ``model`` (one of :data:`DEIT_MODELS`) that runs on
    ``accel``'s engine: :func:`quant.torch.vit_artifact.ptq_vit_artifact` with random
    weights seeded by ``seed`` or the float weights of ``checkpoint`` (timm layout),
    calibrated on ``images`` random images seeded by ``seed``, at the engine's weight and
    activation bits with the workload's fraction of every head's rows on the engine's LUT
    scheme (``sp2_fraction``, or the engine's split). The engine is checked (signed
    activations, a DSP core for the attention matmuls, bits a ViT takes) and the checkpoint
    read before the long part (the weight rows' quantization and the calibration) starts;
    ``progress`` reports that step. ``model_kwargs`` change the model's shape (tests)."""
    if model not in DEIT_MODELS:
        raise ConfigError(f"model must be one of {', '.join(DEIT_MODELS)} to run the whole "
                          f"network, not {model!r}")
    e = accel.engine
    if not e.act_signed:
        raise ConfigError(f"engine.act_signed must be true to run {model} (a transformer's "
                          "values are signed), not false")
    if e.dsp_rows < 1:
        raise ConfigError(f"engine.dsp_rows must be at least 1 to run {model} (the attention "
                          "matmuls run on the DSP core, R11a), not 0")
    # torch is imported only here (seconds of start-up)
    from quant.torch.vit_artifact import ptq_vit_artifact, vit_ptq_config
    from quant.torch.vit_qat import check_vit_config

    cfg = vit_ptq_config(e.weight_bits, e.act_bits, effective_fraction(accel, sp2_fraction),
                         e.lut_scheme)
    check_vit_config(cfg)
    with progress(f"quantize {model} (PTQ on {images} image{'s' * (images != 1)})"):
        return ptq_vit_artifact(model, weights=checkpoint, seed=seed, images=images,
                                config=cfg, **model_kwargs)


#: Most memory the functional check of a topology may allocate for one GEMM, bytes.
FUNCTIONAL_MEMORY_LIMIT = 2 << 30


def functional_bytes(o: GemmOp) -> int:
    """Peak bytes the functional check of ``o`` allocates (an upper estimate): int64 code
    words, levels and their int32 copy (M x K); int64 activations, their int32 and float
    copies (K x N); outputs of the numba kernel and of the reference, each also converted
    to int64 (M x N)."""
    return 8 * (3 * o.m * o.k + 2 * o.k * o.n + 4 * o.m * o.n)


def check_functional_size(wl: Workload) -> None:
    """Refuse, before any work, a workload whose functional check would allocate more than
    :data:`FUNCTIONAL_MEMORY_LIMIT` for one GEMM."""
    for o in wl.gemms:
        need = functional_bytes(o)
        if need > FUNCTIONAL_MEMORY_LIMIT:
            raise ConfigError(f"layer {o.name!r}: the functional check of a {o.m}x{o.k} by "
                              f"{o.k}x{o.n} GEMM must need at most {FUNCTIONAL_MEMORY_LIMIT} "
                              f"bytes, not about {need}")


def check_functional(wl: Workload, art: Artifact | None, accel: Accelerator,
                     seed: int = 0, images: int = 1) -> dict:
    """Compute the workload's GEMMs with the numba functional model and compare them with
    :mod:`quant.ref`: every layer of the artifact (the whole network, each value against
    :func:`quant.infer.run_artifact`) on ``images`` seeded random input images, or one seeded
    random GEMM per row split of every GEMM op (identical groups add nothing; a matmul's
    two streamed operands against :func:`quant.ops.matmul.matmul_acc`). A shape workload's
    vector ops are not computed: the unit's functions are the reference's (sim.ops)."""
    e = accel.engine
    rng = np.random.default_rng(seed)
    if art is not None:
        codes = rng.integers(art.input.fmt.qmin, art.input.fmt.qmax + 1,
                             (images, *art.input.shape))
        t = time.perf_counter()
        got = F.run_artifact(art, codes, accel)
        dt = time.perf_counter() - t
        want = run_artifact(art, codes, return_values=True)
        bad = [n for n in want if n not in got or not np.array_equal(got[n], want[n])]
        return {"bit_exact": not bad, "mismatched": bad, "layers_checked": len(want),
                "images": images, "logits_bit_exact": art.output not in bad,
                "seconds": dt}
    fmt = e.act_format
    macs = 0
    sim_s = 0.0
    bad = []
    for o in wl.ops:
        if not isinstance(o, GemmOp):
            continue
        if o.kind == "matmul":  # both operands streamed (R11), one group stands for all
            a = rng.integers(fmt.qmin, fmt.qmax + 1, (1, o.m, o.k))
            x = rng.integers(fmt.qmin, fmt.qmax + 1, (1, o.k, o.n))
            t = time.perf_counter()
            y = F.matmul(a, x, fmt, fmt, False, e.acc_bits)
            sim_s += time.perf_counter() - t
            macs += o.m * o.n * o.k
            if not np.array_equal(y, matmul_acc(a, x, fmt, fmt, False, e.acc_bits)):
                bad.append(o.name)
            continue
        for _, b, _ in o.splits:
            rows = F.random_rows(rng, o.m, o.k, e.weight_bits, b, e.lut_core_scheme
                                 if b else Scheme.SP2)
            x = rng.integers(fmt.qmin, fmt.qmax + 1, (o.k, o.n))
            w_int = F.int_weights(rows)
            t = time.perf_counter()
            y = F.gemm(rows, x, fmt, e.acc_bits, w_int=w_int)
            sim_s += time.perf_counter() - t
            macs += o.m * o.n * o.k
            if not np.array_equal(y, ref.gemm(rows, x, fmt, e.acc_bits)):
                bad.append(o.name)
    return {"bit_exact": not bad, "mismatched": bad, "macs_computed": macs,
            "seconds": sim_s, "gmacs_per_s": macs / sim_s / 1e9 if sim_s else 0.0}


def simulate(accel: Accelerator, wl: Workload, art: Artifact | None = None, *,
             mode: str = "cycle", max_cycles: int | None = None, functional: bool = False,
             seed: int = 0, images: int = 1,
             build: Callable[[], Artifact] | None = None) -> Simulation:
    """Time ``wl`` on ``accel`` in ``mode`` (an artifact is first checked to fit the engine);
    with ``functional``, also :func:`check_functional` with ``seed`` and ``images``. With
    ``functional`` and ``build`` (a shape workload's whole network, e.g. a
    :func:`deit_artifact`), ``build()`` makes the artifact to compute once ``wl`` is timed
    (the timing validates the workload and engine before the long build), and that
    artifact is checked to fit and computed."""
    check_int_range("images", images, 1, MAX_IMAGES)
    if art is not None:
        check_fit(art, accel)
    elif functional and build is None:
        check_functional_size(wl)
    result = run_engine(wl, accel, mode, max_cycles=max_cycles)
    if functional and build is not None:
        art = build()
        check_fit(art, accel)
    check = check_functional(wl, art, accel, seed, images) if functional else None
    built = art if art is not None and "artifact" not in wl.origin.get("source", {}) else None
    return Simulation(wl, result, check, run_config(accel, wl, mode=mode, max_cycles=max_cycles,
                                                    functional=functional, seed=seed,
                                                    images=images, artifact=built))
