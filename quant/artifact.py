"""The quantized-model artifact: integer weights and a layer graph, saved to and loaded from disk.

An artifact is what ``fpim quantize`` writes and what the simulator, the RTL tests and integer
inference (:mod:`quant.infer`) read. It holds only integers and the real-valued scales needed
to interpret them; BN is already folded. This module needs numpy and safetensors, not torch.

On disk it is a directory with two files::

    DIR/manifest.json          layer graph, shapes, formats, op parameters, content hash
    DIR/tensors.safetensors    integer codes, scheme ids, scales, requantizers, biases

**Values.** Every tensor flowing between layers is an integer tensor ``q`` whose real value is
``q * scale``; its :class:`Value` gives the :class:`~quant.formats.ActFormat` that bounds ``q``
(``None`` for the logits of the last layer, which saturate at the GEMM engine's output
lane: :func:`quant.ops.gemm.gemm_requant`), the scale and the per-sample
shape (``(C, H, W)``, ``(F,)``, or a transformer's ``(C, T)`` and ``(heads, d, T)``). The
graph input is the value named ``"input"``: float images ``x`` become
``q = clamp(round_half_even(x / scale))`` (:func:`quant.infer.quantize_input`).

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
:class:`~quant.errors.ArtifactError` naming the field, a missing file, a manifest with keys
missing, extra or of the wrong JSON type, an invalid value (scale, shape, format), an op's
attributes or output shape against its rule (each op checks its own), a missing or extra
tensor, a tensor of the wrong shape or dtype, an invalid code word or alpha and a hash
mismatch (an edited artifact); docs/artifact.md lists every check.
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
import math
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from quant.errors import ArtifactError, ConfigError, check_real
from quant.fileio import check_output, read_text, replace_dir_atomic
from quant.formats import ActFormat
from quant.ops import OPS, OpDef, op_of
from quant.rows import QuantizedRows

ARTIFACT_FORMAT = "fpim-artifact"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
TENSORS_NAME = "tensors.safetensors"


#: Most elements one sample of a value may have (a sanity bound far above real models).
MAX_ELEMENTS = 1 << 28


def _brief(x: object) -> str:
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _same_json(a: object, b: object) -> bool:
    """Equal as JSON: 1, 1.0 and true differ (Python's == says they are equal)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _entry(d: object, keys: tuple[str, ...], where: str) -> dict:
    """``d`` if it is a mapping with exactly ``keys``; :class:`ArtifactError` otherwise."""
    if not isinstance(d, dict):
        raise ArtifactError(f"{where} must be a mapping with {', '.join(keys)}, not {_brief(d)}")
    for k in keys:
        if k not in d:
            raise ArtifactError(f"{where}.{k} is required ({where} has {', '.join(keys)})")
    extra = sorted(set(d) - set(keys), key=str)
    if extra:
        raise ArtifactError(f"{where} must have only {', '.join(keys)}, not {extra[0]!r}")
    return d


def _fpim_version() -> str:
    try:
        return version("fpim")
    except PackageNotFoundError:  # pragma: no cover - source tree not installed
        return "0.0.0+unknown"


@dataclass(frozen=True)
class Value:
    """An integer tensor between layers: codes ``q`` bounded by ``fmt``, real value ``q*scale``.

    Members:
        fmt: activation format of the codes; None for the logits (saturating at the
            engine's output lane, ±32,767).
        scale: real value of one code step (positive).
        shape: per-sample shape: ``(C, H, W)`` feature maps, ``(F,)`` vectors, or a
            transformer's ``(C, T)`` tokens and ``(heads, d, T)`` per-head values.
    """

    fmt: ActFormat | None
    scale: float
    shape: tuple[int, ...]

    def to_json(self) -> dict:
        f = None if self.fmt is None else {"bits": self.fmt.bits, "signed": self.fmt.signed}
        return {"format": f, "scale": float(self.scale), "shape": list(self.shape)}

    @staticmethod
    def from_json(d: object, where: str) -> Value:
        """The value of manifest entry ``d`` (checked by :meth:`check` with the graph)."""
        d = _entry(d, ("format", "scale", "shape"), where)
        f = d["format"]
        if f is not None:
            f = _entry(f, ("bits", "signed"), f"{where}.format")
            try:
                f = ActFormat(bits=f["bits"], signed=f["signed"])
            except ConfigError as exc:
                raise ArtifactError(f"{where}.format: {exc}") from None
        shape = d["shape"]
        return Value(fmt=f, scale=d["scale"], shape=tuple(shape) if isinstance(shape, list)
                     else shape)

    def check(self, where: str) -> None:
        """Raise :class:`ArtifactError` naming ``where`` unless the format, scale and shape
        are valid: a finite scale > 0, a shape of 1 to 3 sizes (each op checks the rank
        it needs) of at most :data:`MAX_ELEMENTS` elements."""
        if self.fmt is not None and not isinstance(self.fmt, ActFormat):
            raise ArtifactError(f"{where}.format must be an activation format or null, "
                                f"not {self.fmt!r}")
        try:
            check_real(f"{where}.scale", self.scale, 0, lo_open=True)
        except ConfigError as exc:
            raise ArtifactError(str(exc)) from None
        s = self.shape
        if not (isinstance(s, tuple) and 1 <= len(s) <= 3 and all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in s)
                and math.prod(s) <= MAX_ELEMENTS):
            raise ArtifactError(f"{where}.shape must be 1 to 3 integers >= 1, "
                                f"at most {MAX_ELEMENTS} elements, not {_brief(s)}")


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
    """Structural checks: names, ops, inputs defined before use, values valid, formats,
    tensors present with shapes; each op checks its own attributes, output shape and tensor
    contents."""
    art.input.check("input")
    if art.input.fmt is None:
        raise ArtifactError("input.format must be an activation format, not null")
    known = {"input": art.input}
    for layer in art.layers:
        if not isinstance(layer.name, str) or not layer.name:
            raise ArtifactError(f"layer name must be a non-empty string, not {_brief(layer.name)}")
        where = f"layer {layer.name!r}"
        op = op_of(layer)
        if layer.name in known:
            raise ArtifactError(f"{where}: name is used twice")
        if not isinstance(layer.inputs, tuple) or len(layer.inputs) != op.arity:
            raise ArtifactError(f"{where}: {layer.op} takes {op.arity} input(s), "
                                f"not {_brief(layer.inputs)}")
        for src in layer.inputs:
            if not isinstance(src, str) or src not in known:
                raise ArtifactError(f"{where}: input {src!r} is not defined before it")
        ins = [known[src] for src in layer.inputs]
        _check_formats(layer, op, ins)
        op.check_schema(layer)
        op.check_attrs(layer, ins)
        want = op.output_shape(layer, ins)
        if layer.out.shape != want:
            raise ArtifactError(f"{where}: out.shape must be {want} for {layer.op} of input "
                                f"shape {ins[0].shape}, not {layer.out.shape}")
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


