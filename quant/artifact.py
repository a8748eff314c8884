"""The quantized-model artifact: integer weights and a layer graph, saved to and loaded from disk.

An artifact is what ``fpim quantize`` writes and what the simulator, the RTL tests and integer
inference (:mod:`quant.infer`) read. It holds only integers and the real-valued scales needed
to interpret them; BN is already folded. This module needs numpy and safetensors, not torch.

On disk it is a directory with two files::

    DIR/manifest.json          layer graph, shapes, formats, op parameters, content hash
    DIR/tensors.safetensors    integer codes, scheme ids, scales, requantizers, biases

**Values.** Every tensor flowing between layers is an integer tensor ``q`` whose real value is
``q * scale``; its :class:`Value` gives the :class:`~quant.formats.ActFormat` that bounds ``q``
(``None`` for the unclamped int64 logits of the last layer), the scale and the per-sample
shape (``(C, H, W)`` or ``(F,)``). The graph input is the value named ``"input"``: float
images ``x`` become ``q = clamp(round_half_even(x / scale))`` (:func:`quant.infer.quantize_input`).

**Layers** (``Artifact.layers``, in execution order; each produces the value of its name) have
an op, registered in :mod:`quant.ops`, whose module documents its arithmetic, attributes and
tensors (named ``<layer>.<field>``):

* ``conv``, ``linear``: mixed-scheme GEMM, then per-row requantization (:mod:`quant.ops.gemm`).
* ``add``: residual sum of two values at a common scale (:mod:`quant.ops.add`).
* ``avgpool``, ``maxpool``: window sums (requantized) / maxima (:mod:`quant.ops.pool`).
* ``flatten``: each sample reshaped to one dimension (:mod:`quant.ops.flatten`).
* the transformer ops ``token_linear``, ``matmul``, ``softmax``, ``layernorm``, ``gelu``,
  ``pos_embed``, ``reshape``, ``slice`` on channel-first tokens (docs/vit.md).

``Artifact.output`` names the value holding the logits.

**Manifest** keys: ``format`` ("fpim-artifact"), ``format_version``, ``fpim_version``,
``meta`` (free-form, e.g. model, scheme, bits, accuracies, seed), ``input`` and per-layer
``out`` (``{"format": {"bits", "signed"} | null, "scale", "shape"}``), ``layers`` (name, op,
inputs, out, attrs, tensor shapes), ``output``, ``tensors_file`` and ``content_hash``:
``sha256`` of the canonical manifest JSON without ``content_hash`` (sorted keys, compact),
a NUL byte and the tensor file's bytes. :func:`load_artifact` refuses, with
:class:`~quant.errors.ArtifactError`, a missing file, a missing or extra tensor, a tensor of
the wrong shape or dtype, an invalid code word and a hash mismatch (an edited artifact).
:func:`save_artifact` writes a temporary directory next to the target and renames it into
place, so readers never see a half-written artifact.

Stable API (used by ``sim``): :class:`Artifact`, :class:`Layer`, :class:`Value`,
:func:`save_artifact`, :func:`load_artifact`; ``Layer.rows`` (a
:class:`~quant.rows.QuantizedRows`), ``Layer.gemm_dims``, ``Artifact.gemm_layers()``,
``Artifact.value(name)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from quant.errors import ArtifactError, ConfigError
from quant.fileio import replace_dir_atomic
from quant.formats import ActFormat
from quant.ops import OPS, op_of
from quant.rows import QuantizedRows

ARTIFACT_FORMAT = "fpim-artifact"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TENSORS_NAME = "tensors.safetensors"


def _fpim_version() -> str:
    try:
        return version("fpim")
    except PackageNotFoundError:  # pragma: no cover - source tree not installed
        return "0.0.0+unknown"


@dataclass(frozen=True)
class Value:
    """An integer tensor between layers: codes ``q`` bounded by ``fmt``, real value ``q*scale``.

    Members:
        fmt: activation format of the codes; None for unclamped int64 (logits).
        scale: real value of one code step (positive).
        shape: per-sample shape, ``(C, H, W)`` or ``(F,)``.
    """

    fmt: ActFormat | None
    scale: float
    shape: tuple[int, ...]

    def to_json(self) -> dict:
        f = None if self.fmt is None else {"bits": self.fmt.bits, "signed": self.fmt.signed}
        return {"format": f, "scale": float(self.scale), "shape": list(self.shape)}

    @staticmethod
    def from_json(d: object, where: str) -> Value:
        try:
            f = d["format"]  # type: ignore[index]
            fmt = None if f is None else ActFormat(bits=int(f["bits"]), signed=bool(f["signed"]))
            scale = float(d["scale"])  # type: ignore[index]
            shape = tuple(int(s) for s in d["shape"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise ArtifactError(f"{where} must be a value description "
                                f"{{format, scale, shape}}, not {d!r} ({exc})") from None
        if not scale > 0 or not all(s > 0 for s in shape):
            raise ArtifactError(f"{where} must have a positive scale and shape, not {d!r}")
        return Value(fmt=fmt, scale=scale, shape=shape)


@dataclass(frozen=True, eq=False)
class Layer:
    """One integer layer; see the module docstring for each op's arithmetic.

    Members:
        name: unique name; also the name of the value it produces.
        op: a key of :data:`quant.ops.OPS`.
        inputs: names of the values it reads (``"input"`` or earlier layers).
        out: the value it produces.
        attrs: JSON-able op parameters (kernel, stride, padding, relu, ...).
        tensors: arrays by field name (``words``, ``scheme_ids``, ...).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    out: Value
    attrs: dict = field(default_factory=dict)
    tensors: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def relu(self) -> bool:
        return bool(self.attrs.get("relu", False))

    @property
    def is_gemm(self) -> bool:
        """Whether the op is a GEMM with weights (conv, linear)."""
        return self.op in OPS and OPS[self.op].gemm

    @property
    def rows(self) -> QuantizedRows:
        """The weights as :class:`~quant.rows.QuantizedRows` (GEMM ops only)."""
        if not self.is_gemm:
            raise ConfigError(f"layer {self.name!r} has no weights: op {self.op!r}")
        t = self.tensors
        return QuantizedRows(words=t["words"].astype(np.int64), scheme_ids=t["scheme_ids"],
                             alphas=t["alphas"], bits=int(self.attrs["weight_bits"]))

    @property
    def gemm_dims(self) -> tuple[int, int, int]:
        """``(M, K, N)`` of the layer's GEMM per sample (N = output pixels; 1 for linear)."""
        if not self.is_gemm:
            raise ConfigError(f"layer {self.name!r} is not a GEMM: op {self.op!r}")
        g = self.attrs["gemm"]
        return int(g["M"]), int(g["K"]), int(g["N"])


