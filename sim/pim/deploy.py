"""Deploy an integer artifact on a PIM macro: integer inference with the PIM kernel.

:func:`run_artifact_pim` runs :func:`quant.infer.run_artifact` with every conv/linear GEMM
replaced by :func:`sim.pim.kernels.pim_gemm` (groups, ADC, non-idealities, shift-add); everything
else (requantization, adds, pooling) is the ordinary integer path. Each layer's weight
width is the bound of its formats (``max_abs_int`` → ``w_bits``), its input format the
artifact's; :func:`check_fits` refuses, naming the layer, weights wider than the macro's
cells can hold.

An exact (non-power-of-two) ADC step leaves the periphery's sum in units of the step
``Δ = num/den``; the deployment shifts it left by :data:`FOLD_FRAC_BITS` and
:func:`fold_steps` folds ``Δ / 2**FOLD_FRAC_BITS`` into each layer's requantizer (a new
``mult``/``shift`` and the bias in those units), so the chip runs an integer requantizer as
before. (Without the extra bits a bias smaller than one step would round away.) Layer ADC
ranges calibrated from data (:func:`calibrate_ranges`: a percentile of the group sums
observed on calibration images) are passed by layer name.

Noise: the ``i``-th GEMM call of a run draws from its own stream, seeded by
``SeedSequence([seed, i])``; for a fixed batch size the same seed gives the same bits and
different seeds give different noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from quant.artifact import Artifact, Layer
from quant.errors import ConfigError
from quant.infer import run_artifact
from quant.pim import PimArith, PimPlan, plan
from quant.pim.arith import add_histograms, calibrate_range, clip_count, group_sums, sum_histogram
from quant.ref import quantize_multiplier
from sim.pim.kernels import pim_gemm

#: Significant bits of a requantizer multiplier after the ADC step is folded in.
FOLD_MULT_BITS = 16
#: Fractional bits the periphery's sum gains (a left shift) before an exact step's
#: requantizer, so that the bias, in units of ``Δ / 2**FOLD_FRAC_BITS``, keeps its precision.
FOLD_FRAC_BITS = 8


def layer_w_bits(layer: Layer) -> int:
    """Signed bits of the layer's integer weights (from its formats' bound)."""
    return max(2, layer.rows.max_abs_int().bit_length() + 1)


def layer_plan(art: Artifact, layer: Layer, arith: PimArith,
               ranges: dict[str, float] | None = None) -> PimPlan:
    """The layer's decomposition on ``arith`` (with its calibrated range, if any)."""
    fmt = art.value(layer.inputs[0]).fmt
    return plan(arith, layer_w_bits(layer), fmt.bits, fmt.signed,
                (ranges or {}).get(layer.name))


def check_fits(art: Artifact, arith: PimArith, ranges: dict[str, float] | None = None) -> None:
    """ConfigError (naming the layer) if some layer's weights or inputs do not fit, or a
    calibrated range names no GEMM layer."""
    names = {layer.name for layer in art.gemm_layers()}
    for name in ranges or {}:
        if name not in names:
            raise ConfigError(f"adc_ranges names {name!r}, which is not a conv/linear layer "
                              f"of the artifact")
    for layer in art.gemm_layers():
        try:
            layer_plan(art, layer, arith, ranges)
        except ConfigError as exc:
            raise ConfigError(f"layer {layer.name!r} does not fit the macro: {exc}") from None


def fold_steps(art: Artifact, arith: PimArith, ranges: dict[str, float] | None = None,
               digital: frozenset[str] = frozenset()) -> Artifact:
    """``art`` with each GEMM layer's ADC step folded into its requantizer (module
    docstring): the requantizer then takes the periphery's sum shifted left by
    :data:`FOLD_FRAC_BITS`; layers whose step is 1 (power-of-two mode) or named in
    ``digital`` are unchanged."""
    layers = []
    for layer in art.layers:
        pim = layer.is_gemm and layer.name not in digital
        step = layer_plan(art, layer, arith, ranges).step if pim else 1
        if step == 1:
            layers.append(layer)
            continue
        step /= 1 << FOLD_FRAC_BITS
        t = dict(layer.tensors)
        mults, shifts = [], []
        for m, s in zip(t["mult"].tolist(), t["shift"].tolist(), strict=True):
            if m == 0:
                mults.append(0)
                shifts.append(s)
                continue
            fm, fs = quantize_multiplier(m * step.numerator / step.denominator / 2.0 ** s,
                                         FOLD_MULT_BITS)
            mults.append(fm)
            shifts.append(fs)
        t["mult"] = np.array(mults, dtype=t["mult"].dtype)
        t["shift"] = np.array(shifts, dtype=t["shift"].dtype)
        # bias / Δ, rounded half to even: (bias * den) / num via a fixed-point reciprocal
        t["bias"] = _divide(t["bias"].astype(np.int64) * step.denominator,
                            step.numerator).astype(t["bias"].dtype)
        layers.append(replace(layer, tensors=t))
    return replace(art, layers=tuple(layers))