def _check_formats(layer: Layer, op: OpDef, ins: list[Value]) -> None:
    """The output value is valid; inputs are clamped codes (an unclamped value can only be
    the graph's output); only a GEMM produces unclamped codes; an op that passes codes
    through keeps its input's format and scale."""
    where = f"layer {layer.name!r}"
    layer.out.check(f"{where} out")
    for src, v in zip(layer.inputs, ins, strict=True):
        if v.fmt is None:
            raise ArtifactError(f"{where}: input {src!r} must have an activation format, "
                                f"not null (unclamped values can only be the output)")
    if layer.out.fmt is None and not op.gemm:
        raise ArtifactError(f"{where}: out.format must be an activation format for "
                            f"{layer.op}, not null (only conv and linear produce unclamped "
                            f"values)")
    if op.keeps_codes and (layer.out.fmt, layer.out.scale) != (ins[0].fmt, ins[0].scale):
        raise ArtifactError(f"{where}: out format and scale must be the input's "
                            f"({ins[0].fmt}, {ins[0].scale!r}) for {layer.op}, not "
                            f"({layer.out.fmt}, {layer.out.scale!r})")


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


def check_artifact_out(path: str | os.PathLike) -> Path:
    """Raise unless ``path`` can receive an artifact: a new directory (its parent writable),
    an empty one or an existing artifact (which is replaced)."""
    dest = check_output(path, "out", directory=True)
    if dest.is_dir() and not (dest / MANIFEST_NAME).exists() and any(dest.iterdir()):
        raise ArtifactError(f"out must be a new directory or an existing artifact, "
                            f"not {str(dest)!r} (it holds other files)")
    return dest


def save_artifact(art: Artifact, path: str | os.PathLike) -> str:
    """Write ``art`` to directory ``path`` atomically; returns the content hash.

    An existing artifact at ``path`` is replaced; any other existing non-empty directory or
    file is refused.
    """
    from safetensors.numpy import save as st_save

    dest = check_artifact_out(path)
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


