"""What every artifact op defines: :class:`OpDef`, and the GEMM hook :data:`GemmFn`.

An op is one class, instantiated once and registered by name in :mod:`quant.ops`. It says
how many inputs a layer of it reads (``arity``), which attributes it has (``attrs``: name →
kind, every one required, see :data:`ATTR_KINDS`), which tensors it carries (``tensors``:
field → ``(dtype, shape kind)``, shape kinds ``"MK"``/``"M"`` from the layer's ``gemm``
attribute, ``"2"`` for two entries, ``"out"`` for the output value's per-sample shape, ``"C"``
for its first dimension), whether it is a GEMM (``gemm``: it has weights and ``gemm_dims``;
only a GEMM may produce unclamped values), whether it passes input codes through unchanged
(``keeps_codes``), the shape of its output (:meth:`OpDef.output_shape`), how its attributes
and tensors are checked, and its integer reference (:meth:`OpDef.run`). :func:`int_attr`,
:func:`bool_attr` and :func:`layer_error` give attribute checks their one line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from quant.errors import ArtifactError
from quant.ref import conv_output_size

if TYPE_CHECKING:  # types only: quant.artifact itself dispatches through the registry
    from quant.artifact import Layer, Value

def _int64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < 1 << 63


def _sizes(v: object, n: int) -> bool:
    return isinstance(v, list | tuple) and len(v) == n and all(_int64(x) and x >= 1 for x in v)


#: Kinds of attribute values: what each allows (for messages) and its test.
ATTR_KINDS: Mapping[str, tuple[str, Callable[[object], bool]]] = MappingProxyType({
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "int": ("an int64 integer", _int64),
    "size": ("an integer >= 0", lambda v: _int64(v) and v >= 0),
    "count": ("an integer >= 1", lambda v: _int64(v) and v >= 1),
    "bits": ("an integer in 1..64", lambda v: _int64(v) and 1 <= v <= 64),
    "pair": ("a list of two integers >= 1", lambda v: _sizes(v, 2)),
    "gemm": ("a mapping {M, K, N} of integers >= 1",
             lambda v: isinstance(v, dict) and sorted(v) == ["K", "M", "N"]
             and _sizes(list(v.values()), 3)),
})


def window_shape(layer: Layer, src: Value, padding: int = 0) -> tuple[int, int]:
    """``(Ho, Wo)`` of ``layer``'s window (attributes ``kernel`` and ``stride``) sliding
    over the (C, H, W) value ``src`` padded by ``padding`` on each side."""
    where = f"layer {layer.name!r}"
    if len(src.shape) != 3:
        raise ArtifactError(f"{where}: {layer.op} input must have shape (C, H, W), "
                            f"not {src.shape}")
    (_, h, w), (kh, kw) = src.shape, layer.attrs["kernel"]
    if kh > h + 2 * padding or kw > w + 2 * padding:
        raise ArtifactError(f"{where}: kernel must fit the input {h}x{w} padded by {padding}, "
                            f"not {kh}x{kw}")
    stride = layer.attrs["stride"]
    return (conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding))


# An alternative GEMM for the conv/linear layers (e.g. the PIM macro kernel):
# ``fn(layer, w_int (M, K) int64, x (K, N) int64, x_fmt) -> (M, N) int64 accumulators``.
GemmFn = Callable[["Layer", np.ndarray, np.ndarray, object], np.ndarray]


class OpDef(ABC):
    """One artifact op (see the module docstring); subclasses set the class members."""

    name: ClassVar[str]
    arity: ClassVar[int] = 1
    attrs: ClassVar[Mapping[str, str]] = MappingProxyType({})
    tensors: ClassVar[Mapping[str, tuple[str, str]]] = MappingProxyType({})
    gemm: ClassVar[bool] = False
    #: The output holds input codes unchanged (same format and scale as the input).
    keeps_codes: ClassVar[bool] = False

    def check_schema(self, layer: Layer) -> None:
        """Raise :class:`~quant.errors.ArtifactError` unless ``layer.attrs`` has exactly
        the op's attributes, each of its kind."""
        where = f"layer {layer.name!r}"
        if not isinstance(layer.attrs, dict):
            raise ArtifactError(f"{where}: attrs must be a mapping, not {layer.attrs!r}")
        extra = sorted(set(layer.attrs) - set(self.attrs), key=str)
        if extra:
            raise ArtifactError(f"{where}: attrs must be {', '.join(self.attrs) or 'empty'} "
                                f"for {self.name}, not {extra[0]!r}")
        for key, kind in self.attrs.items():
            allowed, ok = ATTR_KINDS[kind]
            value = layer.attrs.get(key)
            if key not in layer.attrs or not ok(value):
                shown = "missing" if key not in layer.attrs else repr(value)
                raise ArtifactError(f"{where}: attrs.{key} must be {allowed}, not {shown}")

    @abstractmethod
    def output_shape(self, layer: Layer, ins: list[Value]) -> tuple[int, ...]:
        """The per-sample shape of the layer's output for input values ``ins`` (its
        attributes already checked); :class:`~quant.errors.ArtifactError` if the inputs do
        not fit the op."""

    def check_attrs(self, layer: Layer, ins: list[Value]) -> None:
        """Raise :class:`~quant.errors.ArtifactError` if ``layer``'s attributes do not fit
        its input values ``ins``; runs before its tensors' shapes are checked. The default
        checks nothing."""
        return

    def check_tensors(self, layer: Layer) -> None:
        """Raise :class:`~quant.errors.ArtifactError` if the contents of ``layer``'s tensors
        are invalid; runs after their presence, shapes and dtypes are checked. The default
        checks nothing."""
        return

    @abstractmethod
    def run(self, layer: Layer, xs: list[np.ndarray], in_fmts: list,
            gemm_fn: GemmFn | None) -> np.ndarray:
        """The layer on integer inputs ``xs`` (batch first) of formats ``in_fmts``; its
        integer output. ``gemm_fn`` replaces a GEMM op's reference GEMM (None: reference)."""


def layer_error(layer: Layer, what: str) -> ArtifactError:
    """An :class:`ArtifactError` about ``layer``: ``"layer 'name': <what>"``."""
    return ArtifactError(f"layer {layer.name!r}: {what}")


def int_attr(layer: Layer, key: str, lo: int, hi: int) -> int:
    """``layer.attrs[key]`` if it is an integer in ``lo..hi``, else :class:`ArtifactError`."""
    v = layer.attrs.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise layer_error(layer, f"attrs.{key} must be an integer in {lo}..{hi}, not {v!r}")
    return v


def bool_attr(layer: Layer, key: str) -> bool:
    """``layer.attrs[key]`` if it is a boolean, else :class:`ArtifactError`."""
    v = layer.attrs.get(key)
    if not isinstance(v, bool):
        raise layer_error(layer, f"attrs.{key} must be true or false, not {v!r}")
    return v
