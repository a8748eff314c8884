"""The logits (a GEMM without an output format) saturate at the GEMM engine's output lane,
±32,767 (quant.requant.REQUANTIZER.output_format(None)), alike in integer inference, its
torch twin and the simulator's functional mode — also where they leave the lane: a trained
head scaled up, and an untrained ViT whose logits reach 53,063 before saturation. (The RTL:
tests/hw/test_postproc.py and, on Verilator, tests/cocotb/accel/test_fast.py.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from quant.artifact import Artifact, load_artifact
from quant.data import load_digits
from quant.infer import fit_logits, logit_peak, quantize_input, run_artifact
from quant.ops import gemm_of
from quant.ref import round_shift
from quant.requant import REQUANTIZER
from quant.torch.twin import integer_logits_torch
from sim.config import CONFIG_DIR, load_accelerator
from sim.functional import run_artifact as sim_values

SHIPPED = CONFIG_DIR / "artifacts" / "cnn_msq4_digits"
LANE = REQUANTIZER.output_format(None).qmax


def scaled_head(art: Artifact, bits: int) -> Artifact:
    """``art`` with its logits ``2**bits`` times larger (each row's shift reduced, at 0 at
    the least)."""
    head = art.layer(art.output)
    t = {**head.tensors, "shift": np.maximum(head.tensors["shift"] - bits, 0)}
    return replace(art, layers=tuple(replace(la, tensors=t) if la is head else la
                                     for la in art.layers))


def raw_logits(art: Artifact, images: np.ndarray) -> np.ndarray:
    """The logits before the lane's saturation (the head's rounding alone)."""
    head = art.layer(art.output)
    vals = run_artifact(art, images, return_values=True)
    src = art.value(head.inputs[0])
    acc = gemm_of(head).reference(head, vals[head.inputs[0]], src.fmt,
                                  int(head.attrs["acc_bits"]))
    t = head.tensors
    return round_shift((acc + t["bias"]) * t["mult"], t["shift"])


def check_levels(art: Artifact, images: np.ndarray, accel) -> np.ndarray:
    """Reference, torch twin and simulator give the same logits: the raw ones saturated."""
    want = run_artifact(art, images)
    assert np.array_equal(want, np.clip(raw_logits(art, images), -LANE, LANE))
    assert np.array_equal(integer_logits_torch(art, images), want)
    got = sim_values(art, quantize_input(art, images), accel)[art.output]
    assert np.array_equal(got, want)
    return want


def test_a_scaled_head_saturates_alike_at_every_level() -> None:
    art = scaled_head(load_artifact(SHIPPED), 7)
    images = load_digits(seed=0).x_test[:64]
    raw = raw_logits(art, images)
    assert (raw > LANE).any() and (raw < -LANE).any()  # the lane is left both ways
    logits = check_levels(art, images, load_accelerator("tiny"))
    assert (np.abs(logits) == LANE).sum() == 76  # of 640


def test_the_shipped_artifact_does_not_reach_the_lane() -> None:
    """The shipped artifact's logits, on the whole digits split, stay far inside the lane
    (max 760), so its results are those before saturation was defined."""
    d = load_digits(seed=0)
    images = np.concatenate([d.x_train, d.x_test])
    art = load_artifact(SHIPPED)
    assert int(np.abs(raw_logits(art, images)).max()) == 760
    assert np.array_equal(run_artifact(art, images), raw_logits(art, images))


def untrained_vit():
    """The untrained ViT of tests/test_vit_graph.py, its QAT model and images."""
    from quant.torch.qat import QATConfig
    from quant.torch.vit import vit_digits
    from quant.torch.vit_qat import quantize_vit

    torch.manual_seed(0)
    images = np.random.default_rng(2).random((16, 1, 8, 8))
    q = quantize_vit(vit_digits(), QATConfig(scheme="fixed", bits=8, act_bits=8,
                                             learn_clip=False), torch.as_tensor(images).float())
    return q, images


def test_an_untrained_vit_saturates_alike_at_every_level() -> None:
    """The untrained ViT exported at the finest logit scale (no calibration images): its
    logits reach 53,063 before saturation."""
    from quant.torch.export import export

    q, images = untrained_vit()
    art = export(q, (1, 8, 8))
    assert int(np.abs(raw_logits(art, images)).max()) == logit_peak(art, images) == 53063
    accel = load_accelerator("xczu9eg", ["engine.weight_bits=8", "engine.act_bits=8",
                                         "engine.act_signed=true", "engine.acc_bits=32"])
    logits = check_levels(art, images, accel)
    assert (np.abs(logits) == LANE).sum() == 19


def test_the_exporter_keeps_calibration_logits_within_half_the_lane() -> None:
    """With calibration images the export coarsens the logits by the power of two that
    brings them within half of the lane: 53,063 needs 2**2 (13,266); every row shifts 2
    further, the scale grows 4 times, meta records it; the rest of the artifact is the same."""
    from quant.torch.export import export

    q, images = untrained_vit()
    fine, fit = export(q, (1, 8, 8)), export(q, (1, 8, 8), calibration=images)
    assert fit.meta == {"logit_shift": 2} and logit_peak(fit, images) == 13266 <= LANE // 2
    a, b = fine.layer(fine.output), fit.layer(fit.output)
    assert np.array_equal(b.tensors["shift"], a.tensors["shift"] + 2)
    assert np.array_equal(b.tensors["mult"], a.tensors["mult"])
    assert b.out.scale == 4 * a.out.scale
    for x, y in zip(fine.layers, fit.layers, strict=True):
        assert x.name == y.name
        if x.name != a.name:
            assert x.out == y.out and all(np.array_equal(v, y.tensors[f])
                                          for f, v in x.tensors.items())
    assert np.array_equal(run_artifact(fit, images), np.clip(raw_logits(fit, images), -LANE,
                                                             LANE))


def test_fit_logits_leaves_logits_inside_half_the_lane_alone() -> None:
    """The shipped artifact's logits (760 at most) need no change: the same object."""
    art = load_artifact(SHIPPED)
    assert fit_logits(art, load_digits(seed=0).x_train) is art


def test_fit_logits_requantizes_a_multiplier_when_the_shift_would_pass_the_engine() -> None:
    """A head whose logits need more shift than REQUANTIZER.max_shift leaves (a bias of
    2**36 accumulator steps, shift 20): its multiplier is requantized in the engine's range
    instead, and the logits come within half of the lane."""
    art = load_artifact(SHIPPED)
    head = art.layer(art.output)
    t = {**head.tensors, "mult": np.full(10, 65535, np.int64),
         "shift": np.full(10, 20, np.int64), "bias": np.full(10, 1 << 36, np.int64)}
    art = replace(art, layers=tuple(replace(la, tensors=t) if la is head else la
                                    for la in art.layers))
    images = load_digits(seed=0).x_train[:64]
    peak = logit_peak(art, images)
    fit = fit_logits(art, images)
    k = fit.meta["logit_shift"]
    assert (LANE // 2) << (k - 1) < peak <= (LANE // 2) << k  # the smallest k
    ft = fit.layer(fit.output).tensors
    assert 20 + k > REQUANTIZER.max_shift and int(ft["shift"].max()) <= REQUANTIZER.max_shift
    assert int(ft["mult"].max()) <= REQUANTIZER.mult_range()[1]
    assert logit_peak(fit, images) <= LANE // 2 + 1
