"""``fpim quantize``: train (or load) a float CNN or ViT, run QAT (or PTQ), write the integer
artifact."""

from __future__ import annotations

import argparse

from fpim.commands.options import (
    add_csv,
    add_json,
    add_progress,
    add_seed,
    check_csv,
    check_training_outputs,
    heartbeat,
    refuse_unless,
    show_progress,
    trained_model,
)
from fpim.output import print_json, print_table

SCHEMES = ("fixed", "pot", "sp2", "msq", "f8")
# the names of quant.torch.models.MODELS (not imported: it imports torch; a test keeps them equal)
MODELS = ("resnet20", "resnet32", "resnet56", "cnn", "vit_digits", "deit_tiny", "deit_small",
          "deit_base")
VITS = MODELS[4:]
DATASETS = ("digits", "cifar10", "folder")

EXAMPLES = """examples:
  fpim quantize --model resnet20 --data digits --scheme msq --bits 4 --sp2-fraction 0.5 \\
      --out artifacts/r20-msq4
  fpim quantize --model cnn --data digits --scheme fixed --bits 4 --epochs 5 --out a/ --json
  fpim quantize --model resnet20 --data digits --scheme f8 --bits 8 \\
      --float-checkpoint ckpt/r20.pt --out artifacts/r20-f8   # trains once, then reuses
  fpim quantize --model resnet20 --data digits --scheme fixed --bits 8 \\
      --checkpoint my_r20.safetensors --out artifacts/r20-fixed8   # your float weights
  fpim quantize --model resnet20 --data cifar10 --data-dir ~/cifar-10-batches-py \\
      --scheme sp2 --bits 4 --out artifacts/r20-sp2
  fpim quantize --model cnn --data folder --data-dir my_images/ --image-size 32 \\
      --scheme pot --bits 4 --out artifacts/cnn-pot
  fpim quantize --model mynet.py:make --checkpoint mynet.pt --data digits --scheme msq \\
      --bits 4 --out artifacts/mynet        # your model, your float weights

  fpim quantize --model vit_digits --scheme fixed --bits 8 --act-bits 8 \\
      --float-checkpoint ckpt/vit.pt --out artifacts/vit-fixed8   # ViT QAT (integer ops)
  fpim quantize --model vit_digits --scheme msq --lut-scheme pot --bits 6 --act-bits 8 \\
      --sp2-fraction 0.5 --out artifacts/vit-pot6   # half of every head's rows on PoT
  fpim quantize --model vit_digits --scheme fixed --bits 8 --act-bits 8 --ptq \\
      --out artifacts/vit-ptq8   # post-training quantization: calibration only
  fpim quantize --model deit_tiny --data folder --data-dir imgs/ --image-size 224 \\
      --checkpoint deit_tiny_patch16_224-a1311bcf.pth --scheme fixed --bits 8 --act-bits 8 \\
      --ptq --out artifacts/deit-t-ptq8


The artifact directory holds manifest.json and tensors.safetensors (see docs/qat.md);
quant_accuracy is measured by integer-only inference of the written artifact. The defaults
keep the first conv and last linear at 8 bits and the input at 8 bits, which no 4-bit engine
runs: the output (engine_fit in the JSON) says whether the artifact runs on the xc7z020
preset and, if not, the options that make it (for 4 bits: --first-last-bits 0 --input-bits 4
--pool-extra-bits 0, as `make demo` does). For the ViTs (docs/vit.md) the float training
defaults are the model's recipe (quant.torch.models.float_recipe), QAT uses AdamW
(qat_recipe) and calibrated, fixed activation clips.
"""


