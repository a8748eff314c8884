"""An integer artifact deployed on PIM macros (numpy, no torch): its cost on a chip of macros
(``fpim pim simulate``) and its accuracy with every conv/linear GEMM on the PIM kernel
(``fpim pim eval``; :mod:`fpim.flows.pim` uses the same accuracy after PIM-QAT).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fpim.flows.metrics import accuracy
from fpim.progress import Progress, silent
from quant.artifact import Artifact, load_artifact
from quant.data import Dataset, load_dataset
from quant.errors import ArtifactError, ConfigError, check_int_range
from quant.infer import predict
from quant.pim import PimArith
from sim.pim import PimLayerCost, PimMacro, layer_cost, load_macro
from sim.pim.deploy import layer_w_bits, run_artifact_pim


def macro_with(preset: str, overrides: dict[str, Any] | None = None) -> PimMacro:
    """The macro preset (or YAML file) with the arithmetic fields in ``overrides`` replaced
    (validated like the preset)."""
    macro = load_macro(preset)
    if not overrides:
        return macro
    return replace(macro, arith=macro.arith.with_(**overrides))


#: Test images on which ``evaluate`` counts the conversions that clip.
CLIP_IMAGES = 32

#: The arithmetic an artifact records as trained for (``meta["pim"]["chip"]``) and that
#: ``pim eval``/``pim simulate`` take over from it; noise and the transfer curve stay the
#: macro's (they describe the chip, not the training).
TRAINED_FIELDS = ("scheme", "cell_bits", "group_size", "adc_bits", "range_fraction",
                  "adc_step", "pot_step")


@dataclass(frozen=True)
class Settings:
    """The macro a command runs an artifact on, and where its arithmetic came from.

    Members:
        macro: the preset with the artifact's trained-for fields and the command-line
            overrides applied.
        trained_for: the artifact's recorded fields (empty if it records none).
        ranges: the artifact's calibrated ADC ranges by layer (empty if none).
        notes: one line per field the artifact or the command line changed, saying which
            value replaced which.
    """

    macro: PimMacro
    trained_for: dict[str, Any]
    ranges: dict[str, float]
    notes: list[str]

    def to_dict(self) -> dict:
        return {"trained_for": self.trained_for, "adc_ranges": self.ranges,
                "notes": self.notes}


def trained_settings(art: Artifact) -> tuple[dict[str, Any], dict[str, float]]:
    """The artifact's recorded PIM settings (:data:`TRAINED_FIELDS` of ``meta["pim"]
    ["chip"]``) and calibrated ADC ranges (``meta["pim"]["adc_ranges"]``); both empty when
    it records none. :class:`ArtifactError` naming the field if they are malformed."""
    pim = art.meta.get("pim")
    if pim is None:
        return {}, {}
    if not isinstance(pim, dict) or not isinstance(pim.get("chip", {}), dict):
        raise ArtifactError(f"meta.pim.chip must be a mapping, not {pim!r}")
    rec = {k: v for k, v in pim.get("chip", {}).items() if k in TRAINED_FIELDS}
    ranges = pim.get("adc_ranges") or {}
    try:
        PimArith(**rec)
    except (ConfigError, TypeError) as exc:
        raise ArtifactError(f"meta.pim.chip: {exc}") from None
    if not isinstance(ranges, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for v in ranges.values()):
        raise ArtifactError(f"meta.pim.adc_ranges must map layer names to positive numbers, "
                            f"not {ranges!r}")
    return rec, {str(k): float(v) for k, v in ranges.items()}


def settings_for(art: Artifact, preset: str, overrides: dict[str, Any] | None = None
                 ) -> Settings:
    """The macro ``preset`` with the artifact's trained-for arithmetic and then the
    command-line ``overrides`` (:class:`Settings`). A macro that cannot hold the result
    (e.g. a group larger than its rows) is refused with :class:`ConfigError`."""
    base = load_macro(preset)
    rec, ranges = trained_settings(art)
    overrides = overrides or {}
    notes = []
    for k, v in rec.items():
        if k in overrides and overrides[k] != v:
            notes.append(f"{k} {overrides[k]!r} from the command line overrides the "
                         f"artifact's {v!r} (it was trained for {v!r})")
        elif getattr(base.arith, k) != v:
            notes.append(f"{k} {v!r} from the artifact (trained for it) replaces the "
                         f"macro {base.name}'s {getattr(base.arith, k)!r}")
    try:
        macro = replace(base, arith=base.arith.with_(**{**rec, **overrides}))
    except ConfigError as exc:
        if not rec:
            raise
        raise ConfigError(f"macro {base.name} cannot run the artifact's settings: {exc}"
                          ) from None
    return Settings(macro, rec, ranges, notes)


def pim_predictions(art: Artifact, images: np.ndarray, arith: PimArith, seed: int = 0,
                    progress: Progress = silent, **deploy: Any) -> np.ndarray:
    """Predicted class per image with every GEMM of ``art`` on the PIM kernel (reported per
    batch to ``progress``); ``deploy``: ``ranges``, ``clips``, ``digital`` of
    :func:`sim.pim.deploy.run_artifact_pim`."""
    with progress("PIM kernel") as report:
        logits = run_artifact_pim(art, images, arith, seed=seed, on_batch=report, **deploy)
    return np.argmax(logits, axis=1)


def pim_accuracy(art: Artifact, data: Dataset, arith: PimArith, seed: int = 0,
                 **deploy: Any) -> float:
    """Test accuracy (%) of ``art`` with every GEMM on the PIM kernel (``deploy`` as in
    :func:`pim_predictions`)."""
    return accuracy(pim_predictions(art, data.x_test, arith, seed, **deploy), data.y_test)


def digital_accuracy(art: Artifact, data: Dataset) -> float:
    """Test accuracy (%) of ``art`` with the reference integer kernels."""
    return accuracy(predict(art, data.x_test), data.y_test)


@dataclass(frozen=True)
class ChipCost:
    """Cost of one inference batch of an artifact on a chip of PIM macros."""

    macro: PimMacro
    layers: list[PimLayerCost]
    batch: int
    settings: dict = field(default_factory=dict)

    @property
    def totals(self) -> dict:
        cycles = sum(c.cycles for c in self.layers)
        return {
            "cycles": cycles,
            "conversions": sum(c.conversions for c in self.layers),
            "energy_uj": sum(c.energy_uj for c in self.layers),
            "latency_us": cycles / self.macro.clock_mhz,
            "area_mm2": self.macro.macros * self.macro.area_mm2,
            "batch": self.batch,
        }

    def to_dict(self) -> dict:
        return {"macro": self.macro.to_dict(), "layers": [c.__dict__ for c in self.layers],
                "totals": self.totals, "settings": self.settings}


def chip_cost(artifact: str | Path | Artifact, macro: PimMacro, batch: int = 1,
              settings: Settings | None = None) -> ChipCost:
    """Cycles, conversions and energy of every conv/linear layer of the artifact (or its
    directory) for ``batch`` inputs per inference; ``settings`` as in :func:`evaluate`."""
    art = artifact if isinstance(artifact, Artifact) else load_artifact(artifact)
    st = settings or Settings(macro, *trained_settings(art), [])
    costs = []
    for layer in art.gemm_layers():
        m, k, n = layer.gemm_dims
        x_fmt = art.value(layer.inputs[0]).fmt
        costs.append(layer_cost(macro, layer.name, m, k, n * batch, layer_w_bits(layer),
                                x_fmt.bits, x_fmt.signed))
    return ChipCost(macro, costs, batch, st.to_dict())


def evaluate(artifact: str | Path, macro: PimMacro, *, data: str | None = None,
             data_dir: str | None = None, limit: int | None = None, seed: int = 0,
             progress: Progress = silent, settings: Settings | None = None) -> dict:
    """PIM and digital test accuracy (%) of the artifact directory and how often the two
    agree, on the test split of ``data`` (default: the artifact's meta "data", else digits),
    its first ``limit`` images when given; ``seed`` seeds the thermal noise; ``settings``
    where ``macro``'s arithmetic came from (:func:`settings_for`; default: the artifact's
    recorded settings, no notes), whose calibrated ADC ranges are used; the PIM kernel's
    batches are reported to ``progress``.
    Also the share of conversions that clip (ideal ADC), counted on the first
    :data:`CLIP_IMAGES` images (counting needs every group sum: slow for bit-serial)."""
    art = load_artifact(artifact)
    st = settings or Settings(macro, *trained_settings(art), [])
    ranges = st.ranges
    name = data or art.meta.get("data") or "digits"
    dataset = load_dataset(name, data_dir)
    x, y = dataset.x_test, dataset.y_test
    if limit is not None:
        n = check_int_range("limit", limit, 1, len(y))
        x, y = x[:n], y[:n]
    t0 = time.perf_counter()
    pim_pred = pim_predictions(art, x, macro.arith, seed, progress, ranges=ranges)
    seconds = time.perf_counter() - t0
    clips: dict[str, list[int]] = {}
    run_artifact_pim(art, x[:CLIP_IMAGES], macro.arith, seed, ranges=ranges, clips=clips)
    dig_pred = predict(art, x)
    conversions = sum(v[0] for v in clips.values())
    return {
        "artifact": str(artifact), "macro": macro.name, "arith": macro.arith.__dict__,
        "data": name, "images": len(y), "seed": seed,
        "clipped_percent": round(100.0 * sum(v[1] for v in clips.values())
                                 / max(conversions, 1), 4),
        "clip_images": min(CLIP_IMAGES, len(y)),
        "pim_accuracy": round(accuracy(pim_pred, y), 4),
        "digital_accuracy": round(accuracy(dig_pred, y), 4),
        "agreement": round(accuracy(pim_pred, dig_pred), 4),
        "pim_seconds": round(seconds, 2), "settings": st.to_dict(),
    }


#: Thermal noise (LSB) of the report's PIM accuracy grid (``fpim report --pim-accuracy``).
NOISE_GRID = (0.0, 0.25, 0.5)


def adc_grid(macro: PimMacro) -> tuple[int, ...]:
    """The macro's ADC resolution and one bit either side (within 1..16)."""
    b = macro.arith.adc_bits
    return tuple(x for x in (b - 1, b, b + 1) if 1 <= x <= 16)


