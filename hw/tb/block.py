"""One encoder block of a ViT artifact on the RTL, op by op, errors propagating.

:func:`verify_block` runs the layers of block ``N`` (named ``blocks.N.*``, as the ViT export
of :mod:`quant.torch.vit_qat` names them) in graph order on one input image:

* every layer the GEMM engine runs (:data:`hw.ops.RTL_OPS` says ``Runs.ENGINE``: linear,
  token_linear, and matmul once the engine takes it) on the fast harness's GEMM top
  (:class:`hw.tb.fast.FastRun`, as :func:`hw.tb.network.verify_network` does);
* every vector op on its own Verilated component of :mod:`hw.vector` (:func:`hw.vector.unit.
  build_unit`, driven by the cocotb test :func:`hw.tb.vector_tb.run_ops`): ``layernorm``,
  ``gelu``, the ``softmax`` (it takes the QK^T matmul's accumulators and applies the matmul's
  requantizer itself, R11d/R14), and the ``requant`` op of a matmul whose requantizer the
  simulator places on the vector unit (its row ``<matmul>.requant`` in the per-layer table);
* everything else on the host as :mod:`quant.infer` computes it: residual adds, layout ops,
  and a matmul that ``RTL_OPS`` puts on the host (its accumulators; its requantized value
  too when no ``requant`` row follows it).

The softmax and the ``requant`` op read a matmul's accumulators: the GEMM top's (each head
one command through its bypass, :func:`hw.tb.network.matmul_on_rtl`, on the top built with
the matmul path) when ``RTL_OPS`` puts the matmul on the engine, else the host's from the
RTL's values of the matmul's operands.

The block's inputs are integer inference's values; every later op reads the RTL's own
outputs of the ops before it, so an error propagates to the end of the block. Every op's
value is compared bit for bit with integer inference, and every RTL op's cycles with the
simulator's per-layer table for the same accelerator: a GEMM's busy cycles (as
``--all-layers``), a vector op's cycles from its first input beat taken to its last output
beat given, with the input always valid and the output always ready (R12-R15). The softmax
of the attention pipeline (R16) is compared with its own cycles, the table's exposed cycles
plus its ``hidden_cycles`` (= :func:`sim.timing.vector_op_cycles`): the overlap with the
matmuls is a property of the schedule, not of one component.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.generate import check_gemm, top_name
from hw.ops import Runs, rtl_op
from hw.synth import emit_verilog
from hw.tb.engine import Outcome
from hw.tb.fast import FastRun
from hw.tb.network import gemm_on_rtl, matmul_on_rtl
from hw.tb.verilator import Build, build_verilog, run
from hw.vector.unit import build_unit, module_name
from quant.artifact import Artifact, Layer
from quant.errors import ConfigError, ShapeError, SimulationError
from quant.formats import ActFormat, Scheme
from quant.infer import quantize_input, run_artifact, run_layer
from quant.ops.matmul import matmul_acc
from quant.ref import requantize
from sim.arch import Accelerator
from sim.engine import simulate
from sim.ops import from_artifact
from sim.resources import BETA_BITS, GAMMA_BITS, VectorConfig, vector_config

BLOCK_NAME = re.compile(r"blocks\.(\d+)\.")


def block_count(art: Artifact) -> int:
    """Encoder blocks of ``art`` (layers named ``blocks.N.*``); 0 for a network without."""
    ids = {int(m.group(1)) for la in art.layers if (m := BLOCK_NAME.match(la.name))}
    return max(ids) + 1 if ids else 0


def block_layers(art: Artifact, index: int) -> list[Layer]:
    """The layers of block ``index`` in graph order; :class:`ConfigError` for an artifact
    without encoder blocks (not a ViT) or an index out of range."""
    n = block_count(art)
    if n == 0 or not any(la.op == "softmax" for la in art.layers):
        raise ConfigError("artifact must be a ViT (layers blocks.N.*) for --block, not one "
                          f"without encoder blocks (ops: {sorted({la.op for la in art.layers})})")
    if not 0 <= index < n:
        raise ConfigError(f"block must be 0..{n - 1} (the artifact's encoder blocks), not "
                          f"{index}")
    prefix = f"blocks.{index}."
    return [la for la in art.layers if la.name.startswith(prefix)]


def engine_layers(layers: list[Layer]) -> list[str]:
    """Names of the layers the GEMM engine runs (:data:`hw.ops.RTL_OPS`)."""
    return [la.name for la in layers if rtl_op(la.op) is Runs.ENGINE]


def check_block_gemms(layers: list[Layer]) -> None:
    """Raise :class:`ShapeError` (naming the layer) unless every weight GEMM of ``layers``
    the engine runs fits one command of the generated top (:func:`hw.generate.check_gemm`),
    before anything is built."""
    for la in layers:
        if rtl_op(la.op) is not Runs.ENGINE or la.op == "matmul":  # matmul_cases checks heads
            continue
        mf = int(np.sum(la.rows.scheme_ids == int(Scheme.FIXED)))
        n = math.prod(la.out.shape[1:])
        try:
            check_gemm(mf, la.rows.shape[0] - mf, n, la.rows.shape[1])
        except ShapeError as exc:
            raise ShapeError(f"layer {la.name!r}: {exc}") from None


@dataclass(frozen=True)
class OpRecord:
    """One op of the block: where it ran, its value equal to integer inference or not, and
    for an RTL op both cycle counts (``sim_what`` says which simulator number)."""

    name: str
    op: str
    runs_on: str  # "gemm top", "vector <unit>" or "host"
    equal: bool
    seconds: float
    cycles_rtl: int | None = None
    cycles_sim: int | None = None
    sim_what: str = ""
    gemm: Outcome | None = None
    first_mismatch: tuple | None = None  # (index, rtl, reference)

    @property
    def cycles_equal(self) -> bool | None:
        if self.cycles_rtl is None:
            return None
        return self.cycles_rtl == self.cycles_sim

    @property
    def passed(self) -> bool:
        gemm_ok = self.gemm is None or self.gemm.passed
        return self.equal and self.cycles_equal is not False and gemm_ok

    def failure(self) -> str | None:
        if self.gemm is not None and not self.gemm.passed:
            return self.gemm.failure()
        if not self.equal:
            at = ""
            if self.first_mismatch is not None:
                i, got, want = self.first_mismatch
                at = f": element {i} = {got}, reference {want}"
            return f"{self.name} ({self.runs_on}): value differs from quant.infer{at}"
        if self.cycles_equal is False:
            return (f"{self.name} ({self.runs_on}): RTL took {self.cycles_rtl} cycles, the "
                    f"simulator {self.cycles_sim} ({self.cycles_rtl - self.cycles_sim:+d})")
        return None

    def to_dict(self) -> dict:
        d = {"name": self.name, "op": self.op, "runs_on": self.runs_on, "equal": self.equal,
             "cycles_rtl": self.cycles_rtl, "cycles_sim": self.cycles_sim,
             "cycles_equal": self.cycles_equal, "sim_cycles_are": self.sim_what or None,
             "passed": self.passed, "seconds": round(self.seconds, 3),
             "first_mismatch": self.first_mismatch}
        if self.gemm is not None:
            d |= {"gemm": self.gemm.description.split(": ", 1)[1],
                  "dram_bytes_equal": self.gemm.dram_bytes_equal}
        return d


# ---- the vector unit's components on Verilator -----------------------------------------


def block_vector_config(accel: Accelerator, layers: list[Layer]) -> VectorConfig:
    """``accel``'s vector unit sized for the block: the longest softmax row and LayerNorm
    token of its layers (:func:`sim.resources.vector_config`)."""
    rows = [la.out.shape[-2] for la in layers if la.op == "softmax"] or [1]
    feats = [la.out.shape[-2] for la in layers if la.op == "layernorm"] or [1]
    return vector_config(accel, max(rows), max(feats))


class VectorUnits:
    """The block's vector-unit components, each built once with Verilator (cached per
    Verilog content under ``root``/``vector-<module>-<sha>``). ``verilog`` replaces a
    unit's generated text (mutation tests edit a copy of it); LayerNorm and GELU are built
    for the format their op reads (the preset's ``x_fmt`` is the engine's activation format,
    narrower than the residual stream and fc1's output an export gives them)."""

    def __init__(self, accel: Accelerator, cfg: VectorConfig, root: Path,
                 verilog: dict[str, str] | None = None) -> None:
        self.accel = accel
        self.cfg = cfg
        self.root = root
        self.verilog = verilog or {}
        self.builds: dict[tuple, tuple[Build, object]] = {}

    def get(self, unit: str, x_fmt: ActFormat | None = None) -> tuple[Build, object]:
        cfg = self.cfg if x_fmt is None else dataclasses.replace(self.cfg, x_fmt=x_fmt)
        key = (unit, cfg.x_fmt if unit in ("gelu", "layernorm") else None)
        if key not in self.builds:
            comp = build_unit(unit, cfg)
            top = module_name(top_name(self.accel), unit)
            text = emit_verilog(comp, top)  # elaborated even when replaced: its ports
            text = self.verilog.get(unit, text)
            digest = hashlib.sha256(text.encode()).hexdigest()[:10]
            b = build_verilog(text, top, self.root / f"vector-{top}-{digest}")
            self.builds[key] = (b, comp)
        return self.builds[key]


def _elem(comp, port: str) -> tuple[int, bool]:
    shape = comp.signature.members[port].signature.members["payload"].shape.elem_shape
    return shape.width, shape.signed


def _chunks(values, lanes: int) -> list[list[int]]:
    v = [int(x) for x in values]
    return [v[i:i + lanes] + [0] * (lanes - len(v[i:i + lanes])) for i in range(0, len(v),
                                                                                 lanes)]


def _pack(values, bits: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return word


def run_vector_op(b: Build, comp, command: dict, beats: list[list[int]], out_beats: int,
                  coefs: list[dict] | None = None, log: Path | None = None
                  ) -> tuple[list[int], int]:
    """One op on a Verilated vector component: its output words (beat by beat, every lane)
    and its cycles from the first input beat taken to the last output beat given."""
    lanes = comp.lanes
    in_bits, _ = _elem(comp, "inp")
    out_bits, out_signed = _elem(comp, "out")
    spec = {"settings": {"lanes": lanes, "in_bits": in_bits, "out_bits": out_bits,
                         "out_signed": out_signed, "coefs": coefs is not None},
            "ops": [{"command": command, "coefs": coefs or [], "beats": beats,
                     "out_beats": out_beats}]}
    with tempfile.TemporaryDirectory(prefix="fpim-vec-") as tmp:
        cases, results = Path(tmp, "ops.json"), Path(tmp, "results.json")
        cases.write_text(json.dumps(spec))
        try:
            run(b, "hw.tb.vector_tb", test_dir=tmp, log_file=log or Path(tmp, "sim.log"),
                env={"FPIM_TB_CASES": str(cases), "FPIM_TB_RESULTS": str(results)})
        except SimulationError:
            if not results.exists():
                raise
        if not results.exists():
            raise SimulationError(f"the cocotb run on {b.top} wrote no results")
        r = json.loads(results.read_text())[0]
    return [v for beat in r["out"] for v in beat], int(r["cycles"])


# ---- the block ---------------------------------------------------------------------------


def _first_mismatch(y: np.ndarray, want: np.ndarray) -> tuple | None:
    if y.shape != want.shape:
        return (None, str(y.shape), str(want.shape))
    bad = np.argwhere(y != want)
    if not len(bad):
        return None
    i = tuple(int(v) for v in bad[0])
    return (list(i), int(y[i]), int(want[i]))


def _softmax(units: VectorUnits, layer: Layer, scores: Layer, acc: np.ndarray, log
             ) -> tuple[np.ndarray, int, str]:
    b, comp = units.get("softmax")
    _, g, k, q = acc.shape  # (1, groups, keys, queries): a row is one query's keys
    lim = 1 << (comp.acc_bits - 1)
    if acc.min() < -lim or acc.max() >= lim:
        raise SimulationError(f"layer {scores.name!r}: accumulators exceed the softmax "
                              f"unit's {comp.acc_bits}-bit input (engine.acc_bits)")
    rows = [acc[0, gi, :, qi] for gi in range(g) for qi in range(q)]
    beats = [beat for row in rows for beat in _chunks(row, comp.lanes) * 2]
    per_row = -(-k // comp.lanes)
    a, fmt = scores.attrs, scores.out.fmt
    cmd = {"length": k, "mult": int(a["mult"]), "shift": int(a["shift"]),
           "x_bits": fmt.bits, "x_signed": int(fmt.signed),
           "x0": int(layer.attrs["x0"]) & 0xFFFFFFFF, "exp_n": int(layer.attrs["n"]),
           "out_bits": layer.out.fmt.bits}
    words, cycles = run_vector_op(b, comp, cmd, beats, len(rows) * per_row, log=log)
    y = np.asarray(words, np.int64).reshape(g, q, per_row * comp.lanes)[:, :, :k]
    return y.transpose(0, 2, 1)[None], cycles, b.top


def _layernorm(units: VectorUnits, layer: Layer, x: np.ndarray, fmt: ActFormat, log
               ) -> tuple[np.ndarray, int, str]:
    b, comp = units.get("layernorm", fmt)
    _, c, t = x.shape
    per = -(-c // comp.lanes)
    beats = [beat for ti in range(t) for beat in _chunks(x[0, :, ti], comp.lanes) * 3]
    coefs = [{"addr": i, "gamma": _pack(g, GAMMA_BITS), "beta": _pack(be, BETA_BITS)}
             for i, (g, be) in enumerate(zip(_chunks(layer.tensors["gamma"], comp.lanes),
                                             _chunks(layer.tensors["beta"], comp.lanes),
                                             strict=True))]
    cmd = {"length": c, "shift": int(layer.attrs["shift"]), "out_bits": layer.out.fmt.bits,
           "out_signed": int(layer.out.fmt.signed)}
    words, cycles = run_vector_op(b, comp, cmd, beats, t * per, coefs, log=log)
    y = np.asarray(words, np.int64).reshape(t, per * comp.lanes)[:, :c]
    return y.T[None], cycles, b.top


def _elementwise(units: VectorUnits, unit: str, x: np.ndarray, fmt: ActFormat | None,
                 cmd: dict, log) -> tuple[np.ndarray, int, str]:
    b, comp = units.get(unit, fmt)
    flat = x.reshape(-1)
    beats = _chunks(flat, comp.lanes)
    words, cycles = run_vector_op(b, comp, cmd, beats, len(beats), log=log)
    return np.asarray(words[:flat.size], np.int64).reshape(x.shape), cycles, b.top


def block_image(art: Artifact) -> tuple[np.ndarray, str]:
    """The block's input image: digits test image 0 for a digits artifact, else a seeded
    uniform image (seed 0) of the input's shape; and which one it is."""
    if art.meta.get("data") == "digits":
        from hw.tb.engine import digits_image

        return digits_image(art, 0), "digits test image 0"
    rng = np.random.default_rng(0)
    return rng.random(art.input.shape), "a uniform random image (seed 0)"


def verify_block(accel: Accelerator, art: Artifact, index: int, image: np.ndarray,
                 run_gemm: FastRun, units: VectorUnits, *,
                 on_op: Callable[[int, int, str], None] = lambda i, n, name: None,
                 log: Path | None = None) -> list[OpRecord]:
    """Block ``index`` of ``art`` on ``image``, op by op (module docstring); one record per
    op, a matmul's vector-unit requant as its own record ``<matmul>.requant``."""
    layers = block_layers(art, index)
    q = quantize_input(art, image[None])
    ref = run_artifact(art, q, return_values=True)
    table = {r.name: r for r in simulate(from_artifact(art, batch=1), accel).layers}
    vals: dict[str, np.ndarray] = {}
    accs: dict[str, np.ndarray] = {}
    fmts = {la.name: la.out.fmt for la in art.layers} | {"input": art.input.fmt}
    records: list[OpRecord] = []

    def value(name: str) -> np.ndarray:
        return vals[name] if name in vals else ref[name]

    def record(layer_name: str, op: str, where: str, y: np.ndarray, t0: float,
               cycles: int | None = None, sim: int | None = None, what: str = "",
               gemm: Outcome | None = None) -> None:
        want = ref[layer_name]
        fm = _first_mismatch(y, want)
        records.append(OpRecord(layer_name if not op == "requant" else f"{layer_name}.requant",
                                op, where, fm is None, time.perf_counter() - t0, cycles, sim,
                                what, gemm, fm))

    def vector_requant(layer) -> np.ndarray:
        """A matmul's requantizer (R15's ``requant``, the simulator's row
        ``<matmul>.requant``) on the vector unit's component, from the matmul's accumulators."""
        a, t0 = layer.attrs, time.perf_counter()
        cmd = {"mult": int(a["mult"]), "shift": int(a["shift"]),
               "out_bits": layer.out.fmt.bits, "out_signed": int(layer.out.fmt.signed)}
        y, cycles, _ = _elementwise(units, "requant", accs[layer.name], None, cmd, log)
        record(layer.name, "requant", "vector requant", y, t0, cycles,
               table[f"{layer.name}.requant"].cycles, "R15 table row")
        return y

    for i, layer in enumerate(layers):
        on_op(i, len(layers), layer.name)
        t0 = time.perf_counter()
        xs = [value(s) for s in layer.inputs]
        in_fmts = [fmts[s] for s in layer.inputs]
        runs = rtl_op(layer.op)
        row = table.get(layer.name)
        if layer.op == "matmul":  # the accumulators the softmax or the requant op reads
            a = layer.attrs
            accs[layer.name] = matmul_acc(xs[0], xs[1], in_fmts[0], in_fmts[1],
                                          bool(a["transpose_a"]), int(a["acc_bits"]))
        if runs is Runs.ENGINE and layer.op == "matmul":  # one command per head (R11)
            y, g = matmul_on_rtl(accel, layer, xs, in_fmts, run_gemm)
            accs[layer.name] = g.y[None]  # the RTL's accumulators, what the vector unit reads
            record(layer.name, layer.op, "gemm top", y, t0, g.cycles_rtl, g.cycles_sim,
                   "GEMM busy cycles of its heads (cycle mode)", g)
            if table.get(f"{layer.name}.requant") is not None:
                y = vector_requant(layer)
        elif runs is Runs.ENGINE:
            y, g = gemm_on_rtl(accel, layer, xs[0], ref[layer.name], run_gemm)
            record(layer.name, layer.op, "gemm top", y, t0, g.cycles_rtl, g.cycles_sim,
                   "GEMM busy cycles (cycle mode)", g)
        elif layer.op == "matmul":  # on the host: its accumulators, then its requantizer
            acc = accs[layer.name]
            host_y = requantize(acc, int(a["mult"]), int(a["shift"]), layer.out.fmt)
            record(layer.name, layer.op, "host", host_y, t0, None,
                   row.cycles if row else None, "host (not compared)")
            if table.get(f"{layer.name}.requant") is None:  # the softmax applies it itself
                vals[layer.name] = host_y
                continue
            y = vector_requant(layer)
        elif layer.op == "softmax":
            src = layer.inputs[0]
            if src not in accs:
                raise SimulationError(f"layer {layer.name!r}: the softmax unit takes the "
                                      f"accumulators of a matmul inside the block, not "
                                      f"{src!r}")
            scores = next(la for la in layers if la.name == src)
            y, cycles, _ = _softmax(units, layer, scores, accs[src], log)
            sim = None if row is None else row.cycles + row.hidden_cycles
            record(layer.name, layer.op, "vector softmax", y, t0, cycles, sim,
                   "R14 cycles of the op (table's exposed + hidden, R16)")
        elif layer.op == "layernorm":
            y, cycles, _ = _layernorm(units, layer, xs[0], in_fmts[0], log)
            record(layer.name, layer.op, "vector layernorm", y, t0, cycles,
                   row.cycles if row else None, "R14 table row")
        elif layer.op == "gelu":
            a = layer.attrs
            cmd = {"x0": int(a["x0"]) & 0xFFFFFFFF, "exp_n": int(a["n"]),
                   "sigmoid_bits": int(a["p"]), "mult": int(a["mult"]),
                   "shift": int(a["shift"]), "out_bits": layer.out.fmt.bits,
                   "out_signed": int(layer.out.fmt.signed)}
            y, cycles, _ = _elementwise(units, "gelu", xs[0], in_fmts[0], cmd, log)
            record(layer.name, layer.op, "vector gelu", y, t0, cycles,
                   row.cycles if row else None, "R15 table row")
        else:
            y = run_layer(layer, xs, in_fmts)
            record(layer.name, layer.op, "host", y, t0, None, row.cycles if row else None,
                   "host (not compared)")
        vals[layer.name] = y
    return records

