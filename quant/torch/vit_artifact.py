"""A vision transformer's integer artifact from its shape alone (torch): random or the user's
float weights, post-training quantized on a few random images.

:func:`ptq_vit_artifact` is what ``fpim simulate --model deit_tiny|deit_small|deit_base
--functional`` runs the whole network on, and what ``bench/sim_speed.py`` times:

* the float model is :data:`quant.torch.vit.VITS`\\ ``[name]`` (``model_kwargs`` change its
  shape, e.g. ``depth`` or ``embed_dim`` for a small test model), with timm's random
  initialization after ``torch.manual_seed(seed)``, or with ``weights`` loaded by
  :func:`quant.torch.checkpoint.load_weights` (timm key layout; the loader of ``fpim quantize
  --checkpoint``: keys and shapes must match, else one line names them);
* ``images`` random images, uniform in [0, 1) from ``numpy.random.default_rng(seed)``,
  calibrate every value quantizer (:func:`quant.torch.vit_qat.quantize_vit`: PTQ, no
  training), as ``fpim quantize --ptq`` does on real images;
* weights are ``weight_bits`` fixed point, or with ``lut_fraction`` > 0 MSQ with that
  fraction of every head's rows on ``lut_scheme`` (the engine's split); activations
  ``act_bits`` (the input too); the patch embedding and the head take the same widths, so
  every GEMM runs on one engine;
* :func:`quant.torch.export.export` writes the integer artifact (not saved).

Random images make clips for random inputs: the artifact is an exact workload for the
simulator, not a classifier (the user's weights keep their accuracy only as far as random
calibration allows; ``fpim quantize --ptq`` calibrates on a dataset).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from quant.artifact import Artifact
from quant.errors import ConfigError, check_int_range, check_seed
from quant.infer import MAX_IMAGES
from quant.torch.checkpoint import load_weights
from quant.torch.export import export
from quant.torch.qat import QATConfig
from quant.torch.vit import VITS
from quant.torch.vit_qat import quantize_vit


def vit_ptq_config(weight_bits: int = 8, act_bits: int = 8, lut_fraction: float = 0.0,
                   lut_scheme: str = "pot") -> QATConfig:
    """The PTQ settings of :func:`ptq_vit_artifact` (validated: ConfigError on bad values)."""
    if lut_fraction:
        return QATConfig(scheme="msq", bits=weight_bits, act_bits=act_bits,
                         sp2_fraction=lut_fraction, lut_scheme=lut_scheme, first_last_bits=None,
                         input_bits=act_bits, learn_clip=False)
    return QATConfig(scheme="fixed", bits=weight_bits, act_bits=act_bits,
                     first_last_bits=None, input_bits=act_bits, learn_clip=False)


def ptq_vit_artifact(name: str, *, weights: str | Path | Mapping | None = None, seed: int = 0,
                     images: int = 1, config: QATConfig | None = None, progress: bool = False,
                     **model_kwargs: object) -> Artifact:
    """The integer artifact of ViT ``name`` (see the module docstring); ``config``: the
    quantization (default :func:`vit_ptq_config`'s 8-bit fixed point); ``progress``: a bar
    over the calibration batches on stderr."""
    if name not in VITS:
        raise ConfigError(f"model must be one of {', '.join(VITS)}, not {name!r}")
    check_seed("seed", seed)
    check_int_range("images", images, 1, MAX_IMAGES)
    config = config or vit_ptq_config()
    torch.manual_seed(seed)
    model = VITS[name](**model_kwargs)
    if weights is not None:
        load_weights(model, weights, "checkpoint", name)
    shape = (model.patch_embed.proj.in_channels, *model.img_size)
    calib = np.random.default_rng(seed).random((images, *shape))
    qmodel = quantize_vit(model, config, torch.as_tensor(calib).float(), progress=progress)
    source = str(weights) if isinstance(weights, str | Path) else (
        "random" if weights is None else "state_dict")
    meta = {"model": name, "weights": source, "seed": seed, "calibration_images": images,
            "ptq": True, "scheme": config.scheme, "bits": config.bits,
            "act_bits": config.act_bits, **({"model_kwargs": dict(model_kwargs)}
                                            if model_kwargs else {})}
    return export(qmodel, shape, meta=meta)
