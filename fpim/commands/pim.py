"""``fpim pim``: run quantized models on processing-in-memory macros."""

from __future__ import annotations

import argparse

from fpim.commands.options import (
    add_csv,
    add_json,
    add_macro,
    add_progress,
    add_seed,
    check_csv,
    check_training_outputs,
    heartbeat,
    macro_overrides,
    progress,
    refuse_unless,
    show_progress,
    trained_model,
)
from fpim.commands.quantize import MODELS
from fpim.output import print_json, print_table

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
to the digital integer accuracy of the same artifact. An artifact written by `fpim pim
train` records the PIM settings it was trained for (meta "pim"); they replace the
preset's, and each replaced field is named. Options on the command line override both.
"""

SIM_EXAMPLES = """examples:
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7 --batch 8 --json
  fpim pim simulate --artifact runs/a --macro sram512x128_adc7 --scheme native \\
      --cell-bits 3 --group-size 64

An artifact written by `fpim pim train` records the PIM settings it was trained for
(meta "pim"); they replace the preset's, and each replaced field is named. Options on the
command line override both.
"""

TRAIN_EXAMPLES = """examples:
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --out runs/pim-bs
  fpim pim train --macro sram512x128_adc7 --scheme native --cell-bits 3 --adc-bits 4 \\
      --group-size 64 --epochs 5 --pim-lr 0.003 --float-checkpoint ckpt/r20.pt --json
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --noise-lsb 1.0 \\
      --train-adc-bits 3 --bn-calibrate          # adjusted precision + BN calibration
  fpim pim train --macro sram512x128_adc7 --adc-bits 4 --noise-lsb 0.25 \
      --psum-scales column --train-bn --bn-calibrate   # the paper's BN, column scales
  fpim pim train --model mynet.py:make --checkpoint mynet.pt --macro sram512x128_adc7 \\
      --adc-bits 4 --out runs/mynet-pim           # your model and float weights

Weights are fixed point on every layer (first and last too) so that every GEMM fits the
macro; see docs/pim.md.
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
    add_macro(s, overrides=True)
    s.add_argument("--batch", type=int, default=1, help="inputs per inference (default 1)")
    add_csv(s, "the per-layer table")
    add_json(s)
    s.set_defaults(func=run_simulate)

    e = pim_sub.add_parser(
        "eval", help="accuracy of an artifact deployed on the PIM macro model",
        description="Integer inference of an artifact with every conv/linear GEMM computed "
                    "by the PIM kernel (groups, ADC, non-linearity, seeded thermal noise, "
                    "digital shift-add); prints PIM and digital test accuracy.",
        epilog=EVAL_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--artifact", required=True, metavar="DIR", help="quantized artifact")
    add_macro(e, overrides=True)
    add_seed(e, "the thermal noise (with noise only)", default=None)
    e.add_argument("--data", default=None,
                   help="dataset (digits, cifar10, folder); default: the artifact's meta")
    e.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    e.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate the first N test images only")
    add_progress(e)
    add_json(e, "text")
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
    t.add_argument("--model", type=trained_model(MODELS), default="resnet20",
                   help=f"model: {', '.join(MODELS)} (default resnet20), or your own as a "
                        f"factory PATH.py:FUNCTION or package.module:FUNCTION")
    t.add_argument("--width", type=int, default=None,
                   help="channel multiplier of a built-in CNN (default 1)")
    t.add_argument("--data", default="digits", help="dataset (default digits)")
    t.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    add_macro(t, overrides=True)
    t.add_argument("--bits", type=int, default=4, help="fixed-point weight bits (default 4)")
    t.add_argument("--act-bits", type=int, default=4, help="activation bits (default 4)")
    t.add_argument("--input-bits", type=int, default=4, help="input image bits (default 4)")
    t.add_argument("--train-adc-bits", type=int, default=None,
                   help="ADC bits during PIM-QAT (adjusted precision; default: the chip's)")
    t.add_argument("--train-noise-lsb", type=float, default=0.0,
                   help="thermal noise during PIM-QAT, LSB (default 0)")
    t.add_argument("--calibrate-range", type=float, default=None, metavar="PERCENTILE",
                   help="set each layer's ADC range to this percentile (0, 100] of its group "
                        "sums on 512 training images (recorded in the artifact)")
    t.add_argument("--bn-calibrate", action="store_true",
                   help="BN calibration through the chip's non-ideal model before export")
    t.add_argument("--backward-scale", type=float, default=1.0,
                   help="straight-through gradient factor through the ADC (default 1)")
    t.add_argument("--forward-rescale", action="store_true",
                   help="rescale PIM outputs to the ideal output magnitude")
    t.add_argument("--psum-scales", default="off", metavar="off|column",
                   help="column: learn a scale per output column on the sum of ADC codes, "
                        "folded into the row's requantizer (default off)")
    t.add_argument("--psum-lr-scale", type=float, default=1.0, metavar="G",
                   help="gradient factor of the partial-sum scales, > 0 (default 1)")
    t.add_argument("--train-bn", action="store_true",
                   help="train a live BN after each PIM conv during PIM-QAT (statistics "
                        "updated); with --bn-calibrate its statistics are recomputed "
                        "through the chip; folded before export")
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
    t.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="load the float model's weights from FILE instead of training it "
                        "(.pth/.pt state_dict or .safetensors)")
    add_seed(t, "training and noise")
    t.add_argument("--out", default=None, metavar="DIR", help="write the PIM-QAT artifact")
    add_progress(t)
    add_json(t, "text")
    t.set_defaults(func=run_train)


