"""README table: why PIM-QAT exists — ResNet-20 on digits, digital vs PIM vs PIM-QAT.

    .venv/bin/python bench/pim_table.py [--seed 0] [--float-epochs 30] [--qat-epochs 10]
        [--pim-epochs 15] [--pim-lr 0.003] [--adjust-epochs 5] [--noise 0.25 0.5]

One float ResNet-20 (sklearn digits, fixed split) and one digital QAT model (4-bit fixed
point weights and 4-bit activations on *every* layer, 4-bit input, so every GEMM fits the
macro cells), exported to an integer artifact. Then, for each decomposition scheme with
its documented ADC bits and group size (``SETTINGS``; 1-bit cells for bit-serial, 3-bit
magnitude cells for native/differential, ADC range covering the worst-case group sum;
``--adc-bits SCHEME=BITS`` and ``--range-fraction`` evaluate other settings):

(a) digital: the artifact with the reference integer GEMM;
(b) PIM: the same artifact with every GEMM on the PIM kernel (``sim.pim.pim_gemm``);
(c) PIM-QAT: the QAT model converted with ``quant.torch.pim_qat`` and trained ``--pim-epochs``
    with the chip's arithmetic in the loop, exported, evaluated on the PIM kernel;
(d) the (c) artifact on the chip with thermal noise σ (in ADC LSB, per conversion, seed
    fixed) for each ``--noise`` level;
(e) the (c) model fine-tuned ``--adjust-epochs`` at one ADC bit less (adjusted precision),
    BN-calibrated through the noisy chip model (512 training images), exported and
    evaluated on the noisy chip at its nominal bits;
(f) the (c) model fine-tuned ``--adjust-epochs`` with the chip's thermal noise in the
    forward pass (noise-aware training, chip's bits, no BN calibration), evaluated on the
    noisy chip.

Every accuracy is integer inference of an artifact on the 359 test images. Prints a
markdown table and the command.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from fpim.flows.metrics import accuracy
from fpim.flows.pim import calibrated, fine_tune, pim_qat, to_artifact
from fpim.flows.pim_deploy import digital_accuracy, pim_accuracy
from fpim.flows.quantize import float_model, run_qat
from quant.data import load_digits
from quant.pim import PimArith, plan
from quant.torch.export import export
from quant.torch.qat import QATConfig
from quant.torch.train import TrainConfig, predict

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
    p.add_argument("--float-epochs", type=int, default=30)
    p.add_argument("--qat-epochs", type=int, default=10)
    p.add_argument("--pim-epochs", type=int, default=15)
    p.add_argument("--adjust-epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01, help="digital QAT learning rate")
    p.add_argument("--pim-lr", type=float, default=0.003,
                   help="PIM-QAT learning rate (see docs/pim.md for the trials)")
    p.add_argument("--noise", type=float, nargs=2, default=(0.25, 0.5),
                   help="thermal noise sigma, in ADC LSB (two levels)")
    p.add_argument("--schemes", nargs="+", default=[s[0] for s in SETTINGS])
    p.add_argument("--adc-bits", nargs="+", default=[], metavar="SCHEME=BITS",
                   help="override the ADC bits of a scheme")
    p.add_argument("--range-fraction", type=float, default=1.0,
                   help="fraction of the worst-case group sum the ADC range covers")
    p.add_argument("--sweep-b", action="store_true",
                   help="only print (b) for ADC bits around each setting and range "
                        "fractions 1, 1/2, 1/4 (how the settings were chosen)")


def old_table(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
    """The table of commit ed89b72: one seed, fixed split, ResNet-20, power-of-two steps."""
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
    digital = export(qmodel, data.input_shape)
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


if __name__ == "__main__":
    main()