@dataclass(frozen=True, eq=False)
class Artifact:
    """A quantized model: its input value, layers in execution order and output name."""

    input: Value
    layers: tuple[Layer, ...]
    output: str
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_graph(self)

    def value(self, name: str) -> Value:
        """The value called ``name`` (``"input"`` or a layer's name)."""
        if name == "input":
            return self.input
        for layer in self.layers:
            if layer.name == name:
                return layer.out
        raise ConfigError(f"value must be input or a layer name, not {name!r}")

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"layer must be one of {', '.join(x.name for x in self.layers)}, "
                          f"not {name!r}")

    def gemm_layers(self) -> list[Layer]:
        """The GEMM (conv and linear) layers, in execution order."""
        return [layer for layer in self.layers if layer.is_gemm]


def _expected_shape(kind: str, layer: Layer) -> tuple[int, ...]:
    if kind == "2":
        return (2,)
    if kind == "out":
        return layer.out.shape
    if kind == "C":
        return layer.out.shape[:1]
    m, k, _ = layer.gemm_dims
    return (m, k) if kind == "MK" else (m,)


def _check_graph(art: Artifact) -> None:
    """Structural checks: names, ops, inputs defined before use, tensors present with shapes;
    each op checks its own attributes and tensor contents."""
    known = {"input": art.input}
    for layer in art.layers:
        where = f"layer {layer.name!r}"
        op = op_of(layer)
        if layer.name in known:
            raise ArtifactError(f"{where}: name is used twice")
        if len(layer.inputs) != op.arity:
            raise ArtifactError(f"{where}: {layer.op} takes {op.arity} input(s), "
                                f"not {len(layer.inputs)}")
        for src in layer.inputs:
            if src not in known:
                raise ArtifactError(f"{where}: input {src!r} is not defined before it")
        op.check_attrs(layer, [known[src] for src in layer.inputs])
        for fname, (dtype, kind) in op.tensors.items():
            key = f"{layer.name}.{fname}"
            if fname not in layer.tensors:
                raise ArtifactError(f"tensor {key!r} is missing")
            arr = layer.tensors[fname]
            want = _expected_shape(kind, layer)
            if arr.shape != want:
                raise ArtifactError(f"tensor {key!r} must have shape {want}, not {arr.shape}")
            if arr.dtype != np.dtype(dtype):
                raise ArtifactError(f"tensor {key!r} must have dtype {dtype}, not {arr.dtype}")
        extra = sorted(set(layer.tensors) - set(op.tensors))
        if extra:
            raise ArtifactError(f"{where}: unexpected tensor(s) {', '.join(extra)}")
        op.check_tensors(layer)
        known[layer.name] = layer.out
    if art.output not in known:
        raise ArtifactError(f"output must name a layer, not {art.output!r}")


