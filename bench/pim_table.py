"""README table: does PIM-QAT recover what a realistic ADC loses? (issue 20)

    .venv/bin/python bench/pim_table.py [--runs 5] [--folds 5] [--schemes ...] [--methods]
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
range). **Sweep** (run 0, every layer on PIM, printed): ``f`` is doubled from 1 until (b)
is 20 points below (a), then bisected in ``log f`` (``--bisect`` steps); the ``f`` whose (b)
is closest to (a) − 20 is used for every run and both placements.

Per run, scheme and placement (every GEMM on PIM; first and last layers digital):
(b) the digital artifact on the PIM kernel; (c) PIM-QAT (``--pim-epochs`` with the chip's
arithmetic in the forward pass), exported, on the PIM kernel; (d) the (c) artifact with
thermal noise σ (ADC LSB) for each ``--noise``. ``--methods`` adds, every layer on PIM:
forward rescaling during PIM-QAT, and adjusted precision (``--adjust-epochs`` of
fine-tuning at a step ``2**--adjust-bits`` coarser, then BN calibration through the noisy
chip) at each noise level.

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
from quant.torch.pim_qat import PimQATConfig, set_adc_ranges_
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


def sweep_scale(digital: object, data: Dataset, chip: PimArith, ranges: dict[str, float],
                acc_a: float, bisect: int) -> tuple[float, list[tuple[float, float, float]]]:
    """The range scale ``f`` whose (b) is closest to (a) − 20 (module docstring); every
    evaluated ``(f, b, clipped %)``."""
    points: list[tuple[float, float, float]] = []

    def b_at(f: float) -> float:
        clips: dict[str, list[int]] = {}
        b = pim_accuracy(digital, data, chip, ranges=scaled(ranges, f), clips=clips)
        n = sum(v[0] for v in clips.values())
        points.append((f, b, 100.0 * sum(v[1] for v in clips.values()) / max(n, 1)))
        return b

    target = acc_a - 20
    lo, hi = 1.0, 1.0
    if b_at(1.0) > target:
        while b_at(hi * 2) > target and hi < 2**12:
            hi *= 2
        lo, hi = hi, hi * 2
        for _ in range(bisect):
            mid = math.sqrt(lo * hi)
            if b_at(mid) > target:
                lo = mid
            else:
                hi = mid
    best = min(points, key=lambda p: abs(p[1] - target))
    return best[0], sorted(points)


def run_cells(r: int, args: argparse.Namespace, scales: dict[str, float] | None,
              sweep_out: list[str]) -> dict:
    """One run: its digital model and every (scheme, placement) cell; with ``scales``
    None (run 0) the scales are swept first and returned in the result."""
    data = cv_split(args.folds, r)
    fcfg = TrainConfig(epochs=args.float_epochs, lr=0.1, seed=r)
    qcfg = TrainConfig(epochs=args.qat_epochs, lr=args.lr, seed=r)
    pcfg = TrainConfig(epochs=args.pim_epochs, lr=args.pim_lr, seed=r)
    acfg = TrainConfig(epochs=args.adjust_epochs, lr=args.pim_lr / 2, seed=r)
    model, _ = float_model(args.model, data, fcfg, progress=args.progress)
    qmodel = run_qat(model, data, QATConfig(scheme="fixed", bits=4, act_bits=4,
                                            first_last_bits=None, input_bits=4),
                     qcfg, progress=args.progress)
    digital = export(qmodel, data.input_shape, calibration=data.x_train[:CALIBRATION_IMAGES])
    names = [layer.name for layer in digital.gemm_layers()]
    ends = frozenset({names[0], names[-1]})
    out = {"a": digital_accuracy(digital, data), "cells": {}, "scales": dict(scales or {})}
    for scheme in args.schemes:
        chip = chip_of(scheme)
        base = calibrate_ranges(digital, data.x_train[:CALIBRATION], chip, args.percentile)
        if scheme not in out["scales"]:
            f, points = sweep_scale(digital, data, chip, base, out["a"], args.bisect)
            out["scales"][scheme] = f
            sweep_out += [f"| {scheme} | {p[0]:.3f} | {p[1]:.2f} | {p[2]:.3f} |"
                          for p in points]
            print(f"{scheme}: scale {f:.3f} (sweep {points})", flush=True)
        ranges = scaled(base, out["scales"][scheme])
        for place, dig in (("all", frozenset()), ("ends", ends)):
            t0 = time.perf_counter()
            cell: dict = {"b": pim_accuracy(digital, data, chip, ranges=ranges, digital=dig)}
            pm = pim_qat(qmodel, data, chip, pcfg, progress=args.progress, digital=dig,
                         ranges=ranges, desc=f"pim {scheme}")
            art_c = to_artifact(pm, data)
            cell["c"] = pim_accuracy(art_c, data, chip, ranges=ranges, digital=dig)
            for s_ in args.noise:
                cell[f"d{s_:g}"] = pim_accuracy(art_c, data, chip.with_(noise_lsb=s_),
                                                seed=r, ranges=ranges, digital=dig)
            if args.methods and place == "all":
                fwd = pim_qat(qmodel, data, chip, pcfg, PimQATConfig(forward_rescale=True),
                              ranges=ranges, desc="forward rescaling")
                cell["fwd"] = pim_accuracy(to_artifact(fwd, data), data, chip, ranges=ranges)
                adj = copy.deepcopy(pm)
                set_adc_ranges_(adj, scaled(ranges, 2 ** args.adjust_bits))
                adj = fine_tune(adj, data, chip, acfg, progress=args.progress)
                set_adc_ranges_(adj, ranges)
                for s_ in args.noise:
                    noisy = chip.with_(noise_lsb=s_)
                    art_e = to_artifact(calibrated(adj, data, noisy, seed=r), data)
                    cell[f"e{s_:g}"] = pim_accuracy(art_e, data, noisy, seed=r, ranges=ranges)
            out["cells"][(scheme, place)] = cell
            print(f"run {r} {scheme} {place}: a {out['a']:.2f} "
                  + " ".join(f"{k} {v:.2f}" for k, v in cell.items())
                  + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    return out


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


def saved_run(r: int, args: argparse.Namespace, scales: dict[str, float] | None,
              sweep: list[str]) -> dict:
    """Run ``r`` from ``--save DIR`` if it holds it, else computed (and saved there)."""
    import json

    from quant.fileio import write_atomic

    path = Path(args.save) / f"run{r}.json" if args.save else None
    if path is not None and path.is_file():
        data = json.loads(path.read_text())
        sweep += data["sweep"]
        data["cells"] = {tuple(k.split("/")): v for k, v in data["cells"].items()}
        return data
    before = len(sweep)
    out = run_cells(r, args, scales, sweep)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({**out, "sweep": sweep[before:], "cells": {
            "/".join(k): v for k, v in out["cells"].items()}}, indent=1))
    return out


def experiment(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    sweep: list[str] = []
    runs = [saved_run(0, args, None, sweep)]
    for r in range(1, args.runs):
        runs.append(saved_run(r, args, runs[0]["scales"], sweep))
    noise = [f"{s_:g}" for s_ in args.noise]
    print()
    print("Sweep (run 0, every layer on PIM; f = range scale over the calibrated ranges, "
          "(b) accuracy, % of conversions clipped):")
    print("| scheme | f | (b) | clipped % |\n|---|---|---|---|")
    print("\n".join(sweep))
    print()
    print("| scheme | layers on PIM | f | (a) digital | (b) PIM | (c) PIM-QAT | gap (a)−(c) "
          "| 95 % CI of gap | within 2 points? | recovery (c−b)/(a−b) | "
          + " | ".join(f"(d) σ={s_}" for s_ in noise) + " |")
    print("|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(noise))
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
            print(f"| {scheme} | {label} | {runs[0]['scales'][scheme]:.3f} | {mean_sd(a)} | "
                  f"{mean_sd(b)} | {mean_sd(c)} | {mean_sd(gap)} | {ci} | {word} | "
                  f"{mean_sd(rec)} | "
                  + " | ".join(mean_sd([cl[f"d{s_}"] for cl in cells]) for s_ in noise)
                  + " |")
    if args.methods:
        print()
        print("Methods (every layer on PIM): | scheme | (c) plain | (c) forward rescaling | "
              + " | ".join(f"(e) adjusted {args.adjust_bits:g} bit + BN cal., σ={s_}"
                           for s_ in noise) + " |")
        print("|---|---|---|" + "---|" * len(noise))
        for scheme in args.schemes:
            cells = [run["cells"][(scheme, "all")] for run in runs]
            print(f"| {scheme} | {mean_sd([c['c'] for c in cells])} | "
                  f"{mean_sd([c['fwd'] for c in cells])} | "
                  + " | ".join(mean_sd([c[f"e{s_}"] for c in cells]) for s_ in noise) + " |")
    print()
    print(f"{args.model} on sklearn digits, {args.runs} runs (run r: seed r, test fold r of "
          f"{args.folds}-fold stratified CV over 1,797 images); float {args.float_epochs} "
          f"epochs, QAT {args.qat_epochs} (lr {args.lr:g}), PIM-QAT {args.pim_epochs} "
          f"(lr {args.pim_lr:g}); ranges at the {args.percentile:g}th percentile of "
          f"{CALIBRATION} training images; torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread; {time.perf_counter() - t0:.0f} s")
    print("command: .venv/bin/python bench/pim_table.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if k not in ("old_table", "progress", "methods", "sweep_b", "adc_bits",
                     "range_fraction", "seed", "save"))
          + (" --methods" if args.methods else ""))


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
    p.add_argument("--methods", action="store_true",
                   help="also forward rescaling and adjusted precision + BN calibration")
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
