"""README table: does PIM-QAT recover what a realistic ADC loses? (issue 20)

    .venv/bin/python bench/pim_table.py [--runs 5] [--folds 5] [--schemes ...]
        [--operating-point mean|run0] [--methods [fwd adjust psum bn]]
    .venv/bin/python bench/pim_table.py --old-table [old options]   # the table of ed89b72

**The experiment** (default). Every run ``r`` (0..runs-1) uses seed ``r`` and fold ``r`` of
a stratified ``--folds``-fold split of all 1,797 sklearn digits (so 5 runs test on every
image once); a small CNN (``--model cnn``: 3 convs + linear) is trained in float, then
with digital QAT (4-bit fixed-point weights and 4-bit activations on every layer, 4-bit
input), and exported: (a) is its digital integer accuracy.

The ADC of each scheme (``SETTINGS``: cells, group 64, ADC bits) has an **exact step and a
calibrated range**: per layer, the ``--percentile`` of the group sums of the digital model
on the run's first 256 training images, times a scale ``f`` (``Δ = f · R / code_max``; a
larger ``f`` is a coarser step, i.e. ``log2 f`` fewer effective bits over the calibrated
range). **Sweep** (every layer on PIM, printed): ``f`` is doubled from 1 until (b) is 20
points below (a), then bisected in ``log f`` (``--bisect`` steps, and up to 6 more while no
(b) is within ``--tolerance`` of (a) − 20); the ``f`` whose (b) is closest to (a) − 20 is
used for every run and both placements. With ``--operating-point mean`` (default) (a) and
(b) are the means over all runs (the digital models of every run are trained first; (b)
needs no retraining); ``run0`` uses run 0 alone (the table before this option).

Per run, scheme and placement (every GEMM on PIM; first and last layers digital):
(b) the digital artifact on the PIM kernel; (c) PIM-QAT (``--pim-epochs`` with the chip's
arithmetic in the forward pass), exported, on the PIM kernel; (d) the (c) artifact with
thermal noise σ (ADC LSB) for each ``--noise``. ``--methods [fwd adjust psum bn]`` (none
named: all four) adds, every layer on PIM, each in its own PIM-QAT run from the same QAT
model: ``fwd`` forward rescaling during PIM-QAT; ``adjust`` adjusted precision
(``--adjust-epochs`` of fine-tuning of (c) at a step ``2**--adjust-bits`` coarser, i.e.
fractional effective bits, then BN calibration through the noisy chip) at each noise
level; ``psum`` learnable per-column partial-sum scales (folded into the requantizer),
noise-free and at each noise level; ``bn`` a live BN trained during PIM-QAT, folded with
its running statistics, and after the BN calibration of arXiv 2209.08617 through the
noise-free and each noisy chip.

Reported: mean ± std over runs; the gap (a) − (c) with its 95 % t-interval; the recovery
(c − b)/(a − b); a verdict on "PIM-QAT comes within 2 points of digital": holds (interval
below 2), does not hold (interval above 2), or undecided.
"""

from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fpim.flows.metrics import accuracy
from fpim.flows.pim import CALIBRATION_IMAGES, calibrated, fine_tune, pim_qat, to_artifact
from fpim.flows.pim_deploy import digital_accuracy, pim_accuracy
from fpim.flows.quantize import float_model, run_qat
from quant.data import Dataset, load_digits
from quant.pim import PimArith, plan
from quant.torch.export import export
from quant.torch.pim_qat import PimQATConfig, pim_layers, set_adc_ranges_
from quant.torch.qat import QATConfig
from quant.torch.train import TrainConfig, predict
from sim.pim.deploy import calibrate_ranges

# (scheme, cell bits, group size, ADC bits): chosen where (b) fails (see docs/pim.md)
SETTINGS = (("native", 3, 64, 7), ("differential", 3, 64, 6), ("bit_serial", 1, 64, 6))