def exact_gemm(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The integer GEMM ``W · X`` (int64)."""
    return np.asarray(w, dtype=np.int64) @ np.asarray(x, dtype=np.int64)


def _divide(a: np.ndarray, d: int) -> np.ndarray:
    """``round_half_even(a / d)`` for int64 ``a`` and a positive integer ``d``."""
    q, r = np.divmod(a, d)
    up = (2 * r > d) | ((2 * r == d) & (q % 2 == 1))
    return q + up


def run_artifact_pim(art: Artifact, images: object, arith: PimArith, seed: int = 0,
                     batch_size: int = 256,
                     on_batch: Callable[[int, int], None] | None = None,
                     ranges: dict[str, float] | None = None,
                     clips: dict[str, list[int]] | None = None,
                     digital: frozenset[str] = frozenset()) -> np.ndarray:
    """Integer logits of ``art`` on ``images`` with every GEMM on the PIM kernel;
    ``on_batch`` as in :func:`quant.infer.run_artifact`; ``ranges`` calibrated ADC ranges
    by layer name; layers named in ``digital`` keep the exact integer GEMM. With
    ``clips``, each PIM layer's ``[conversions, clipped]`` (ideal ADC) is added to
    ``clips[name]``."""
    names = {layer.name for layer in art.gemm_layers()}
    if not set(digital) <= names:
        raise ConfigError(f"digital layers must be conv/linear layers of the artifact, not "
                          f"{sorted(set(digital) - names)[0]!r}")
    check_fits(art, arith, ranges)
    deployed = fold_steps(art, arith, ranges, digital)
    folded = {a.name for a, b in zip(art.layers, deployed.layers, strict=True) if a is not b}
    ranges = ranges or {}
    calls = [0]

    def gemm_fn(layer: Layer, w: np.ndarray, x: np.ndarray, fmt) -> np.ndarray:
        s = int(np.random.SeedSequence([int(seed), calls[0]]).generate_state(1)[0])
        calls[0] += 1
        if layer.name in digital:
            return exact_gemm(w, x)
        if clips is not None:
            pl = plan(arith, layer_w_bits(layer), fmt.bits, fmt.signed, ranges.get(layer.name))
            n, c = clip_count(group_sums(w, x, pl), pl)
            tot = clips.setdefault(layer.name, [0, 0])
            tot[0] += n
            tot[1] += c
        acc = pim_gemm(w, x, layer_w_bits(layer), fmt, arith, seed=s,
                       adc_range=ranges.get(layer.name))
        return acc << FOLD_FRAC_BITS if layer.name in folded else acc

    return run_artifact(deployed, images, batch_size=batch_size, gemm_fn=gemm_fn,
                        on_batch=on_batch)


def calibrate_ranges(art: Artifact, images: object, arith: PimArith, percentile: float,
                     batch_size: int = 256) -> dict[str, float]:
    """Each GEMM layer's ADC range: ``percentile`` of its group sums (in the units of
    :func:`quant.pim.arith.calibrate_range`) on ``images``, run with the exact integer
    GEMM (digital activations)."""
    check_fits(art, arith)
    hists: dict[str, np.ndarray] = {}
    plans: dict[str, PimPlan] = {}

    def gemm_fn(layer: Layer, w: np.ndarray, x: np.ndarray, fmt) -> np.ndarray:
        pl = plans.setdefault(layer.name, plan(arith, layer_w_bits(layer), fmt.bits,
                                               fmt.signed))
        h = sum_histogram(group_sums(w, x, pl), pl)
        hists[layer.name] = add_histograms(hists.get(layer.name, np.zeros(1, np.int64)), h)
        return exact_gemm(w, x)

    run_artifact(art, images, batch_size=batch_size, gemm_fn=gemm_fn)
    return {name: calibrate_range(h, plans[name], percentile) for name, h in hists.items()}
