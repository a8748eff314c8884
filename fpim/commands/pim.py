"""``fpim pim``: run quantized models on processing-in-memory macros."""

from __future__ import annotations

import argparse

from fpim.output import format_table, print_json

EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7        # cycles, energy
  fpim pim simulate --artifact runs/a --macro my_macro.yaml --json
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --noise-lsb 0.5 --seed 1
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --out runs/pim   # PIM-QAT
"""

EVAL_EXAMPLES = """examples:
  fpim pim eval --artifact runs/a --macro sram512x128_adc7
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --noise-lsb 1.0 --seed 3 --json
  fpim pim eval --artifact runs/a --macro sram512x128_adc7 --adc-bits 4 --group-size 64

Accuracy on the test split of the artifact's dataset (meta "data"; --data to override),
integer inference with every conv/linear GEMM on the PIM kernel (sim.pim.pim_gemm), next
to the digital integer accuracy of the same artifact.
"""

SIM_EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7 --batch 8 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pim", help="processing-in-memory: macro cost simulation",
        description="Map a quantized artifact onto PIM crossbar macros (quant/pim/arith.py defines "
                    "the arithmetic, sim/pim.py the macro and its cost model).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pim_sub = p.add_subparsers(dest="pim_command", metavar="PIM_COMMAND", required=True,
                               parser_class=type(p))
    s = pim_sub.add_parser(
        "simulate", help="cycles, conversions and energy per layer and in total",
        description="Cycles, ADC conversions, energy and latency of every conv/linear layer "
                    "of an artifact on a chip of PIM macros, and the totals per inference.",
        epilog=SIM_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--artifact", required=True, metavar="DIR", help="quantized artifact")
    s.add_argument("--macro", required=True, metavar="PRESET_OR_YAML",
                   help="PIM macro preset (configs/pim/*.yaml, e.g. sram512x128_adc7) or file")
    s.add_argument("--batch", type=int, default=1, help="inputs per inference (default 1)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=run_simulate)

    e = pim_sub.add_parser(
        "eval", help="accuracy of an artifact deployed on the PIM macro model",
        description="Integer inference of an artifact with every conv/linear GEMM computed "
                    "by the PIM kernel (groups, ADC, non-linearity, seeded thermal noise, "
                    "digital shift-add); prints PIM and digital test accuracy.",
        epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--artifact", required=True, metavar="DIR", help="quantized artifact")
    _macro_args(e)
    e.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    e.add_argument("--data", default=None,
                   help="dataset (digits, cifar10, folder); default: the artifact's meta")
    e.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate the first N test images only")
    e.add_argument("--json", action="store_true", help="print JSON instead of text")
    e.set_defaults(func=run_eval)

    t = pim_sub.add_parser(
        "train", help="PIM-QAT: train a model with the macro's arithmetic in the loop",
        description="Train (or load) a float model, run digital QAT (fixed-point weights on "
                    "every layer), then PIM-QAT with the macro's group sums and ADC in the "
                    "forward pass (optionally at fewer ADC bits: adjusted precision), "
                    "optionally BN-calibrate through the chip's non-ideal model, write the "
                    "integer artifact and print digital, PIM-without-PIM-QAT and PIM-QAT "
                    "accuracy on the PIM kernel.",
        epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--model", default="resnet20", help="model (default resnet20)")
    t.add_argument("--width", type=int, default=1, help="channel multiplier (default 1)")
    t.add_argument("--data", default="digits", help="dataset (default digits)")
    t.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    _macro_args(t)
    t.add_argument("--bits", type=int, default=4, help="fixed-point weight bits (default 4)")
    t.add_argument("--act-bits", type=int, default=4, help="activation bits (default 4)")
    t.add_argument("--input-bits", type=int, default=4, help="input image bits (default 4)")
    t.add_argument("--train-adc-bits", type=int, default=None,
                   help="ADC bits during PIM-QAT (adjusted precision; default: the chip's)")
    t.add_argument("--train-noise-lsb", type=float, default=0.0,
                   help="thermal noise during PIM-QAT, LSB (default 0)")
    t.add_argument("--bn-calibrate", action="store_true",
                   help="BN calibration through the chip's non-ideal model before export")
    t.add_argument("--backward-scale", type=float, default=1.0,
                   help="straight-through gradient factor through the ADC (default 1)")
    t.add_argument("--forward-rescale", action="store_true",
                   help="rescale PIM outputs to the ideal output magnitude")
    t.add_argument("--float-epochs", type=int, default=30, help="float epochs (default 30)")
    t.add_argument("--qat-epochs", type=int, default=10, help="digital QAT epochs (10)")
    t.add_argument("--epochs", type=int, default=15,
                   help="PIM-QAT epochs (default 15, as in bench/pim_table.py)")
    t.add_argument("--lr", type=float, default=0.01,
                   help="digital QAT learning rate, > 0 (default 0.01)")
    t.add_argument("--pim-lr", type=float, default=0.003,
                   help="PIM-QAT learning rate, > 0 (default 0.003; 0.01 diverges in the "
                        "documented experiment, see docs/pim.md)")
    t.add_argument("--float-checkpoint", default=None, metavar="F",
                   help="load the float model from F if it exists, else train and save it")
    t.add_argument("--seed", type=int, default=0, help="training and noise seed (default 0)")
    t.add_argument("--out", default=None, metavar="DIR", help="write the PIM-QAT artifact")
    t.add_argument("--progress", action="store_true", help="show training progress bars")
    t.add_argument("--json", action="store_true", help="print JSON instead of text")
    t.set_defaults(func=run_train)


def run_simulate(args: argparse.Namespace) -> int:
    from quant.artifact import load_artifact
    from quant.errors import check_int_range
    from sim.pim import layer_cost, load_macro

    batch = check_int_range("batch", args.batch, 1, 1 << 20)
    macro = load_macro(args.macro)
    art = load_artifact(args.artifact)
    costs = []
    for layer in art.gemm_layers():
        m, k, n = layer.gemm_dims
        w_bits = max(2, layer.rows.max_abs_int().bit_length() + 1)
        x_fmt = art.value(layer.inputs[0]).fmt
        costs.append(layer_cost(macro, layer.name, m, k, n * batch, w_bits, x_fmt.bits,
                                x_fmt.signed))
    total_cycles = sum(c.cycles for c in costs)
    totals = {
        "cycles": total_cycles,
        "conversions": sum(c.conversions for c in costs),
        "energy_uj": sum(c.energy_uj for c in costs),
        "latency_us": total_cycles / macro.clock_mhz,
        "area_mm2": macro.macros * macro.area_mm2,
        "batch": batch,
    }
    if args.json:
        print_json({"macro": macro.to_dict(), "layers": [c.__dict__ for c in costs],
                    "totals": totals})
        return 0
    a = macro.arith
    print(f"macro {macro.name}: {macro.macros} x {macro.rows}x{macro.cols}, {a.scheme}, "
          f"group {a.group_size}, {a.adc_bits}-bit ADC x {macro.adcs}, "
          f"{macro.clock_mhz:g} MHz{' (approximation)' if macro.approximation else ''}")
    rows = [(c.name, c.m, c.k, c.n, c.tiles, c.passes, c.replication, c.conversions, c.cycles,
             f"{c.energy_uj:.3f}") for c in costs]
    print(format_table(("layer", "M", "K", "N", "tiles", "passes", "copies", "conversions",
                        "cycles", "energy_uJ"), rows))
    print(f"total: {totals['cycles']} cycles = {totals['latency_us']:.1f} us per batch of "
          f"{batch}, {totals['conversions']} conversions, {totals['energy_uj']:.3f} uJ, "
          f"area {totals['area_mm2']:.2f} mm^2")
    return 0


TRAIN_EXAMPLES = """examples:
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --out runs/pim-bs
  fpim pim train --macro sram512x128_adc7 --scheme native --cell-bits 3 --adc-bits 4 \\
      --group-size 64 --epochs 5 --pim-lr 0.003 --float-checkpoint ckpt/r20.pt --json
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --noise-lsb 1.0 \\
      --train-adc-bits 3 --bn-calibrate          # adjusted precision + BN calibration

