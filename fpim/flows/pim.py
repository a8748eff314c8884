"""The PIM-QAT workflow: QAT model → PIM-QAT → (adjusted precision, BN calibration) →
integer artifact → accuracy on the PIM kernel. Used by ``fpim pim train`` and
``bench/pim_table.py``. See :mod:`quant.torch.pim_qat` for the layers and
:mod:`sim.pim.deploy` for the deployment evaluation.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from quant.artifact import Artifact
from quant.data import Dataset
from quant.pim import PimArith
from quant.torch.export import export
from quant.torch.pim_qat import PimQATConfig, bn_calibrate_, fold_scales_, pim_convert_, set_arith_
from quant.torch.train import TrainConfig, set_determinism, train
from sim.pim.deploy import run_artifact_pim

# PIM-aware fine-tuning starts from the QAT model's clips and weights
CALIBRATION_IMAGES = 512


def pim_qat(qmodel: torch.nn.Module, data: Dataset, arith: PimArith, cfg: TrainConfig,
            pim_cfg: PimQATConfig | None = None, *, progress: bool = False,
            desc: str = "pim-qat") -> torch.nn.Module:
    """A PIM-converted copy of the QAT model ``qmodel``, trained with ``arith`` in the loop."""
    set_determinism(cfg.seed)
    model = copy.deepcopy(qmodel)
    pim_convert_(model, arith, pim_cfg, seed=cfg.seed)
    train(model, data.x_train, data.y_train, cfg, desc=desc, progress=progress)
    return model


def fine_tune(model: torch.nn.Module, data: Dataset, arith: PimArith, cfg: TrainConfig, *,
              progress: bool = False, desc: str = "adjusted") -> torch.nn.Module:
    """A copy of a PIM model trained further with ``arith`` (adjusted precision)."""
    set_determinism(cfg.seed)
    m = copy.deepcopy(model)
    set_arith_(m, arith)
    train(m, data.x_train, data.y_train, cfg, desc=desc, progress=progress)
    return m


def calibrated(model: torch.nn.Module, data: Dataset, chip: PimArith,
               reference: PimArith | None = None, seed: int = 0) -> torch.nn.Module:
    """A copy of a PIM model after BN calibration through ``chip``."""
    m = copy.deepcopy(model)
    bn_calibrate_(m, torch.as_tensor(data.x_train[:CALIBRATION_IMAGES]), chip, reference,
                  seed=seed)
    return m


def to_artifact(model: torch.nn.Module, data: Dataset, meta: dict | None = None) -> Artifact:
    """The integer artifact of a (PIM-)QAT model (forward rescaling folded first)."""
    m = copy.deepcopy(model)
    fold_scales_(m)
    return export(m, data.input_shape, meta=meta)


def pim_accuracy(art: Artifact, data: Dataset, arith: PimArith, seed: int = 0) -> float:
    """Test accuracy (%) of ``art`` with every GEMM on the PIM kernel."""
    pred = np.argmax(run_artifact_pim(art, data.x_test, arith, seed=seed), axis=1)
    return 100.0 * float(np.mean(pred == data.y_test))