def sweep_b(digital: object, data: object, acc_a: float, schemes: list[str]) -> None:
    """(b) over ADC bits and range fractions; the step of a 3x3 conv's group sums shown."""
    fracs = (1.0, 0.5, 0.25)
    print(f"(a) digital {acc_a:.2f}; (b) for group 64, ADC step of a 3x3 conv in brackets")
    print("| scheme | ADC bits | " + " | ".join(f"range fraction {f:g}" for f in fracs) + " |")
    print("|---|---|" + "---|" * len(fracs))
    for scheme, cell, group, adc in SETTINGS:
        if scheme not in schemes:
            continue
        for bits in range(adc - 2, adc + 2):
            cells = []
            for frac in fracs:
                a = PimArith(scheme=scheme, cell_bits=cell, group_size=group, adc_bits=bits,
                             range_fraction=frac)
                step = 1 << max(plan(a, 4, 4).adc_shift)
                cells.append(f"{pim_accuracy(digital, data, a):.2f} ({step})")
            print(f"| {scheme} | {bits} | " + " | ".join(cells) + " |", flush=True)


def old_parser(p: argparse.ArgumentParser) -> None:
    """The old table's options (``--old-table``)."""
    p.add_argument("--float-epochs", type=int, default=None)
    p.add_argument("--qat-epochs", type=int, default=None)
    p.add_argument("--pim-epochs", type=int, default=None)
    p.add_argument("--adjust-epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=0.01, help="digital QAT learning rate")
    p.add_argument("--pim-lr", type=float, default=0.003,
                   help="PIM-QAT learning rate (see docs/pim.md for the trials)")
    p.add_argument("--noise", type=float, nargs="+", default=None,
                   help="thermal noise sigma, in ADC LSB (--old-table: two levels)")
    p.add_argument("--schemes", nargs="+", default=[s[0] for s in SETTINGS])
    p.add_argument("--adc-bits", nargs="+", default=[], metavar="SCHEME=BITS",
                   help="override the ADC bits of a scheme")
    p.add_argument("--range-fraction", type=float, default=1.0,
                   help="fraction of the worst-case group sum the ADC range covers")
    p.add_argument("--sweep-b", action="store_true",
                   help="only print (b) for ADC bits around each setting and range "
                        "fractions 1, 1/2, 1/4 (how the settings were chosen)")


def old_table(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """The table of commit ed89b72 (``--old-table``): ResNet-20, one seed, the fixed split
    (359 test images), power-of-two steps over the worst-case group sum; (a) digital, (b)
    PIM, (c) PIM-QAT, (d) (c) with noise, (e) adjusted precision (one ADC bit less) + BN
    calibration, (f) noise-aware fine-tuning."""
    adc_over = {}
    for item in args.adc_bits:
        name, _, bits = item.partition("=")
        if name not in [st[0] for st in SETTINGS] or not bits.isdigit():
            p.error(f"--adc-bits takes SCHEME=BITS with a scheme of "
                    f"{', '.join(st[0] for st in SETTINGS)}, not {item!r}")
        adc_over[name] = int(bits)
    t0 = time.perf_counter()
    data = load_digits()
    fcfg = TrainConfig(epochs=args.float_epochs, lr=0.1, seed=args.seed)
    qcfg = TrainConfig(epochs=args.qat_epochs, lr=args.lr, seed=args.seed)
    pcfg = TrainConfig(epochs=args.pim_epochs, lr=args.pim_lr, seed=args.seed)
    acfg = TrainConfig(epochs=args.adjust_epochs, lr=args.pim_lr / 2, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = float_model("resnet20", data, fcfg, checkpoint=Path(tmp) / "f.pt",
                               progress=args.progress)
    qmodel = run_qat(model, data, QATConfig(scheme="fixed", bits=4, act_bits=4,
                                            first_last_bits=None, input_bits=4),
                     qcfg, progress=args.progress)
    digital = export(qmodel, data.input_shape, calibration=data.x_train[:CALIBRATION_IMAGES])
    acc_a = digital_accuracy(digital, data)
    if args.sweep_b:
        sweep_b(digital, data, acc_a, args.schemes)
        print(f"{time.perf_counter() - t0:.0f} s")
        return
    s1, s2 = args.noise
    lines = [
        f"| scheme | cells | group | ADC bits | (a) digital | (b) PIM, no PIM-QAT | "
        f"(c) PIM-QAT | (d) σ={s1:g} | (e) σ={s1:g} | (f) σ={s1:g} | (d) σ={s2:g} | "
        f"(e) σ={s2:g} | (f) σ={s2:g} |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scheme, cell, group, adc in SETTINGS:
        if scheme not in args.schemes:
            continue
        ts = time.perf_counter()
        adc = adc_over.get(scheme, adc)
        chip = PimArith(scheme=scheme, cell_bits=cell, group_size=group, adc_bits=adc,
                        range_fraction=args.range_fraction)
        acc_b = pim_accuracy(digital, data, chip, seed=args.seed)
        pm = pim_qat(qmodel, data, chip, pcfg, progress=args.progress, desc=f"pim {scheme}")
        art_c = to_artifact(pm, data)
        acc_c = pim_accuracy(art_c, data, chip, seed=args.seed)
        print(f"{scheme}: the PIM-QAT torch model (float requantization) classifies "
              f"{accuracy(predict(pm, data.x_train), data.y_train):.2f} % of the training "
              f"and {accuracy(predict(pm, data.x_test), data.y_test):.2f} % of the test "
              f"images; its integer artifact on the PIM kernel {acc_c:.2f} %", flush=True)
        adj = fine_tune(pm, data, chip.with_(adc_bits=adc - 1), acfg, progress=args.progress)
        row = []
        for s in (s1, s2):
            noisy = chip.with_(noise_lsb=s)
            acc_d = pim_accuracy(art_c, data, noisy, seed=args.seed)
            art_e = to_artifact(calibrated(adj, data, noisy, seed=args.seed), data)
            acc_e = pim_accuracy(art_e, data, noisy, seed=args.seed)
            aware = fine_tune(pm, data, noisy, acfg, progress=args.progress, desc="noise-aware")
            acc_f = pim_accuracy(to_artifact(aware, data), data, noisy, seed=args.seed)
            del aware
            row += [acc_d, acc_e, acc_f]
        del adj, pm
        lines.append(f"| {scheme} | {cell}-bit | {group} | {adc} | {acc_a:.2f} | {acc_b:.2f} | "
                     f"{acc_c:.2f} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
        print(lines[-1], f"({time.perf_counter() - ts:.0f} s)", flush=True)
    print()
    print(f"ResNet-20 on sklearn digits ({len(data.y_train)} train / {len(data.y_test)} test, "
          f"split seed 0), seed {args.seed}: float {args.float_epochs} epochs, digital QAT "
          f"{args.qat_epochs} (lr {args.lr:g}), PIM-QAT {args.pim_epochs} "
          f"(lr {args.pim_lr:g}), adjusted precision "
          f"{args.adjust_epochs} (lr {args.pim_lr / 2:g}) at ADC bits - 1 or with noise; ADC "
          f"range fraction {args.range_fraction:g}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread; {time.perf_counter() - t0:.0f} s")
    print("command: .venv/bin/python bench/pim_table.py "
          f"--seed {args.seed} --float-epochs {args.float_epochs} --qat-epochs "
          f"{args.qat_epochs} --pim-epochs {args.pim_epochs} --pim-lr {args.pim_lr:g} "
          f"--adjust-epochs "
          f"{args.adjust_epochs} --noise {s1:g} {s2:g}"
          + (f" --adc-bits {' '.join(args.adc_bits)}" if args.adc_bits else "")
          + (f" --range-fraction {args.range_fraction:g}" if args.range_fraction != 1 else "")
          + (f" --schemes {' '.join(args.schemes)}"
             if len(args.schemes) < len(SETTINGS) else ""))
    print()
    print("\n".join(lines))


# ---------------------------------------------------------------------------------------
# the experiment of issue 20
# ---------------------------------------------------------------------------------------

CALIBRATION = 256  # training images whose group sums set each layer's ADC range
T95 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306,
       10: 2.262}  # two-sided 95 % t quantiles by sample size


def cv_split(folds: int, fold: int) -> Dataset:
    """Fold ``fold`` of a stratified ``folds``-fold split of all sklearn digits (shuffled
    with seed 0) as the test set, the rest as the training set."""
    from sklearn.model_selection import StratifiedKFold

    d = load_digits()
    x = np.concatenate([d.x_train, d.x_test])
    y = np.concatenate([d.y_train, d.y_test])
    order = np.lexsort((np.arange(len(y)), y))  # a fixed order, whatever the first split
    x, y = x[order], y[order]
    tr, te = list(StratifiedKFold(folds, shuffle=True, random_state=0).split(x, y))[fold]
    return Dataset("digits", x[tr], y[tr], x[te], y[te], d.classes)


def chip_of(scheme: str) -> PimArith:
    cell, group, adc = next((c, g, b) for s_, c, g, b in SETTINGS if s_ == scheme)
    return PimArith(scheme=scheme, cell_bits=cell, group_size=group, adc_bits=adc,
                    pot_step=False)


def scaled(ranges: dict[str, float], f: float) -> dict[str, float]:
    return {k: v * f for k, v in ranges.items()}


METHODS = ("fwd", "adjust", "psum", "bn")  # the method pieces --methods can add


class Prep:
    """One run's data split, digital QAT model, its artifact and (a); the scheme's
    calibrated ranges on demand."""

    def __init__(self, r: int, args: argparse.Namespace) -> None:
        self.r, self.args = r, args
        self.data = cv_split(args.folds, r)
        fcfg = TrainConfig(epochs=args.float_epochs, lr=0.1, seed=r)
        qcfg = TrainConfig(epochs=args.qat_epochs, lr=args.lr, seed=r)
        model, _ = float_model(args.model, self.data, fcfg, progress=args.progress)
        self.qmodel = run_qat(model, self.data, QATConfig(scheme="fixed", bits=4, act_bits=4,
                                                          first_last_bits=None, input_bits=4),
                              qcfg, progress=args.progress)
        self.digital = export(self.qmodel, self.data.input_shape,
                              calibration=self.data.x_train[:CALIBRATION_IMAGES])
        names = [layer.name for layer in self.digital.gemm_layers()]
        self.ends = frozenset({names[0], names[-1]})
        self.a = digital_accuracy(self.digital, self.data)
        self._base: dict[str, dict[str, float]] = {}

    def base(self, scheme: str) -> dict[str, float]:
        if scheme not in self._base:
            self._base[scheme] = calibrate_ranges(
                self.digital, self.data.x_train[:CALIBRATION], chip_of(scheme),
                self.args.percentile)
        return self._base[scheme]


def sweep_scale(preps: list[Prep], scheme: str, bisect: int, tolerance: float = 2.0,
                extra: int = 6) -> tuple[float, list[tuple[float, float, list[float], float]]]:
    """The range scale ``f`` at which the mean (b) over ``preps`` (every layer on PIM) is
    closest to the mean (a) − 20 (module docstring); every evaluated ``(f, mean (b), (b)
    per run, clipped %)``. After ``bisect`` steps, up to ``extra`` more while no point is
    within ``tolerance`` of the target ((b) is not monotone in ``f`` near it)."""
    chip = chip_of(scheme)
    points: list[tuple[float, float, list[float], float]] = []

    def b_at(f: float) -> float:
        clips: dict[str, list[int]] = {}
        bs = [pim_accuracy(p.digital, p.data, chip, ranges=scaled(p.base(scheme), f),
                           clips=clips) for p in preps]
        n = sum(v[0] for v in clips.values())
        b = float(np.mean(bs))
        points.append((f, b, bs, 100.0 * sum(v[1] for v in clips.values()) / max(n, 1)))
        return b

    target = float(np.mean([p.a for p in preps])) - 20
    lo, hi = 1.0, 1.0
    if b_at(1.0) > target:
        while b_at(hi * 2) > target and hi < 2**12:
            hi *= 2
        lo, hi = hi, hi * 2
        for i in range(bisect + extra):
            if i >= bisect and min(abs(p[1] - target) for p in points) <= tolerance:
                break
            mid = math.sqrt(lo * hi)
            if b_at(mid) > target:
                lo = mid
            else:
                hi = mid
    best = min(points, key=lambda p: abs(p[1] - target))
    return best[0], sorted(points, key=lambda p: p[0])


def operating_point(args: argparse.Namespace, prep: Callable[[int], Prep]
                    ) -> tuple[dict[str, float], list[str]]:
    """Each scheme's range scale (from ``--save DIR/sweep.json`` if there) and the sweep's
    table rows. ``--operating-point mean``: (b) averaged over every run; ``run0``: run 0
    only (the table before this option)."""
    import json

    from quant.fileio import write_atomic

    if args.scale:
        print("range scales given (--scale), no sweep: "
              + ", ".join(f"{k} f = {v:g}" for k, v in args.scale.items()), flush=True)
        return dict(args.scale), [f"| {k} | {v:.3f} | (given by --scale) | | | |"
                                  for k, v in args.scale.items()]
    path = Path(args.save) / "sweep.json" if args.save else None
    if path is not None and path.is_file():
        saved = json.loads(path.read_text())
        return saved["scales"], saved["lines"]
    runs = range(args.runs) if args.operating_point == "mean" else range(1)
    preps = [prep(r) for r in runs]
    scales: dict[str, float] = {}
    lines: list[str] = []
    for scheme in args.schemes:
        f, points = sweep_scale(preps, scheme, args.bisect, args.tolerance)
        scales[scheme] = f
        a = float(np.mean([p.a for p in preps]))
        lines += [f"| {scheme} | {pt[0]:.3f} | {pt[1]:.2f} | {a - pt[1]:.2f} | "
                  + " / ".join(f"{b:.2f}" for b in pt[2]) + f" | {pt[3]:.3f} |"
                  for pt in points]
        print(f"{scheme}: scale {f:.3f} (sweep {[(pt[0], pt[1]) for pt in points]})",
              flush=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"scales": scales, "lines": lines}, indent=1))
    return scales, lines


def run_cells(p: Prep, args: argparse.Namespace, scales: dict[str, float]) -> dict:
    """One run: every (scheme, placement) cell at the schemes' range scales."""
    r, data, qmodel, digital = p.r, p.data, p.qmodel, p.digital
    pcfg = TrainConfig(epochs=args.pim_epochs, lr=args.pim_lr, seed=r)
    acfg = TrainConfig(epochs=args.adjust_epochs, lr=args.pim_lr / 2, seed=r)
    out = {"a": p.a, "cells": {}}
    for scheme in args.schemes:
        chip = chip_of(scheme)
        ranges = scaled(p.base(scheme), scales[scheme])
        for place, dig in (("all", frozenset()), ("ends", p.ends)):
            t0 = time.perf_counter()
            cell: dict = {"b": pim_accuracy(digital, data, chip, ranges=ranges, digital=dig)}
            pm = pim_qat(qmodel, data, chip, pcfg, progress=args.progress, digital=dig,
                         ranges=ranges, desc=f"pim {scheme}")
            art_c = to_artifact(pm, data)
            cell["c"] = pim_accuracy(art_c, data, chip, ranges=ranges, digital=dig)
            for s_ in args.noise:
                cell[f"d{s_:g}"] = pim_accuracy(art_c, data, chip.with_(noise_lsb=s_),
                                                seed=r, ranges=ranges, digital=dig)
            if place == "all" and args.methods:
                method_cells(cell, args, p, chip, ranges, pm, pcfg, acfg)
            out["cells"][(scheme, place)] = cell
            print(f"run {r} {scheme} {place}: a {out['a']:.2f} "
                  + " ".join(f"{k} {v:.2f}" for k, v in cell.items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


def method_cells(cell: dict, args: argparse.Namespace, p: Prep, chip: PimArith,
                 ranges: dict[str, float], pm: torch.nn.Module, pcfg: TrainConfig,
                 acfg: TrainConfig) -> None:
    """The ``--methods`` entries of an every-layer-on-PIM cell (module docstring)."""
    r, data, qmodel = p.r, p.data, p.qmodel

    def acc(model: torch.nn.Module, arith: PimArith) -> float:
        return pim_accuracy(to_artifact(model, data), data, arith, seed=r, ranges=ranges)

    if "fwd" in args.methods:
        fwd = pim_qat(qmodel, data, chip, pcfg, PimQATConfig(forward_rescale=True),
                      ranges=ranges, desc="forward rescaling")
        cell["fwd"] = acc(fwd, chip)
    if "adjust" in args.methods:
        adj = copy.deepcopy(pm)
        set_adc_ranges_(adj, scaled(ranges, 2 ** args.adjust_bits))
        adj = fine_tune(adj, data, chip, acfg, progress=args.progress)
        set_adc_ranges_(adj, ranges)
        for s_ in args.noise:
            noisy = chip.with_(noise_lsb=s_)
            cell[f"e{s_:g}"] = acc(calibrated(adj, data, noisy, seed=r), noisy)
    if "psum" in args.methods:
        ps = pim_qat(qmodel, data, chip, pcfg,
                     PimQATConfig(psum_scales="column", psum_lr_scale=args.psum_lr_scale),
                     ranges=ranges, desc="psum scales")
        print("learned partial-sum scales per layer (min..max): " + ", ".join(
            f"{float(s_.min()):.3f}..{float(s_.max()):.3f}"
            for s_ in (m.psum_scale().detach() for m in pim_layers(ps))), flush=True)
        art = to_artifact(ps, data)
        cell["psum"] = pim_accuracy(art, data, chip, ranges=ranges)
        for s_ in args.noise:
            cell[f"psum_d{s_:g}"] = pim_accuracy(art, data, chip.with_(noise_lsb=s_), seed=r,
                                                 ranges=ranges)
    if "bn" in args.methods:
        bn = pim_qat(qmodel, data, chip, pcfg, PimQATConfig(train_bn=True), ranges=ranges,
                     desc="live BN")
        cell["bn_run"] = acc(bn, chip)  # the training's running statistics folded
        cell["bn"] = acc(calibrated(bn, data, chip, seed=r), chip)
        for s_ in args.noise:
            noisy = chip.with_(noise_lsb=s_)
            cell[f"bn_d{s_:g}"] = acc(calibrated(bn, data, noisy, seed=r), noisy)


def mean_sd(v: list[float]) -> str:
    a = np.asarray(v, dtype=np.float64)
    return f"{a.mean():.2f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.2f}"


def verdict(gaps: list[float], bound: float = 2.0) -> tuple[str, str]:
    """95 % t-interval of the mean gap, and whether "gap < bound" holds by it."""
    a = np.asarray(gaps, dtype=np.float64)
    if a.size < 2:
        return f"{a.mean():.2f}", "undecided (one run)"
    h = T95.get(a.size, 1.96) * a.std(ddof=1) / math.sqrt(a.size)
    lo, hi = a.mean() - h, a.mean() + h
    word = "holds" if hi < bound else "does not hold" if lo > bound else "undecided"
    return f"[{lo:.2f}, {hi:.2f}]", word


def saved_run(r: int, args: argparse.Namespace, scales: dict[str, float],
              prep: Callable[[int], Prep]) -> dict:
    """Run ``r`` from ``--save DIR`` if it holds it, else computed (and saved there)."""
    import json

    from quant.fileio import write_atomic

    path = Path(args.save) / f"run{r}.json" if args.save else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text())
        data["cells"] = {tuple(k.split("/")): v for k, v in data["cells"].items()}
        return data
    out = run_cells(prep(r), args, scales)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({**out, "cells": {
            "/".join(k): v for k, v in out["cells"].items()}}, indent=1))
    return out


def experiment(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    preps: dict[int, Prep] = {}

    def prep(r: int) -> Prep:
        if r not in preps:
            preps[r] = Prep(r, args)
        return preps[r]

    if args.print_ranges:
        for r in range(args.runs):
            for scheme in args.schemes:
                print(f"run {r} {scheme}: calibrated ranges "
                      + ", ".join(f"{k} {v:g}" for k, v in prep(r).base(scheme).items()),
                      flush=True)
        return
    scales, sweep = operating_point(args, prep)
    if args.sweep_only:
        print("| scheme | f | mean (b) | (a) − (b) | (b) per run | clipped % |\n"
              "|---|---|---|---|---|---|")
        print("\n".join(sweep))
        print(f"operating point on {args.operating_point}: "
              + ", ".join(f"{k} f = {v:.3f}" for k, v in scales.items())
              + f"; {time.perf_counter() - t0:.0f} s")
        return
    runs = [saved_run(r, args, scales, prep) for r in range(args.runs)]
    noise = [f"{s_:g}" for s_ in args.noise]
    over = "every run" if args.operating_point == "mean" else "run 0"
    print()
    print(f"Sweep (every layer on PIM, (b) averaged over {over}; f = range scale over the "
          f"calibrated ranges; % of conversions clipped):")
    print("| scheme | f | mean (b) | (a) − (b) | (b) per run | clipped % |\n"
          "|---|---|---|---|---|---|")
    print("\n".join(sweep))
    print()
    print("| scheme | layers on PIM | f | (a) digital | (b) PIM | (a) − (b) | (c) PIM-QAT | "
          "gap (a)−(c) | 95 % CI of gap | within 2 points? | recovery (c−b)/(a−b) | "
          + " | ".join(f"(d) σ={s_}" for s_ in noise) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(noise))
    for scheme in args.schemes:
        for place, label in (("all", "every layer"), ("ends", "all but first/last")):
            cells = [run["cells"][(scheme, place)] for run in runs]
            a = [run["a"] for run in runs]
            b = [c["b"] for c in cells]
            c = [c["c"] for c in cells]
            gap = [x - y for x, y in zip(a, c, strict=True)]
            rec = [(y - z) / (x - z) if x != z else float("nan")
                   for x, y, z in zip(a, c, b, strict=True)]
            ci, word = verdict(gap)
            print(f"| {scheme} | {label} | {scales[scheme]:.3f} | {mean_sd(a)} | "
                  f"{mean_sd(b)} | {mean_sd([x - z for x, z in zip(a, b, strict=True)])} | "
                  f"{mean_sd(c)} | {mean_sd(gap)} | {ci} | {word} | {mean_sd(rec)} | "
                  + " | ".join(mean_sd([cl[f"d{s_}"] for cl in cells]) for s_ in noise)
                  + " |")
    if args.methods:
        cols = [("(c) plain", "c")]
        if "fwd" in args.methods:
            cols.append(("(c) forward rescaling", "fwd"))
        if "psum" in args.methods:
            cols += [("(c) column psum scales", "psum")] + [
                (f"psum scales σ={s_}", f"psum_d{s_}") for s_ in noise]
        if "bn" in args.methods:
            cols += [("(c) live BN, running stats", "bn_run"), ("(c) live BN + BN cal.", "bn")]
            cols += [(f"live BN + BN cal. σ={s_}", f"bn_d{s_}") for s_ in noise]
        if "adjust" in args.methods:
            cols += [(f"(e) adjusted {args.adjust_bits:g} bit + BN cal. σ={s_}", f"e{s_}")
                     for s_ in noise]
        print()
        print("Methods (every layer on PIM): | scheme | "
              + " | ".join(c[0] for c in cols) + " |")
        print("|---|" + "---|" * len(cols))
        for scheme in args.schemes:
            cells = [run["cells"][(scheme, "all")] for run in runs]
            print(f"| {scheme} | " + " | ".join(mean_sd([c[k] for c in cells])
                                                for _, k in cols) + " |")
        print()
        print("Methods, noise-free (every layer on PIM): | scheme | method | (c) | gap (a)−(c) "
              "| 95 % CI of gap | within 2 points? | (c) per run |\n"
              "|---|---|---|---|---|---|---|")
        for scheme in args.schemes:
            cells = [run["cells"][(scheme, "all")] for run in runs]
            a = [run["a"] for run in runs]
            for label, k in cols:
                if "σ=" in label:
                    continue
                c = [cl[k] for cl in cells]
                gap = [x - y for x, y in zip(a, c, strict=True)]
                ci, word = verdict(gap)
                print(f"| {scheme} | {label.removeprefix('(c) ')} | {mean_sd(c)} | "
                      f"{mean_sd(gap)} | {ci} | {word} | "
                      + " / ".join(f"{v:.2f}" for v in c) + " |")
    print()
    print(f"{args.model} on sklearn digits, {args.runs} runs (run r: seed r, test fold r of "
          f"{args.folds}-fold stratified CV over 1,797 images); float {args.float_epochs} "
          f"epochs, QAT {args.qat_epochs} (lr {args.lr:g}), PIM-QAT {args.pim_epochs} "
          f"(lr {args.pim_lr:g}); ranges at the {args.percentile:g}th percentile of "
          f"{CALIBRATION} training images; operating point on {over}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread; "
          f"{time.perf_counter() - t0:.0f} s")
    print("command: .venv/bin/python bench/pim_table.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k not in ("old_table", "progress", "methods", "sweep_b", "adc_bits",
                     "range_fraction", "seed", "save", "sweep_only",
                     "print_ranges")
        and not (k == "psum_lr_scale" and v == 1.0) and k != "scale")
          + (" --scale " + " ".join(f"{k}={v:g}" for k, v in args.scale.items())
             if args.scale else "")
          + (" --methods " + " ".join(args.methods) if args.methods else ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old-table", action="store_true",
                   help="the table of commit ed89b72 (ResNet-20, one seed, power-of-two "
                        "steps); its options as then")
    p.add_argument("--seed", type=int, default=0, help="(--old-table) the seed")
    old_parser(p)
    p.add_argument("--model", default="cnn", help="model of the experiment (default cnn)")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--percentile", type=float, default=99.9,
                   help="percentile of the group sums that sets each layer's ADC range")
    p.add_argument("--bisect", type=int, default=4, help="bisection steps of the sweep")
    p.add_argument("--tolerance", type=float, default=2.0,
                   help="bisect further (up to 6 steps) until the mean (b) of a point is "
                        "within this of (a) − 20 (default 2)")
    p.add_argument("--methods", nargs="*", default=None, metavar="METHOD",
                   help=f"also the method pieces named ({', '.join(METHODS)}; none named: "
                        f"all), every layer on PIM (module docstring)")
    p.add_argument("--psum-lr-scale", type=float, default=1.0,
                   help="--methods psum: gradient factor of the partial-sum scales")
    p.add_argument("--print-ranges", action="store_true",
                   help="only train the digital models and print each layer's calibrated "
                        "ADC range (before the scale f) per run and scheme")
    p.add_argument("--sweep-only", action="store_true",
                   help="only train the digital models and print the operating-point sweep")
    p.add_argument("--operating-point", choices=("mean", "run0"), default="mean",
                   help="choose each scheme's range scale on (b) averaged over the runs "
                        "(default) or on run 0 only (the table before this option)")
    p.add_argument("--scale", nargs="+", default=[], metavar="SCHEME=F",
                   help="use range scale F for each scheme instead of sweeping (e.g. the f "
                        "an earlier --sweep-only printed); every scheme of --schemes")
    p.add_argument("--adjust-bits", type=float, default=0.5,
                   help="adjusted precision: effective ADC bits fewer in training")
    p.add_argument("--save", default=None, metavar="DIR",
                   help="keep each run's results in DIR/run<r>.json and reuse those there "
                        "(resume; the same options must be given)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    if args.old_table:
        for k, v in OLD_DEFAULTS.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        old_table(args, p)
        return
    for k, v in NEW_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.methods is None:
        args.methods = []
    else:
        bad = [m for m in args.methods if m not in METHODS]
        if bad:
            p.error(f"--methods takes {', '.join(METHODS)}, not {bad[0]!r}")
        args.methods = [m for m in METHODS if m in args.methods or not args.methods]
    scale: dict[str, float] = {}
    for item in args.scale:
        name, _, val = item.partition("=")
        try:
            f = float(val)
        except ValueError:
            f = math.nan
        if name not in args.schemes or not 0 < f < math.inf:
            p.error(f"--scale takes SCHEME=F with a scheme of --schemes "
                    f"({', '.join(args.schemes)}) and F > 0, not {item!r}")
        scale[name] = f
    if scale and set(scale) != set(args.schemes):
        p.error(f"--scale must give every scheme of --schemes ({', '.join(args.schemes)}), "
                f"not only {', '.join(scale)}")
    args.scale = scale
    if not 1 <= args.runs <= args.folds or args.folds < 2:
        p.error(f"--runs must be 1..--folds and --folds at least 2, not {args.runs}, "
                f"{args.folds}")
    experiment(args)


# defaults of the options the two tables share
OLD_DEFAULTS = {"float_epochs": 30, "qat_epochs": 10, "pim_epochs": 15, "adjust_epochs": 5,
                "noise": [0.25, 0.5]}
NEW_DEFAULTS = {"float_epochs": 20, "qat_epochs": 8, "pim_epochs": 10, "adjust_epochs": 3,
                "noise": [0.05, 0.25, 0.5]}


if __name__ == "__main__":
    main()
