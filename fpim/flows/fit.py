"""Whether an artifact runs on an accelerator's engine, and when it does not, the
``fpim quantize`` options that would have written one that does (from the QAT settings the
artifact records in ``meta.qat_config``)."""

from __future__ import annotations

from quant.artifact import Artifact
from quant.errors import ArtifactError
from sim.arch import Accelerator
from sim.config import load_accelerator
from sim.functional import check_artifact

#: The preset ``fpim quantize`` checks its artifact against (the README's first engine).
DEFAULT_PRESET = "xc7z020"


def quantize_flags(art: Artifact, accel: Accelerator) -> list[str]:
    """The ``fpim quantize`` options, on top of the ones ``art`` was written with, that make
    every engine layer fit ``accel`` (widths, first/last layers, input image bits, pooled
    precision); empty when the artifact records no QAT settings or needs none."""
    q = art.meta.get("qat_config")
    if not isinstance(q, dict):
        return []
    e = accel.engine
    flags: list[str] = []
    if q.get("bits") != e.weight_bits:
        flags += ["--bits", str(e.weight_bits)]
    if q.get("act_bits") != e.act_bits:
        flags += ["--act-bits", str(e.act_bits)]
    if q.get("first_last_bits") not in (None, 0, e.weight_bits):
        flags += ["--first-last-bits", "0"]
    if int(q.get("input_bits") or 8) > e.act_bits:
        flags += ["--input-bits", str(e.act_bits)]
    if int(q.get("pool_extra_bits") or 0) > 0 and any(x.op == "avgpool" for x in art.layers):
        flags += ["--pool-extra-bits", "0"]
    return flags


def check_fit(art: Artifact, accel: Accelerator, only: str | None = None) -> None:
    """:func:`sim.functional.check_artifact` (of layer ``only``, or all), its refusal ending
    with the quantize options that would make the artifact fit."""
    try:
        check_artifact(art, accel, only=only)
    except ArtifactError as exc:
        flags = quantize_flags(art, accel)
        if not flags:
            raise
        raise ArtifactError(f"{exc} (quantize with {' '.join(flags)} to fit {accel.name})"
                            ) from None


def fit_summary(art: Artifact, preset: str = DEFAULT_PRESET) -> dict:
    """Whether ``art`` runs on ``preset`` (``fits``), why not (``reason``), and the quantize
    options that would make it (``quantize_flags``)."""
    accel = load_accelerator(preset)
    try:
        check_artifact(art, accel)
    except ArtifactError as exc:
        return {"preset": preset, "fits": False, "reason": str(exc),
                "quantize_flags": quantize_flags(art, accel)}
    return {"preset": preset, "fits": True, "reason": None, "quantize_flags": []}