def limited_test_split(artifact: Artifact, limit: int, field: str = "limit") -> Dataset:
    """The artifact's data set (meta "data", else digits) cut to its first ``limit`` test
    images; :class:`ConfigError` naming ``field`` if ``limit`` is not 1..the test split's
    size."""
    d = load_dataset(artifact.meta.get("data") or "digits")
    n = check_int_range(field, limit, 1, len(d.y_test))
    return replace(d, x_test=d.x_test[:n], y_test=d.y_test[:n])


def accuracy_grid(artifact: str | Path, macro: PimMacro, limit: int, seed: int = 0,
                  progress: Progress = silent, field: str = "limit") -> dict:
    """Test accuracy (%) of the artifact directory on the first ``limit`` test images with
    every GEMM on ``macro``, for each thermal noise of :data:`NOISE_GRID` and ADC
    resolution of :func:`adc_grid` (one step per point reported to ``progress``), and with
    the reference integer kernels."""
    art = load_artifact(artifact)
    data = limited_test_split(art, limit, field)
    grid = [(noise, bits) for bits in adc_grid(macro) for noise in NOISE_GRID]
    points = []
    with progress("PIM accuracy") as report:
        for i, (noise, bits) in enumerate(grid):
            arith = macro.arith.with_(adc_bits=bits, noise_lsb=noise)
            points.append({"adc_bits": bits, "noise_lsb": noise,
                           "pim_accuracy": round(pim_accuracy(art, data, arith, seed), 4)})
            report(i + 1, len(grid))
    return {"macro": macro.name, "data": data.name, "images": len(data.y_test), "seed": seed,
            "digital_accuracy": round(digital_accuracy(art, data), 4), "points": points}