#: The keys of manifest.json.
MANIFEST_KEYS = ("format", "format_version", "fpim_version", "meta", "input", "layers", "output",
                 "tensors_file", "content_hash")


def _layer_from_json(d: object, where: str, flat: dict[str, np.ndarray]) -> Layer:
    """A layer from its manifest entry and the tensors file's arrays; its checks are the
    graph's (:func:`_check_graph`) but for the manifest's own structure."""
    d = _entry(d, ("name", "op", "inputs", "out", "attrs", "tensors"), where)
    for key, kind in (("name", str), ("op", str), ("inputs", list), ("attrs", dict),
                      ("tensors", dict)):
        if not isinstance(d[key], kind) or (kind is str and not d[key]):
            raise ArtifactError(f"{where}.{key} must be a {'non-empty ' * (kind is str)}"
                                f"{kind.__name__}, not {_brief(d[key])}")
    tensors = {}
    for fname in d["tensors"]:
        key = f"{d['name']}.{fname}"
        if key not in flat:
            raise ArtifactError(f"tensor {key!r} is missing from {TENSORS_NAME}")
        tensors[fname] = flat[key]
    return Layer(name=d["name"], op=d["op"], inputs=tuple(d["inputs"]),
                 out=Value.from_json(d["out"], f"{where}.out"), attrs=d["attrs"],
                 tensors=tensors)


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
        doc = json.loads(read_text(mpath, MANIFEST_NAME, ArtifactError))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, numbers too long, nesting
        raise ArtifactError(f"{MANIFEST_NAME} must be valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{MANIFEST_NAME} format must be {ARTIFACT_FORMAT!r}, "
                            f"not {_brief(doc.get('format') if isinstance(doc, dict) else doc)}")
    if not _same_json(doc.get("format_version"), FORMAT_VERSION):
        raise ArtifactError(f"format_version must be {FORMAT_VERSION}, "
                            f"not {_brief(doc.get('format_version'))}")
    _entry(doc, MANIFEST_KEYS, "manifest")
    for key, kind in (("fpim_version", str), ("tensors_file", str), ("output", str),
                      ("content_hash", str), ("meta", dict), ("layers", list)):
        if not isinstance(doc[key], kind):
            raise ArtifactError(f"manifest.{key} must be a {kind.__name__}, "
                                f"not {_brief(doc[key])}")
    if doc["tensors_file"] != TENSORS_NAME:
        raise ArtifactError(f"manifest.tensors_file must be {TENSORS_NAME!r}, "
                            f"not {_brief(doc['tensors_file'])}")
    tpath = src / TENSORS_NAME
    if not tpath.is_file():
        raise ArtifactError(f"tensor file {tpath.name!r} is missing from {str(src)!r}")
    blob = tpath.read_bytes()
    try:
        flat = st_load(blob)
    except (SafetensorError, ValueError, OSError) as exc:
        raise ArtifactError(f"{tpath.name} is not a readable safetensors file ({exc})") from None

    layers = [_layer_from_json(d, f"layers[{i}]", flat) for i, d in enumerate(doc["layers"])]
    art = Artifact(input=Value.from_json(doc["input"], "input"), layers=tuple(layers),
                   output=doc["output"], meta=doc["meta"])
    used = {f"{layer.name}.{k}" for layer in layers for k in layer.tensors}
    extra = sorted(set(flat) - used - {"_empty"})
    if extra:
        raise ArtifactError(f"unexpected tensor(s) in {tpath.name}: {', '.join(extra)}")
    for i, d in enumerate(doc["layers"]):
        for fname, arr in layers[i].tensors.items():
            listed = d["tensors"][fname]
            if not _same_json(listed, {"dtype": str(arr.dtype), "shape": list(arr.shape)}):
                raise ArtifactError(f"layers[{i}].tensors.{fname} must describe the tensor "
                                    f"({arr.dtype}, {list(arr.shape)}), not {_brief(listed)}")

    claimed = doc.get("content_hash")
    body = {k: v for k, v in doc.items() if k != "content_hash"}
    actual = _hash(body, blob)
    if claimed != actual:
        raise ArtifactError(f"content_hash mismatch: manifest says {claimed!r}, files hash to "
                            f"{actual!r} (the artifact was edited or corrupted)")
    return art
