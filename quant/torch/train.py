"""Seeded training and evaluation loops for float training and QAT (torch, CPU).

Deterministic for a given seed: ``torch.manual_seed``, deterministic algorithms, one thread,
and batches drawn from a seeded ``torch.Generator`` (no DataLoader workers); bit-identical
across x86-64 machines with AVX2 under the CPU dispatch pins of :mod:`quant.torch.dispatch`
(docs/determinism.md).
SGD with Nesterov momentum and a cosine learning-rate schedule; optional augmentation by a
random shift of up to ``shift`` pixels (zero fill), which suits digits (no flips).
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quant.errors import check_choice, check_int_range, check_positive, check_real, check_seed
from quant.progress import PERIOD, PeriodicLines

OPTIMIZERS = ("sgd", "adamw")


@dataclass(frozen=True)
class TrainConfig:
    """Members:
    epochs: passes over the training set, 0..10000.
    lr: initial learning rate (> 0), cosine-annealed to 0.
    batch_size: images per step, 1..65536.
    weight_decay: L2 factor (>= 0).
    momentum: SGD momentum in [0, 1).
    seed: seeds initialization order, batch order and augmentation.
    shift: augmentation: random translation of up to this many pixels (0 = none).
    optimizer: ``sgd`` (Nesterov momentum, weight decay on every parameter) or ``adamw``
        (Loshchilov & Hutter, arXiv 1711.05101; betas (``momentum``, 0.999), decoupled weight
        decay on matrices and embeddings only, not on biases and norms: the usual ViT recipe).
    label_smoothing: cross-entropy label smoothing in [0, 1) (arXiv 1512.00567; 0 = none).
    mixup: mixup (arXiv 1710.09412): each batch is mixed with a shuffled copy of itself at a
        weight drawn uniformly from [0, mixup], mixup in [0, 0.5] (0 = none).
    """

    epochs: int = 30
    lr: float = 0.1
    batch_size: int = 128
    weight_decay: float = 5e-4
    momentum: float = 0.9
    seed: int = 0
    shift: int = 1
    optimizer: str = "sgd"
    label_smoothing: float = 0.0
    mixup: float = 0.0

    def __post_init__(self) -> None:
        check_int_range("epochs", self.epochs, 0, 10000)
        check_int_range("batch_size", self.batch_size, 1, 65536)
        check_int_range("shift", self.shift, 0, 16)
        check_positive("lr", self.lr)
        check_real("weight_decay", self.weight_decay, 0)
        check_real("momentum", self.momentum, 0, 1, hi_open=True)
        check_seed("seed", self.seed)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_real("mixup", self.mixup, 0, 0.5)
        check_real("label_smoothing", self.label_smoothing, 0, 1, hi_open=True)


def set_determinism(seed: int, threads: int | None = 1) -> None:
    """Seed torch, request deterministic kernels, fix the intra-op thread count and check that
    the CPU dispatch pins are in effect (:func:`check_cpu_dispatch`).

    One thread by default: results then do not depend on the core count, and small CPU
    models train faster on one thread than on two contended ones.
    """
    if threads is not None:
        torch.set_num_threads(check_int_range("threads", threads, 1, 1024))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.mkldnn.deterministic = True
    torch.set_float32_matmul_precision("highest")  # float32 GEMMs stay float32 (no TF32/bf16)
    check_cpu_dispatch()


def check_cpu_dispatch() -> None:
    """Warn if ATen does not run the kernels ``ATEN_CPU_CAPABILITY`` asks for.

    That happens when torch computed something before :mod:`quant.torch` was imported: torch
    then fixed its kernels for the rest of the process, and results are reproducible on
    this machine only.
    """
    want = os.environ.get("ATEN_CPU_CAPABILITY")
    have = torch.backends.cpu.get_cpu_capability()
    if want is not None and have.lower() != want.lower():
        warnings.warn(f"torch runs its {have} kernels, not the pinned {want}: training is "
                      f"reproducible on this machine only; import quant.torch (or fpim) before "
                      f"torch computes anything (docs/determinism.md)", stacklevel=3)


def random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by a random (dy, dx) in -shift..shift, filling with zeros."""
    if shift == 0:
        return x
    b, _, h, w = x.shape
    d = torch.randint(-shift, shift + 1, (b, 2), generator=gen)
    xp = F.pad(x, (shift, shift, shift, shift))
    out = torch.empty_like(x)
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            sel = (d[:, 0] == dy) & (d[:, 1] == dx)
            if sel.any():
                out[sel] = xp[sel, :, shift + dy:shift + dy + h, shift + dx:shift + dx + w]
    return out


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` names, over ``model``'s parameters."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig,
          gen: torch.Generator) -> torch.Tensor:
    """Cross-entropy of one batch; with ``cfg.mixup``, of the batch mixed with a permutation
    of itself at a uniform random weight (mixup with Beta(1, 1), arXiv 1710.09412)."""
    if cfg.mixup == 0:
        return F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
    lam = float(torch.rand((), generator=gen)) * cfg.mixup
    j = torch.randperm(x.shape[0], generator=gen)
    out = model((1 - lam) * x + lam * x[j])
    return (1 - lam) * F.cross_entropy(out, y, label_smoothing=cfg.label_smoothing) + \
        lam * F.cross_entropy(out, y[j], label_smoothing=cfg.label_smoothing)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: TrainConfig, *,
          desc: str = "train", progress: bool = True,
          on_epoch_start: Callable[[int], None] | None = None) -> list[float]:
    """Train ``model`` in place; returns the mean training loss of each epoch. With
    ``progress``: a bar on a terminal, else a line every :data:`quant.progress.PERIOD`
    seconds on stderr."""
    from tqdm import tqdm

    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    n = xt.shape[0]
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1))))
    losses = []
    tty = sys.stderr.isatty()
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False, unit="step",
               file=None if tty else PeriodicLines(), mininterval=0.1 if tty else PERIOD)
    for epoch in range(cfg.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = random_shift(xt[idx], cfg.shift, gen)
            loss = _loss(model, xb, yt[idx], cfg, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            bar.update(1)
        losses.append(tot / n)
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    return losses


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Argmax predictions of ``model`` in eval mode."""
    model.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = [model(xt[i:i + batch_size]).argmax(1) for i in range(0, xt.shape[0], batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.int64)
