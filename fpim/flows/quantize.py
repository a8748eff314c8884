"""The quantize workflow: float model → QAT → integer artifact → accuracies (torch).

Used by ``fpim quantize`` and ``bench/qat_table.py``. Reported accuracies:

* ``float_accuracy``: the float model (torch) on the test split;
* ``fakequant_accuracy``: the QAT model's float fake-quant forward (what training sees);
* ``quant_accuracy``: integer-only inference of the artifact with the numpy reference
  kernels (:func:`quant.infer.run_artifact`) — the quantized model's accuracy;
* ``agreement``: percentage of test images where fake-quant and integer predictions agree.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from fpim.flows.fit import fit_summary
from fpim.flows.metrics import accuracy
from quant.artifact import load_artifact, save_artifact
from quant.data import Dataset
from quant.errors import ConfigError
from quant.infer import predict as predict_artifact
from quant.torch.checkpoint import WeightSource, load_weights
from quant.torch.export import export
from quant.torch.models import MODELS, build_model
from quant.torch.qat import QATConfig, check_convertible, quantize_, reassign_rows_
from quant.torch.train import TrainConfig, predict, set_determinism, train
from quant.torch.usermodel import check_classifier, load_model
from quant.torch.vit import VisionTransformer
from quant.torch.vit_qat import check_vit_config, quantize_vit

CALIBRATION_IMAGES = 512


def float_model(model_name: str, data: Dataset, train_cfg: TrainConfig, *, width: int = 1,
                checkpoint: str | Path | None = None, weights: WeightSource | None = None,
                check: Callable[[torch.nn.Module], None] | None = None,
                progress: bool = True) -> tuple[torch.nn.Module, bool]:
    """Build the float model (``model_name``: one of :data:`quant.torch.models.MODELS` or a
    factory ``PATH.py:FUNCTION`` / ``package.module:FUNCTION``), then load its weights or
    train it.

    ``weights`` (a ``.pth``/``.safetensors`` file, a state dict or a module; see
    :func:`quant.torch.checkpoint.load_weights`) are loaded instead of training. Otherwise
    ``checkpoint`` is loaded if that file exists, else the model is trained and saved to it.
    ``check`` runs on the model after loading, before training. Returns
    ``(model, loaded)``.
    """
    if weights is not None and checkpoint is not None:
        raise ConfigError(f"checkpoint and float-checkpoint must not both be given, not "
                          f"{_label(weights)} and {str(checkpoint)!r}")
    set_determinism(train_cfg.seed)
    c, h, w = data.input_shape
    if model_name in MODELS:
        model = build_model(model_name, data.num_classes, c, width, (h, w))
    else:  # a factory (quant.modelspec): built as the user wrote it
        model = load_model(model_name)
        check_classifier(model, model_name, data.input_shape, data.num_classes)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    load = weights is not None or (ckpt is not None and ckpt.exists())
    if weights is not None:
        load_weights(model, weights, "checkpoint", model_name)
    elif load:
        load_weights(model, ckpt, "float-checkpoint", model_name)
    if check is not None:
        check(model)
    if load:
        model.eval()
        return model, True
    train(model, data.x_train, data.y_train, train_cfg, desc="float", progress=progress)
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        tmp = ckpt.with_name(f".{ckpt.name}.tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(ckpt)
    return model, False


def _config_meta(qcfg: QATConfig) -> dict:
    """``qcfg`` for the artifact's meta; the fields added for ViTs are left out while they
    hold their defaults, so CNN artifacts keep the content hashes recorded before them."""
    meta = asdict(qcfg)
    for field, default in (("lut_scheme", "sp2"), ("int_ops", True)):
        if meta[field] == default:
            del meta[field]
    return meta


def _label(weights: WeightSource) -> str:
    return repr(str(weights)) if isinstance(weights, str | Path) else type(weights).__name__


def convertible(qcfg: QATConfig) -> Callable[[torch.nn.Module], None]:
    """The check that ``qcfg`` can convert a model (run before any training)."""
    def check(model: torch.nn.Module) -> None:
        if isinstance(model, VisionTransformer):
            check_vit_config(qcfg)
        else:
            check_convertible(model)
    return check


def run_qat(model: torch.nn.Module, data: Dataset, qcfg: QATConfig, qat_cfg: TrainConfig, *,
            ptq: bool = False, progress: bool = True) -> torch.nn.Module:
    """A converted copy of ``model``, fine-tuned with QAT (with ``ptq``: calibrated only).

    A :class:`~quant.torch.vit.VisionTransformer` becomes a
    :class:`~quant.torch.vit_qat.QuantViT`, any other model is converted by ``quantize_``.
    """
    set_determinism(qat_cfg.seed)
    calib = torch.as_tensor(data.x_train[:CALIBRATION_IMAGES])
    if isinstance(model, VisionTransformer):
        qmodel = quantize_vit(model, qcfg, calib, progress=progress)
    else:
        qmodel = quantize_(copy.deepcopy(model), qcfg, calib)
    if ptq:
        return qmodel
    hook = (lambda epoch: reassign_rows_(qmodel)) if qcfg.reassign_each_epoch else None
    train(qmodel, data.x_train, data.y_train, qat_cfg, desc=f"qat {qcfg.scheme}",
          progress=progress, on_epoch_start=hook)
    return qmodel


def quantize_workflow(model_name: str, data: Dataset, qcfg: QATConfig, float_cfg: TrainConfig,
                      qat_cfg: TrainConfig, *, out: str | Path | None = None, width: int = 1,
                      float_checkpoint: str | Path | None = None,
                      weights: WeightSource | None = None, ptq: bool = False,
                      progress: bool = True) -> dict:
    """Float training (or loading), QAT, export, integer evaluation; returns a result dict.

    ``weights``: float weights to load instead of training (see :func:`float_model`). The
    model's structure is checked for QAT conversion before any training or loading. ``ptq``:
    post-training quantization, calibration only (``qat_cfg`` gives the seed, no epochs).
    """
    t0 = time.perf_counter()
    model, loaded = float_model(model_name, data, float_cfg, width=width,
                                checkpoint=float_checkpoint, weights=weights,
                                check=convertible(qcfg), progress=progress)
    float_acc = accuracy(predict(model, data.x_test), data.y_test)
    qmodel = run_qat(model, data, qcfg, qat_cfg, ptq=ptq, progress=progress)
    fq_pred = predict(qmodel, data.x_test)
    meta = {"model": model_name, "width": width, "data": data.name, "scheme": qcfg.scheme,
            "bits": qcfg.bits, "act_bits": qcfg.act_bits,
            "sp2_fraction": qcfg.sp2_fraction if qcfg.scheme == "msq" else None,
            "qat_config": _config_meta(qcfg), "float_seed": float_cfg.seed,
            "qat_seed": qat_cfg.seed,
            "classes": list(data.classes), "float_accuracy": round(float_acc, 4),
            **({"ptq": True} if ptq else {})}
    art = export(qmodel, data.input_shape, meta=meta,
                 calibration=data.x_train[:CALIBRATION_IMAGES])
    if out is not None:
        save_artifact(art, out)
        art = load_artifact(out)  # evaluate exactly what was written
    q_pred = predict_artifact(art, data.x_test)
    rows = [layer.rows for layer in art.gemm_layers()]
    n_rows = sum(r.shape[0] for r in rows)
    n_sp2 = sum(int(np.count_nonzero(r.scheme_ids == 1)) for r in rows)
    n_lut = sum(int(np.count_nonzero(r.scheme_ids != 0)) for r in rows)
    return {
        "model": model_name, "data": data.name, "scheme": qcfg.scheme, "bits": qcfg.bits,
        "act_bits": qcfg.act_bits,
        "sp2_fraction": qcfg.sp2_fraction if qcfg.scheme == "msq" else None,
        "float_accuracy": round(float_acc, 4),
        "fakequant_accuracy": round(accuracy(fq_pred, data.y_test), 4),
        "quant_accuracy": round(accuracy(q_pred, data.y_test), 4),
        "agreement": round(accuracy(fq_pred, q_pred), 4),
        "test_images": len(data.y_test), "float_checkpoint_loaded": loaded,
        "seed": float_cfg.seed, "qat_seed": qat_cfg.seed,
        "float_epochs": 0 if loaded else float_cfg.epochs,
        "qat_epochs": 0 if ptq else qat_cfg.epochs, "ptq": ptq,
        "sp2_rows": n_sp2, "lut_rows": n_lut, "rows": n_rows,
        "artifact": None if out is None else str(out),
        "engine_fit": fit_summary(art),
        "seconds": round(time.perf_counter() - t0, 1),
    }