def _choice(name: str, allowed: tuple[str, ...]):
    """argparse type that reports bad names in fpim's one-line style."""
    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(
                f"{name} must be one of {', '.join(allowed)}, not {value!r}")
        return value
    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quantize", help="QAT or PTQ a CNN or ViT and write its integer artifact",
        description="Train (or load) a float model, convert it for quantization-aware "
                    "training, fine-tune, export the integer artifact and print float and "
                    "quantized test accuracy.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", type=trained_model(MODELS), default="resnet20",
                   help=f"model: {', '.join(MODELS)} (default resnet20), or your own as a "
                        f"factory PATH.py:FUNCTION or package.module:FUNCTION (its float "
                        f"weights from --checkpoint, or trained)")
    p.add_argument("--width", type=int, default=None,
                   help="channel multiplier of a built-in CNN (default 1)")
    p.add_argument("--data", type=_choice("data", DATASETS), default="digits",
                   help="dataset: digits (bundled with scikit-learn), cifar10 (python batch "
                        "directory) or folder (class per sub-directory); default digits")
    p.add_argument("--data-dir", default=None, help="directory for cifar10 and folder")
    p.add_argument("--image-size", type=int, default=None,
                   help="folder only: resize images to SIZE x SIZE")
    p.add_argument("--scheme", type=_choice("scheme", SCHEMES), required=True,
                   help="weight scheme: fixed, pot, sp2, msq (fixed + SP2 per row), f8 (F8Net)")
    p.add_argument("--bits", type=int, required=True,
                   help="weight bits: fixed 2..16, pot 2..8, sp2 3..8, msq 3..8, f8 8")
    p.add_argument("--act-bits", type=int, default=None,
                   help="activation bits (default: 4, or 8 for f8 and the ViTs)")
    p.add_argument("--sp2-fraction", type=float, default=None,
                   help="msq only: fraction of rows on the LUT scheme (SP2, or PoT with "
                        "--lut-scheme pot), in [0, 1] (default 0.5)")
    p.add_argument("--lut-scheme", default=None, type=_choice("lut-scheme", ("sp2", "pot")),
                   help="msq only: LUT scheme of the mixed rows, sp2 (default) or pot "
                        "(Auto-ViT-Acc's fixed/PoT mix)")
    p.add_argument("--msq-rule", default=None, type=_choice("msq-rule", ("mse", "variance")),
                   help="msq only: row ranking rule (mse or variance; default mse)")
    p.add_argument("--input-bits", type=int, default=None,
                   help="bits of the quantized input images (default 8; 2..16). With "
                        "--first-last-bits 0 --input-bits 4 --pool-extra-bits 0 every GEMM "
                        "fits a 4-bit engine (the shipped presets)")
    p.add_argument("--pool-extra-bits", type=int, default=4,
                   help="fractional bits an average-pooled value keeps beyond its input, "
                        "0..8 (default 4; 0 makes it fit a 4-bit engine)")
    p.add_argument("--first-last-bits", type=int, default=None,
                   help="not f8: fixed-point bits of the first conv and last linear (default "
                        "8; 0 = same scheme as the rest)")
    p.add_argument("--ptq", action="store_true",
                   help="post-training quantization: calibrate the quantizers on training "
                        "images, no QAT epochs")
    p.add_argument("--float-ops", action="store_true",
                   help="ViTs: QAT with float softmax/LayerNorm/GELU instead of the integer "
                        "kernels (an ablation; the artifact is integer-only either way)")
    p.add_argument("--epochs", type=int, default=None,
                   help="QAT epochs (default 30; ViTs: their QAT recipe)")
    p.add_argument("--float-epochs", type=int, default=None,
                   help="float training epochs when no checkpoint is loaded (default 60; "
                        "ViTs: their float recipe)")
    p.add_argument("--lr", type=float, default=None,
                   help="QAT learning rate (default 0.01; ViTs: their QAT recipe)")
    p.add_argument("--float-lr", type=float, default=None,
                   help="float learning rate (default 0.1; ViTs: their float recipe)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="batch size (default 128; ViTs: their recipes)")
    p.add_argument("--float-checkpoint", default=None, metavar="F",
                   help="load the float model from F if it exists, else train it and save "
                        "it to F")
    p.add_argument("--checkpoint", default=None, metavar="FILE",
                   help="load the float model's weights from FILE instead of training it: "
                        ".pth/.pt (a state_dict, optionally wrapped as {'model': ...}; timm "
                        "key layout for the ViTs) or .safetensors")
    add_seed(p, "training")
    p.add_argument("--out", required=True, help="artifact directory to write")
    add_progress(p)
    add_csv(p, "the accuracy table")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # torch-dependent modules are imported here so `fpim --help` stays fast
    from fpim.flows.quantize import quantize_workflow
    from quant.data import load_dataset
    from quant.errors import check_int_range
    from quant.torch.models import float_recipe, qat_recipe
    from quant.torch.qat import QATConfig

    msq, f8, vit = args.scheme == "msq", args.scheme == "f8", args.model in VITS
    scheme = f"--scheme {args.scheme}"
    refuse_unless(args.sp2_fraction, msq, "--sp2-fraction", "to --scheme msq", scheme)
    refuse_unless(args.msq_rule, msq, "--msq-rule", "to --scheme msq", scheme)
    refuse_unless(args.lut_scheme, msq, "--lut-scheme", "to --scheme msq", scheme)
    refuse_unless(args.epochs, not args.ptq, "--epochs", "to QAT", "--ptq")
    refuse_unless(args.lr, not args.ptq, "--lr", "to QAT", "--ptq")
    refuse_unless(args.float_ops, vit, "--float-ops", "to the ViTs", f"--model {args.model}")
    refuse_unless(args.first_last_bits, not f8, "--first-last-bits",
                  "to schemes other than f8 (all 8-bit)", scheme)
    refuse_unless(args.width, args.model in MODELS, "--width", "to a built-in model",
                  f"--model {args.model}")
    check_training_outputs(args.out, args.float_checkpoint)
    check_csv(args)
    act_bits = args.act_bits if args.act_bits is not None else (8 if f8 or vit else 4)
    first_last = 8 if args.first_last_bits is None else args.first_last_bits
    check_int_range("first-last-bits", first_last, 0, 16)
    msq_options = {k: v for k, v in (("sp2_fraction", args.sp2_fraction),
                                     ("msq_rule", args.msq_rule),
                                     ("lut_scheme", args.lut_scheme)) if v is not None}
    vit_options = {"learn_clip": False, "int_ops": not args.float_ops} if vit else {}
    qcfg = QATConfig(scheme=args.scheme, bits=args.bits, act_bits=act_bits,
                     first_last_bits=first_last or None,
                     input_bits=8 if args.input_bits is None else args.input_bits,
                     pool_extra_bits=args.pool_extra_bits, **msq_options, **vit_options)

    def given(**fields: object) -> dict:
        return {k: v for k, v in fields.items() if v is not None}

    cnn_float = {} if vit else {"epochs": 60, "lr": 0.1, "batch_size": 128}
    fcfg = float_recipe(args.model, **{**cnn_float, **given(
        epochs=args.float_epochs, lr=args.float_lr, batch_size=args.batch_size), "seed": args.seed})
    tcfg = qat_recipe(args.model, **given(epochs=args.epochs, lr=args.lr,
                                          batch_size=args.batch_size), seed=args.seed)
    width = 1 if args.width is None else check_int_range("width", args.width, 1, 64)
    size = None
    if args.image_size is not None:
        check_int_range("image-size", args.image_size, 4, 4096)
        size = (args.image_size, args.image_size)
    with heartbeat(args, "quantize"):
        data = load_dataset(args.data, args.data_dir, image_size=size)
        r = quantize_workflow(args.model, data, qcfg, fcfg, tcfg, out=args.out, width=width,
                              float_checkpoint=args.float_checkpoint, weights=args.checkpoint,
                              ptq=args.ptq, progress=show_progress(args))
    if args.json:
        print_json(r)
        return 0
    lut = {"sp2": "SP2", "pot": "PoT"}[args.lut_scheme or "sp2"]
    frac = f", {lut} fraction {r['sp2_fraction']}" if r["sp2_fraction"] is not None else ""
    how = "PTQ" if args.ptq else "QAT"
    print(f"{r['model']} on {r['data']} ({r['test_images']} test images), {r['scheme']} "
          f"{r['bits']}-bit weights, {r['act_bits']}-bit activations{frac}, {how}")
    what = {"float_accuracy": "float",
            "fakequant_accuracy": f"{how} fake-quant (float forward)",
            "quant_accuracy": "quantized (integer artifact)"}
    print_table(("field", "test accuracy %", "model"),
                [(k, f"{r[k]:.2f}", w) for k, w in what.items()], args.csv,
                [(k, r[k], w) for k, w in what.items()])
    rows = f"{r['sp2_rows']}/{r['rows']} weight rows on SP2" if lut == "SP2" else \
        f"{r['lut_rows']}/{r['rows']} weight rows on {lut}"
    print(f"fake-quant and integer predictions agree on {r['agreement']:.1f}% of images; {rows}")
    print(f"artifact: {r['artifact']}")
    fit = r["engine_fit"]
    if fit["fits"]:
        print(f"runs on the {fit['preset']} preset's engine (fpim simulate --artifact "
              f"{r['artifact']} --accel {fit['preset']})")
    else:
        print(f"does not run on the {fit['preset']} preset's engine: {fit['reason']}")
        if fit["quantize_flags"]:
            print(f"to fit it, quantize again with {' '.join(fit['quantize_flags'])}")
    return 0