def _settings(args: argparse.Namespace):
    """The artifact and the macro it runs on (its trained-for settings, then the options);
    the notes go to stderr unless JSON is printed (JSON carries them)."""
    import sys

    from fpim.flows.pim_deploy import settings_for
    from quant.artifact import load_artifact

    art = load_artifact(args.artifact)
    st = settings_for(art, args.macro, macro_overrides(args))
    if not args.json:
        for line in st.notes:
            print(f"note: {line}", file=sys.stderr)
    return art, st


def run_simulate(args: argparse.Namespace) -> int:
    from fpim.flows.pim_deploy import chip_cost
    from quant.errors import check_int_range

    batch = check_int_range("batch", args.batch, 1, 1 << 20)
    check_csv(args)
    art, st = _settings(args)
    r = chip_cost(art, st.macro, batch, st)
    if args.json:
        print_json(r.to_dict())
        return 0
    macro, a, totals = r.macro, r.macro.arith, r.totals
    print(f"macro {macro.name}: {macro.macros} x {macro.rows}x{macro.cols}, {a.scheme}, "
          f"{a.cell_bits}-bit cells, group {a.group_size}, {a.adc_bits}-bit ADC x "
          f"{macro.adcs}, {macro.clock_mhz:g} MHz"
          f"{' (approximation)' if macro.approximation else ''}")
    raw = [(c.name, c.m, c.k, c.n, c.tiles, c.passes, c.replication, c.conversions, c.cycles,
            c.energy_uj) for c in r.layers]
    print_table(("name", "m", "k", "n", "tiles", "passes", "replication", "conversions",
                 "cycles", "energy_uj"), [(*x[:-1], f"{x[-1]:.3f}") for x in raw], args.csv, raw)
    print(f"total: {totals['cycles']} cycles = {totals['latency_us']:.1f} us per batch of "
          f"{batch}, {totals['conversions']} conversions, {totals['energy_uj']:.3f} uJ, "
          f"area {totals['area_mm2']:.2f} mm^2")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from fpim.flows.pim_deploy import evaluate

    _, st = _settings(args)
    macro = st.macro
    noise = macro.arith.noise_lsb
    refuse_unless(args.seed, noise > 0, "--seed", "with thermal noise (noise_lsb > 0)",
                  f"noise_lsb {noise:g}")
    r = evaluate(args.artifact, macro, data=args.data, data_dir=args.data_dir,
                 limit=args.limit, seed=args.seed or 0, progress=progress(args), settings=st)
    if args.json:
        print_json(r)
        return 0
    a = macro.arith
    step = (f"step {a.adc_step:g}" if a.adc_step else f"range {a.range_fraction:g}") + (
        " (power of two)" if a.pot_step else " (exact)")
    print(f"macro {macro.name}: {a.scheme}, group {a.group_size}, {a.cell_bits}-bit cells, "
          f"{a.adc_bits}-bit ADC, {step}, beta {a.nonlinearity:g}, "
          f"noise {a.noise_lsb:g} LSB, seed {args.seed or 0}")
    print(f"{r['data']} test, {r['images']} images: PIM {r['pim_accuracy']:.2f}%, digital "
          f"{r['digital_accuracy']:.2f}%, agreement {r['agreement']:.1f}%, "
          f"{r['clipped_percent']:.2f}% of conversions clipped (first {r['clip_images']} "
          f"images; {r['pim_seconds']:.1f} s on the PIM kernel)")
    if not st.trained_for and r["digital_accuracy"] - r["pim_accuracy"] > 5:
        print(f"why: the artifact records no PIM settings (meta \"pim\"), so it was not "
              f"trained for this macro; its ADC step is set by "
              f"{'adc_step' if a.adc_step else 'the worst-case group sum'}, which loses "
              f"{r['digital_accuracy'] - r['pim_accuracy']:.1f} points here. `fpim pim train "
              f"--macro {args.macro}` trains a model for it (PIM-QAT, docs/pim.md).")
    return 0


