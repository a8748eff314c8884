"""The PIM-QAT workflow: QAT model → PIM-QAT → (adjusted precision, BN calibration) →
integer artifact → accuracy on the PIM kernel. :func:`pim_train_workflow` is ``fpim pim
train``; ``bench/pim_table.py`` composes its table from the steps. See
:mod:`quant.torch.pim_qat` for the layers and :mod:`fpim.flows.pim_deploy` for the
accuracy on the PIM kernel.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from fpim.flows.pim_deploy import digital_accuracy, pim_accuracy
from fpim.flows.quantize import float_model, run_qat
from quant.artifact import Artifact, load_artifact, save_artifact
from quant.data import Dataset
from quant.pim import PimArith
from quant.torch.checkpoint import WeightSource
from quant.torch.export import export
from quant.torch.pim_qat import (
    PimQATConfig,
    bn_calibrate_,
    bn_init_,
    fold_scales_,
    pim_convert_,
    set_adc_ranges_,
    set_arith_,
)
from quant.torch.qat import QATConfig, check_convertible
from quant.torch.train import TrainConfig, set_determinism, train
from sim.pim import PimMacro
from sim.pim.deploy import calibrate_ranges, check_fits

# PIM-aware fine-tuning starts from the QAT model's clips and weights
CALIBRATION_IMAGES = 512


def pim_qat(qmodel: torch.nn.Module, data: Dataset, arith: PimArith, cfg: TrainConfig,
            pim_cfg: PimQATConfig | None = None, *, progress: bool = False,
            desc: str = "pim-qat", digital: frozenset[str] = frozenset(),
            ranges: dict[str, float] | None = None) -> torch.nn.Module:
    """A PIM-converted copy of the QAT model ``qmodel`` (layers in ``digital`` stay
    digital; PIM layers named in ``ranges`` take that calibrated ADC range), trained with
    ``arith`` in the loop. With ``pim_cfg.train_bn`` the live BNs start as the identity
    on the first :data:`CALIBRATION_IMAGES` training images (:func:`bn_init_`)."""
    set_determinism(cfg.seed)
    model = copy.deepcopy(qmodel)
    pim_convert_(model, arith, pim_cfg, seed=cfg.seed, digital=digital)
    set_adc_ranges_(model, {k: v for k, v in (ranges or {}).items() if k not in digital})
    if pim_cfg is not None and pim_cfg.train_bn:
        bn_init_(model, torch.as_tensor(data.x_train[:CALIBRATION_IMAGES]))
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
    return export(m, data.input_shape, meta=meta, calibration=data.x_train[:CALIBRATION_IMAGES])


@dataclass(frozen=True)
class PimTraining:
    """What ``fpim pim train`` reports: accuracies (%) on the test split, unrounded."""

    model: str
    data: str
    macro: PimMacro
    train_arith: PimArith
    bn_calibrated: bool
    digital_accuracy: float
    pim_without_pim_qat: float
    pim_qat_accuracy: float
    test_images: int
    float_checkpoint_loaded: bool
    seed: int
    epochs: dict[str, int]
    lr: dict[str, float]
    artifact: str | None
    seconds: float

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "macro": self.macro.name,
                "chip": self.macro.arith.__dict__, "train_arith": self.train_arith.__dict__,
                "bn_calibrated": self.bn_calibrated,
                "digital_accuracy": round(self.digital_accuracy, 4),
                "pim_without_pim_qat": round(self.pim_without_pim_qat, 4),
                "pim_qat_accuracy": round(self.pim_qat_accuracy, 4),
                "test_images": self.test_images,
                "float_checkpoint_loaded": self.float_checkpoint_loaded, "seed": self.seed,
                "epochs": self.epochs, "lr": self.lr, "artifact": self.artifact,
                "seconds": round(self.seconds, 1)}


def pim_train_workflow(model_name: str, data: Dataset, macro: PimMacro, train_arith: PimArith,
                       qcfg: QATConfig, float_cfg: TrainConfig, qat_cfg: TrainConfig,
                       pim_train_cfg: TrainConfig, pim_cfg: PimQATConfig, *,
                       bn_calibrate: bool = False, width: int = 1,
                       float_checkpoint: str | Path | None = None,
                       weights: WeightSource | None = None, out: str | Path | None = None,
                       seed: int = 0, progress: bool = False,
                       range_percentile: float | None = None) -> PimTraining:
    """Float training (or loading), digital QAT, PIM-QAT with ``train_arith`` in the loop,
    optional BN calibration through the chip (``macro.arith``), export (to ``out`` when
    given); the digital accuracy and the chip's before and after PIM-QAT. ``weights``: float
    weights to load instead of training (:func:`fpim.flows.quantize.float_model`). ``seed``
    seeds the chip's noise and the BN calibration. With ``range_percentile`` each layer's ADC
    range is that percentile of its group sums (digital model, the first
    :data:`CALIBRATION_IMAGES` training images), used throughout and recorded in the
    artifact (``meta["pim"]["adc_ranges"]``)."""
    t0 = time.perf_counter()
    chip = macro.arith
    model, loaded = float_model(model_name, data, float_cfg, width=width,
                                checkpoint=float_checkpoint, weights=weights,
                                check=check_convertible, progress=progress)
    qmodel = run_qat(model, data, qcfg, qat_cfg, progress=progress)
    digital = export(qmodel, data.input_shape, calibration=data.x_train[:CALIBRATION_IMAGES])
    check_fits(digital, chip)
    ranges = {} if range_percentile is None else calibrate_ranges(
        digital, data.x_train[:CALIBRATION_IMAGES], chip, range_percentile)
    dig_acc = digital_accuracy(digital, data)
    plain_acc = pim_accuracy(digital, data, chip, seed=seed, ranges=ranges)
    pmodel = pim_qat(qmodel, data, train_arith, pim_train_cfg, pim_cfg, progress=progress,
                     ranges=ranges)
    if bn_calibrate:
        pmodel = calibrated(pmodel, data, chip, seed=seed)
    lr = {"qat": qat_cfg.lr, "pim_qat": pim_train_cfg.lr}
    meta = {"model": model_name, "width": width, "data": data.name,
            "scheme": qcfg.scheme, "bits": qcfg.bits, "act_bits": qcfg.act_bits,
            "pim": {"macro": macro.name, "chip": chip.__dict__, "train": train_arith.__dict__,
                    "bn_calibrated": bn_calibrate, "backward_scale": pim_cfg.backward_scale,
                    "forward_rescale": pim_cfg.forward_rescale,
                    "psum_scales": pim_cfg.psum_scales,
                    "psum_lr_scale": pim_cfg.psum_lr_scale, "train_bn": pim_cfg.train_bn,
                    "lr": dict(lr),
                    "adc_ranges": ranges}}
    art = to_artifact(pmodel, data, meta)
    if out is not None:
        save_artifact(art, out)
        art = load_artifact(out)  # evaluate exactly what was written
    pim_acc = pim_accuracy(art, data, chip, seed=seed, ranges=ranges)
    epochs = {"float": 0 if loaded else float_cfg.epochs, "qat": qat_cfg.epochs,
              "pim_qat": pim_train_cfg.epochs}
    return PimTraining(model_name, data.name, macro, train_arith, bn_calibrate, dig_acc,
                       plain_acc, pim_acc, len(data.y_test), loaded, seed, epochs, lr,
                       None if out is None else str(out), time.perf_counter() - t0)
