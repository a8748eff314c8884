"""The vector unit of an accelerator as ``hw`` builds it: one component per op (requant,
softmax, gelu, layernorm, pos_embed) with the parameters of :class:`sim.resources.VectorConfig`, for
``fpim synth --vector``, ``fpim rtl --vector`` and the resource calibration."""

from __future__ import annotations

from amaranth.lib import wiring

from hw.vector.gelu import Gelu
from hw.vector.layernorm import LayerNorm
from hw.vector.posembed import PosEmbed
from hw.vector.requant import DyadicRequant
from hw.vector.softmax import Softmax
from sim.resources import VECTOR_UNITS, VectorConfig


def build_unit(unit: str, cfg: VectorConfig) -> wiring.Component:
    """The component of ``unit`` (one of :data:`sim.resources.VECTOR_UNITS`) for ``cfg``."""
    if unit == "requant":
        return DyadicRequant(cfg.lanes, cfg.acc_bits)
    if unit == "softmax":
        return Softmax(cfg.lanes, cfg.acc_bits, cfg.tokens)
    if unit == "gelu":
        return Gelu(cfg.lanes, cfg.x_fmt)
    if unit == "layernorm":
        return LayerNorm(cfg.lanes, cfg.x_fmt, cfg.features)
    if unit == "pos_embed":
        return PosEmbed(cfg.lanes, cfg.x_fmt)
    raise AssertionError(f"unit must be one of {VECTOR_UNITS}, not {unit!r}")


def module_name(prefix: str, unit: str) -> str:
    """Verilog module name of ``unit`` of a top named ``prefix``: ``<prefix>_vec_<unit>``."""
    return f"{prefix}_vec_{unit}"
