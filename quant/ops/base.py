"""What every artifact op defines: :class:`OpDef`, and the GEMM hook :data:`GemmFn`.

An op is one class, instantiated once and registered by name in :mod:`quant.ops`. It says
how many inputs a layer of it reads (``arity``), which tensors it carries (``tensors``: field
→ ``(dtype, shape kind)``, shape kinds ``"MK"``/``"M"`` from the layer's ``gemm`` attribute,
``"2"`` for two entries, ``"out"`` for the output value's per-sample shape, ``"C"`` for its
first dimension), whether it is a GEMM (``gemm``: it has weights and ``gemm_dims``), how its
attributes and tensors are checked, and its integer reference (:meth:`OpDef.run`).
:func:`int_attr`, :func:`bool_attr` and :func:`layer_error` give attribute checks their one
line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from quant.errors import ArtifactError

if TYPE_CHECKING:  # types only: quant.artifact itself dispatches through the registry
    from quant.artifact import Layer, Value

# An alternative GEMM for the conv/linear layers (e.g. the PIM macro kernel):
# ``fn(layer, w_int (M, K) int64, x (K, N) int64, x_fmt) -> (M, N) int64 accumulators``.
GemmFn = Callable[["Layer", np.ndarray, np.ndarray, object], np.ndarray]


class OpDef(ABC):
    """One artifact op (see the module docstring); subclasses set the class members."""

    name: ClassVar[str]
    arity: ClassVar[int] = 1
    tensors: ClassVar[Mapping[str, tuple[str, str]]] = MappingProxyType({})
    gemm: ClassVar[bool] = False

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