def run_train(args: argparse.Namespace) -> int:
    # torch-dependent modules are imported here so `fpim --help` stays fast
    from fpim.flows.pim import pim_train_workflow
    from fpim.flows.pim_deploy import macro_with
    from quant.data import load_dataset
    from quant.errors import check_int_range, check_positive, check_real
    from quant.torch.pim_qat import PimQATConfig
    from quant.torch.qat import QATConfig
    from quant.torch.train import TrainConfig

    refuse_unless(args.width, args.model in MODELS, "--width", "to a built-in model",
                  f"--model {args.model}")
    check_training_outputs(args.out, args.float_checkpoint)
    width = 1 if args.width is None else check_int_range("width", args.width, 1, 64)
    if args.calibrate_range is not None:
        check_real("calibrate-range", args.calibrate_range, 0, 100, lo_open=True)
    macro = macro_with(args.macro, macro_overrides(args))
    chip = macro.arith
    train_arith = chip.with_(noise_lsb=args.train_noise_lsb,
                             adc_bits=chip.adc_bits if args.train_adc_bits is None
                             else args.train_adc_bits)
    pim_cfg = PimQATConfig(backward_scale=args.backward_scale,
                           forward_rescale=args.forward_rescale,
                           psum_scales=args.psum_scales,
                           psum_lr_scale=args.psum_lr_scale, train_bn=args.train_bn)
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
    with heartbeat(args, "pim train"):  # the evaluations between trainings have no bar
        r = pim_train_workflow(args.model, data, macro, train_arith, qcfg, fcfg, qtcfg, ptcfg,
                               pim_cfg, bn_calibrate=args.bn_calibrate, width=width,
                               float_checkpoint=args.float_checkpoint, weights=args.checkpoint,
                               out=args.out, seed=args.seed, progress=show_progress(args),
                               range_percentile=args.calibrate_range)
    if args.json:
        print_json(r.to_dict())
        return 0
    print(f"chip: {chip.scheme}, group {chip.group_size}, {chip.cell_bits}-bit cells, "
          f"{chip.adc_bits}-bit ADC, noise {chip.noise_lsb:g} LSB; PIM-QAT trained at "
          f"{train_arith.adc_bits} ADC bits, lr {args.pim_lr:g} (digital QAT lr {args.lr:g})"
          f"{', live BN' if args.train_bn else ''}"
          f"{', column partial-sum scales' if args.psum_scales == 'column' else ''}"
          f"{', BN-calibrated' if args.bn_calibrate else ''}")
    print(f"digital quantized:         {r.digital_accuracy:6.2f}%")
    print(f"on PIM without PIM-QAT:    {r.pim_without_pim_qat:6.2f}%")
    print(f"on PIM with PIM-QAT:       {r.pim_qat_accuracy:6.2f}%")
    print(f"({r.test_images} test images, {r.seconds:.0f} s"
          f"{', artifact ' + r.artifact if r.artifact else ''})")
    return 0