def _manifest_body(art: Artifact) -> dict:
    layers = []
    for layer in art.layers:
        layers.append({
            "name": layer.name, "op": layer.op, "inputs": list(layer.inputs),
            "out": layer.out.to_json(), "attrs": layer.attrs,
            "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape)}
                        for k, v in sorted(layer.tensors.items())},
        })
    return {
        "format": ARTIFACT_FORMAT, "format_version": FORMAT_VERSION,
        "fpim_version": _fpim_version(), "meta": art.meta, "input": art.input.to_json(),
        "layers": layers, "output": art.output, "tensors_file": TENSORS_NAME,
    }


def _hash(body: dict, tensor_bytes: bytes) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canon + b"\0" + tensor_bytes).hexdigest()


def save_artifact(art: Artifact, path: str | os.PathLike) -> str:
    """Write ``art`` to directory ``path`` atomically; returns the content hash.

    An existing artifact at ``path`` is replaced; any other existing non-empty directory or
    file is refused.
    """
    from safetensors.numpy import save as st_save

    dest = Path(path)
    if dest.exists() and not (dest.is_dir() and ((dest / MANIFEST_NAME).exists()
                                                 or not any(dest.iterdir()))):
        raise ArtifactError(f"out must be a new directory or an existing artifact, "
                            f"not {str(dest)!r} (it holds other files)")
    tensors = {f"{layer.name}.{k}": np.ascontiguousarray(v)
               for layer in art.layers for k, v in layer.tensors.items()}
    blob = st_save(tensors) if tensors else st_save({"_empty": np.zeros(0, np.int8)})
    body = _manifest_body(art)
    digest = _hash(body, blob)
    manifest = json.dumps({**body, "content_hash": digest}, indent=1, sort_keys=True) + "\n"


    def fill(tmp: Path) -> None:
        (tmp / TENSORS_NAME).write_bytes(blob)
        (tmp / MANIFEST_NAME).write_text(manifest)

    replace_dir_atomic(dest, fill)
    return digest


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Read and verify an artifact directory; raises :class:`ArtifactError` if it is not one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    src = Path(path)
    mpath = src / MANIFEST_NAME
    if not mpath.is_file():
        raise ArtifactError(f"artifact must be a directory with {MANIFEST_NAME}, "
                            f"not {str(src)!r}")
    try:
        doc = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{MANIFEST_NAME} must be valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{MANIFEST_NAME} format must be {ARTIFACT_FORMAT!r}, "
                            f"not {doc.get('format') if isinstance(doc, dict) else doc!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"format_version must be {FORMAT_VERSION}, "
                            f"not {doc.get('format_version')!r}")
    tpath = src / str(doc.get("tensors_file", TENSORS_NAME))
    if not tpath.is_file():
        raise ArtifactError(f"tensor file {tpath.name!r} is missing from {str(src)!r}")
    blob = tpath.read_bytes()
    try:
        flat = st_load(blob)
    except (SafetensorError, ValueError, OSError) as exc:
        raise ArtifactError(f"{tpath.name} is not a readable safetensors file ({exc})") from None

    try:
        inp = Value.from_json(doc["input"], "input")
        layers = []
        used: set[str] = set()
        for i, d in enumerate(doc["layers"]):
            name = str(d["name"])
            tensors = {}
            for fname in d.get("tensors", {}):
                key = f"{name}.{fname}"
                if key not in flat:
                    raise ArtifactError(f"tensor {key!r} is missing from {tpath.name}")
                tensors[fname] = flat[key]
                used.add(key)
            op = OPS.get(str(d["op"]))
            for fname in op.tensors if op else ():
                key = f"{name}.{fname}"
                if fname not in tensors and key in flat:
                    tensors[fname] = flat[key]
                    used.add(key)
            layers.append(Layer(name=name, op=str(d["op"]), inputs=tuple(d["inputs"]),
                                out=Value.from_json(d["out"], f"layers[{i}].out"),
                                attrs=dict(d.get("attrs", {})), tensors=tensors))
        art = Artifact(input=inp, layers=tuple(layers), output=str(doc["output"]),
                       meta=dict(doc.get("meta", {})))
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"{MANIFEST_NAME} is missing field {exc}") from None
    extra = sorted(set(flat) - used - {"_empty"})
    if extra:
        raise ArtifactError(f"unexpected tensor(s) in {tpath.name}: {', '.join(extra)}")

    claimed = doc.get("content_hash")
    body = {k: v for k, v in doc.items() if k != "content_hash"}
    actual = _hash(body, blob)
    if claimed != actual:
        raise ArtifactError(f"content_hash mismatch: manifest says {claimed!r}, files hash to "
                            f"{actual!r} (the artifact was edited or corrupted)")
    return art
