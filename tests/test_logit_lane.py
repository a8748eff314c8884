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
from quant.infer import quantize_input, run_artifact
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


def test_an_untrained_vit_saturates_alike_at_every_level() -> None:
    """The untrained ViT of tests/test_vit_graph.py (exported at the finest logit scale):
    its logits reach 53,063 before saturation."""
    from quant.torch.export import export
    from quant.torch.qat import QATConfig
    from quant.torch.vit import vit_digits
    from quant.torch.vit_qat import quantize_vit

    torch.manual_seed(0)
    images = np.random.default_rng(2).random((16, 1, 8, 8))
    q = quantize_vit(vit_digits(), QATConfig(scheme="fixed", bits=8, act_bits=8,
                                             learn_clip=False), torch.as_tensor(images).float())
    art = export(q, (1, 8, 8))
    assert int(np.abs(raw_logits(art, images)).max()) == 53063
    accel = load_accelerator("xczu9eg", ["engine.weight_bits=8", "engine.act_bits=8",
                                         "engine.act_signed=true", "engine.acc_bits=32"])
    logits = check_levels(art, images, accel)
    assert (np.abs(logits) == LANE).sum() == 19
