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


def _label(weights: WeightSource) -> str:
    return repr(str(weights)) if isinstance(weights, str | Path) else type(weights).__name__


def run_qat(model: torch.nn.Module, data: Dataset, qcfg: QATConfig, qat_cfg: TrainConfig, *,
            progress: bool = True) -> torch.nn.Module:
    """A converted copy of ``model``, fine-tuned with QAT."""
    set_determinism(qat_cfg.seed)
    qmodel = copy.deepcopy(model)
    calib = torch.as_tensor(data.x_train[:CALIBRATION_IMAGES])
    quantize_(qmodel, qcfg, calib)
    hook = (lambda epoch: reassign_rows_(qmodel)) if qcfg.reassign_each_epoch else None
    train(qmodel, data.x_train, data.y_train, qat_cfg, desc=f"qat {qcfg.scheme}",
          progress=progress, on_epoch_start=hook)
    return qmodel


def quantize_workflow(model_name: str, data: Dataset, qcfg: QATConfig, float_cfg: TrainConfig,
                      qat_cfg: TrainConfig, *, out: str | Path | None = None, width: int = 1,
                      float_checkpoint: str | Path | None = None,
                      weights: WeightSource | None = None, progress: bool = True) -> dict:
    """Float training (or loading), QAT, export, integer evaluation; returns a result dict.

    ``weights``: float weights to load instead of training (see :func:`float_model`). The
    model's structure is checked for QAT conversion before any training or loading.
    """
    t0 = time.perf_counter()
    model, loaded = float_model(model_name, data, float_cfg, width=width,
                                checkpoint=float_checkpoint, weights=weights,
                                check=check_convertible, progress=progress)
    float_acc = accuracy(predict(model, data.x_test), data.y_test)
    qmodel = run_qat(model, data, qcfg, qat_cfg, progress=progress)
    fq_pred = predict(qmodel, data.x_test)
    meta = {"model": model_name, "width": width, "data": data.name, "scheme": qcfg.scheme,
            "bits": qcfg.bits, "act_bits": qcfg.act_bits,
            "sp2_fraction": qcfg.sp2_fraction if qcfg.scheme == "msq" else None,
            "qat_config": asdict(qcfg), "float_seed": float_cfg.seed, "qat_seed": qat_cfg.seed,
            "classes": list(data.classes), "float_accuracy": round(float_acc, 4)}
    art = export(qmodel, data.input_shape, meta=meta)
    if out is not None:
        save_artifact(art, out)
        art = load_artifact(out)  # evaluate exactly what was written
    q_pred = predict_artifact(art, data.x_test)
    rows = [layer.rows for layer in art.gemm_layers()]
    n_rows = sum(r.shape[0] for r in rows)
    n_sp2 = sum(int(np.count_nonzero(r.scheme_ids == 1)) for r in rows)
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
        "float_epochs": 0 if loaded else float_cfg.epochs, "qat_epochs": qat_cfg.epochs,
        "sp2_rows": n_sp2, "rows": n_rows,
        "artifact": None if out is None else str(out),
        "engine_fit": fit_summary(art),
        "seconds": round(time.perf_counter() - t0, 1),
    }