Weights are fixed point on every layer (first and last too) so that every GEMM fits the
macro; see docs/pim.md.
"""


def _macro_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--macro", required=True, metavar="PRESET_OR_YAML",
                   help="PIM macro preset (configs/pim/*.yaml, e.g. sram512x128_adc7) or file")
    p.add_argument("--scheme", default=None,
                   help="override the decomposition scheme (native, differential, bit_serial)")
    p.add_argument("--cell-bits", type=int, default=None, help="override cell bits")
    p.add_argument("--adc-bits", type=int, default=None, help="override the ADC bits")
    p.add_argument("--group-size", type=int, default=None,
                   help="override the rows summed per conversion (at most the macro rows)")
    p.add_argument("--range-fraction", type=float, default=None,
                   help="override the fraction of the worst-case group sum the ADC covers")
    p.add_argument("--nonlinearity", type=float, default=None,
                   help="override the transfer-curve beta, [0, 1)")
    p.add_argument("--noise-lsb", type=float, default=None,
                   help="thermal noise sigma in ADC LSB, >= 0 (default: the preset's)")


def macro_from_args(args: argparse.Namespace):
    """The preset with the command-line overrides applied (validated like the preset)."""
    from dataclasses import replace

    from sim.pim import load_macro

    macro = load_macro(args.macro)
    changes = {k: getattr(args, k) for k in ("scheme", "cell_bits", "adc_bits", "group_size",
                                            "range_fraction", "nonlinearity", "noise_lsb")
               if getattr(args, k) is not None}
    return replace(macro, arith=macro.arith.with_(**changes)) if changes else macro


def run_eval(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from quant.artifact import load_artifact
    from quant.data import load_dataset
    from quant.errors import check_int_range
    from quant.infer import run_artifact
    from sim.pim.deploy import run_artifact_pim

    macro = macro_from_args(args)
    art = load_artifact(args.artifact)
    name = args.data or art.meta.get("data") or "digits"
    data = load_dataset(name, args.data_dir)
    x, y = data.x_test, data.y_test
    if args.limit is not None:
        n = check_int_range("limit", args.limit, 1, len(y))
        x, y = x[:n], y[:n]
    t0 = time.perf_counter()
    pim_pred = np.argmax(run_artifact_pim(art, x, macro.arith, seed=args.seed), axis=1)
    seconds = time.perf_counter() - t0
    dig_pred = np.argmax(run_artifact(art, x), axis=1)
    result = {
        "artifact": str(args.artifact), "macro": macro.name, "arith": macro.arith.__dict__,
        "data": name, "images": len(y), "seed": args.seed,
        "pim_accuracy": round(100.0 * float(np.mean(pim_pred == y)), 4),
        "digital_accuracy": round(100.0 * float(np.mean(dig_pred == y)), 4),
        "agreement": round(100.0 * float(np.mean(pim_pred == dig_pred)), 4),
        "pim_seconds": round(seconds, 2),
    }
    if args.json:
        print_json(result)
        return 0
    a = macro.arith
    print(f"macro {macro.name}: {a.scheme}, group {a.group_size}, {a.cell_bits}-bit cells, "
          f"{a.adc_bits}-bit ADC, range {a.range_fraction:g}, beta {a.nonlinearity:g}, "
          f"noise {a.noise_lsb:g} LSB, seed {args.seed}")
    print(f"{name} test, {len(y)} images: PIM {result['pim_accuracy']:.2f}%, digital "
          f"{result['digital_accuracy']:.2f}%, agreement {result['agreement']:.1f}% "
          f"({seconds:.1f} s on the PIM kernel)")
    return 0


def run_train(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from fpim.flows.pim import calibrated, pim_accuracy, pim_qat, to_artifact
    from fpim.flows.quantize import float_model, run_qat
    from quant.artifact import load_artifact, save_artifact
    from quant.data import load_dataset
    from quant.errors import check_int_range, check_positive
    from quant.infer import run_artifact
    from quant.torch.export import export
    from quant.torch.pim_qat import PimQATConfig
    from quant.torch.qat import QATConfig
    from quant.torch.train import TrainConfig
    from sim.pim.deploy import check_fits

    t0 = time.perf_counter()
    macro = macro_from_args(args)
    chip = macro.arith
    train_arith = chip.with_(noise_lsb=args.train_noise_lsb,
                             adc_bits=chip.adc_bits if args.train_adc_bits is None
                             else args.train_adc_bits)
    pim_cfg = PimQATConfig(backward_scale=args.backward_scale,
                           forward_rescale=args.forward_rescale)
    qcfg = QATConfig(scheme="fixed", bits=args.bits, act_bits=args.act_bits,
                     first_last_bits=None, input_bits=args.input_bits)
    for name in ("float_epochs", "qat_epochs", "epochs"):
        check_int_range(name.replace("_", "-"), getattr(args, name), 0, 10000)
    for name in ("lr", "pim_lr"):
        check_positive(name.replace("_", "-"), getattr(args, name))
    data = load_dataset(args.data, args.data_dir)
    fcfg = TrainConfig(epochs=args.float_epochs, lr=0.1, seed=args.seed)
    qtcfg = TrainConfig(epochs=args.qat_epochs, lr=args.lr, seed=args.seed)
    ptcfg = TrainConfig(epochs=args.epochs, lr=args.pim_lr, seed=args.seed)
    model, loaded = float_model(args.model, data, fcfg, width=args.width,
                                checkpoint=args.float_checkpoint, progress=args.progress)
    qmodel = run_qat(model, data, qcfg, qtcfg, progress=args.progress)
    digital = export(qmodel, data.input_shape)
    check_fits(digital, chip)
    dig_acc = 100.0 * float(np.mean(np.argmax(run_artifact(digital, data.x_test), 1)
                                    == data.y_test))
    plain_acc = pim_accuracy(digital, data, chip, seed=args.seed)
    pmodel = pim_qat(qmodel, data, train_arith, ptcfg, pim_cfg, progress=args.progress)
    if args.bn_calibrate:
        pmodel = calibrated(pmodel, data, chip, seed=args.seed)
    meta = {"model": args.model, "width": args.width, "data": data.name,
            "scheme": "fixed", "bits": args.bits, "act_bits": args.act_bits,
            "pim": {"macro": macro.name, "chip": chip.__dict__, "train": train_arith.__dict__,
                    "bn_calibrated": args.bn_calibrate,
                    "backward_scale": args.backward_scale,
                    "forward_rescale": args.forward_rescale,
                    "lr": {"qat": args.lr, "pim_qat": args.pim_lr}}}
    art = to_artifact(pmodel, data, meta)
    if args.out is not None:
        save_artifact(art, args.out)
        art = load_artifact(args.out)
    pim_acc = pim_accuracy(art, data, chip, seed=args.seed)
    result = {"model": args.model, "data": data.name, "macro": macro.name,
              "chip": chip.__dict__, "train_arith": train_arith.__dict__,
              "bn_calibrated": args.bn_calibrate, "digital_accuracy": round(dig_acc, 4),
              "pim_without_pim_qat": round(plain_acc, 4),
              "pim_qat_accuracy": round(pim_acc, 4), "test_images": len(data.y_test),
              "float_checkpoint_loaded": loaded, "seed": args.seed,
              "epochs": {"float": 0 if loaded else args.float_epochs, "qat": args.qat_epochs,
                         "pim_qat": args.epochs},
              "lr": {"qat": args.lr, "pim_qat": args.pim_lr},
              "artifact": args.out, "seconds": round(time.perf_counter() - t0, 1)}
    if args.json:
        print_json(result)
        return 0
    print(f"chip: {chip.scheme}, group {chip.group_size}, {chip.cell_bits}-bit cells, "
          f"{chip.adc_bits}-bit ADC, noise {chip.noise_lsb:g} LSB; PIM-QAT trained at "
          f"{train_arith.adc_bits} ADC bits, lr {args.pim_lr:g} (digital QAT lr {args.lr:g})"
          f"{', BN-calibrated' if args.bn_calibrate else ''}")
    print(f"digital quantized:         {dig_acc:6.2f}%")
    print(f"on PIM without PIM-QAT:    {plain_acc:6.2f}%")
    print(f"on PIM with PIM-QAT:       {pim_acc:6.2f}%")
    print(f"({len(data.y_test)} test images, {result['seconds']:.0f} s"
          f"{', artifact ' + args.out if args.out else ''})")
    return 0
