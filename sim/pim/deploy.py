"""Deploy an integer artifact on a PIM macro: integer inference with the PIM kernel.

:func:`run_artifact_pim` runs :func:`quant.infer.run_artifact` with every conv/linear GEMM
replaced by :func:`sim.pim.kernels.pim_gemm` (groups, ADC, non-idealities, shift-add); everything
else (requantization, adds, pooling) is the ordinary integer path. Each layer's weight
width is the bound of its formats (``max_abs_int`` → ``w_bits``), its input format the
artifact's; :func:`check_fits` refuses, naming the layer, weights wider than the macro's
cells can hold.

Noise: the ``i``-th GEMM call of a run draws from its own stream, seeded by
``SeedSequence([seed, i])``; for a fixed batch size the same seed gives the same bits and
different seeds give different noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from quant.artifact import Artifact, Layer
from quant.errors import ConfigError
from quant.infer import run_artifact
from quant.pim import PimArith, plan
from sim.pim.kernels import pim_gemm


def layer_w_bits(layer: Layer) -> int:
    """Signed bits of the layer's integer weights (from its formats' bound)."""
    return max(2, layer.rows.max_abs_int().bit_length() + 1)


def check_fits(art: Artifact, arith: PimArith) -> None:
    """ConfigError (naming the layer) if some layer's weights or inputs do not fit."""
    for layer in art.gemm_layers():
        fmt = art.value(layer.inputs[0]).fmt
        try:
            plan(arith, layer_w_bits(layer), fmt.bits, fmt.signed)
        except ConfigError as exc:
            raise ConfigError(f"layer {layer.name!r} does not fit the macro: {exc}") from None


def run_artifact_pim(art: Artifact, images: object, arith: PimArith, seed: int = 0,
                     batch_size: int = 256,
                     on_batch: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Integer logits of ``art`` on ``images`` with every GEMM on the PIM kernel;
    ``on_batch`` as in :func:`quant.infer.run_artifact`."""
    check_fits(art, arith)
    calls = [0]

    def gemm_fn(layer: Layer, w: np.ndarray, x: np.ndarray, fmt) -> np.ndarray:
        s = int(np.random.SeedSequence([int(seed), calls[0]]).generate_state(1)[0])
        calls[0] += 1
        return pim_gemm(w, x, layer_w_bits(layer), fmt, arith, seed=s)

    return run_artifact(art, images, batch_size=batch_size, gemm_fn=gemm_fn,
                        on_batch=on_batch)
